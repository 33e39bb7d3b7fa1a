//! Embeds the commit this binary is built from (when built from a git checkout), so that
//! `mlops init` can pin mlops' own actions to exactly that commit.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=.git/{}", r.trim());
        }
    }
    println!("cargo:rerun-if-env-changed=MLOPS_BUILD_COMMIT");
    let commit = std::env::var("MLOPS_BUILD_COMMIT").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    if let Some(c) = commit {
        println!("cargo:rustc-env=MLOPS_BUILD_COMMIT={c}");
    }
}
