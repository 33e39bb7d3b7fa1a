//! Streams a step's output: live on stderr with a `[step]` prefix, into the step's log file,
//! and the last lines kept for error messages.
//!
//! The output is split where GitHub's runner splits it (`\n`, `\r\n` and a lone `\r`), and every
//! line goes through [`crate::text::neutralise_line`]. Under GitHub Actions the stream is also grouped and
//! wrapped in `::stop-commands::<token>` … `::<token>::`, so the runner reads no command at all
//! from it, whatever the step prints.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;

use crate::gha;

const TAIL_LINES: usize = 20;

pub struct LogSink {
    prefix: String,
    file: Option<std::fs::File>,
    tail: VecDeque<String>,
    partial: Vec<u8>,
    /// The last byte fed was a `\r` that ended a line: a `\n` right after it ends nothing.
    after_cr: bool,
    /// Under GitHub Actions: the stop-commands token to resume with, and the open group.
    stopped: Option<String>,
    grouped: bool,
}

impl LogSink {
    pub fn open(step: &str, path: &Path) -> std::io::Result<LogSink> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::File::create(path)?;
        let grouped = match gha::group_start(step) {
            Some(line) => {
                eprintln!("{line}");
                true
            }
            None => false,
        };
        let stopped = gha::active().then(|| {
            let token = gha::stop_token();
            eprintln!("::stop-commands::{token}");
            token
        });
        Ok(LogSink {
            prefix: format!("[{step}] "),
            file: Some(file),
            tail: VecDeque::with_capacity(TAIL_LINES),
            partial: Vec::new(),
            after_cr: false,
            stopped,
            grouped,
        })
    }

    /// Feeds raw output bytes; complete lines are emitted.
    pub fn write(&mut self, bytes: &[u8]) {
        if let Some(f) = &mut self.file {
            let _ = f.write_all(bytes);
        }
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    let line = std::mem::take(&mut self.partial);
                    self.emit(&line);
                    self.after_cr = b == b'\r';
                }
                _ => {
                    self.after_cr = false;
                    self.partial.push(b);
                }
            }
        }
    }

    /// A line from the toolkit itself (build progress, pulls), logged like output.
    pub fn note(&mut self, line: &str) {
        self.write(format!("{line}\n").as_bytes());
    }

    fn emit(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line).into_owned();
        eprintln!(
            "{}",
            crate::text::neutralise_line(&format!("{}{text}", self.prefix))
        );
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(text);
    }

    /// Emits what is left, resumes commands and closes the group.
    fn close(&mut self) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.emit(&rest);
        }
        if let Some(token) = self.stopped.take() {
            eprintln!("::{token}::");
        }
        if std::mem::take(&mut self.grouped) {
            eprintln!("::endgroup::");
        }
        if let Some(f) = &mut self.file {
            let _ = f.flush();
        }
    }

    pub fn finish(mut self) -> Vec<String> {
        self.close();
        std::mem::take(&mut self.tail).into_iter().collect()
    }
}

/// A sink dropped on an error path still resumes commands: the tool's own annotations after it
/// must reach the runner.
impl Drop for LogSink {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_at_lf_crlf_and_a_lone_cr_even_across_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = LogSink::open("t", &dir.path().join("t.log")).unwrap();
        sink.write(b"a\r");
        sink.write(b"\nb\rc\n\nd");
        sink.write(b"\r\r\ne");
        let tail = sink.finish();
        assert_eq!(tail, ["a", "b", "c", "", "d", "", "e"]);
        assert_eq!(
            std::fs::read(dir.path().join("t.log")).unwrap(),
            b"a\r\nb\rc\n\nd\r\r\ne"
        );
    }
}
