//! Build contexts (`train.build`, `package.dockerfile`): the tar archive sent to the engine.
//! It honours `.dockerignore` with Docker's rules — one pattern a line, `#` comments, `*`, `?`,
//! `[...]`, `\` escapes and `**` for any number of directories, patterns anchored at the
//! context root, a pattern that matches a directory excludes what is below it, `!` re-includes,
//! and the last matching line wins — and it never carries a signing key: `*.key` files at any
//! depth, `.git/` and `.mlops/` are left out unless a `!` line of `.dockerignore` names them.
//! The Dockerfile and `.dockerignore` themselves always go (the engine reads them, and drops
//! them from what `COPY` sees when `.dockerignore` excludes them).

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Left out of every context unless `.dockerignore` re-includes them with a `!` line.
const ALWAYS_EXCLUDED: &[&str] = &[".git", ".mlops", "**/*.key"];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    /// `?`: one character other than `/`.
    One,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**` at the end: anything.
    All,
    /// `**` elsewhere (`**/` too): nothing, or anything ending with `/`.
    Dirs,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone)]
struct Pattern {
    tokens: Vec<Token>,
    exclusion: bool,
}

/// The `.dockerignore` rules of one build context.
#[derive(Debug, Clone)]
pub(crate) struct Ignore {
    patterns: Vec<Pattern>,
}

fn compile(text: &str, origin: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i == chars.len() {
                    Token::All
                } else {
                    Token::Dirs
                });
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            '\\' => match chars.get(i) {
                Some(&next) => {
                    tokens.push(Token::Literal(next));
                    i += 1;
                }
                None => bail!("{origin}: pattern {text:?} ends with a lone \\"),
            },
            '[' => {
                let negated = matches!(chars.get(i), Some('^') | Some('!'));
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                while i < chars.len() {
                    let mut lo = chars[i];
                    i += 1;
                    if lo == ']' && !ranges.is_empty() {
                        closed = true;
                        break;
                    }
                    if lo == '\\' {
                        lo = *chars.get(i).unwrap_or(&'\\');
                        i += 1;
                    }
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                        hi = chars[i + 1];
                        i += 2;
                    }
                    ranges.push((lo, hi));
                }
                if !closed {
                    bail!("{origin}: pattern {text:?} has an unterminated [ character class");
                }
                tokens.push(Token::Class { negated, ranges });
            }
            c => tokens.push(Token::Literal(c)),
        }
    }
    Ok(tokens)
}

/// Docker's cleaning of a pattern: `filepath.Clean`, then no leading `/`.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// Whether `tokens` match all of `path`: a set-of-states simulation, linear in the path for
/// any pattern (a hostile `.dockerignore` cannot make it backtrack exponentially).
fn matches(tokens: &[Token], path: &str) -> bool {
    // State (i, inside): before token i; `inside` is the middle of a `Dirs` token that has
    // consumed something and must still consume a `/` to finish.
    let n = tokens.len();
    let close = |states: &mut Vec<(usize, bool)>| {
        let mut k = 0;
        while k < states.len() {
            let (i, inside) = states[k];
            if !inside && i < n && matches!(tokens[i], Token::Star | Token::All | Token::Dirs) {
                let next = (i + 1, false);
                if !states.contains(&next) {
                    states.push(next);
                }
            }
            k += 1;
        }
    };
    let mut states = vec![(0usize, false)];
    close(&mut states);
    for c in path.chars() {
        let mut next: Vec<(usize, bool)> = Vec::new();
        let mut add = |s: (usize, bool)| {
            if !next.contains(&s) {
                next.push(s);
            }
        };
        for &(i, _) in &states {
            if i >= n {
                continue;
            }
            match &tokens[i] {
                Token::Literal(l) if *l == c => add((i + 1, false)),
                Token::One if c != '/' => add((i + 1, false)),
                Token::Class { negated, ranges } => {
                    let hit = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                    if hit != *negated {
                        add((i + 1, false));
                    }
                }
                Token::Star if c != '/' => add((i, false)),
                Token::All => add((i, false)),
                Token::Dirs => {
                    add((i, true));
                    if c == '/' {
                        add((i + 1, false));
                    }
                }
                _ => {}
            }
        }
        close(&mut next);
        states = next;
        if states.is_empty() {
            return false;
        }
    }
    states.iter().any(|&(i, _)| i == n)
}

impl Ignore {
    /// The rules for `context`: ours first, then its `.dockerignore` (if any), so that a `!`
    /// line there can re-include what ours leave out.
    pub(crate) fn load(context: &Path) -> Result<Ignore> {
        let file = context.join(".dockerignore");
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        };
        Ignore::parse(&text, &file.display().to_string())
    }

    pub(crate) fn parse(text: &str, origin: &str) -> Result<Ignore> {
        let mut patterns = Vec::new();
        for p in ALWAYS_EXCLUDED {
            patterns.push(Pattern {
                tokens: compile(p, "built-in")?,
                exclusion: false,
            });
        }
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if body.is_empty() {
                continue;
            }
            let at = format!("{origin}:{}", n + 1);
            patterns.push(Pattern {
                tokens: compile(&clean(body), &at)?,
                exclusion,
            });
        }
        Ok(Ignore { patterns })
    }

    /// Whether the context path `rel` (slash-separated, relative) is left out: the last
    /// pattern matching it, or one of its parent directories, decides.
    pub(crate) fn excludes(&self, rel: &str) -> bool {
        let parents: Vec<&str> = rel.match_indices('/').map(|(i, _)| &rel[..i]).collect();
        let mut excluded = false;
        for p in &self.patterns {
            // An inclusion only matters for what is excluded so far, and vice versa.
            if p.exclusion != excluded {
                continue;
            }
            let hit = matches(&p.tokens, rel) || parents.iter().any(|d| matches(&p.tokens, d));
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether a `!` line could re-include something below an excluded directory.
    fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }
}

/// The build context as a tar archive, without what [`Ignore`] leaves out; the Dockerfile
/// (`dockerfile`, relative to the context) and `.dockerignore` always go.
pub(crate) fn context_tar(context: &Path, dockerfile: &str) -> Result<Vec<u8>> {
    let ignore = Ignore::load(context)?;
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut stack = vec![context.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let listing =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        let mut entries: Vec<_> = listing.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let rel = path.strip_prefix(context).unwrap_or(&path);
            let rel_text = rel.to_string_lossy().into_owned();
            let forced = rel_text == dockerfile || rel_text == ".dockerignore";
            let kind = entry.file_type()?;
            let excluded = !forced && ignore.excludes(&rel_text);
            if kind.is_dir() {
                if !excluded {
                    builder.append_dir(rel, &path)?;
                    stack.push(path);
                } else if ignore.has_exceptions() {
                    // Something below may be re-included; the directory itself is not sent.
                    stack.push(path);
                }
            } else if !excluded {
                builder.append_path_with_name(&path, rel).with_context(|| {
                    format!("cannot add {} to the build context", path.display())
                })?;
            }
        }
    }
    Ok(builder.into_inner()?)
}

/// The sha256 (hex) of what a build of `dockerfile` in `context` depends on: each path sent,
/// its kind, executable bit and content, and the build arguments; not times or owners, so a
/// fresh checkout of the same tree gives the same hash. `package.dockerfile` tags its built
/// base with it and builds only when that tag is not in the registry yet.
pub(crate) fn context_digest(
    context: &Path,
    dockerfile: &str,
    args: &[(String, String)],
) -> Result<String> {
    use sha2::{Digest as _, Sha256};
    use std::io::Read as _;
    let tar = context_tar(context, dockerfile)?;
    let mut hash = Sha256::new();
    hash.update(format!("dockerfile {dockerfile}\n"));
    let mut sorted = args.to_vec();
    sorted.sort();
    for (name, value) in &sorted {
        hash.update(format!("arg {} {name}={value}\n", name.len()));
    }
    let mut archive = tar::Archive::new(tar.as_slice());
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let header = entry.header();
        let kind = header.entry_type().as_byte();
        let exec = header.mode().unwrap_or(0) & 0o111 != 0;
        let link = header
            .link_name()?
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut content = Vec::new();
        entry.read_to_end(&mut content)?;
        hash.update(format!(
            "entry {} {path} {kind} {exec} {} {link}\n{}\n",
            path.len(),
            link.len(),
            content.len()
        ));
        hash.update(&content);
    }
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_digest_follows_content_and_args_not_times() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("serve.Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(root.join("serve.py"), "print(1)\n").unwrap();
        let args = vec![("PYTHON_IMAGE".to_string(), "a".to_string())];
        let first = context_digest(root, "serve.Dockerfile", &args).unwrap();
        // Rewritten with the same bytes (a new mtime): the same digest.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(root.join("serve.py"), "print(1)\n").unwrap();
        assert_eq!(
            context_digest(root, "serve.Dockerfile", &args).unwrap(),
            first
        );
        let other_arg = vec![("PYTHON_IMAGE".to_string(), "b".to_string())];
        assert_ne!(
            context_digest(root, "serve.Dockerfile", &other_arg).unwrap(),
            first
        );
        std::fs::write(root.join("serve.py"), "print(2)\n").unwrap();
        assert_ne!(
            context_digest(root, "serve.Dockerfile", &args).unwrap(),
            first
        );
        // What the ignore rules leave out does not count.
        std::fs::write(root.join("serve.py"), "print(1)\n").unwrap();
        std::fs::write(root.join("cosign.key"), "secret").unwrap();
        assert_eq!(
            context_digest(root, "serve.Dockerfile", &args).unwrap(),
            first
        );
    }

    fn rules(text: &str) -> Ignore {
        Ignore::parse(text, ".dockerignore").unwrap()
    }

    #[test]
    fn keys_git_and_mlops_are_left_out_by_default() {
        let r = rules("");
        for p in [
            "cosign.key",
            "a/b/deploy.key",
            ".git",
            ".git/config",
            ".mlops/runs/x/run.json",
        ] {
            assert!(r.excludes(p), "{p}");
        }
        for p in [
            "train.py",
            "data/train.csv",
            "key",
            "a.keys",
            "git/x",
            "mlops/y",
        ] {
            assert!(!r.excludes(p), "{p}");
        }
    }

    #[test]
    fn a_bang_line_re_includes_what_the_defaults_leave_out() {
        let r = rules("!allowed.key\n!.mlops/data\n");
        assert!(!r.excludes("allowed.key"));
        assert!(r.excludes("cosign.key"));
        assert!(r.excludes("sub/allowed.key"));
        assert!(!r.excludes(".mlops/data/train.json"));
        assert!(r.excludes(".mlops/runs/x"));
    }

    #[test]
    fn docker_pattern_syntax() {
        let r = rules(
            "# a comment\n\n  *.tmp  \n/build/\ndocs/**/*.md\n!docs/keep.md\nlogs/**\n!logs/**/important.log\nfile?.txt\n[a-c]x\n\\#literal\nsub/../top\n",
        );
        let cases = [
            ("x.tmp", true),
            ("sub/x.tmp", false), // anchored at the root, like Docker (not .gitignore)
            ("build", true),
            ("build/out/a.o", true),
            ("docs/a.md", true),
            ("docs/x/y/b.md", true),
            ("docs/keep.md", false),
            ("docs/readme.txt", false),
            ("logs/a/b.log", true),
            ("logs/a/important.log", false),
            ("file1.txt", true),
            ("file12.txt", false),
            ("bx", true),
            ("dx", false),
            ("#literal", true),
            ("# a comment", false),
            ("top", true),
            ("sub", false),
        ];
        for (path, excluded) in cases {
            assert_eq!(r.excludes(path), excluded, "{path}");
        }
        let r = rules("**\n!src\n");
        assert!(r.excludes("anything/at/all"));
        assert!(!r.excludes("src/main.rs"));
        let r = rules("!*\n");
        assert!(!r.excludes("cosign.key"), "an explicit ! line wins");
    }

    #[test]
    fn bad_patterns_name_the_line() {
        let e = Ignore::parse("ok\n[abc\n", ".dockerignore")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(".dockerignore:2:"), "{e}");
    }

    #[test]
    fn hostile_patterns_stay_linear() {
        let r = rules(&format!("{}b\n", "*a".repeat(30)));
        let start = std::time::Instant::now();
        assert!(!r.excludes(&"a".repeat(5000)));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn the_archive_leaves_out_what_the_rules_say_and_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (rel, text) in [
            ("Dockerfile", "FROM x\n"),
            (".dockerignore", "Dockerfile\nbig\n!big/keep.txt\n"),
            ("cosign.key", "secret"),
            ("src/app.py", "print()"),
            ("big/blob", "x"),
            ("big/keep.txt", "x"),
            (".git/config", "token"),
        ] {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let tar = context_tar(root, "Dockerfile").unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".dockerignore",
                "Dockerfile",
                "big/keep.txt",
                "src",
                "src/app.py"
            ]
        );
    }
}
