//! Streams a step's output: live on stderr with a `[step]` prefix (defused against workflow
//! commands, grouped under GitHub Actions), into the step's log file, and the last lines kept
//! for error messages.

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
        Ok(LogSink {
            prefix: format!("[{step}] "),
            file: Some(file),
            tail: VecDeque::with_capacity(TAIL_LINES),
            partial: Vec::new(),
            grouped,
        })
    }

    /// Feeds raw output bytes; complete lines are emitted.
    pub fn write(&mut self, bytes: &[u8]) {
        if let Some(f) = &mut self.file {
            let _ = f.write_all(bytes);
        }
        self.partial.extend_from_slice(bytes);
        while let Some(pos) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            self.emit(&line[..line.len() - 1]);
        }
    }

    /// A line from the toolkit itself (build progress, pulls), logged like output.
    pub fn note(&mut self, line: &str) {
        self.write(format!("{line}\n").as_bytes());
    }

    fn emit(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        eprintln!("{}{}", self.prefix, gha::neutralise_line(text));
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(text.to_string());
    }

    pub fn finish(mut self) -> Vec<String> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.emit(&rest);
        }
        if self.grouped {
            if let Some(end) = gha::group_end() {
                eprintln!("{end}");
            }
        }
        if let Some(f) = &mut self.file {
            let _ = f.flush();
        }
        self.tail.into_iter().collect()
    }
}
