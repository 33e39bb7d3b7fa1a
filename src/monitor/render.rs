//! The monitor report for people (human text), pull requests and issues (Markdown), and
//! Prometheus (the node-exporter textfile format: HELP and TYPE lines, labels model, env and
//! digest on every sample). Names from the data (columns, paths) are escaped for each format.

use std::fmt::Write;

use super::{Health, Report, Section, Status};
use crate::data::check::ColumnReport;
use crate::text::{clean, escape_markdown};

fn health_word(h: Health) -> &'static str {
    match h {
        Health::Healthy => "healthy",
        Health::Alert => "ALERT",
        Health::NotEnoughData => "not enough data",
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Alert => "ALERT",
        Status::NotEnoughData => "not enough data",
        Status::Skipped => "skipped",
    }
}

fn status_icon(s: Status) -> &'static str {
    match s {
        Status::Ok => "✅",
        Status::Alert => "❌",
        Status::NotEnoughData => "⏳",
        Status::Skipped => "–",
    }
}

fn test_name(c: &ColumnReport) -> String {
    format!("{:?}", c.test).to_lowercase()
}

fn columns_human(s: &mut String, columns: &[ColumnReport]) {
    for c in columns {
        let _ = writeln!(
            s,
            "    {} {:<24} {:<11} statistic {:.4}{}",
            if c.drifted { "✗" } else { "✓" },
            clean(&c.name),
            test_name(c),
            c.statistic,
            c.p_value
                .map(|p| format!("  p {p:.3e}"))
                .unwrap_or_default()
        );
    }
}

fn notes_human(s: &mut String, section: &Section) {
    for n in &section.notes {
        let _ = writeln!(s, "    note: {}", clean(n));
    }
}

pub fn human(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} in {} ({}, run {}): {}",
        clean(&r.model),
        clean(&r.environment),
        r.digest,
        clean(&r.run_id),
        health_word(r.health)
    );
    let _ = writeln!(
        s,
        "  window: since {} — {} rows from {} files ({} other digests, {} older, {} errors, {} corrupt lines)",
        r.since, r.rows, r.files, r.other_digest_rows, r.outside_window_rows, r.error_rows, r.corrupt_lines
    );
    for e in &r.corrupt_examples {
        let _ = writeln!(s, "    corrupt: {}", clean(e));
    }
    let _ = writeln!(s, "  schema: {}", status_word(r.schema.section.status));
    for d in &r.schema.differences {
        let _ = writeln!(s, "    - {}", clean(d));
    }
    notes_human(&mut s, &r.schema.section);
    let _ = writeln!(
        s,
        "  drift: {}{}",
        status_word(r.drift.section.status),
        r.drift
            .drifted_share
            .map(|x| format!(
                " ({} of {} columns, {:.0}% vs max {:.0}%, sample of {} rows)",
                r.drift.columns.iter().filter(|c| c.drifted).count(),
                r.drift.columns.len(),
                x * 100.0,
                r.drift.max_drifted_share * 100.0,
                r.drift.sample_rows
            ))
            .unwrap_or_default()
    );
    columns_human(&mut s, &r.drift.columns);
    notes_human(&mut s, &r.drift.section);
    let _ = writeln!(
        s,
        "  predictions: {} (reference: {} test-set predictions)",
        status_word(r.predictions.section.status),
        r.predictions.reference_rows
    );
    columns_human(&mut s, &r.predictions.columns);
    notes_human(&mut s, &r.predictions.section);
    let _ = writeln!(
        s,
        "  quality: {} ({} labelled rows)",
        status_word(r.quality.section.status),
        r.quality.labelled_rows
    );
    for m in &r.quality.metrics {
        let _ = writeln!(
            s,
            "    {} {:<12} {} (threshold {})",
            if m.passed { "✓" } else { "✗" },
            clean(&m.name),
            m.value.map_or("–".to_string(), |v| format!("{v:.4}")),
            m.threshold
        );
    }
    notes_human(&mut s, &r.quality.section);
    let fmt = |v: Option<f64>, pct: bool| match v {
        Some(v) if pct => format!("{:.2}%", v * 100.0),
        Some(v) => format!("{v:.1} ms"),
        None => "–".into(),
    };
    let _ = writeln!(
        s,
        "  errors: {} (rate {}, max {})",
        status_word(r.errors.section.status),
        fmt(r.errors.value, true),
        fmt(r.errors.limit, true)
    );
    let _ = writeln!(
        s,
        "  latency: {} (p95 {}, max {})",
        status_word(r.latency.section.status),
        fmt(r.latency.value, false),
        fmt(r.latency.limit, false)
    );
    for reason in &r.reasons {
        let _ = writeln!(s, "  reason: {}", clean(reason));
    }
    let _ = writeln!(s, "monitor: {}", health_word(r.health));
    crate::text::neutralise(&s)
}

fn columns_md(s: &mut String, title: &str, columns: &[ColumnReport]) {
    if columns.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n<details><summary>{title}</summary>\n\n| Column | Test | Statistic | p-value | Drifted |\n|---|---|---:|---:|---|"
    );
    for c in columns {
        let _ = writeln!(
            s,
            "| {} | {} | {:.4} | {} | {} |",
            escape_markdown(&c.name),
            test_name(c),
            c.statistic,
            c.p_value.map_or("–".into(), |p| format!("{p:.3e}")),
            if c.drifted { "❌" } else { "✅" }
        );
    }
    let _ = writeln!(s, "\n</details>");
}

pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let icon = match r.health {
        Health::Healthy => "✅",
        Health::Alert => "🚨",
        Health::NotEnoughData => "⏳",
    };
    let _ = writeln!(
        s,
        "### Monitor {}/{}: {icon} {}\n",
        escape_markdown(&r.model),
        escape_markdown(&r.environment),
        health_word(r.health)
    );
    let _ = writeln!(
        s,
        "`{}` (run `{}`), window since {}: **{}** rows (min {}), {} errors, {} corrupt lines, {} rows of other digests.\n",
        r.digest,
        crate::text::escape_code(&r.run_id),
        r.since,
        r.rows,
        r.min_rows,
        r.error_rows,
        r.corrupt_lines,
        r.other_digest_rows
    );
    for reason in &r.reasons {
        let _ = writeln!(s, "- **{}**", escape_markdown(reason));
    }
    if !r.reasons.is_empty() {
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "| Check | Result | Detail |\n|---|---|---|");
    let drift = r
        .drift
        .drifted_share
        .map(|x| {
            format!(
                "{} of {} columns ({:.0}%, max {:.0}%)",
                r.drift.columns.iter().filter(|c| c.drifted).count(),
                r.drift.columns.len(),
                x * 100.0,
                r.drift.max_drifted_share * 100.0
            )
        })
        .unwrap_or_else(|| "–".into());
    let quality: Vec<String> = r
        .quality
        .metrics
        .iter()
        .map(|m| {
            format!(
                "{} {} (threshold {})",
                escape_markdown(&m.name),
                m.value.map_or("–".into(), |v| format!("{v:.4}")),
                m.threshold
            )
        })
        .collect();
    let rows = [
        (
            "Input schema",
            r.schema.section.status,
            escape_markdown(&r.schema.differences.join("; ")),
        ),
        ("Feature drift", r.drift.section.status, drift),
        (
            "Prediction drift",
            r.predictions.section.status,
            format!("{} test-set predictions", r.predictions.reference_rows),
        ),
        (
            "Live quality",
            r.quality.section.status,
            format!(
                "{} labelled rows; {}",
                r.quality.labelled_rows,
                quality.join(", ")
            ),
        ),
        (
            "Error rate",
            r.errors.section.status,
            r.errors
                .value
                .map_or("–".into(), |v| format!("{:.2}%", v * 100.0)),
        ),
        (
            "Latency p95",
            r.latency.section.status,
            r.latency.value.map_or("–".into(), |v| format!("{v:.1} ms")),
        ),
    ];
    for (name, status, detail) in rows {
        let _ = writeln!(
            s,
            "| {name} | {} {} | {detail} |",
            status_icon(status),
            status_word(status)
        );
    }
    columns_md(&mut s, "Feature drift per column", &r.drift.columns);
    columns_md(&mut s, "Prediction drift", &r.predictions.columns);
    if !r.corrupt_examples.is_empty() {
        let _ = writeln!(
            s,
            "\nCorrupt capture lines (first {}):\n",
            r.corrupt_examples.len()
        );
        for e in &r.corrupt_examples {
            let _ = writeln!(s, "- {}", escape_markdown(e));
        }
    }
    crate::text::neutralise(&s)
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Prom {
    out: String,
    labels: String,
}

impl Prom {
    fn metric(&mut self, name: &str, help: &str, samples: &[(&str, f64)]) {
        let _ = writeln!(self.out, "# HELP mlops_monitor_{name} {help}");
        let _ = writeln!(self.out, "# TYPE mlops_monitor_{name} gauge");
        for (extra, v) in samples {
            let labels = if extra.is_empty() {
                self.labels.clone()
            } else {
                format!("{},{extra}", self.labels)
            };
            let value = if v.is_nan() {
                "NaN".to_string()
            } else {
                format!("{v}")
            };
            let _ = writeln!(self.out, "mlops_monitor_{name}{{{labels}}} {value}");
        }
    }
}

fn status_value(s: Status) -> f64 {
    match s {
        Status::Ok => 0.0,
        Status::Alert => 1.0,
        Status::NotEnoughData => 2.0,
        Status::Skipped => 3.0,
    }
}

/// The node-exporter textfile format: every figure of the report as a gauge.
pub fn prometheus(r: &Report) -> String {
    let mut p = Prom {
        out: String::new(),
        labels: format!(
            "model=\"{}\",env=\"{}\",digest=\"{}\"",
            label(&r.model),
            label(&r.environment),
            label(&r.digest)
        ),
    };
    let health = match r.health {
        Health::Healthy => 0.0,
        Health::Alert => 1.0,
        Health::NotEnoughData => 2.0,
    };
    p.metric(
        "health",
        "0 healthy, 1 alert, 2 not enough data.",
        &[("", health)],
    );
    p.metric(
        "rows",
        "Rows of the pinned digest in the window.",
        &[("", r.rows as f64)],
    );
    p.metric(
        "min_rows",
        "Rows needed for a verdict.",
        &[("", r.min_rows as f64)],
    );
    p.metric(
        "error_rows",
        "Rows answered with an error.",
        &[("", r.error_rows as f64)],
    );
    p.metric(
        "corrupt_lines",
        "Capture lines that did not parse.",
        &[("", r.corrupt_lines as f64)],
    );
    p.metric(
        "other_digest_rows",
        "Rows of other digests (skipped).",
        &[("", r.other_digest_rows as f64)],
    );
    let sections = [
        ("schema", r.schema.section.status),
        ("drift", r.drift.section.status),
        ("predictions", r.predictions.section.status),
        ("quality", r.quality.section.status),
        ("errors", r.errors.section.status),
        ("latency", r.latency.section.status),
    ];
    let section_labels: Vec<(String, f64)> = sections
        .iter()
        .map(|(n, s)| (format!("check=\"{n}\""), status_value(*s)))
        .collect();
    let refs: Vec<(&str, f64)> = section_labels
        .iter()
        .map(|(l, v)| (l.as_str(), *v))
        .collect();
    p.metric(
        "check_status",
        "Per check: 0 ok, 1 alert, 2 not enough data, 3 skipped.",
        &refs,
    );
    drift_metrics(&mut p, r);
    quality_metrics(&mut p, r);
    p.out
}

/// Per-column drift figures of the features and of the predictions.
fn drift_metrics(p: &mut Prom, r: &Report) {
    let per_column =
        |cols: &[ColumnReport], f: &dyn Fn(&ColumnReport) -> Option<f64>| -> Vec<(String, f64)> {
            cols.iter()
                .filter_map(|c| {
                    f(c).map(|v| {
                        (
                            format!("feature=\"{}\",test=\"{}\"", label(&c.name), test_name(c)),
                            v,
                        )
                    })
                })
                .collect()
        };
    for (prefix, cols) in [
        ("feature", &r.drift.columns),
        ("prediction", &r.predictions.columns),
    ] {
        for (name, help, f) in [
            (
                "drift_statistic",
                "Drift test statistic.",
                &(|c: &ColumnReport| Some(c.statistic)) as &dyn Fn(&ColumnReport) -> Option<f64>,
            ),
            (
                "drift_p_value",
                "Drift test p-value (ks, chi2).",
                &|c: &ColumnReport| c.p_value,
            ),
            (
                "drifted",
                "1 when the column drifted.",
                &|c: &ColumnReport| Some(if c.drifted { 1.0 } else { 0.0 }),
            ),
        ] {
            let samples = per_column(cols, f);
            let refs: Vec<(&str, f64)> = samples.iter().map(|(l, v)| (l.as_str(), *v)).collect();
            p.metric(&format!("{prefix}_{name}"), help, &refs);
        }
    }
}

/// Drifted share, live quality, error rate, latency and the report's time.
fn quality_metrics(p: &mut Prom, r: &Report) {
    if let Some(share) = r.drift.drifted_share {
        p.metric(
            "drifted_share",
            "Share of drifted feature columns.",
            &[("", share)],
        );
    }
    let m: Vec<(String, f64)> = r
        .quality
        .metrics
        .iter()
        .filter_map(|m| {
            m.value
                .map(|v| (format!("metric=\"{}\"", label(&m.name)), v))
        })
        .collect();
    let refs: Vec<(&str, f64)> = m.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    p.metric("live_metric", "Live quality on the labelled rows.", &refs);
    let t: Vec<(String, f64)> = r
        .quality
        .metrics
        .iter()
        .map(|m| (format!("metric=\"{}\"", label(&m.name)), m.threshold))
        .collect();
    let refs: Vec<(&str, f64)> = t.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    p.metric(
        "live_metric_threshold",
        "monitor.metrics thresholds.",
        &refs,
    );
    p.metric(
        "labelled_rows",
        "Window rows with a label.",
        &[("", r.quality.labelled_rows as f64)],
    );
    if let Some(v) = r.errors.value {
        p.metric(
            "error_rate",
            "Share of rows answered with an error.",
            &[("", v)],
        );
    }
    if let Some(v) = r.latency.value {
        p.metric(
            "latency_p95_ms",
            "95th percentile of latency_ms.",
            &[("", v)],
        );
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&r.generated_at) {
        p.metric(
            "generated_timestamp_seconds",
            "When this report was made.",
            &[("", t.timestamp() as f64)],
        );
    }
}
