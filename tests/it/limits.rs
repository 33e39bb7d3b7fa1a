//! Sizes that keep the code reviewable, checked on every test run: no file in src/ over 800
//! lines outside its tests (`#[cfg(test)]` items and `tests.rs` files), no function in src/ over
//! 120 lines. The scan relies on rustfmt's layout (`cargo fmt --check` runs in scripts/test): an
//! item's closing brace stands alone at the item's indentation.

use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 800;
const MAX_FUNCTION_LINES: usize = 120;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn indent(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// The index of the line that closes the item starting at `start` (its `}` alone at the
/// item's indentation), or None for an item without a body (`mod tests;`, `fn f();`).
fn item_end(lines: &[&str], start: usize) -> Option<usize> {
    let pad = indent(lines[start]);
    let body = (start..lines.len()).find(|&i| {
        let l = lines[i].trim_end();
        l.ends_with('{') || l.ends_with(';') || l.ends_with("{}")
    })?;
    let opened = lines[body].trim_end();
    if opened.ends_with(';') || opened.ends_with("{}") {
        return None;
    }
    let close = format!("{pad}}}");
    (body + 1..lines.len()).find(|&i| lines[i] == close)
}

/// Lines that are not test code: every `#[cfg(test)]` item left out.
fn non_test_lines(lines: &[&str]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "#[cfg(test)]" {
            i = item_end(lines, i + 1).unwrap_or(i + 1) + 1;
            continue;
        }
        count += 1;
        i += 1;
    }
    count
}

fn function_name(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

fn violations(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    files.sort();
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let is_test_file = path.file_name().is_some_and(|n| n == "tests.rs")
            || path.components().any(|c| c.as_os_str() == "tests");
        let counted = non_test_lines(&lines);
        if !is_test_file && counted > MAX_FILE_LINES {
            found.push(format!(
                "{rel}: {counted} lines outside tests (at most {MAX_FILE_LINES}): split it"
            ));
        }
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = function_name(line) else {
                continue;
            };
            if let Some(end) = item_end(&lines, i) {
                let length = end - i + 1;
                if length > MAX_FUNCTION_LINES {
                    found.push(format!(
                        "{rel}:{}: fn {name} has {length} lines (at most {MAX_FUNCTION_LINES}): split it",
                        i + 1
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn no_file_over_800_lines_and_no_function_over_120() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = violations(root);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_scan_sees_long_functions_and_leaves_tests_out() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let body = |n: usize| "    let _ = 1;\n".repeat(n);
    std::fs::write(
        src.join("long.rs"),
        format!(
            "pub(crate) async fn long() {{\n{}}}\n\nfn short() {{\n{}}}\n",
            body(119),
            body(3)
        ),
    )
    .unwrap();
    std::fs::write(
        src.join("big.rs"),
        format!(
            "fn a() {{}}\n{}#[cfg(test)]\nmod tests {{\n{}}}\n",
            "// line\n".repeat(799),
            "    // test\n".repeat(900)
        ),
    )
    .unwrap();
    let found = violations(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("src/long.rs:1: fn long has 121 lines"),
        "{found:?}"
    );
    std::fs::write(src.join("big.rs"), "// line\n".repeat(801)).unwrap();
    let found = violations(dir.path());
    assert!(
        found.iter().any(|f| f.contains("src/big.rs: 801 lines")),
        "{found:?}"
    );
}
