//! The rules of `compare.metrics`, per metric, all ANDed:
//!
//! - `threshold`: an absolute floor (a ceiling when minimizing), inclusive.
//! - `min_absolute_change`: the challenger must improve on the champion by at least this much.
//! - `min_relative_change`: ... by at least this fraction of |champion|.
//! - `max_regression`: the challenger may be worse than the champion by at most this much.
//!
//! "Improvement" is challenger − champion when maximizing and champion − challenger when
//! minimizing, so every rule reads the same in both directions. Arithmetic is decimal on the
//! numbers as written: each f64 is turned into the shortest decimal that reads back as the same
//! f64 (what a JSON or YAML writer printed), so 0.85 − 0.80 is exactly 0.05.
//!
//! Edge cases, defined:
//! - No champion (first run): only thresholds apply; comparative rules pass as "first run".
//! - A metric missing from the challenger fails every rule of that metric; missing from the
//!   champion fails the comparative rules (thresholds still apply), each naming the metric.
//! - Champion exactly 0 with `min_relative_change`: any relative change from zero is unbounded,
//!   so the rule passes when the challenger strictly improves and fails otherwise.
//! - Negative champion values: relative change is measured against |champion|, so a loss metric
//!   of −2.0 improving to −1.8 (maximize) is a +10% change.
//! - NaN and infinity cannot pass: metrics files reject them when read, and mlops.yaml cannot
//!   express them.

use std::str::FromStr;

use bigdecimal::{BigDecimal, Zero};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::config::{Direction, MetricRule};

/// The exact decimal an f64 was written as (shortest round-trip representation).
pub fn dec(x: f64) -> BigDecimal {
    BigDecimal::from_str(&format!("{x}")).unwrap_or_else(|_| BigDecimal::zero())
}

/// Formats a decimal without trailing zeros or exponent noise.
pub fn show(x: &BigDecimal) -> String {
    let s = x.normalized().to_plain_string();
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub metric: String,
    pub direction: Direction,
    /// `threshold`, `min_absolute_change`, `min_relative_change`, `max_regression`.
    pub rule: String,
    /// The rule's value as configured.
    pub limit: f64,
    pub challenger: Option<f64>,
    pub champion: Option<f64>,
    /// Improvement over the champion (positive is better), as an exact decimal string.
    pub delta: Option<String>,
    pub passed: bool,
    pub reason: String,
}

fn better(direction: Direction) -> &'static str {
    match direction {
        Direction::Maximize => "higher",
        Direction::Minimize => "lower",
    }
}

/// Applies every rule of every metric. `champion` is None on a first run.
pub fn evaluate(
    rules: &IndexMap<String, MetricRule>,
    challenger: &IndexMap<String, f64>,
    champion: Option<&IndexMap<String, f64>>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for (metric, rule) in rules {
        let chal = challenger.get(metric).copied();
        let champ = champion.and_then(|c| c.get(metric).copied());
        let improvement = match (chal, champ) {
            (Some(c), Some(p)) => Some(match rule.direction {
                Direction::Maximize => dec(c) - dec(p),
                Direction::Minimize => dec(p) - dec(c),
            }),
            _ => None,
        };
        let mut push = |name: &str, limit: f64, passed: bool, reason: String| {
            checks.push(Check {
                metric: metric.clone(),
                direction: rule.direction,
                rule: name.to_string(),
                limit,
                challenger: chal,
                champion: champ,
                delta: improvement.as_ref().map(show),
                passed,
                reason,
            });
        };
        let missing_challenger =
            || format!("{metric} is missing from the challenger's metrics.json");

        if let Some(t) = rule.threshold {
            match chal {
                None => push("threshold", t, false, missing_challenger()),
                Some(c) => {
                    let (ok, op) = match rule.direction {
                        Direction::Maximize => (dec(c) >= dec(t), ">="),
                        Direction::Minimize => (dec(c) <= dec(t), "<="),
                    };
                    let verdict = if ok { "meets" } else { "does not meet" };
                    push(
                        "threshold",
                        t,
                        ok,
                        format!("{} {verdict} {op} {}", show(&dec(c)), show(&dec(t))),
                    );
                }
            }
        }
        let comparative = [
            ("min_absolute_change", rule.min_absolute_change),
            ("min_relative_change", rule.min_relative_change),
            ("max_regression", rule.max_regression),
        ];
        for (name, limit) in comparative {
            let Some(limit) = limit else { continue };
            if chal.is_none() {
                push(name, limit, false, missing_challenger());
                continue;
            }
            let Some(champion) = champion else {
                push(
                    name,
                    limit,
                    true,
                    "no champion yet (first run): comparative rules do not apply".into(),
                );
                continue;
            };
            let (Some(p), Some(imp)) = (champ, improvement.as_ref()) else {
                let _ = champion;
                push(
                    name,
                    limit,
                    false,
                    format!("{metric} is missing from the champion's metrics.json"),
                );
                continue;
            };
            let (ok, reason) = comparative_rule(name, rule.direction, limit, p, imp);
            push(name, limit, ok, reason);
        }
    }
    checks
}

/// A comparative rule (`min_absolute_change`, `min_relative_change`, `max_regression`) on the
/// champion's value `p` and the improvement `imp`: whether it passes, and why.
fn comparative_rule(
    name: &str,
    direction: Direction,
    limit: f64,
    p: f64,
    imp: &BigDecimal,
) -> (bool, String) {
    let l = dec(limit);
    match name {
        "min_absolute_change" => (
            *imp >= l,
            format!(
                "improvement {} vs required {} ({} is better)",
                show(imp),
                show(&l),
                better(direction)
            ),
        ),
        "min_relative_change" => {
            let base = dec(p).abs();
            if base.is_zero() {
                let ok = *imp > BigDecimal::zero();
                (
                    ok,
                    format!(
                        "champion is 0: any strict improvement counts; improvement {}",
                        show(imp)
                    ),
                )
            } else {
                let needed = &l * &base;
                let rel = (imp / &base).with_prec(6);
                (
                    *imp >= needed,
                    format!(
                        "relative improvement {} vs required {}",
                        show(&rel),
                        show(&l)
                    ),
                )
            }
        }
        _ => (
            *imp >= -l.clone(),
            if *imp >= BigDecimal::zero() {
                format!("no regression (improvement {})", show(imp))
            } else {
                format!("regression {} vs allowed {}", show(&-imp.clone()), show(&l))
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(direction: Direction) -> MetricRule {
        MetricRule {
            direction,
            threshold: None,
            min_absolute_change: None,
            min_relative_change: None,
            max_regression: None,
        }
    }

    fn m(pairs: &[(&str, f64)]) -> IndexMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn one(r: MetricRule, chal: f64, champ: Option<f64>) -> Check {
        let rules: IndexMap<String, MetricRule> = [("x".to_string(), r)].into_iter().collect();
        let champ_m = champ.map(|c| m(&[("x", c)]));
        let checks = evaluate(&rules, &m(&[("x", chal)]), champ_m.as_ref());
        assert_eq!(checks.len(), 1);
        checks.into_iter().next().unwrap()
    }

    #[test]
    fn decimal_cases_from_the_contract() {
        let mut r = rule(Direction::Maximize);
        r.min_absolute_change = Some(0.05);
        assert!(
            one(r.clone(), 0.85, Some(0.80)).passed,
            "0.85 vs 0.80 by 0.05 passes"
        );
        assert!(!one(r, 0.8499999, Some(0.80)).passed);
        let mut r = rule(Direction::Maximize);
        r.min_relative_change = Some(0.1);
        assert!(
            one(r.clone(), 0.88, Some(0.8)).passed,
            "0.88 vs 0.8 by 10% passes"
        );
        assert!(!one(r, 0.8799, Some(0.8)).passed);
        // 0.1 + 0.2 style binary noise does not leak in.
        let mut r = rule(Direction::Maximize);
        r.min_absolute_change = Some(0.1);
        assert!(one(r, 0.3, Some(0.2)).passed);
    }

    #[test]
    fn thresholds_are_inclusive_both_ways() {
        let mut r = rule(Direction::Maximize);
        r.threshold = Some(0.80);
        assert!(one(r.clone(), 0.80, None).passed);
        assert!(!one(r, 0.7999, None).passed);
        let mut r = rule(Direction::Minimize);
        r.threshold = Some(120.0);
        assert!(one(r.clone(), 120.0, None).passed);
        assert!(!one(r, 120.5, None).passed);
    }

    #[test]
    fn minimize_mirrors_improvement() {
        let mut r = rule(Direction::Minimize);
        r.min_relative_change = Some(0.05);
        assert!(one(r.clone(), 95.0, Some(100.0)).passed);
        assert!(!one(r.clone(), 96.0, Some(100.0)).passed);
        let c = one(r, 95.0, Some(100.0));
        assert_eq!(c.delta.as_deref(), Some("5"));
        let mut r = rule(Direction::Minimize);
        r.max_regression = Some(2.0);
        assert!(one(r.clone(), 102.0, Some(100.0)).passed);
        assert!(!one(r, 102.01, Some(100.0)).passed);
    }

    #[test]
    fn max_regression_is_a_guardrail() {
        let mut r = rule(Direction::Maximize);
        r.max_regression = Some(0.01);
        assert!(
            one(r.clone(), 0.94, Some(0.95)).passed,
            "exactly the allowed loss"
        );
        assert!(!one(r.clone(), 0.9399, Some(0.95)).passed);
        assert!(one(r, 0.99, Some(0.95)).passed);
    }

    #[test]
    fn zero_and_negative_champions() {
        let mut r = rule(Direction::Maximize);
        r.min_relative_change = Some(0.1);
        assert!(
            one(r.clone(), 0.001, Some(0.0)).passed,
            "strict improvement over 0"
        );
        assert!(!one(r.clone(), 0.0, Some(0.0)).passed);
        assert!(!one(r.clone(), -0.1, Some(0.0)).passed);
        // -2.0 → -1.8 is +0.2 = 10% of |−2.0|.
        assert!(one(r.clone(), -1.8, Some(-2.0)).passed);
        assert!(!one(r, -1.81, Some(-2.0)).passed);
        let mut r = rule(Direction::Minimize);
        r.min_absolute_change = Some(0.5);
        assert!(
            one(r, -3.0, Some(-2.5)).passed,
            "lower is better, negatives too"
        );
    }

    #[test]
    fn first_run_applies_thresholds_only() {
        let mut r = rule(Direction::Maximize);
        r.threshold = Some(0.8);
        r.min_absolute_change = Some(0.01);
        let rules: IndexMap<String, MetricRule> = [("f1".to_string(), r)].into_iter().collect();
        let checks = evaluate(&rules, &m(&[("f1", 0.9)]), None);
        assert_eq!(checks.len(), 2);
        assert!(checks.iter().all(|c| c.passed));
        assert!(checks[1].reason.contains("first run"));
    }

    #[test]
    fn missing_metrics_fail_with_their_name() {
        let mut r = rule(Direction::Maximize);
        r.threshold = Some(0.8);
        r.max_regression = Some(0.01);
        let rules: IndexMap<String, MetricRule> = [("auc".to_string(), r)].into_iter().collect();
        let checks = evaluate(&rules, &m(&[("f1", 0.9)]), Some(&m(&[("auc", 0.9)])));
        assert!(checks.iter().all(|c| !c.passed));
        assert!(checks[0]
            .reason
            .contains("auc is missing from the challenger"));
        let checks = evaluate(&rules, &m(&[("auc", 0.9)]), Some(&m(&[("f1", 0.9)])));
        assert!(checks[0].passed, "threshold still applies");
        assert!(!checks[1].passed);
        assert!(checks[1]
            .reason
            .contains("auc is missing from the champion"));
    }
}
