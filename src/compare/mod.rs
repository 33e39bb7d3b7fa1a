//! The champion/challenger gate: rules, significance and the verdict, for a run or for two
//! metrics files.

pub mod metrics;
mod predictions;
pub mod rules;
pub mod significance;

use std::path::Path;

use anyhow::{Context, Result};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Direction};
use rules::Check;
use significance::{Interval, McNemar};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Promote,
    Reject,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignificanceReport {
    pub required: bool,
    pub passed: bool,
    pub intervals: Vec<Interval>,
    pub mcnemar: Option<McNemar>,
    /// Why significance could not be computed, when it could not.
    pub skipped: Option<String>,
}

/// A comparison, as `compare.json` records it. Read back, only the verdict is required: the
/// rest of a file written by hand (or by an older mlops) defaults to empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub verdict: Verdict,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub run_id: Option<String>,
    /// The environment whose champion was compared against.
    #[serde(default)]
    pub against: Option<String>,
    /// No champion: only thresholds applied.
    #[serde(default)]
    pub first_run: bool,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub significance: Option<SignificanceReport>,
    #[serde(default)]
    pub challenger: IndexMap<String, f64>,
    #[serde(default)]
    pub champion: Option<IndexMap<String, f64>>,
    /// One line per reason the verdict is reject.
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// Inputs of a comparison: metrics of both sides, and predictions when significance is asked.
pub struct Inputs<'a> {
    pub challenger: IndexMap<String, f64>,
    pub champion: Option<IndexMap<String, f64>>,
    pub predictions: Option<(&'a Path, &'a Path)>,
    pub run_id: Option<String>,
}

pub fn compare(config: &Config, inputs: Inputs) -> Result<Comparison> {
    let rules = &config.compare.metrics;
    let checks = rules::evaluate(rules, &inputs.challenger, inputs.champion.as_ref());
    let mut reasons: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} {}: {}", c.metric, c.rule, c.reason))
        .collect();
    let significance = match (
        &config.compare.significance,
        inputs.predictions,
        &inputs.champion,
    ) {
        (Some(sig), Some((chal_path, champ_path)), Some(_)) => {
            let report = significance_report(config, sig, chal_path, champ_path)?;
            if report.required && !report.passed {
                reasons.push(
                    "significance: the improvement's confidence interval does not exclude zero"
                        .into(),
                );
            }
            Some(report)
        }
        (Some(sig), _, Some(_)) => Some(SignificanceReport {
            required: sig.require,
            passed: !sig.require,
            intervals: Vec::new(),
            mcnemar: None,
            skipped: Some("both sides must write predictions.csv".into()),
        }),
        _ => None,
    };
    if let Some(s) = &significance {
        if s.required && s.skipped.is_some() {
            reasons.push(format!(
                "significance is required but could not be computed: {}",
                s.skipped.clone().unwrap_or_default()
            ));
        }
    }
    Ok(Comparison {
        verdict: if reasons.is_empty() {
            Verdict::Promote
        } else {
            Verdict::Reject
        },
        model: config.model.clone(),
        run_id: inputs.run_id,
        against: config.compare.against.clone(),
        first_run: inputs.champion.is_none(),
        checks,
        significance,
        challenger: inputs.challenger,
        champion: inputs.champion,
        reasons,
    })
}

fn significance_report(
    config: &Config,
    sig: &crate::config::SignificanceConfig,
    chal_path: &Path,
    champ_path: &Path,
) -> Result<SignificanceReport> {
    // `present`, not `exists`: a link the step left is refused when read, not taken for absence.
    use crate::outputs::present;
    if !present(chal_path) || !present(champ_path) {
        return Ok(SignificanceReport {
            required: sig.require,
            passed: !sig.require,
            intervals: Vec::new(),
            mcnemar: None,
            skipped: Some("both sides must write predictions.csv".into()),
        });
    }
    let chal = significance::read_predictions(chal_path)?;
    let champ = significance::read_predictions(champ_path)?;
    let metrics: Vec<String> = config.compare.metrics.keys().cloned().collect();
    let intervals = significance::bootstrap(
        &chal,
        &champ,
        &metrics,
        sig.confidence,
        sig.resamples,
        sig.seed,
    )
    .with_context(|| {
        format!(
            "comparing {} with {}",
            chal_path.display(),
            champ_path.display()
        )
    })?;
    let mcnemar = significance::mcnemar(&chal, &champ)?;
    let passed = intervals.iter().all(|i| {
        match config.compare.metrics.get(&i.metric).map(|r| r.direction) {
            Some(Direction::Minimize) => i.high < 0.0,
            _ => i.low > 0.0,
        }
    });
    Ok(SignificanceReport {
        required: sig.require,
        passed: passed && !intervals.is_empty(),
        intervals,
        mcnemar,
        skipped: None,
    })
}
