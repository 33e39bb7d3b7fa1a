//! Every sanitiser of untrusted text, for each place it goes: a terminal or CI log
//! ([`clean`], [`neutralise`]), a workflow command's data or properties ([`escape_data`],
//! [`escape_property`]), Markdown ([`escape_markdown`], [`escape_code`]) and Mermaid labels.
//! Metric names, column names, reasons, paths and responses all pass through here before they
//! are shown; nothing else escapes on its own.
//!
//! How the GitHub Actions runner reads a job's output: it splits lines on `\n` and on a lone
//! `\r`; a line whose text, after leading white space, starts with `::` is a command
//! (`::error::...`), and `##[` anywhere in a line starts an old-style one (`##[error]...`). Its
//! comparisons are culture-sensitive (ICU), which skips control and format characters:
//! `:\u{200b}:` or `#\0#[` still match. So [`neutralise`] splits on both line ends and breaks
//! those prefixes with a visible backslash, looking through the characters ICU skips.
//! Annotations escape `%`, CR, LF (and `:` `,` in properties) the way the runner unescapes them.

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

/// Escapes text for a markdown table cell or paragraph: no markup, no HTML, one line.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(ch);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text inside a code span: backticks cannot close it, newlines cannot break it.
pub(crate) fn escape_code(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '`' {
                '\''
            } else if c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// A quoted Mermaid label.
pub(crate) fn escape_label(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '"' {
                '\''
            } else if c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Untrusted text shown on a terminal or a CI log, on one line: control characters made
/// visible (`\n`, `\r`, `\u{1b}`), and nothing the runner could read as a command.
pub fn clean(s: &str) -> String {
    let visible: String = s
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    neutralise_line(&visible)
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
}
