//! `mlops data check` and `mlops data accept`: each configured dataset against its accepted
//! reference — schema, changed content, drift per column — and writing new references.
//!
//! The `changed` rule gates every dataset except `test`: the test set is meant to stay frozen
//! so challenger and champion are scored alike, so for `test` a change is reported, never
//! required.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::drift::{self, Test};
use super::profile::{self, Sample, DEFAULT_SAMPLE_SIZE, DEFAULT_SEED};
use super::read::Kind;
use super::reference::{self, Reference, FORMAT_VERSION};
use crate::config::{ChangedCheck, Config, SchemaCheck};

/// The name of the dataset the `changed` rule never gates.
pub const FROZEN_DATASET: &str = "test";

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub passed: bool,
    pub datasets: Vec<DatasetReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetReport {
    pub name: String,
    pub path: String,
    pub passed: bool,
    pub rows: u64,
    pub digest: String,
    /// None when no reference was accepted yet.
    pub reference_digest: Option<String>,
    pub reference_rows: Option<u64>,
    /// None without a reference.
    pub changed: Option<bool>,
    pub schema: SchemaReport,
    pub columns: Vec<ColumnReport>,
    pub drifted_share: Option<f64>,
    /// Why the dataset failed, or what the reader should know (warnings), one line each.
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub level: Level,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Notice,
}

#[derive(Debug, Clone, Serialize)]
pub struct SchemaReport {
    pub passed: bool,
    pub mode: SchemaCheck,
    pub differences: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnReport {
    pub name: String,
    pub kind: Kind,
    pub test: Test,
    pub statistic: f64,
    pub p_value: Option<f64>,
    pub drifted: bool,
}

/// Checks every dataset in mlops.yaml, or only `only`.
pub fn check(config: &Config, only: Option<&str>) -> Result<Report> {
    let mut datasets = Vec::new();
    for name in selected(config, only)? {
        datasets.push(check_dataset(config, name)?);
    }
    Ok(Report {
        passed: datasets.iter().all(|d| d.passed),
        datasets,
    })
}

fn selected<'a>(config: &'a Config, only: Option<&str>) -> Result<Vec<&'a str>> {
    match only {
        None => Ok(config.data.datasets.keys().map(String::as_str).collect()),
        Some(name) => match config.data.datasets.get_key_value(name) {
            Some((k, _)) => Ok(vec![k.as_str()]),
            None => anyhow::bail!(
                "no dataset {name:?} under data: in {} (datasets: {})",
                config.file.display(),
                config
                    .data
                    .datasets
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    }
}

/// What one pass over a dataset produces.
pub struct Scanned {
    pub digest: String,
    pub profile: profile::Profile,
    pub sample: Sample,
}

/// Digest, profile and sample of a dataset.
pub fn scan_dataset(path: &Path, sample_size: usize, seed: u64) -> Result<Scanned> {
    // One read of the files: the digest is computed as the scan reads them.
    let (digest, scan) = super::read::scan_digest(path, sample_size, seed)?;
    let (profile, sample) = profile::build(&scan, sample_size, seed);
    Ok(Scanned {
        digest: digest.to_string(),
        profile,
        sample,
    })
}

fn check_dataset(config: &Config, name: &str) -> Result<DatasetReport> {
    let ds = &config.data.datasets[name];
    let checks = &config.data.checks;
    // The scan samples as the reference did. Every reference `accept` writes uses the default
    // sample, so the scan starts with it while the reference is read; one that says otherwise
    // (edited, or written by another version) has the data scanned again its way.
    let (reference, scanned) = std::thread::scope(|s| {
        let scan = s.spawn(|| scan_dataset(&ds.abs_path, DEFAULT_SAMPLE_SIZE, DEFAULT_SEED));
        let reference = reference::load(&config.root, name);
        // A panic in the scan is a bug: the same one here.
        let scanned = scan
            .join()
            .unwrap_or_else(|_| scan_dataset(&ds.abs_path, DEFAULT_SAMPLE_SIZE, DEFAULT_SEED));
        (reference, scanned)
    });
    // The reference's error first, as when it was read before the data.
    let reference = reference?;
    let current = match &reference {
        Some(r) if (r.sample.size, r.sample.seed) != (DEFAULT_SAMPLE_SIZE, DEFAULT_SEED) => {
            scan_dataset(&ds.abs_path, r.sample.size, r.sample.seed)?
        }
        _ => scanned?,
    };
    let mut report = DatasetReport {
        name: name.to_string(),
        path: ds.path.clone(),
        passed: true,
        rows: current.profile.rows,
        digest: current.digest.clone(),
        reference_digest: None,
        reference_rows: None,
        changed: None,
        schema: SchemaReport {
            passed: true,
            mode: checks.schema,
            differences: Vec::new(),
        },
        columns: Vec::new(),
        drifted_share: None,
        messages: Vec::new(),
    };
    let Some(reference) = reference else {
        report.messages.push(Message {
            level: Level::Notice,
            text: format!(
                "no reference for {name} yet: nothing to compare with; accept this data with `mlops data accept --dataset {name}` and commit {}",
                reference::path_for(Path::new(""), name).display()
            ),
        });
        return Ok(report);
    };
    report.reference_digest = Some(reference.digest.clone());
    report.reference_rows = Some(reference.profile.rows);

    // Changed content.
    let changed = reference.digest != current.digest;
    report.changed = Some(changed);
    if !changed {
        let gated = name != FROZEN_DATASET;
        match checks.changed {
            ChangedCheck::Required if gated => {
                report.passed = false;
                report.messages.push(Message {
                    level: Level::Error,
                    text: format!(
                        "{} is identical to the accepted reference ({}): data.checks.changed is `required`, so a run needs new data",
                        ds.path, reference.digest
                    ),
                });
            }
            ChangedCheck::Required | ChangedCheck::Warn => report.messages.push(Message {
                level: Level::Warning,
                text: format!("{} is identical to the accepted reference", ds.path),
            }),
            ChangedCheck::Off => {}
        }
    }

    // Schema.
    let current_schema: Vec<(&String, Kind)> = current
        .profile
        .columns
        .iter()
        .map(|(k, c)| (k, c.kind))
        .collect();
    report.schema.differences = schema_differences(checks.schema, &reference, &current_schema);
    report.schema.passed = report.schema.differences.is_empty();
    if !report.schema.passed {
        report.passed = false;
        report.messages.push(Message {
            level: Level::Error,
            text: format!(
                "schema ({}) differs from the reference: {}",
                schema_mode(checks.schema),
                report.schema.differences.join("; ")
            ),
        });
    }

    check_drift(config, &reference, &current, &mut report);
    Ok(report)
}

/// Drift, on the columns both sides have (but the excluded ones and the label): each column's
/// test, and a failed report when more than `max_drifted_share` of them drifted.
fn check_drift(
    config: &Config,
    reference: &Reference,
    current: &Scanned,
    report: &mut DatasetReport,
) {
    let drift_cfg = &config.data.checks.drift;
    let mut tested = Vec::new();
    for (col, ref_sample) in &reference.sample.columns {
        if drift_cfg.exclude.iter().any(|e| e == col)
            || config.data.target.as_deref() == Some(col.as_str())
        {
            continue;
        }
        let Some(cur_sample) = current.sample.columns.get(col) else {
            continue;
        };
        tested.push((col, ref_sample, cur_sample));
    }
    let pairs: Vec<_> = tested.iter().map(|(_, r, c)| (*r, *c)).collect();
    let outcomes = drift::columns(drift_cfg.test, &pairs);
    for ((col, _, _), outcome) in tested.into_iter().zip(outcomes) {
        let kind = current.profile.columns[col].kind;
        let drifted = match outcome.p_value {
            Some(p) => p < drift_cfg.p_value,
            None => outcome.statistic > drift_cfg.threshold,
        };
        report.columns.push(ColumnReport {
            name: col.clone(),
            kind,
            test: outcome.test,
            statistic: outcome.statistic,
            p_value: outcome.p_value,
            drifted,
        });
    }
    if !report.columns.is_empty() {
        let drifted = report.columns.iter().filter(|c| c.drifted).count();
        let share = drifted as f64 / report.columns.len() as f64;
        report.drifted_share = Some(share);
        if share > drift_cfg.max_drifted_share {
            report.passed = false;
            let names: Vec<&str> = report
                .columns
                .iter()
                .filter(|c| c.drifted)
                .map(|c| c.name.as_str())
                .collect();
            report.messages.push(Message {
                level: Level::Error,
                text: format!(
                    "{drifted} of {} columns drifted ({:.0}% > max_drifted_share {:.0}%): {}",
                    report.columns.len(),
                    share * 100.0,
                    drift_cfg.max_drifted_share * 100.0,
                    names.join(", ")
                ),
            });
        }
    }
}

fn schema_differences(
    mode: SchemaCheck,
    reference: &Reference,
    current: &[(&String, Kind)],
) -> Vec<String> {
    let mut out = Vec::new();
    if mode == SchemaCheck::Off {
        return out;
    }
    let find = |name: &str| current.iter().position(|(n, _)| n.as_str() == name);
    for (i, (name, kind)) in reference.schema.iter().enumerate() {
        match find(name) {
            None => out.push(format!("column {name:?} is missing")),
            Some(j) => {
                let found = current[j].1;
                if found != *kind {
                    out.push(format!(
                        "column {name:?} is {} (reference: {})",
                        kind_name(found),
                        kind_name(*kind)
                    ));
                }
                if mode == SchemaCheck::Strict && i != j {
                    out.push(format!(
                        "column {name:?} is at position {} (reference: {})",
                        j + 1,
                        i + 1
                    ));
                }
            }
        }
    }
    if mode == SchemaCheck::Strict {
        for (name, _) in current {
            if !reference.schema.contains_key(name.as_str()) {
                out.push(format!("column {name:?} is new"));
            }
        }
    }
    out
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Integer => "integer",
        Kind::Float => "float",
        Kind::Boolean => "boolean",
        Kind::Categorical => "categorical",
    }
}

/// Writes the reference of each selected dataset (all by default); returns the paths written.
pub fn accept(config: &Config, only: Option<&str>) -> Result<Vec<(String, Reference)>> {
    // Read everything first: if one dataset is unreadable, no reference is replaced.
    let mut references = Vec::new();
    // The commit (all a reference records of git) is asked while the data is read.
    let root = config.root.clone();
    let git = std::thread::spawn(move || {
        crate::git::run(&root, &["rev-parse", "HEAD"]).unwrap_or_default()
    });
    let mut scans = Vec::new();
    for name in selected(config, only)? {
        let ds = &config.data.datasets[name];
        scans.push((
            name,
            ds,
            scan_dataset(&ds.abs_path, DEFAULT_SAMPLE_SIZE, DEFAULT_SEED)?,
        ));
    }
    let commit = git.join().unwrap_or_default();
    for (name, ds, scanned) in scans {
        references.push(Reference {
            version: FORMAT_VERSION,
            dataset: name.to_string(),
            path: ds.path.clone(),
            digest: scanned.digest,
            accepted_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            git_commit: (!commit.is_empty()).then_some(commit.clone()),
            schema: scanned
                .profile
                .columns
                .iter()
                .map(|(k, c)| (k.clone(), c.kind))
                .collect(),
            profile: scanned.profile,
            sample: scanned.sample,
        });
    }
    let mut written = Vec::new();
    for r in references {
        let path = reference::save(&config.root, &r)?;
        written.push((path.display().to_string(), r));
    }
    Ok(written)
}

/// Human-readable lines. Column names and paths come from the data and the config: each is
/// shown on one line, control characters visible, and nothing can be a workflow command.
pub fn human(report: &Report) -> String {
    use crate::text::clean;
    use std::fmt::Write;
    let mut s = String::new();
    for d in &report.datasets {
        let verdict = if d.passed { "ok" } else { "FAILED" };
        let _ = writeln!(
            s,
            "{} ({}, {} rows): {verdict}",
            clean(&d.name),
            clean(&d.path),
            d.rows
        );
        match (&d.reference_digest, d.changed) {
            (Some(r), Some(changed)) => {
                let _ = writeln!(
                    s,
                    "  content: {} (reference {}, {} rows)",
                    if changed { "changed" } else { "unchanged" },
                    short(r),
                    d.reference_rows.unwrap_or(0)
                );
            }
            _ => {
                let _ = writeln!(s, "  reference: none");
            }
        }
        if d.reference_digest.is_some() {
            let _ = writeln!(
                s,
                "  schema ({}): {}",
                schema_mode(d.schema.mode),
                if d.schema.passed { "ok" } else { "differs" }
            );
            for diff in &d.schema.differences {
                let _ = writeln!(s, "    - {}", clean(diff));
            }
        }
        if let Some(share) = d.drifted_share {
            let _ = writeln!(
                s,
                "  drift: {} of {} columns ({:.0}%)",
                d.columns.iter().filter(|c| c.drifted).count(),
                d.columns.len(),
                share * 100.0
            );
            for c in &d.columns {
                let _ = writeln!(
                    s,
                    "    {} {:<24} {:<11} {:<11} statistic {:.4}{}",
                    if c.drifted { "✗" } else { "✓" },
                    clean(&c.name),
                    kind_name(c.kind),
                    format!("{:?}", c.test).to_lowercase(),
                    c.statistic,
                    c.p_value
                        .map(|p| format!("  p {p:.3e}"))
                        .unwrap_or_default()
                );
            }
        }
        for m in &d.messages {
            let _ = writeln!(s, "  {}: {}", level_name(m.level), clean(&m.text));
        }
    }
    let _ = writeln!(
        s,
        "data check: {}",
        if report.passed { "passed" } else { "failed" }
    );
    crate::text::neutralise(&s)
}

/// A Markdown section for pull requests and job summaries; names from the data are escaped
/// for Markdown (or a code span) like metric names in the comparison report.
pub fn markdown(report: &Report) -> String {
    use crate::text::{escape_code, escape_markdown};
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Data check: {}\n",
        if report.passed {
            "✅ passed"
        } else {
            "❌ failed"
        }
    );
    let _ = writeln!(
        s,
        "| Dataset | Rows | Content | Schema | Drifted columns | Result |\n|---|---:|---|---|---:|---|"
    );
    for d in &report.datasets {
        let content = match (d.changed, &d.reference_digest) {
            (Some(true), Some(r)) => format!("changed (was `{}`)", short(r)),
            (Some(false), _) => "unchanged".into(),
            _ => "no reference".into(),
        };
        let schema = if d.reference_digest.is_none() {
            "–".to_string()
        } else if d.schema.passed {
            format!("ok ({})", schema_mode(d.schema.mode))
        } else {
            format!("{} differences", d.schema.differences.len())
        };
        let drifted = match d.drifted_share {
            Some(share) => format!(
                "{} / {} ({:.0}%)",
                d.columns.iter().filter(|c| c.drifted).count(),
                d.columns.len(),
                share * 100.0
            ),
            None => "–".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {content} | {schema} | {drifted} | {} |",
            escape_markdown(&d.name),
            d.rows,
            if d.passed { "✅" } else { "❌" }
        );
    }
    for d in &report.datasets {
        if !d.messages.is_empty() || d.columns.iter().any(|c| c.drifted) {
            let _ = writeln!(s);
        }
        for m in &d.messages {
            let _ = writeln!(
                s,
                "- **{}** `{}`: {}",
                level_name(m.level),
                escape_code(&d.name),
                escape_markdown(&m.text)
            );
        }
        let drifted: Vec<&ColumnReport> = d.columns.iter().filter(|c| c.drifted).collect();
        if !drifted.is_empty() {
            let _ = writeln!(
                s,
                "\n<details><summary>Drifted columns of <code>{}</code></summary>\n\n| Column | Test | Statistic | p-value |\n|---|---|---:|---:|",
                escape_markdown(&d.name)
            );
            for c in drifted {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.4} | {} |",
                    escape_markdown(&c.name),
                    format!("{:?}", c.test).to_lowercase(),
                    c.statistic,
                    c.p_value.map(|p| format!("{p:.3e}")).unwrap_or("–".into())
                );
            }
            let _ = writeln!(s, "\n</details>");
        }
    }
    crate::text::neutralise(&s)
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

fn schema_mode(m: SchemaCheck) -> &'static str {
    match m {
        SchemaCheck::Strict => "strict",
        SchemaCheck::Subset => "subset",
        SchemaCheck::Off => "off",
    }
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(column: &str) -> Report {
        Report {
            passed: false,
            datasets: vec![DatasetReport {
                name: "train".into(),
                path: "data/train.csv".into(),
                passed: false,
                rows: 2,
                digest: "sha256:00".into(),
                reference_digest: Some("sha256:11".into()),
                reference_rows: Some(2),
                changed: Some(true),
                schema: SchemaReport {
                    passed: true,
                    mode: SchemaCheck::Strict,
                    differences: Vec::new(),
                },
                columns: vec![ColumnReport {
                    name: column.into(),
                    kind: Kind::Integer,
                    test: Test::Ks,
                    statistic: 1.0,
                    p_value: Some(0.0),
                    drifted: true,
                }],
                drifted_share: Some(1.0),
                messages: vec![Message {
                    level: Level::Error,
                    text: format!("1 of 1 columns drifted: {column}"),
                }],
            }],
        }
    }

    #[test]
    fn column_names_are_escaped_in_markdown_and_human_text() {
        let name = "a|b\n::warning::x `c` ##[error]";
        let md = markdown(&report(name));
        let row = md.lines().find(|l| l.starts_with("| a")).unwrap();
        assert_eq!(
            row,
            "| a\\|b ::warning::x \\`c\\` \\#\\#\\[error\\] | ks | 1.0000 | 0.000e0 |"
        );
        assert!(
            md.lines().all(|l| !l.trim_start().starts_with("::")),
            "{md}"
        );
        let text = human(&report(name));
        assert!(
            text.contains("a|b\\n::warning::x `c` ##\\[error]"),
            "{text}"
        );
        assert!(
            text.lines().all(|l| !l.trim_start().starts_with("::")),
            "{text}"
        );
    }
}
