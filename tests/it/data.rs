//! `mlops data accept` and `mlops data check` on the churn fixture's data: exit 0 passed,
//! 1 a check failed, 2 unreadable data.

use std::path::Path;

use serde_json::Value;

use crate::common::{copy_dir, fixture, mlops, redact_digests, snapshots, stderr, stdout};

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("churn"), dir.path());
    dir
}

fn check_json(dir: &Path) -> (i32, Value) {
    let out = mlops(dir)
        .args(["data", "check", "--format", "json"])
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    (code, json)
}

fn accept(dir: &Path) {
    let out = mlops(dir).args(["data", "accept"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn dataset<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap()
}

fn set_yaml(dir: &Path, from: &str, to: &str) {
    let p = dir.join("mlops.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from));
    std::fs::write(&p, text.replace(from, to)).unwrap();
}

#[test]
fn no_reference_passes_and_says_how_to_accept() {
    let dir = project();
    let out = mlops(dir.path()).args(["data", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("reference: none"), "{text}");
    assert!(text.contains("mlops data accept --dataset train"), "{text}");
    let (code, json) = check_json(dir.path());
    assert_eq!(code, 0);
    assert_eq!(json["passed"], true);
    let train = dataset(&json, "train");
    assert_eq!(train["reference_digest"], Value::Null);
    assert_eq!(train["rows"], 398);
    assert!(train["digest"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn unchanged_data_fails_changed_required_and_the_test_set_may_stay_frozen() {
    let dir = project();
    accept(dir.path());
    let reference = dir.path().join(".mlops/data/train.json");
    let stored: Value = serde_json::from_slice(&std::fs::read(&reference).unwrap()).unwrap();
    assert_eq!(stored["schema"]["plan"], "categorical");
    assert_eq!(stored["schema"]["label"], "integer");
    assert_eq!(stored["profile"]["rows"], 398);
    assert_eq!(stored["sample"]["rows"], 398);
    let (code, json) = check_json(dir.path());
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(json["passed"], false);
    let train = dataset(&json, "train");
    assert_eq!(train["changed"], false);
    assert_eq!(train["passed"], false);
    assert_eq!(train["reference_digest"], train["digest"]);
    // Identical data: no column drifts, every p-value is 1.
    assert_eq!(train["drifted_share"], 0.0);
    for c in train["columns"].as_array().unwrap() {
        assert_eq!(c["statistic"], 0.0, "{c}");
        assert_eq!(c["drifted"], false);
    }
    // The target and excluded columns are not tested; plan (categories) gets chi2.
    let tested: Vec<&str> = train["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(!tested.contains(&"label") && !tested.contains(&"customer_id"));
    let plan = train["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "plan")
        .unwrap();
    assert_eq!(plan["test"], "chi2");
    assert_eq!(plan["kind"], "categorical");
    let tenure = train["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tenure_months")
        .unwrap();
    assert_eq!(tenure["test"], "ks");
    // The test set is frozen on purpose: unchanged is fine there.
    assert_eq!(dataset(&json, "test")["passed"], true);
    // `warn` lets unchanged data through.
    set_yaml(dir.path(), "changed: required", "changed: warn");
    let (code, json) = check_json(dir.path());
    assert_eq!(code, 0, "{json:#}");
}

#[test]
fn a_reference_sampled_its_own_way_has_the_data_sampled_the_same_way() {
    // `accept` samples with the default reservoir, and `check` starts scanning with it before
    // the reference is read; a reference that records another size (edited, or from another
    // version) must have the data sampled again its way: 50 of the 398 rows here.
    let dir = project();
    accept(dir.path());
    let path = dir.path().join(".mlops/data/train.json");
    let mut stored: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    stored["sample"]["size"] = 50.into();
    std::fs::write(&path, serde_json::to_vec(&stored).unwrap()).unwrap();
    let (code, json) = check_json(dir.path());
    assert_eq!(code, 1, "{json:#}"); // unchanged data, `changed: required`
                                     // Sampled the default way, the unchanged data would give statistic 0 in every column (see
                                     // above); 50 of its rows against all of them cannot, in a column of many distinct values.
    let tenure = dataset(&json, "train")["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tenure_months")
        .unwrap();
    assert!(tenure["statistic"].as_f64().unwrap() > 0.0, "{tenure}");
}

#[test]
fn drifted_data_fails_and_a_fresh_sample_of_the_same_distribution_passes() {
    let dir = project();
    accept(dir.path());
    let data = dir.path().join("data");
    std::fs::copy(data.join("drifted.csv"), data.join("train.csv")).unwrap();
    let (code, json) = check_json(dir.path());
    assert_eq!(code, 1, "{json:#}");
    let train = dataset(&json, "train");
    assert_eq!(train["changed"], true);
    assert!(train["drifted_share"].as_f64().unwrap() > 0.3, "{train:#}");
    let drifted: Vec<&Value> = train["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["drifted"] == true)
        .collect();
    assert!(drifted
        .iter()
        .all(|c| c["p_value"].as_f64().unwrap() < 0.01));
    let out = mlops(dir.path())
        .args(["data", "check", "--format", "markdown"])
        .output()
        .unwrap();
    let md = stdout(&out);
    assert!(md.contains("### Data check: ❌ failed"), "{md}");
    assert!(md.contains("columns drifted"), "{md}");

    // The first 300 rows of the accepted data: changed, same distribution.
    let original = std::fs::read_to_string(fixture("churn/data/train.csv")).unwrap();
    let head: Vec<&str> = original.lines().take(301).collect();
    std::fs::write(data.join("train.csv"), head.join("\n") + "\n").unwrap();
    let (code, json) = check_json(dir.path());
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(dataset(&json, "train")["drifted_share"], 0.0);
}

#[test]
fn psi_and_wasserstein_have_no_p_value() {
    let dir = project();
    accept(dir.path());
    let data = dir.path().join("data");
    std::fs::copy(data.join("drifted.csv"), data.join("train.csv")).unwrap();
    for test in ["psi", "wasserstein"] {
        set_yaml(
            dir.path(),
            if test == "psi" {
                "test: auto"
            } else {
                "test: psi"
            },
            &format!("test: {test}"),
        );
        let (code, json) = check_json(dir.path());
        assert_eq!(code, 1, "{test}: {json:#}");
        let cols = dataset(&json, "train")["columns"]
            .as_array()
            .unwrap()
            .clone();
        let numeric = cols.iter().find(|c| c["name"] == "tenure_months").unwrap();
        assert_eq!(numeric["test"], test);
        assert_eq!(numeric["p_value"], Value::Null);
    }
}

#[test]
fn schema_strict_and_subset() {
    let dir = project();
    accept(dir.path());
    let data = dir.path().join("data");
    let original = std::fs::read_to_string(data.join("train.csv")).unwrap();
    // A new column at the end; then a column whose type changes from float to text.
    let widened: Vec<String> = original
        .lines()
        .enumerate()
        .map(|(i, l)| format!("{l},{}", if i == 0 { "region" } else { "north" }))
        .collect();
    std::fs::write(data.join("train.csv"), widened.join("\n") + "\n").unwrap();
    let (code, json) = check_json(dir.path());
    assert_eq!(code, 1);
    let schema = &dataset(&json, "train")["schema"];
    assert_eq!(schema["passed"], false);
    assert_eq!(schema["differences"][0], "column \"region\" is new");
    set_yaml(dir.path(), "schema: strict", "schema: subset");
    let (code, json) = check_json(dir.path());
    assert_eq!(code, 0, "{json:#}");

    let retyped = original.replacen("\nC00002,19.69,", "\nC00002,unknown,", 1);
    assert_ne!(retyped, original);
    std::fs::write(data.join("train.csv"), retyped).unwrap();
    let (code, json) = check_json(dir.path());
    assert_eq!(code, 1);
    let diffs = &dataset(&json, "train")["schema"]["differences"];
    assert_eq!(
        diffs[0],
        "column \"tenure_months\" is categorical (reference: float)"
    );
}

#[test]
fn unreadable_data_exits_2_naming_file_and_line_and_accept_writes_nothing() {
    let dir = project();
    let data = dir.path().join("data");
    let mut text = std::fs::read_to_string(data.join("test.csv")).unwrap();
    text.push_str("C99999,1.0,2.0\n");
    std::fs::write(data.join("test.csv"), &text).unwrap();
    let out = mlops(dir.path()).args(["data", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("test.csv:173: expected 15 fields"), "{err}");
    let out = mlops(dir.path()).args(["data", "accept"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join(".mlops/data/train.json").exists());
    // One dataset can still be accepted on its own.
    let out = mlops(dir.path())
        .args(["data", "accept", "--dataset", "train"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(dir.path().join(".mlops/data/train.json").exists());
    let out = mlops(dir.path())
        .args(["data", "accept", "--dataset", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no dataset \"nope\""));
}

/// `mlops data check --format <format>`: what it prints on stdout, then what it prints on
/// stderr when that is annotations (github).
fn rendered(dir: &Path, format: &str, code: i32) -> String {
    let out = mlops(dir)
        .args(["data", "check", "--format", format])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(code), "{format}: {}", stderr(&out));
    if format == "github" {
        format!("{}--- stderr\n{}", stdout(&out), stderr(&out))
    } else {
        stdout(&out)
    }
}

/// Every format of the data gate: before anything is accepted (notices), then with the train
/// set drifted against its reference and the test set unchanged (an error, a warning, the
/// drifted columns).
#[test]
fn data_check_renders_no_reference_and_drift_in_every_format() {
    let dir = project();
    let mut settings = snapshots(dir.path());
    redact_digests(&mut settings);
    let _s = settings.bind_to_scope();
    for format in ["human", "json", "markdown", "github"] {
        insta::assert_snapshot!(
            format!("no-reference-{format}"),
            rendered(dir.path(), format, 0)
        );
    }
    accept(dir.path());
    std::fs::copy(
        dir.path().join("data/drifted.csv"),
        dir.path().join("data/train.csv"),
    )
    .unwrap();
    for format in ["human", "json", "markdown", "github"] {
        insta::assert_snapshot!(format!("drift-{format}"), rendered(dir.path(), format, 1));
    }
}
