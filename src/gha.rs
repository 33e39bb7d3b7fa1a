//! The GitHub Actions side of every command: annotations, step outputs and the step summary.
//! Escaping follows the runner's own rules (`%`, CR, LF in data; also `:` and `,` in
//! properties), so untrusted text can never end a workflow command or start another one.

use std::io::Write;
use std::path::PathBuf;

/// True when running inside a GitHub Actions job.
pub fn active() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
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
    active().then(|| format!("::group::{}", escape_data(title)))
}

pub fn group_end() -> Option<&'static str> {
    active().then_some("::endgroup::")
}

/// Renders a line of untrusted text (a container log line, a metric name) so that the runner
/// never reads it as a workflow command: a leading `::` is defused.
pub fn neutralise_line(line: &str) -> String {
    let trimmed = line.trim_start();
    if trimmed.starts_with("::") {
        // A zero-width space breaks the `::command::` prefix without changing what a reader sees.
        line.replacen("::", ":\u{200b}:", 1)
    } else {
        line.to_string()
    }
}

fn random_hex() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape_data("a%b\r\nc"), "a%25b%0D%0Ac");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn neutralises_commands() {
        assert_eq!(
            neutralise_line("::set-output name=a::b"),
            ":\u{200b}:set-output name=a::b"
        );
        assert_eq!(neutralise_line("plain"), "plain");
    }

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
