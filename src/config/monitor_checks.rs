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
