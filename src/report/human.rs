//! Text a reviewer reads on a terminal or in a CI log: every value once, numbers rounded to 4
//! significant digits (JSON and markdown keep the exact values), columns aligned.

use bigdecimal::BigDecimal;

use crate::compare::rules::{dec, show, Check};
use crate::compare::{Comparison, Verdict};
use crate::config::Direction;
use crate::text::{clean, neutralise};

/// `x` rounded to 4 significant digits, without trailing zeros; below 0.0001 (a p-value) in
/// scientific notation, which says the size where a row of zeros would not.
pub fn sig4(x: f64) -> String {
    if x != 0.0 && x.abs() < 1e-4 {
        return format!("{x:.3e}");
    }
    round4(&dec(x))
}

fn round4(d: &BigDecimal) -> String {
    show(&d.with_prec(4))
}

/// Rows as lines with each column padded to its widest cell, two spaces apart; a row may have
/// fewer cells than others. Trailing white space is dropped.
pub fn aligned(rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(max) => *max = (*max).max(w),
                None => widths.push(w),
            }
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                let pad = widths[i] - cell.chars().count();
                line.push_str(&" ".repeat(pad + 2));
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// The comparison as text: per metric its values and improvement once, under it each rule.
pub fn comparison(c: &Comparison) -> String {
    let mut out = String::new();
    let verdict = match c.verdict {
        Verdict::Promote => "PROMOTE",
        Verdict::Reject => "REJECT",
    };
    out.push_str(&format!("{}: {verdict}", clean(&c.model)));
    if let Some(id) = &c.run_id {
        out.push_str(&format!(" (run {})", clean(id)));
    }
    out.push('\n');
    if c.first_run {
        out.push_str("first run: no champion, only thresholds apply\n");
    } else if let Some(env) = &c.against {
        out.push_str(&format!("against the champion of {}\n", clean(env)));
    }
    let metrics = metric_order(&c.checks);
    if !metrics.is_empty() {
        let mut rows = vec![cells(["metric", "champion", "challenger", "improvement"])];
        for m in &metrics {
            rows.push(metric_row(c, m));
        }
        let lines = aligned(&rows);
        out.push_str(&format!("  {}\n", lines[0]));
        for (m, line) in metrics.iter().zip(&lines[1..]) {
            out.push_str(&format!("  {line}\n"));
            for k in c.checks.iter().filter(|k| &k.metric == m) {
                out.push_str(&format!("    {}\n", rule_line(k, c.first_run)));
            }
        }
    }
    significance(c, &mut out);
    // Failed rules said why above; what is left (significance) is said here.
    let told: Vec<String> = c
        .checks
        .iter()
        .filter(|k| !k.passed)
        .map(|k| format!("{} {}: {}", k.metric, k.rule, k.reason))
        .collect();
    for r in c.reasons.iter().filter(|r| !told.contains(r)) {
        out.push_str(&format!("  reason: {}\n", clean(r)));
    }
    neutralise(&out)
}

fn cells<const N: usize>(texts: [&str; N]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

/// Metric names in the order their first rule was checked.
fn metric_order(checks: &[Check]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for k in checks {
        if !names.contains(&k.metric) {
            names.push(k.metric.clone());
        }
    }
    names
}

fn metric_row(c: &Comparison, metric: &str) -> Vec<String> {
    let value = |side: Option<&indexmap::IndexMap<String, f64>>| {
        side.and_then(|m| m.get(metric))
            .map(|v| sig4(*v))
            .unwrap_or_else(|| "-".into())
    };
    let delta = c
        .checks
        .iter()
        .find(|k| k.metric == metric)
        .and_then(|k| k.delta.as_deref())
        .and_then(|d| d.parse::<BigDecimal>().ok())
        .map(|d| {
            let text = round4(&d);
            if text.starts_with('-') || text == "0" {
                text
            } else {
                format!("+{text}")
            }
        })
        .unwrap_or_else(|| "-".into());
    vec![
        clean(metric),
        value(c.champion.as_ref()),
        value(Some(&c.challenger)),
        delta,
    ]
}

/// `ok    threshold >= 0.8`, with a note where the values above do not say it all.
fn rule_line(k: &Check, first_run: bool) -> String {
    let op = match (k.rule.as_str(), k.direction) {
        ("threshold", Direction::Maximize) => ">= ",
        ("threshold", Direction::Minimize) => "<= ",
        _ => "",
    };
    let status = if k.passed { "ok  " } else { "FAIL" };
    let rule = format!("{status}  {} {op}{}", k.rule, show(&dec(k.limit)));
    let comparative = k.rule != "threshold";
    let note = if k.challenger.is_none() || (comparative && k.champion.is_none() && !first_run) {
        // A metric missing on one side: the reason names it.
        Some(clean(&k.reason))
    } else if comparative && k.champion.is_none() {
        Some("does not apply: no champion yet".to_string())
    } else if k.rule == "min_relative_change" {
        Some(clean(&k.reason))
    } else {
        None
    };
    match note {
        Some(n) => format!("{rule} ({n})"),
        None => rule,
    }
}

fn significance(c: &Comparison, out: &mut String) {
    let Some(s) = &c.significance else { return };
    if let Some(why) = &s.skipped {
        out.push_str(&format!("  significance: not computed ({})\n", clean(why)));
    }
    for i in &s.intervals {
        out.push_str(&format!(
            "  significance {}: improvement {} [{}, {}] at {}%\n",
            clean(&i.metric),
            sig4(i.observed),
            sig4(i.low),
            sig4(i.high),
            sig4(i.confidence * 100.0)
        ));
    }
    if let Some(m) = &s.mcnemar {
        out.push_str(&format!(
            "  McNemar: challenger-only {}, champion-only {}, p = {}\n",
            m.challenger_only,
            m.champion_only,
            sig4(m.p_value)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_significant_digits() {
        assert_eq!(sig4(0.9612403100775193), "0.9612");
        assert_eq!(sig4(0.8), "0.8");
        assert_eq!(sig4(0.03515625), "0.03516");
        assert_eq!(sig4(12345.678), "12350");
        assert_eq!(sig4(-0.00012345), "-0.0001234");
        assert_eq!(sig4(8.8694e-12), "8.869e-12");
        assert_eq!(sig4(0.0), "0");
        assert_eq!(sig4(95.0), "95");
    }

    #[test]
    fn columns_align_on_the_widest_cell() {
        let rows = vec![
            cells(["environment", "pinned"]),
            cells(["staging", "churn x"]),
            cells(["production"]),
        ];
        assert_eq!(
            aligned(&rows),
            ["environment  pinned", "staging      churn x", "production"]
        );
    }
}
