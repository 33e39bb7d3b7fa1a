//! The JSON Schema of mlops.yaml, generated from [`super::raw`], and validation against it that
//! turns every error into a positioned [`Diagnostic`].

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::raw::RawConfig;
use super::yaml::{pointer_token, Positions};
use crate::diagnostic::Diagnostic;

/// The schema as committed in `schemas/mlops.schema.json` (a test keeps the two equal).
pub fn generate() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<RawConfig>();
    let mut value = schema.to_value();
    strip_null(&mut value);
    if let Value::Object(map) = &mut value {
        map.insert(
            "$id".into(),
            Value::String("https://mlops.dev/schemas/mlops.schema.json".into()),
        );
    }
    value
}

/// Optional keys are written out or left out; `null` is never a useful value in mlops.yaml, and
/// `anyOf [T, null]` would hide the precise error inside T behind "no schema matched".
fn strip_null(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(alts)) = map.get("anyOf") {
                let non_null: Vec<Value> = alts
                    .iter()
                    .filter(|a| a.get("type") != Some(&Value::String("null".into())))
                    .cloned()
                    .collect();
                if non_null.len() == 1 && alts.len() == 2 {
                    map.remove("anyOf");
                    if let Value::Object(inner) = &non_null[0] {
                        for (k, val) in inner {
                            map.insert(k.clone(), val.clone());
                        }
                    }
                }
            }
            // Enums whose variants carry docs come out as oneOf [{const}, ...]; a flat `enum`
            // gives the user "expected one of ..." instead of "matched no alternative".
            if let Some(Value::Array(alts)) = map.get("oneOf") {
                let mut values = Vec::new();
                let mut docs = Vec::new();
                let flat = alts.iter().all(|a| {
                    let consts: Vec<Value> = match (a.get("const"), a.get("enum")) {
                        (Some(c), _) => vec![c.clone()],
                        (None, Some(Value::Array(e))) => e.clone(),
                        _ => return false,
                    };
                    if let Some(d) = a.get("description").and_then(Value::as_str) {
                        for c in &consts {
                            docs.push(format!("{}: {d}", c.as_str().unwrap_or_default()));
                        }
                    }
                    values.extend(consts);
                    values.iter().all(Value::is_string)
                });
                if flat {
                    map.remove("oneOf");
                    map.insert("type".into(), Value::String("string".into()));
                    map.insert("enum".into(), Value::Array(values));
                    if !docs.is_empty() {
                        let base = map
                            .get("description")
                            .and_then(Value::as_str)
                            .map(|d| format!("{d} "))
                            .unwrap_or_default();
                        map.insert(
                            "description".into(),
                            Value::String(format!("{base}{}", docs.join("; "))),
                        );
                    }
                }
            }
            if let Some(Value::Array(types)) = map.get("type") {
                let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if kept.len() == 1 {
                    map.insert("type".into(), kept[0].clone());
                }
            }
            if let Some(Value::Array(vals)) = map.get_mut("enum") {
                vals.retain(|x| !x.is_null());
            }
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            for child in map.values_mut() {
                strip_null(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

/// The committed schema, embedded: parsing it is cheaper than generating it at every start, and
/// `committed_schema_is_current` guarantees the two are the same.
const EMBEDDED: &str = include_str!("../../schemas/mlops.schema.json");

fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(EMBEDDED).unwrap_or_else(|_| generate()))
}

fn validator() -> Result<&'static jsonschema::Validator, String> {
    static VALIDATOR: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .build(schema())
                .map_err(|e| format!("internal error: the embedded schema does not compile: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Dotted key path for messages: `/environments/prod/deploy` → `environments.prod.deploy`.
pub fn dotted(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn expected_name(t: &str) -> &str {
    match t {
        "object" => "a mapping",
        "array" => "a list",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        other => other,
    }
}

/// The property names the schema allows at `pointer` in the document, following `$ref`s.
fn allowed_keys(pointer: &str) -> Vec<String> {
    let root = schema();
    let resolve = |mut n: &'static Value| -> &'static Value {
        while let Some(Value::String(r)) = n.get("$ref") {
            match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(target) => n = target,
                None => break,
            }
        }
        n
    };
    let mut node = resolve(root);
    for token in pointer.split('/').skip(1) {
        let key = token.replace("~1", "/").replace("~0", "~");
        let next = node
            .get("properties")
            .and_then(|p| p.get(&key))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
            .or_else(|| node.get("items").filter(|a| a.is_object()));
        match next {
            Some(n) => node = resolve(n),
            None => return Vec::new(),
        }
    }
    node.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The closest allowed name, when it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < c.len().max(word.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

const GATE_HELP: &str = "the gate needs at least one rule, or every run would promote; for example compare: {metrics: {f1: {direction: maximize, threshold: 0.8}}}";

/// `unknown key "x"` for each unexpected key, with a suggestion and the allowed keys.
fn unknown_keys(
    file: &str,
    positions: &Positions,
    pointer: &str,
    unexpected: &[String],
) -> Vec<Diagnostic> {
    let key = dotted(pointer);
    let allowed = allowed_keys(pointer);
    let mut out = Vec::new();
    for name in unexpected {
        let child = format!("{pointer}/{}", pointer_token(name));
        let mut message = format!("unknown key \"{name}\"");
        if let Some(s) = suggest(name, allowed.iter().map(String::as_str)) {
            message.push_str(&format!(" (did you mean \"{s}\"?)"));
        }
        let mut d = Diagnostic::error(file, positions.key(&child), &dotted(&child), message);
        if !allowed.is_empty() {
            d = d.with_help(format!(
                "allowed keys{}: {}",
                if key.is_empty() {
                    String::new()
                } else {
                    format!(" in {key}")
                },
                allowed.join(", ")
            ));
        }
        out.push(d);
    }
    out
}

/// `key: expected a number, found a string`.
fn type_message(key: &str, kind: &TypeKind, found: &Value) -> String {
    let expected = match kind {
        TypeKind::Single(t) => expected_name(&t.to_string()).to_string(),
        TypeKind::Multiple(ts) => ts
            .iter()
            .map(|t| expected_name(&t.to_string()).to_string())
            .collect::<Vec<_>>()
            .join(" or "),
    };
    if key.is_empty() {
        format!(
            "expected {expected} at the top level, found {}",
            type_name(found)
        )
    } else {
        format!("{key}: expected {expected}, found {}", type_name(found))
    }
}

/// `key: invalid value "x" (did you mean "y"?)`, and the values allowed as help.
fn enum_message(key: &str, options: &Value, found: &Value) -> (String, String) {
    let opts: Vec<String> = options
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o.to_string().trim_matches('"').to_string())
                .collect()
        })
        .unwrap_or_default();
    let found = found
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| found.to_string());
    let mut msg = format!("{key}: invalid value \"{found}\"");
    if let Some(s) = suggest(&found, opts.iter().map(String::as_str)) {
        msg.push_str(&format!(" (did you mean \"{s}\"?)"));
    }
    (msg, format!("expected one of: {}", opts.join(", ")))
}

/// Validates `instance` against the schema; every error becomes a diagnostic.
pub fn validate(file: &str, instance: &Value, positions: &Positions) -> Vec<Diagnostic> {
    let validator = match validator() {
        Ok(v) => v,
        Err(e) => return vec![Diagnostic::error(file, (1, 1), "", e)],
    };
    let mut out = Vec::new();
    for error in validator.iter_errors(instance) {
        let pointer = error.instance_path().as_str().to_string();
        let key = dotted(&pointer);
        let at = |p: &str| positions.value(p);
        let instance_value = instance.pointer(&pointer).unwrap_or(&Value::Null);
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                out.extend(unknown_keys(file, positions, &pointer, unexpected));
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                let place = if key.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in {key}")
                };
                let mut d = Diagnostic::error(
                    file,
                    positions.key(&pointer),
                    &key,
                    format!("missing required key \"{name}\" {place}"),
                );
                if pointer.is_empty() && name == "compare" {
                    d = d.with_help(GATE_HELP);
                }
                out.push(d);
            }
            ValidationErrorKind::Type { kind } => {
                let msg = type_message(&key, kind, instance_value);
                out.push(Diagnostic::error(file, at(&pointer), &key, msg));
            }
            ValidationErrorKind::Enum { options } => {
                let (msg, help) = enum_message(&key, options, instance_value);
                out.push(Diagnostic::error(file, at(&pointer), &key, msg).with_help(help));
            }
            ValidationErrorKind::Minimum { limit } => out.push(Diagnostic::error(
                file,
                at(&pointer),
                &key,
                format!("{key}: {instance_value} is less than the minimum {limit}"),
            )),
            ValidationErrorKind::Maximum { limit } => out.push(Diagnostic::error(
                file,
                at(&pointer),
                &key,
                format!("{key}: {instance_value} is greater than the maximum {limit}"),
            )),
            ValidationErrorKind::MinItems { .. } | ValidationErrorKind::MinProperties { .. } => {
                let d = Diagnostic::error(
                    file,
                    at(&pointer),
                    &key,
                    format!("{key}: must not be empty"),
                );
                out.push(if pointer == "/compare/metrics" {
                    d.with_help(GATE_HELP)
                } else {
                    d
                });
            }
            ValidationErrorKind::MinLength { .. } => out.push(Diagnostic::error(
                file,
                at(&pointer),
                &key,
                format!("{key}: must not be empty"),
            )),
            ValidationErrorKind::Pattern { pattern } => out.push(Diagnostic::error(
                file,
                at(&pointer),
                &key,
                format!("{key}: {instance_value} does not match {pattern}"),
            )),
            _ => {
                let place = if key.is_empty() {
                    "mlops.yaml".to_string()
                } else {
                    key.clone()
                };
                out.push(Diagnostic::error(
                    file,
                    at(&pointer),
                    &key,
                    format!("{place}: {error}"),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schema is the generated one; `MLOPS_UPDATE_SCHEMA=1` rewrites it.
    #[test]
    fn committed_schema_is_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/mlops.schema.json");
        let generated = format!("{}\n", serde_json::to_string_pretty(&generate()).unwrap());
        if std::env::var_os("MLOPS_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "schemas/mlops.schema.json is out of date: run `MLOPS_UPDATE_SCHEMA=1 cargo test committed_schema` and commit it"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("paramz", ["params", "command", "env"]),
            Some("params")
        );
        assert_eq!(suggest("zzzzzz", ["params", "command"]), None);
        assert_eq!(
            suggest("maximise", ["maximize", "minimize"]),
            Some("maximize")
        );
    }
}
