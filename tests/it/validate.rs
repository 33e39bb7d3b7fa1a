//! `mlops validate` over every fixture: valid projects pass, each invalid config yields exactly
//! the diagnostics of its snapshot (`tests/it/snapshots/it__validate__invalid@<fixture>.snap`;
//! review a changed one with `cargo insta review`, or read the `.snap.new` file insta writes).

use crate::common::{fixture, mlops, snapshots, stdout};

#[test]
fn invalid_fixtures_give_exact_diagnostics() {
    let mut cases = 0;
    insta::glob!("../../fixtures", "invalid/*", |case| {
        assert!(
            case.join("mlops.yaml").is_file(),
            "{}: an invalid fixture is a directory with an mlops.yaml",
            case.display()
        );
        cases += 1;
        let out = mlops(case).args(["validate"]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: {}",
            case.display(),
            stdout(&out)
        );
        insta::assert_snapshot!("invalid", stdout(&out));
    });
    assert!(cases >= 8, "expected the invalid fixtures, found {cases}");
}

/// The other formats of validate, on a config with several mistakes and on a valid one:
/// json (a list with positions) and github (workflow annotations); validate renders no
/// markdown, so `--format markdown` is refused (tests/it/flags.rs).
#[test]
fn validate_renders_json_and_github() {
    let _s = snapshots(&fixture("")).bind_to_scope();
    for (case, code) in [("invalid/five-mistakes", 1), ("churn", 0)] {
        let dir = fixture(case);
        let render = |format: &str| {
            let out = mlops(&dir)
                .args(["validate", "--format", format])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(code), "{case} {format}");
            stdout(&out)
        };
        let name = case.rsplit('/').next().unwrap();
        insta::assert_snapshot!(format!("{name}-json"), render("json"));
        insta::assert_snapshot!(format!("{name}-github"), render("github"));
    }
}

#[test]
fn five_independent_mistakes_are_all_reported() {
    let case = fixture("invalid/five-mistakes");
    let out = mlops(&case)
        .args(["validate", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diags = v["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 5, "{}", stdout(&out));
    assert_eq!(v["valid"], false);
    let lines: Vec<u64> = diags.iter().map(|d| d["line"].as_u64().unwrap()).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "sorted by position");
    for d in diags {
        assert!(d["column"].as_u64().unwrap() >= 1);
        assert_eq!(d["file"], "mlops.yaml");
    }
}

#[test]
fn github_format_prints_escaped_annotations() {
    let case = fixture("invalid/unknown-key");
    let out = mlops(&case)
        .args(["validate", "--format", "github"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("::error file=mlops.yaml,line=") && first.contains(",col="),
        "{first}"
    );
    assert!(first.contains("did you mean \"params\"?"), "{first}");
}

#[test]
fn valid_configs_pass() {
    for name in ["valid/design-example", "churn", "regression"] {
        let dir = fixture(name);
        let out = mlops(&dir).args(["validate"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stdout(&out));
        assert_eq!(stdout(&out), "mlops.yaml is valid\n");
    }
}

#[test]
fn unreadable_file_exits_2_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = mlops(dir.path())
        .args(["validate", "--config", "missing.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read missing.yaml"), "{err}");
}

#[test]
fn a_config_over_1_mib_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::copy_dir(&fixture("churn"), dir.path());
    let mut text = std::fs::read_to_string(dir.path().join("mlops.yaml")).unwrap();
    while text.len() <= 1 << 20 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(dir.path().join("mlops.yaml"), &text).unwrap();
    let out = mlops(dir.path()).args(["validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("mlops.yaml:1:1: the file is larger than 1 MiB"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_billion_laughs_config_is_refused_quickly_naming_the_first_anchor() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::copy_dir(&fixture("churn"), dir.path());
    let mut text = std::fs::read_to_string(dir.path().join("mlops.yaml")).unwrap();
    let line = text.lines().count() + 1;
    text.push_str("lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..=12 {
        let refs = vec![format!("*l{}", i - 1); 9].join(", ");
        text.push_str(&format!("lol{i}: &l{i} [{refs}]\n"));
    }
    std::fs::write(dir.path().join("mlops.yaml"), &text).unwrap();
    let started = std::time::Instant::now();
    let out = mlops(dir.path()).args(["validate"]).output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        format!("mlops.yaml:{line}:7: a YAML anchor (&name): anchors and aliases are not supported; write the value out in full\nmlops.yaml: 1 error\n")
    );
}
