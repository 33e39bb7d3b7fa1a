//! Embeds the commit this binary is built from (when built from a git checkout), so that
//! `mlops init` can pin mlops' own actions to exactly that commit.
use std::process::Command;

fn main() {
    // In a worktree `.git` is a file: ask git where HEAD and the refs are instead.
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let dir = std::path::PathBuf::from(dir);
        let head = dir.join("HEAD");
        println!("cargo:rerun-if-changed={}", head.display());
        if let Ok(text) = std::fs::read_to_string(&head) {
            if let Some(r) = text.strip_prefix("ref: ") {
                let common = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|| dir.clone());
                let reference = common.join(r.trim());
                if reference.exists() {
                    println!("cargo:rerun-if-changed={}", reference.display());
                } else {
                    // A packed ref: watch the file that holds it.
                    println!(
                        "cargo:rerun-if-changed={}",
                        common.join("packed-refs").display()
                    );
                }
            }
        }
    }
    println!("cargo:rerun-if-env-changed=MLOPS_BUILD_COMMIT");
    let commit = std::env::var("MLOPS_BUILD_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "HEAD"]));
    if let Some(c) = commit {
        println!("cargo:rustc-env=MLOPS_BUILD_COMMIT={c}");
    }
}
