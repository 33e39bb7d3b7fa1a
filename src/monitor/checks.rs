//! The checks of one window, each a section of the report: input schema, feature drift,
//! prediction drift, live quality, error rate, latency. Drift runs the data check's tests
//! (`data::drift::column`) with the data check's decision rule on the reference's sample and a
//! sample of the window of the same size; live metrics are the significance tests' code.

use anyhow::Result;

use super::window::{Value, Window};
use super::{
    DriftSection, Health, LimitSection, MetricResult, PredictionSection, QualitySection, Report,
    SchemaSection, Section, Status,
};
use crate::compare::significance::{metric_on, Predictions};
use crate::config::{Config, Direction, DriftConfig, MonitorConfig};
use crate::data::check::ColumnReport;
use crate::data::drift;
use crate::data::profile::ColumnSample;
use crate::data::read::Kind;
use crate::data::reference::Reference;

pub struct Inputs<'a> {
    pub window: &'a Window,
    pub columns: &'a [String],
    pub reference: Option<&'a Reference>,
    pub reference_predictions: Option<&'a super::predictions::TestPredictions>,
}

/// The data check's rule: a p-value below `p_value`, or a distance above `threshold`.
fn drifted(cfg: &DriftConfig, o: &drift::Outcome) -> bool {
    match o.p_value {
        Some(p) => p < cfg.p_value,
        None => o.statistic > cfg.threshold,
    }
}

fn numbers(mut v: Vec<f64>) -> ColumnSample {
    v.sort_by(f64::total_cmp);
    ColumnSample {
        numbers: Some(v),
        texts: None,
    }
}

/// The window's sample of column `i`, shaped like the reference's sample of it.
fn current_sample(w: &Window, i: usize, reference: &ColumnSample) -> ColumnSample {
    let values = w.sample.iter().map(|r| &r.values[i]);
    if reference.numbers.is_some() {
        return numbers(
            values
                .filter_map(|v| match v {
                    Value::Number(x) => Some(*x),
                    Value::Text(t) => t.parse().ok(),
                    Value::Null => None,
                })
                .collect(),
        );
    }
    // Booleans are spelled as the reference's data spelled them (True in pandas' CSV).
    let capital = reference
        .texts
        .iter()
        .flatten()
        .any(|t| t == "True" || t == "False");
    let texts = values
        .filter_map(|v| match v {
            Value::Null => None,
            Value::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => {
                Some(format!("{}", *x as i64))
            }
            Value::Number(x) => Some(format!("{x}")),
            Value::Text(t) if capital && (t == "true" || t == "false") => {
                Some(if t == "true" { "True" } else { "False" }.to_string())
            }
            Value::Text(t) => Some(t.clone()),
        })
        .collect();
    ColumnSample {
        numbers: None,
        texts: Some(texts),
    }
}

/// Reference columns the serving inputs must have, with the reference's types (an integer
/// column may arrive as floats' integral values and the other way round for float columns).
/// The label and the columns excluded from drift (identifiers) are not expected.
fn schema(cx: &Inputs, target: Option<&str>, exclude: &[String]) -> SchemaSection {
    let Some(reference) = cx.reference else {
        return SchemaSection {
            section: Section {
                status: Status::Skipped,
                notes: vec!["no accepted training reference (.mlops/data/train.json): run `mlops data accept` and commit it".into()],
            },
            differences: Vec::new(),
        };
    };
    let mut differences = Vec::new();
    for (i, name) in cx.columns.iter().enumerate() {
        let want = reference.schema[name];
        match cx.window.seen[i].kind() {
            None if exclude.contains(name) => {}
            None => differences.push(format!("column {name:?} is missing")),
            // A float column whose live values all happen to be integral is still a float.
            Some(Kind::Integer) if want == Kind::Float => {}
            Some(found) if found != want => differences.push(format!(
                "column {name:?} is {} (reference: {})",
                kind_name(found),
                kind_name(want)
            )),
            Some(_) => {}
        }
    }
    for name in cx.window.new_columns.keys() {
        if Some(name.as_str()) != target {
            differences.push(format!("column {name:?} is new"));
        }
    }
    SchemaSection {
        section: Section::new(if differences.is_empty() {
            Status::Ok
        } else {
            Status::Alert
        }),
        differences,
    }
}

pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Integer => "integer",
        Kind::Float => "float",
        Kind::Boolean => "boolean",
        Kind::Categorical => "categorical",
    }
}

fn feature_drift(cx: &Inputs, cfg: &DriftConfig) -> DriftSection {
    let mut out = DriftSection {
        section: Section::new(Status::Skipped),
        sample_rows: cx.window.sample.len(),
        columns: Vec::new(),
        drifted_share: None,
        max_drifted_share: cfg.max_drifted_share,
    };
    let Some(reference) = cx.reference else {
        out.section
            .notes
            .push("no accepted training reference".into());
        return out;
    };
    for (i, name) in cx.columns.iter().enumerate() {
        if cfg.exclude.iter().any(|e| e == name) {
            continue;
        }
        let (Some(ref_sample), Some(kind)) =
            (reference.sample.columns.get(name), cx.window.seen[i].kind())
        else {
            continue;
        };
        let cur = current_sample(cx.window, i, ref_sample);
        if cur.is_empty() || ref_sample.is_empty() {
            continue;
        }
        let o = drift::column(cfg.test, ref_sample, &cur);
        out.columns.push(ColumnReport {
            name: name.clone(),
            kind,
            test: o.test,
            statistic: o.statistic,
            p_value: o.p_value,
            drifted: drifted(cfg, &o),
        });
    }
    if !out.columns.is_empty() {
        let n = out.columns.iter().filter(|c| c.drifted).count();
        let share = n as f64 / out.columns.len() as f64;
        out.drifted_share = Some(share);
        out.section.status = if share > cfg.max_drifted_share {
            Status::Alert
        } else {
            Status::Ok
        };
    }
    out
}

fn prediction_drift(cx: &Inputs, cfg: &DriftConfig) -> PredictionSection {
    let mut out = PredictionSection {
        section: Section::new(Status::Skipped),
        reference_rows: 0,
        columns: Vec::new(),
    };
    let Some(super::predictions::TestPredictions {
        predictions: ref_pred,
        scores: ref_score,
    }) = cx.reference_predictions
    else {
        out.section.notes.push(
            "no test-set predictions for this digest (.mlops/predictions/<digest>.csv, kept by `mlops promote` when the evaluation writes predictions.csv)".into(),
        );
        return out;
    };
    out.reference_rows = ref_pred.len();
    let live_pred: Vec<f64> = cx
        .window
        .sample
        .iter()
        .filter_map(|r| match &r.prediction {
            Value::Number(x) => Some(*x),
            _ => None,
        })
        .collect();
    let live_score: Vec<f64> = cx.window.sample.iter().filter_map(|r| r.score).collect();
    let mut pairs = vec![("prediction", ref_pred.clone(), live_pred)];
    if let Some(s) = ref_score {
        if !live_score.is_empty() {
            pairs.push(("score", s.clone(), live_score));
        }
    }
    for (name, r, c) in pairs {
        if r.is_empty() || c.is_empty() {
            continue;
        }
        let o = drift::column(cfg.test, &numbers(r), &numbers(c));
        out.columns.push(ColumnReport {
            name: name.into(),
            kind: Kind::Float,
            test: o.test,
            statistic: o.statistic,
            p_value: o.p_value,
            drifted: drifted(cfg, &o),
        });
    }
    if !out.columns.is_empty() {
        out.section.status = if out.columns.iter().any(|c| c.drifted) {
            Status::Alert
        } else {
            Status::Ok
        };
    }
    out
}

fn quality(w: &Window, mcfg: &MonitorConfig) -> Result<QualitySection> {
    let mut out = QualitySection {
        section: Section::new(Status::Skipped),
        labelled_rows: 0,
        metrics: Vec::new(),
    };
    let Some(labels) = &mcfg.labels else {
        return Ok(out);
    };
    if !labels.path.exists() {
        out.section.notes.push(format!(
            "no labels yet: {} does not exist",
            labels.path.display()
        ));
        return Ok(out);
    }
    let truth = super::labels::read(labels)?;
    let mut p = Predictions {
        y_true: Vec::new(),
        y_pred: Vec::new(),
        score: Some(Vec::new()),
    };
    for (id, y) in &truth {
        if let Some((pred, score)) = w.predictions.get(id) {
            p.y_true.push(*y);
            p.y_pred.push(*pred);
            match (score, p.score.as_mut()) {
                (Some(s), Some(v)) => v.push(*s),
                _ => p.score = None,
            }
        }
    }
    out.labelled_rows = p.y_true.len();
    if (out.labelled_rows as u64) < mcfg.min_rows {
        out.section.status = Status::NotEnoughData;
        out.section.notes.push(format!(
            "{} labelled rows < min_rows {}",
            out.labelled_rows, mcfg.min_rows
        ));
        return Ok(out);
    }
    out.section.status = Status::Ok;
    for (name, m) in &mcfg.metrics {
        let value = metric_on(&p, name);
        let passed = match (value, m.direction) {
            (Some(v), Direction::Maximize) => v >= m.threshold,
            (Some(v), Direction::Minimize) => v <= m.threshold,
            (None, _) => false,
        };
        if value.is_none() {
            out.section.notes.push(format!(
                "{name} cannot be computed from these predictions and labels (a classification metric needs 0/1 labels and predictions, roc_auc scores)"
            ));
        }
        if !passed {
            out.section.status = Status::Alert;
        }
        out.metrics.push(MetricResult {
            name: name.clone(),
            value,
            threshold: m.threshold,
            direction: m.direction,
            passed,
        });
    }
    Ok(out)
}

fn limit(value: Option<f64>, limit: Option<f64>) -> LimitSection {
    let status = match (value, limit) {
        (_, None) => Status::Skipped,
        (None, Some(_)) => Status::NotEnoughData,
        (Some(v), Some(l)) if v > l => Status::Alert,
        _ => Status::Ok,
    };
    LimitSection {
        section: Section::new(status),
        value,
        limit,
    }
}

/// p95 as numpy's default (linear interpolation).
fn p95(latencies: &[f64]) -> Option<f64> {
    if latencies.is_empty() {
        return None;
    }
    let mut v = latencies.to_vec();
    v.sort_by(f64::total_cmp);
    Some(crate::data::profile::quantile_sorted(&v, 0.95))
}

/// Every section, the health and the reasons (one line per alerting check).
pub fn evaluate(config: &Config, mcfg: &MonitorConfig, cx: &Inputs) -> Result<Report> {
    let w = cx.window;
    let target = config.data.target.as_deref();
    let enough = w.rows >= mcfg.min_rows;
    let mut report = Report {
        model: String::new(),
        environment: String::new(),
        digest: String::new(),
        run_id: String::new(),
        generated_at: String::new(),
        since: String::new(),
        inputs: String::new(),
        health: Health::NotEnoughData,
        reasons: Vec::new(),
        rows: w.rows,
        min_rows: mcfg.min_rows,
        files: w.files,
        error_rows: w.errors,
        corrupt_lines: w.corrupt,
        corrupt_examples: w.corrupt_examples.clone(),
        other_digest_rows: w.other_digest,
        outside_window_rows: w.outside_window,
        schema: schema(cx, target, &mcfg.drift.exclude),
        drift: feature_drift(cx, &mcfg.drift),
        predictions: prediction_drift(cx, &mcfg.drift),
        quality: quality(w, mcfg)?,
        errors: limit(
            (w.rows > 0).then(|| w.errors as f64 / w.rows as f64),
            mcfg.max_error_rate,
        ),
        latency: limit(p95(&w.latencies), mcfg.max_p95_latency_ms),
    };
    if !enough {
        report.reasons.push(format!(
            "not enough data: {} rows in the window < min_rows {}",
            w.rows, mcfg.min_rows
        ));
        for s in [
            &mut report.schema.section,
            &mut report.drift.section,
            &mut report.predictions.section,
            &mut report.quality.section,
            &mut report.errors.section,
            &mut report.latency.section,
        ] {
            if s.status != Status::Skipped {
                s.status = Status::NotEnoughData;
            }
        }
        return Ok(report);
    }
    report.reasons = reasons(&report);
    report.health = if report.reasons.is_empty() {
        Health::Healthy
    } else {
        Health::Alert
    };
    Ok(report)
}

fn reasons(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if r.schema.section.status == Status::Alert {
        out.push(format!("schema: {}", r.schema.differences.join("; ")));
    }
    if r.drift.section.status == Status::Alert {
        let names: Vec<&str> = r
            .drift
            .columns
            .iter()
            .filter(|c| c.drifted)
            .map(|c| c.name.as_str())
            .collect();
        out.push(format!("drift: {}", names.join(", ")));
    }
    if r.predictions.section.status == Status::Alert {
        let names: Vec<&str> = r
            .predictions
            .columns
            .iter()
            .filter(|c| c.drifted)
            .map(|c| c.name.as_str())
            .collect();
        out.push(format!("prediction drift: {}", names.join(", ")));
    }
    for m in r.quality.metrics.iter().filter(|m| !m.passed) {
        let op = match m.direction {
            Direction::Maximize => "<",
            Direction::Minimize => ">",
        };
        out.push(match m.value {
            Some(v) => format!("{} {v:.4} {op} {}", m.name, m.threshold),
            None => format!("{} cannot be computed", m.name),
        });
    }
    if let (Status::Alert, Some(v), Some(l)) =
        (r.errors.section.status, r.errors.value, r.errors.limit)
    {
        out.push(format!("error rate {:.2}% > {:.2}%", v * 100.0, l * 100.0));
    }
    if let (Status::Alert, Some(v), Some(l)) =
        (r.latency.section.status, r.latency.value, r.latency.limit)
    {
        out.push(format!("latency p95 {v:.1} ms > {l} ms"));
    }
    out
}
