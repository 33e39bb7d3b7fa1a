//! The GitHub Actions side of every command: annotations, step outputs and the step summary,
//! and the one sanitiser every echo of untrusted text goes through.
//!
//! How the runner reads a job's output: it splits lines on `\n` and on a lone `\r`; a line
//! whose text, after leading white space, starts with `::` is a command (`::error::...`), and
//! `##[` anywhere in a line starts an old-style one (`##[error]...`). Its comparisons are
//! culture-sensitive (ICU), which skips control and format characters: `:\u{200b}:` or
//! `#\0#[` still match. So [`neutralise`] splits on both line ends and breaks those prefixes
//! with a visible backslash, looking through the characters ICU skips. Annotations escape
//! `%`, CR, LF (and `:` `,` in properties) the way the runner unescapes them.

use std::io::Write;
use std::path::PathBuf;

/// True when running inside a GitHub Actions job.
pub fn active() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// The message of an annotation: one line, nothing the runner could read as a command.
pub fn escape_data(s: &str) -> String {
    break_hash_bracket(s, "\\[")
        .replace('%', "%25")
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

/// Characters the runner's comparisons skip (ICU ignorables): controls other than tab, format
/// characters and the other default-ignorable code points.
fn skipped(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c as u32,
            0xAD | 0x34F | 0x61C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
            | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB | 0x600..=0x605 | 0x6DD | 0x70F | 0x8E2
            | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF)
}

/// `##[` (looking through skipped characters) with `breaker` written instead of its `[`.
fn break_hash_bracket(line: &str, breaker: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut last = ['\0', '\0'];
    for c in line.chars() {
        if c == '[' && last == ['#', '#'] {
            out.push_str(breaker);
        } else {
            out.push(c);
        }
        if !skipped(c) {
            last = [last[1], c];
        }
    }
    out
}

/// One line of untrusted text (no line ends in it) made inert for the runner: a backslash goes
/// before a leading `::` and before the `[` of every `##[`. The text stays readable, and in
/// Markdown `\:` and `\[` render as `:` and `[`.
pub fn neutralise_line(line: &str) -> String {
    let mut line = break_hash_bracket(line, "\\[");
    let mut visible = line
        .char_indices()
        .filter(|(_, c)| !(c.is_whitespace() || skipped(*c)));
    if let Some((at, ':')) = visible.next() {
        let next = line[at + 1..].chars().find(|c| !skipped(*c));
        if next == Some(':') {
            line.insert(at, '\\');
        }
    }
    line
}

/// Untrusted text of any number of lines, made inert for the runner: split where the runner
/// splits (`\r\n`, `\n` and a lone `\r`), each line neutralised, joined with `\n`.
pub fn neutralise(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    loop {
        match rest.find(['\r', '\n']) {
            Some(i) => {
                out.push_str(&neutralise_line(&rest[..i]));
                out.push('\n');
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                out.push_str(&neutralise_line(rest));
                return out;
            }
        }
    }
}

/// JSON text (as serde_json writes it) made inert: no line of it can start with `::` (strings
/// are quoted, line ends escaped), and the `[` of `##[` becomes `\u005b`, the same string.
pub fn neutralise_json(json: &str) -> String {
    break_hash_bracket(json, "\\u005b")
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
    fn escapes() {
        assert_eq!(escape_data("a%b\r\nc"), "a%25b%0D%0Ac");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn neutralises_commands() {
        assert_eq!(
            neutralise_line("::set-output name=a::b"),
            "\\::set-output name=a::b"
        );
        assert_eq!(
            neutralise_line("  \u{200b}::error::x"),
            "  \u{200b}\\::error::x"
        );
        assert_eq!(
            neutralise_line(":\u{200b}:error::x"),
            "\\:\u{200b}:error::x"
        );
        assert_eq!(neutralise_line("\u{1b}::error::x"), "\u{1b}\\::error::x");
        assert_eq!(neutralise_line("a ##[error]x"), "a ##\\[error]x");
        assert_eq!(
            neutralise_line("#\0#[x] #\u{200b}#\u{feff}[y]"),
            "#\0#\\[x] #\u{200b}#\u{feff}\\[y]"
        );
        // Not commands: left alone.
        for plain in ["plain", "a::b", ":x", "## [heading]", "#[x]", "std::io"] {
            assert_eq!(neutralise_line(plain), plain);
        }
    }

    #[test]
    fn splits_where_the_runner_splits() {
        assert_eq!(
            neutralise("x\r::error::a\r\n::b::\n##[c]\r"),
            "x\n\\::error::a\n\\::b::\n##\\[c]\n"
        );
        assert_eq!(neutralise("one"), "one");
        assert_eq!(neutralise(""), "");
    }

    #[test]
    fn annotation_data_holds_no_old_style_command() {
        assert_eq!(escape_data("a ##[error]b\r::c"), "a ##\\[error]b%0D::c");
    }

    #[test]
    fn json_keeps_its_value() {
        let v = serde_json::json!({"k": "a ##[error]x #\u{200b}#[y"});
        let text = neutralise_json(&serde_json::to_string_pretty(&v).unwrap());
        assert!(!text.contains("##["), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
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
