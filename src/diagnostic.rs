//! One diagnostic type for everything a user wrote wrong: YAML syntax, schema and semantic
//! errors all carry `file:line:column`, and render as human text, JSON or GitHub annotations.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub severity: Severity,
    /// Dotted path of the key the diagnostic is about (`train.params`), empty for the document.
    pub key: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(file: &str, (line, column): (usize, usize), key: &str, message: String) -> Self {
        Diagnostic {
            file: file.to_string(),
            line,
            column,
            severity: Severity::Error,
            key: key.to_string(),
            message,
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `file:line:col: message`, the form editors and terminals link.
    pub fn human(&self) -> String {
        let sev = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        let mut s = format!(
            "{}:{}:{}: {sev}{}",
            self.file, self.line, self.column, self.message
        );
        if let Some(help) = &self.help {
            s.push_str("\n  help: ");
            s.push_str(help);
        }
        s
    }

    /// A GitHub Actions workflow command; every part escaped so that no text from the file can
    /// end the command or start another one.
    pub fn github(&self) -> String {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = self.message.clone();
        if let Some(help) = &self.help {
            message.push_str(" (");
            message.push_str(help);
            message.push(')');
        }
        format!(
            "::{kind} file={},line={},col={},title={}::{}",
            crate::text::escape_property(&self.file),
            self.line,
            self.column,
            crate::text::escape_property("mlops validate"),
            crate::text::escape_data(&message)
        )
    }
}

/// Sorts by position, then message, and drops exact duplicates (a schema can report the same
/// problem through two paths).
pub fn sort_and_dedup(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| (a.line, a.column, &a.message).cmp(&(b.line, b.column, &b.message)));
    diags.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_annotation_cannot_inject_commands() {
        let d = Diagnostic::error(
            "a,b:c.yaml",
            (3, 4),
            "x",
            "bad\n::set-output name=x::y %0A".into(),
        );
        let out = d.github();
        assert_eq!(out.lines().count(), 1);
        assert_eq!(
            out,
            "::error file=a%2Cb%3Ac.yaml,line=3,col=4,title=mlops validate::bad%0A::set-output name=x::y %250A"
        );
    }
}
