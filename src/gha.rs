//! The GitHub Actions side of every command: whether we run in a job, step outputs, the step
//! summary and log groups. Escaping what goes into annotations and logs is [`crate::text`]'s.

use std::io::Write;
use std::path::PathBuf;

/// True when running inside a GitHub Actions job.
pub fn active() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// Appends `name=value` outputs to `$GITHUB_OUTPUT` using a random heredoc delimiter that the
/// value cannot contain. Does nothing outside GitHub Actions.
pub fn set_outputs(outputs: &[(&str, &str)]) -> std::io::Result<()> {
    match std::env::var_os("GITHUB_OUTPUT").map(PathBuf::from) {
        Some(path) => write_outputs(&path, outputs),
        None => Ok(()),
    }
}

fn write_outputs(path: &std::path::Path, outputs: &[(&str, &str)]) -> std::io::Result<()> {
    let mut text = String::new();
    for (name, value) in outputs {
        let delimiter = loop {
            let d = format!("ghadelimiter_{}", random_hex());
            if !value.contains(&d) {
                break d;
            }
        };
        text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Appends markdown to `$GITHUB_STEP_SUMMARY`. Does nothing outside GitHub Actions.
pub fn append_summary(markdown: &str) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").map(PathBuf::from) else {
        return Ok(());
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(markdown.as_bytes())?;
    f.write_all(b"\n")
}

/// `::group::title` / `::endgroup::` around a block of logs, only under GitHub Actions.
pub fn group_start(title: &str) -> Option<String> {
    active().then(|| format!("::group::{}", crate::text::escape_data(title)))
}

pub fn group_end() -> Option<&'static str> {
    active().then_some("::endgroup::")
}

/// A fresh token for `::stop-commands::<token>`: while commands are stopped, only `::<token>::`
/// is read as one, and step code cannot know it.
pub fn stop_token() -> String {
    random_hex()
}

fn random_hex() -> String {
    use rand::Rng;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_use_heredoc() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        write_outputs(&path, &[("digest", "sha256:abc\nEOF")]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let first = lines.next().unwrap();
        let delim = first.strip_prefix("digest<<").unwrap();
        assert!(delim.starts_with("ghadelimiter_"));
        assert_eq!(lines.next(), Some("sha256:abc"));
        assert_eq!(lines.next(), Some("EOF"));
        assert_eq!(lines.next(), Some(delim));
    }
}
