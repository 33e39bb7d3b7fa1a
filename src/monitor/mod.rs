//! STAND-IN (loop helper, issue 19): only the interface shared with the monitor helper
//! (/work/notes/h19-shared.md), so `incident::handle` can be built and tested before
//! `mlops monitor` lands. The monitor helper's src/monitor/mod.rs replaces this file whole.

/// What one monitor run concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Alert,
    NotEnoughData,
}

/// What the alert side needs from one monitor run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub model: String,
    pub environment: String,
    pub digest: String, // the digest the environment pins ("sha256:…")
    pub health: Health,
    pub reasons: Vec<String>, // one line each: "drift: x3, x7", "f1 0.71 < 0.8", …
    pub report_markdown: String, // the full report.md text
    pub generated_at: String, // RFC 3339
}
