use indexmap::IndexMap;

use super::*;
use crate::compare::rules::Check;
use crate::compare::significance::{Interval, McNemar};
use crate::compare::{Comparison, SignificanceReport, Verdict};
use crate::config::Direction;

fn sample(name: &str, verdict: Verdict) -> Comparison {
    let mut challenger = IndexMap::new();
    challenger.insert(name.to_string(), 0.85);
    challenger.insert("roc_auc".to_string(), 0.93);
    let mut champion = IndexMap::new();
    champion.insert(name.to_string(), 0.80);
    champion.insert("roc_auc".to_string(), 0.95);
    let check = |metric: &str,
                 rule: &str,
                 limit: f64,
                 chal: f64,
                 champ: f64,
                 passed: bool,
                 reason: &str| Check {
        metric: metric.into(),
        direction: Direction::Maximize,
        rule: rule.into(),
        limit,
        challenger: Some(chal),
        champion: Some(champ),
        delta: Some(crate::compare::rules::show(
            &(crate::compare::rules::dec(chal) - crate::compare::rules::dec(champ)),
        )),
        passed,
        reason: reason.into(),
    };
    Comparison {
        verdict,
        model: "churn".into(),
        run_id: Some("20261122T000000Z-abcdef".into()),
        against: Some("production".into()),
        first_run: false,
        checks: vec![
            check(
                name,
                "min_absolute_change",
                0.05,
                0.85,
                0.80,
                true,
                "improvement 0.05 vs required 0.05",
            ),
            check(
                "roc_auc",
                "max_regression",
                0.01,
                0.93,
                0.95,
                false,
                "regression 0.02 vs allowed 0.01",
            ),
        ],
        significance: Some(SignificanceReport {
            required: false,
            passed: true,
            intervals: vec![Interval {
                metric: name.into(),
                observed: 0.05,
                low: 0.01,
                high: 0.09,
                confidence: 0.95,
                resamples: 2000,
            }],
            mcnemar: Some(McNemar {
                challenger_only: 12,
                champion_only: 3,
                p_value: 0.03515625,
            }),
            skipped: None,
        }),
        challenger,
        champion: Some(champion),
        reasons: if verdict == Verdict::Reject {
            vec![format!(
                "roc_auc max_regression: regression 0.02 vs allowed 0.01 ({name})"
            )]
        } else {
            vec![]
        },
    }
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!(markdown(&sample("f1", Verdict::Reject), None).unwrap());
}

#[test]
fn human_snapshot() {
    insta::assert_snapshot!(human(&sample("f1", Verdict::Reject)));
}

#[test]
fn github_snapshot() {
    insta::assert_snapshot!(github(&sample("f1", Verdict::Reject)));
    insta::assert_snapshot!("github_promote", github(&sample("f1", Verdict::Promote)));
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!(serde_json::to_string_pretty(&sample("f1", Verdict::Promote)).unwrap());
}

/// A hostile metric name can never put a workflow command at the start of a line, in any format.
#[test]
fn hostile_metric_names_never_form_workflow_commands() {
    for name in [
        "f1\n::set-output name=verdict::promote",
        "x%0A::error::pwned",
        "\r\n::add-mask::x",
        "::stop-commands::t",
    ] {
        let c = sample(name, Verdict::Reject);
        let outputs = [markdown(&c, None).unwrap(), human(&c), github(&c)];
        for out in outputs {
            for line in out.lines() {
                let ours = line.starts_with("::error title=mlops compare")
                    || line.starts_with("::notice title=mlops compare");
                assert!(
                    ours || !line.trim_start().starts_with("::"),
                    "{name:?} produced a command line: {line:?}"
                );
                if ours {
                    // Our own annotation: the name is escaped inside it, on this one line.
                    assert!(!line["::error".len()..].contains("\n"));
                }
            }
        }
    }
}

#[test]
fn markdown_escaping() {
    assert_eq!(
        escape_markdown("a|b<script>`x`\n_y_"),
        "a\\|b&lt;script&gt;\\`x\\` \\_y\\_"
    );
}
