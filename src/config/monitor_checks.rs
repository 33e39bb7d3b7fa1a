//! Semantic checks of `environments.<env>.monitor` that the schema cannot express.

use serde_json::Value;

use super::semantic::Ctx;
use super::units::parse_duration;
use super::yaml::pointer_token;
use crate::compare::significance::SUPPORTED;

pub(super) fn check(cx: &mut Ctx, name: &str, env: &Value) {
    let Some(monitor) = env.get("monitor").filter(|m| m.is_object()) else {
        return;
    };
    let base = format!("/environments/{}/monitor", pointer_token(name));
    let key = format!("environments.{name}.monitor");
    let capture_set = env.pointer("/deploy/capture").is_some();
    let inputs = monitor.get("inputs");
    if matches!(inputs, None | Some(Value::String(_))) && !capture_set {
        let pointer = if inputs.is_some() {
            format!("{base}/inputs")
        } else {
            base.clone()
        };
        cx.error(
            &pointer,
            format!("{key}.inputs: reads the capture directory, but environments.{name}.deploy.capture is not set"),
        )
        .help = Some(format!(
            "set environments.{name}.deploy.capture to the host directory the serving container writes to, or point monitor.inputs at an export: {{path: exports/}}"
        ));
    }
    if let Some(w) = monitor.get("window").and_then(Value::as_str) {
        match parse_duration(w) {
            Err(e) => {
                cx.error(&format!("{base}/window"), format!("{key}.window: {e}"));
            }
            Ok(d) if d.is_zero() => {
                cx.error(
                    &format!("{base}/window"),
                    format!("{key}.window: must be longer than 0s"),
                );
            }
            Ok(_) => {}
        }
    }
    if let Some(Value::Object(metrics)) = monitor.get("metrics") {
        for metric in metrics.keys() {
            if !SUPPORTED.contains(&metric.as_str()) {
                cx.key_error(
                    &format!("{base}/metrics/{}", pointer_token(metric)),
                    format!("{key}.metrics.{metric}: cannot be computed from live predictions and labels"),
                )
                .help = Some(format!("live metrics: {}", SUPPORTED.join(", ")));
            }
        }
        if !metrics.is_empty() && monitor.get("labels").is_none() {
            cx.error(
                &format!("{base}/metrics"),
                format!("{key}.metrics: live quality needs labels: add {key}.labels {{path, key, target}}"),
            );
        }
    }
    if let Some(Value::Array(actions)) = monitor.get("on_alert") {
        let mut seen = Vec::new();
        for (i, a) in actions.iter().enumerate() {
            if let Some(a) = a.as_str() {
                if seen.contains(&a) {
                    cx.error(
                        &format!("{base}/on_alert/{i}"),
                        format!("{key}.on_alert: {a} is listed twice"),
                    );
                }
                seen.push(a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn check(environments: &str) -> (Vec<String>, Option<crate::config::Config>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.csv"), "x\n1\n").unwrap();
        let text = format!(
            "version: 1\nmodel: m\ndata: {{train: {{path: t.csv}}, test: {{path: t.csv}}, target: y, checks: {{drift: {{p_value: 0.05, exclude: [id]}}}}}}\ntrain: {{image: i, command: ['true']}}\nevaluate: {{command: ['true']}}\ncompare: {{metrics: {{rmse: {{direction: minimize, threshold: 1}}}}}}\nenvironments:\n{environments}"
        );
        let path = dir.path().join("mlops.yaml");
        let checked = crate::config::check_text("mlops.yaml", Path::new(&path), &text);
        (
            checked.diagnostics.iter().map(|d| d.human()).collect(),
            checked.config,
        )
    }

    #[test]
    fn a_full_monitor_block_resolves_with_inherited_defaults() {
        let (errors, config) = check(
            "  staging:\n    deploy: {target: docker, port: 18080, capture: cap}\n    monitor:\n      labels: {path: labels.csv}\n      window: 12h\n      drift: {max_drifted_share: 0.3}\n      metrics: {f1: {threshold: 0.8}, rmse: {threshold: 2}}\n      errors: {max_rate: 0.01}\n      latency: {p95_ms: 250}\n      on_alert: [retrain, issue, notify]\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let config = config.unwrap();
        let env = &config.environments["staging"];
        assert!(env.capture.as_ref().unwrap().ends_with("cap"));
        let m = env.monitor.as_ref().unwrap();
        assert!(
            matches!(&m.inputs, crate::config::MonitorInputs::Capture(p) if p.ends_with("cap"))
        );
        assert_eq!(m.window, std::time::Duration::from_secs(12 * 3600));
        assert_eq!(m.min_rows, 500);
        assert_eq!((m.drift.p_value, m.drift.max_drifted_share), (0.05, 0.3));
        assert_eq!(m.drift.exclude, ["id"]);
        let labels = m.labels.as_ref().unwrap();
        assert_eq!((labels.key.as_str(), labels.target.as_str()), ("id", "y"));
        use crate::config::Direction;
        assert_eq!(m.metrics["f1"].direction, Direction::Maximize);
        assert_eq!(m.metrics["rmse"].direction, Direction::Minimize);
        assert_eq!(m.on_alert.len(), 3);
    }

    #[test]
    fn mistakes_in_the_monitor_block_are_named_with_their_key() {
        let (errors, _) = check(
            "  staging:\n    deploy: {target: docker, port: 18080}\n    monitor:\n      window: soon\n      metrics: {lift: {threshold: 1}}\n      on_alert: [issue, issue, page]\n",
        );
        let all = errors.join("\n");
        assert!(all.contains("environments.staging.monitor.inputs: reads the capture directory, but environments.staging.deploy.capture is not set"), "{all}");
        assert!(
            all.contains("environments.staging.monitor.window: invalid duration \"soon\""),
            "{all}"
        );
        assert!(
            all.contains("environments.staging.monitor.metrics.lift: cannot be computed"),
            "{all}"
        );
        assert!(all.contains("live quality needs labels"), "{all}");
        assert!(all.contains("mlops.yaml:"), "{all}");
        assert!(
            all.contains("page"),
            "an unknown action is a schema error: {all}"
        );
    }
}
