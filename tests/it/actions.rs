//! The GitHub Actions side: every action input reaches the tool through an environment variable
//! that the subcommand actually reads (its `--help` names it); outputs are ones the subcommand
//! writes; `mlops init` workflows pin by SHA, keep credentials out of the checkout and values out
//! of scripts, and `--check` reports drift; the setup action installs a release only when its
//! sha256 matches.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{clean_command, mlops, repo_root, stderr, stdout};

fn yaml(path: &Path) -> Value {
    mlops::yamlio::from_yaml(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether `text` names the variable `var` as a whole word.
fn names(text: &str, var: &str) -> bool {
    let word = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_';
    text.match_indices(var).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(word)
            && !text[i + var.len()..].chars().next().is_some_and(word)
    })
}

/// `${{ inputs.NAME }}` → NAME.
fn input_ref(v: &str) -> Option<&str> {
    v.trim().strip_prefix("${{ inputs.")?.strip_suffix(" }}")
}

#[test]
fn every_action_input_reaches_the_tool_through_a_variable_it_reads() {
    let actions = repo_root().join("actions");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&actions).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let action = yaml(&dir.join("action.yml"));
        assert_eq!(action["runs"]["using"], "composite", "{name}");
        let steps = action["runs"]["steps"].as_array().unwrap();
        let inputs = action["inputs"].as_object().cloned().unwrap_or_default();
        let mut env_of_input = std::collections::BTreeMap::new();
        let mut help = String::new();
        let mut source = String::new();
        for step in steps {
            let run = step["run"].as_str().unwrap_or_default();
            assert!(
                !run.contains("${{"),
                "{name}: an expression inside run: would be interpolated into the script"
            );
            for (var, value) in step["env"].as_object().cloned().unwrap_or_default() {
                if let Some(input) = value.as_str().and_then(input_ref) {
                    env_of_input.insert(input.to_string(), var.clone());
                }
            }
            // The subcommand the step runs, e.g. `mlops data check --format github`.
            for line in run.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.first() != Some(&"mlops") {
                    continue;
                }
                let sub: Vec<&str> = words[1..]
                    .iter()
                    .take_while(|w| !w.starts_with('-'))
                    .copied()
                    .collect();
                let out = mlops(&repo_root())
                    .args(&sub)
                    .arg("--help")
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{name}: mlops {sub:?} --help");
                help.push_str(&stdout(&out));
                let file = repo_root().join(format!("src/cli/{}.rs", sub[0]));
                source.push_str(&std::fs::read_to_string(file).unwrap());
            }
        }
        if name == "setup" {
            // Not a subcommand: its script reads exactly the variables it is given.
            let script = std::fs::read_to_string(dir.join("install.sh")).unwrap();
            for (input, var) in &env_of_input {
                assert!(
                    script.contains(var.as_str()),
                    "setup: {input} → {var} unused"
                );
            }
            assert_eq!(
                env_of_input.len(),
                inputs.len(),
                "setup: an input without env"
            );
            checked.push(name);
            continue;
        }
        assert!(!help.is_empty(), "{name}: runs no mlops subcommand");
        for input in inputs.keys() {
            let var = env_of_input
                .get(input)
                .unwrap_or_else(|| panic!("{name}: input {input} reaches no env var"));
            assert!(
                names(&help, var),
                "{name}: input {input} → {var}, which `mlops … --help` does not name:\n{help}"
            );
        }
        for (output, spec) in action["outputs"].as_object().cloned().unwrap_or_default() {
            let value = spec["value"].as_str().unwrap();
            assert_eq!(
                value,
                format!("${{{{ steps.mlops.outputs.{output} }}}}"),
                "{name}"
            );
            assert!(
                source.contains(&format!("(\"{output}\"")),
                "{name}: output {output} is never written by the subcommand"
            );
        }
        checked.push(name);
    }
    checked.sort();
    assert_eq!(
        checked,
        [
            "compare",
            "data-check",
            "deploy",
            "doctor",
            "evaluate",
            "monitor",
            "package",
            "promote",
            "setup",
            "sign",
            "train",
            "validate"
        ]
    );
}

const REF: &str = "mlops-dev/mlops@0123456789abcdef0123456789abcdef01234567";

fn init(dir: &Path, extra: &[&str]) -> std::process::Output {
    mlops(dir)
        .arg("init")
        .args(["--actions-ref", REF])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn init_writes_pinned_least_privilege_workflows_and_check_reports_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = init(dir, &["--example"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The example validates as written, once its key pair exists (`sign.public_key`).
    let keys = mlops(dir)
        .args(["sign", "--generate-key", "cosign"])
        .env("MLOPS_SIGNING_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(keys.status.success(), "{}", stderr(&keys));
    let v = mlops(dir).arg("validate").output().unwrap();
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));

    let names = [
        "mlops-ci.yml",
        "mlops-promote.yml",
        "mlops-deploy.yml",
        "mlops-monitor.yml",
    ];
    for name in names {
        let path = dir.join(".github/workflows").join(name);
        let w = yaml(&path);
        assert_eq!(
            w["permissions"],
            serde_json::json!({}),
            "{name}: top-level permissions"
        );
        for (job, spec) in w["jobs"].as_object().unwrap() {
            assert!(
                spec["permissions"].is_object(),
                "{name}/{job}: job permissions"
            );
            assert!(spec["timeout-minutes"].is_number(), "{name}/{job}: timeout");
            for step in spec["steps"].as_array().unwrap() {
                if let Some(uses) = step["uses"].as_str() {
                    let (_, pin) = uses.split_once('@').unwrap();
                    assert!(
                        pin.len() == 40 && pin.bytes().all(|b| b.is_ascii_hexdigit()),
                        "{name}/{job}: {uses} is not pinned by SHA"
                    );
                    if uses.starts_with("actions/checkout@") {
                        assert_eq!(step["with"]["persist-credentials"], false, "{name}/{job}");
                    }
                }
                if let Some(run) = step["run"].as_str() {
                    assert!(!run.contains("${{"), "{name}/{job}: expression in run:");
                }
            }
        }
    }
    let promote = yaml(&dir.join(".github/workflows/mlops-promote.yml"));
    let on = &promote["on"];
    for trigger in [
        "push",
        "schedule",
        "workflow_dispatch",
        "repository_dispatch",
    ] {
        assert!(!on[trigger].is_null(), "promote workflow lacks {trigger}");
    }
    let paths: Vec<&str> = on["push"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        paths.contains(&"data/**")
            && paths.contains(&"mlops.yaml")
            && paths.contains(&"!.mlops/**"),
        "{paths:?}"
    );
    let deploy = yaml(&dir.join(".github/workflows/mlops-deploy.yml"));
    assert_eq!(
        deploy["on"]["push"]["paths"],
        serde_json::json!([".mlops/environments/**"])
    );
    assert_eq!(
        deploy["jobs"]["deploy"]["concurrency"]["group"],
        "mlops-deploy-${{ matrix.environment }}"
    );
    // Monitoring: on schedule and by hand, on the deploy runner (where the capture is), with
    // no more than it needs: the incident issue and the retraining dispatch.
    let monitor = yaml(&dir.join(".github/workflows/mlops-monitor.yml"));
    assert!(!monitor["on"]["schedule"].is_null() && !monitor["on"]["workflow_dispatch"].is_null());
    let job = &monitor["jobs"]["monitor"];
    assert_eq!(
        job["permissions"],
        serde_json::json!({"contents": "write", "issues": "write"})
    );
    assert_eq!(job["runs-on"], deploy["jobs"]["deploy"]["runs-on"]);
    assert_eq!(
        job["strategy"]["matrix"]["environment"],
        serde_json::json!(["staging"])
    );
    let uses: Vec<&str> = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["uses"].as_str())
        .collect();
    assert!(
        uses.iter()
            .any(|u| u.starts_with("mlops-dev/mlops/actions/monitor@")),
        "{uses:?}"
    );

    // Twice: nothing changes. --check: clean, then drift named by file and line.
    let again = init(dir, &["--example"]);
    assert!(
        stdout(&again).lines().all(|l| l.starts_with("unchanged ")),
        "{}",
        stdout(&again)
    );
    let check = mlops(dir).args(["init", "--check"]).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let ci = dir.join(".github/workflows/mlops-ci.yml");
    let text = std::fs::read_to_string(&ci).unwrap();
    std::fs::write(
        &ci,
        text.replace("persist-credentials: false", "persist-credentials: true"),
    )
    .unwrap();
    let check = mlops(dir).args(["init", "--check"]).output().unwrap();
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    assert!(
        stdout(&check).contains(".github/workflows/mlops-ci.yml:"),
        "{}",
        stdout(&check)
    );
    assert!(
        stdout(&check).contains("persist-credentials: true"),
        "{}",
        stdout(&check)
    );
    // A changed file is kept unless --force.
    let kept = init(dir, &["--example"]);
    assert!(
        stdout(&kept).contains("kept .github/workflows/mlops-ci.yml"),
        "{}",
        stdout(&kept)
    );
    let forced = init(dir, &["--example", "--force"]);
    assert!(stdout(&forced).contains("wrote .github/workflows/mlops-ci.yml"));
    let check = mlops(dir).args(["init", "--check"]).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    // A tag instead of a SHA is refused.
    let tag = mlops(dir)
        .args(["init", "--actions-ref", "mlops-dev/mlops@v1", "--force"])
        .output()
        .unwrap();
    assert_eq!(tag.status.code(), Some(2));
    assert!(stderr(&tag).contains("full commit SHA"), "{}", stderr(&tag));
}

#[test]
fn setup_installs_a_release_only_when_its_sha256_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let release = site.join("acme/mlops/releases/download/v0.1.0");
    std::fs::create_dir_all(&release).unwrap();
    let pkg = tmp.path().join("pkg/mlops-0.1.0");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("mlops"), "#!/bin/sh\necho 'mlops 0.1.0'\n").unwrap();
    let sh = |cmd: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
    };
    let asset = "mlops-0.1.0-x86_64-unknown-linux-gnu.tar.gz";
    sh(&format!(
        "chmod +x pkg/mlops-0.1.0/mlops && tar -czf site/acme/mlops/releases/download/v0.1.0/{asset} -C pkg mlops-0.1.0 && \
         cd site/acme/mlops/releases/download/v0.1.0 && sha256sum {asset} > {asset}.sha256"
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&site)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _kill = Kill(&mut server);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // `path`: the PATH the script sees (None: this process's).
    let install_on = |version: &str, path: Option<&str>| {
        let runner = tempfile::tempdir().unwrap();
        let path_file = runner.path().join("path");
        // The runner's own variables of the machine running the tests never reach the script.
        let mut cmd = clean_command(repo_root().join("actions/setup/install.sh"));
        if let Some(p) = path {
            cmd.env("PATH", p);
        }
        let out = cmd
            .env("MLOPS_VERSION", version)
            .env("MLOPS_ACTION_REPOSITORY", "acme/mlops")
            .env("MLOPS_DOWNLOAD_TOKEN", "")
            .env("GITHUB_SERVER_URL", format!("http://127.0.0.1:{port}"))
            .env("GITHUB_ACTION_PATH", repo_root().join("actions/setup"))
            .env("RUNNER_TEMP", runner.path())
            .env("GITHUB_PATH", &path_file)
            .output()
            .unwrap();
        let path = std::fs::read_to_string(&path_file).unwrap_or_default();
        (out, path, runner)
    };
    let install = |version: &str| install_on(version, None);
    let (out, path, _runner) = install("v0.1.0");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bin = Path::new(path.trim()).join("mlops");
    let v = Command::new(&bin).output().unwrap();
    assert_eq!(stdout(&v).trim(), "mlops 0.1.0");

    // A published checksum that does not match: nothing installed, exit 2.
    std::fs::write(
        release.join(format!("{asset}.sha256")),
        format!("{}  {asset}\n", "0".repeat(64)),
    )
    .unwrap();
    let (out, path, _runner) = install("0.1.0");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not match its published sha256"),
        "{}",
        stderr(&out)
    );
    assert!(path.is_empty());
    // A version with no release asset (404) falls back to building the source: here, on a
    // PATH without cargo, that is the error it ends with.
    let (out, path, _runner) = install_on("0.2.0", Some("/usr/bin:/bin"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("no release asset mlops-0.2.0-x86_64-unknown-linux-gnu.tar.gz")
            && stderr(&out).contains("building from source needs cargo"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(path.is_empty());
    // A version that is not a version never reaches a URL or a shell.
    let (out, _, _runner) = install("1.0; touch /tmp/pwned");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("version must look like"),
        "{}",
        stderr(&out)
    );
}

/// This repository's release workflow publishes what the setup action downloads: the archive
/// name install.sh builds, its `.sha256`, on a `v*` tag, with actions pinned by SHA and no
/// permission beyond `contents: write` in the one job that publishes.
#[test]
fn the_release_workflow_publishes_the_assets_setup_downloads() {
    let release = yaml(&repo_root().join(".github/workflows/release.yml"));
    assert_eq!(release["on"]["push"]["tags"], serde_json::json!(["v*"]));
    assert_eq!(release["permissions"], serde_json::json!({}));
    let install = std::fs::read_to_string(repo_root().join("actions/setup/install.sh")).unwrap();
    assert!(install.contains(r#"asset="mlops-${version}-${target}.tar.gz""#));
    assert!(install.contains(r#""$base/$asset.sha256""#));
    let mut scripts = String::new();
    for (job, spec) in release["jobs"].as_object().unwrap() {
        assert_eq!(
            spec["permissions"],
            serde_json::json!({"contents": "write"}),
            "{job}"
        );
        for step in spec["steps"].as_array().unwrap() {
            if let Some(uses) = step["uses"].as_str() {
                let pin = uses.split_once('@').unwrap().1;
                assert!(
                    pin.len() == 40 && pin.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{uses}"
                );
            }
            let run = step["run"].as_str().unwrap_or_default();
            assert!(!run.contains("${{"), "{job}: expression in run:");
            scripts.push_str(run);
        }
    }
    for piece in [
        r#"target=x86_64-unknown-linux-gnu"#,
        r#"name="mlops-${version}-${target}""#,
        r#"sha256sum "$name.tar.gz" > "$name.tar.gz.sha256""#,
        r#""$ASSET" "$ASSET.sha256""#,
    ] {
        assert!(scripts.contains(piece), "release.yml lacks {piece}");
    }
}
