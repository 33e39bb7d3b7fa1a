//! Checks the schema cannot express: files that must exist, names that must refer to something,
//! values that must parse. They read the document as JSON so that they still run (and report)
//! when other parts of the file are wrong.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use super::schema::dotted;
use super::units::{parse_duration, parse_size};
use super::yaml::{pointer_token, Positions};
use crate::diagnostic::Diagnostic;

pub(super) struct Ctx<'a> {
    file: &'a str,
    root: &'a Path,
    doc: &'a Value,
    positions: &'a Positions,
    out: Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub(super) fn str_at(&self, pointer: &str) -> Option<&str> {
        self.doc.pointer(pointer).and_then(Value::as_str)
    }

    pub(super) fn error(&mut self, pointer: &str, message: String) -> &mut Diagnostic {
        self.out.push(Diagnostic::error(
            self.file,
            self.positions.value(pointer),
            &dotted(pointer),
            message,
        ));
        let last = self.out.len() - 1;
        &mut self.out[last]
    }

    pub(super) fn key_error(&mut self, pointer: &str, message: String) -> &mut Diagnostic {
        self.out.push(Diagnostic::error(
            self.file,
            self.positions.key(pointer),
            &dotted(pointer),
            message,
        ));
        let last = self.out.len() - 1;
        &mut self.out[last]
    }

    /// A path relative to mlops.yaml that must exist (`dir`: must be a directory).
    fn must_exist(&mut self, pointer: &str, what: &str, dir: Option<bool>) {
        let Some(rel) = self.str_at(pointer).map(str::to_string) else {
            return;
        };
        let path = self.root.join(&rel);
        let key = dotted(pointer);
        match std::fs::metadata(&path) {
            Err(_) => {
                self.error(pointer, format!("{key}: {what} \"{rel}\" does not exist"))
                    .help = Some(format!(
                    "paths are relative to the directory of {} ({})",
                    self.file,
                    self.root.display()
                ));
            }
            Ok(m) if dir == Some(true) && !m.is_dir() => {
                self.error(pointer, format!("{key}: \"{rel}\" is not a directory"));
            }
            Ok(m) if dir == Some(false) && !m.is_file() => {
                self.error(pointer, format!("{key}: \"{rel}\" is not a file"));
            }
            Ok(_) => {}
        }
    }
}

pub fn check(file: &str, root: &Path, doc: &Value, positions: &Positions) -> Vec<Diagnostic> {
    let mut cx = Ctx {
        file,
        root,
        doc,
        positions,
        out: Vec::new(),
    };
    datasets(&mut cx);
    train(&mut cx);
    let envs = environments(&mut cx);
    compare(&mut cx, &envs);
    package(&mut cx);
    sign(&mut cx);
    notify(&mut cx);
    cx.out
}

/// `secret` signs the generic webhook's body; Slack and Teams webhooks have no such header.
fn notify(cx: &mut Ctx) {
    let Some(Value::Array(hooks)) = cx.doc.pointer("/notify").cloned() else {
        return;
    };
    for (i, hook) in hooks.iter().enumerate() {
        let kind = hook.get("type").and_then(Value::as_str).unwrap_or_default();
        let has_secret = hook.get("secret").is_some();
        match (kind, has_secret) {
            ("webhook", false) => {
                cx.error(
                    &format!("/notify/{i}"),
                    format!("notify.{i}: a webhook needs `secret: env:VAR`, the key its receiver checks X-Mlops-Signature-256 with"),
                )
                .help = Some("generate one with `openssl rand -hex 32`, store it as a CI secret and in the receiver".into());
            }
            ("slack" | "teams", true) => {
                cx.error(
                    &format!("/notify/{i}/secret"),
                    format!("notify.{i}.secret: {kind} webhooks are not signed; only `type: webhook` takes a secret"),
                );
            }
            _ => {}
        }
    }
}

fn datasets(cx: &mut Ctx) {
    for name in ["train", "test"] {
        let pointer = format!("/data/{name}/path");
        let Some(rel) = cx.str_at(&pointer).map(str::to_string) else {
            continue;
        };
        cx.must_exist(&pointer, "dataset", None);
        let path = cx.root.join(&rel);
        if path.is_dir() {
            let has_data = std::fs::read_dir(&path)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    matches!(
                        e.path().extension().and_then(|x| x.to_str()),
                        Some("csv" | "parquet")
                    )
                });
            if !has_data {
                cx.error(
                    &pointer,
                    format!("data.{name}.path: directory \"{rel}\" holds no .csv or .parquet file"),
                );
            }
        } else if path.is_file() {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "csv" | "parquet") {
                cx.error(
                    &pointer,
                    format!("data.{name}.path: \"{rel}\" is neither .csv nor .parquet"),
                );
            }
        }
    }
}

fn train(cx: &mut Ctx) {
    for step in ["train", "evaluate"] {
        if cx.doc.pointer(&format!("/{step}")).is_none() {
            continue;
        }
        if step == "train" {
            let has_image = cx.doc.pointer("/train/image").is_some();
            let has_build = cx.doc.pointer("/train/build").is_some();
            if has_image == has_build {
                let msg = if has_image {
                    "train: give either image or build, not both"
                } else {
                    "train: needs an image or a build"
                };
                cx.key_error("/train", msg.into()).help =
                    Some("image: NAME runs an existing image; build: {context: ., dockerfile: train.Dockerfile} builds one".into());
            }
        }
    }
    if cx.doc.pointer("/train/build").is_some() {
        let context = cx.str_at("/train/build/context").unwrap_or(".").to_string();
        cx.must_exist("/train/build/context", "build context", Some(true));
        if let Some(df) = cx.str_at("/train/build/dockerfile").map(str::to_string) {
            let path = cx.root.join(&context).join(&df);
            if !path.is_file() {
                cx.error(
                    "/train/build/dockerfile",
                    format!("train.build.dockerfile: \"{df}\" does not exist in the build context \"{context}\""),
                );
            }
        } else if !cx.root.join(&context).join("Dockerfile").is_file() {
            cx.key_error(
                "/train/build",
                format!("train.build: no Dockerfile in the build context \"{context}\""),
            )
            .help = Some("set train.build.dockerfile".into());
        }
    }
    if let Some(m) = cx.str_at("/train/resources/memory").map(str::to_string) {
        if let Err(e) = parse_size(&m) {
            cx.error(
                "/train/resources/memory",
                format!("train.resources.memory: {e}"),
            );
        }
    }
    if let Some(t) = cx.str_at("/train/resources/timeout").map(str::to_string) {
        if let Err(e) = parse_duration(&t) {
            cx.error(
                "/train/resources/timeout",
                format!("train.resources.timeout: {e}"),
            );
        }
    }
    if let Some(Value::Object(params)) = cx.doc.pointer("/train/params") {
        let mut seen: HashMap<String, String> = HashMap::new();
        let names: Vec<String> = params.keys().cloned().collect();
        for name in names {
            let env = super::param_env_name(&name);
            if let Some(other) = seen.insert(env.clone(), name.clone()) {
                cx.key_error(
                    &format!("/train/params/{}", pointer_token(&name)),
                    format!("train.params: \"{name}\" and \"{other}\" both become {env}"),
                );
            }
        }
    }
}

/// Checks environments and returns their names.
fn environments(cx: &mut Ctx) -> HashSet<String> {
    let Some(Value::Object(envs)) = cx.doc.pointer("/environments") else {
        return HashSet::new();
    };
    let names: HashSet<String> = envs.keys().cloned().collect();
    let mut requires: HashMap<String, String> = HashMap::new();
    let envs = envs.clone();
    for (name, env) in &envs {
        let base = format!("/environments/{}", pointer_token(name));
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || !name.starts_with(|c: char| c.is_ascii_lowercase())
        {
            cx.key_error(
                &base,
                format!("environments: \"{name}\" must be lowercase letters, digits and dashes, starting with a letter"),
            );
        }
        if let Some(req) = env.get("requires").and_then(Value::as_str) {
            let pointer = format!("{base}/requires");
            if req == name {
                cx.error(
                    &pointer,
                    format!("environments.{name}.requires: an environment cannot require itself"),
                );
            } else if !names.contains(req) {
                let d = cx.error(
                    &pointer,
                    format!("environments.{name}.requires: unknown environment \"{req}\""),
                );
                d.help = Some(hint(req, &names));
            } else {
                requires.insert(name.clone(), req.to_string());
            }
        }
        super::monitor_checks::check(cx, name, env);
        let deploy = format!("{base}/deploy");
        let Some(target) = env.pointer("/deploy/target").and_then(Value::as_str) else {
            continue;
        };
        let (needed, allowed): (&[&str], &[&str]) = match target {
            "docker" => (&["port"], &["target", "port", "host", "health", "capture"]),
            "kubernetes" => (
                &["template", "output"],
                &["target", "template", "output", "apply", "capture"],
            ),
            "command" => (&["command"], &["target", "command", "capture"]),
            _ => continue,
        };
        for key in needed {
            if env.pointer(&format!("/deploy/{key}")).is_none() {
                cx.key_error(
                    &deploy,
                    format!("environments.{name}.deploy: target {target} needs \"{key}\""),
                );
            }
        }
        if let Some(Value::Object(d)) = env.get("deploy") {
            for key in d.keys() {
                if !allowed.contains(&key.as_str()) {
                    cx.key_error(
                        &format!("{deploy}/{}", pointer_token(key)),
                        format!("environments.{name}.deploy.{key}: not used by target {target}"),
                    )
                    .help = Some(format!("target {target} takes: {}", allowed.join(", ")));
                }
            }
        }
        if target == "kubernetes" {
            cx.must_exist(&format!("{deploy}/template"), "template", Some(false));
        }
        if let Some(h) = env.pointer("/deploy/health").and_then(Value::as_str) {
            if !h.starts_with('/') {
                cx.error(
                    &format!("{deploy}/health"),
                    format!(
                        "environments.{name}.deploy.health: \"{h}\" must be a path starting with /"
                    ),
                );
            }
        }
    }
    // Cycles in `requires`: follow each chain; a chain that revisits a name is a cycle.
    let mut reported: HashSet<String> = HashSet::new();
    let mut order: Vec<&String> = requires.keys().collect();
    order.sort();
    for start in order {
        let mut seen = vec![start.clone()];
        let mut cur = start;
        while let Some(next) = requires.get(cur) {
            if let Some(i) = seen.iter().position(|s| s == next) {
                let cycle: Vec<String> = seen[i..].to_vec();
                let mut key = cycle.clone();
                key.sort();
                if reported.insert(key.join(",")) {
                    let mut path = cycle.clone();
                    path.push(next.clone());
                    let first = cycle.iter().min().cloned().unwrap_or_default();
                    cx.error(
                        &format!("/environments/{}/requires", pointer_token(&first)),
                        format!(
                            "environments: requires forms a cycle: {}",
                            path.join(" -> ")
                        ),
                    );
                }
                break;
            }
            seen.push(next.clone());
            cur = next;
        }
    }
    names
}

fn hint(word: &str, names: &HashSet<String>) -> String {
    let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
    sorted.sort();
    match super::schema::suggest(word, sorted.iter().copied()) {
        Some(s) => format!("did you mean \"{s}\"? environments: {}", sorted.join(", ")),
        None if sorted.is_empty() => "no environments are declared".into(),
        None => format!("environments: {}", sorted.join(", ")),
    }
}

fn compare(cx: &mut Ctx, envs: &HashSet<String>) {
    if let Some(against) = cx.str_at("/compare/against").map(str::to_string) {
        if !envs.contains(&against) {
            let d = cx.error(
                "/compare/against",
                format!("compare.against: unknown environment \"{against}\""),
            );
            d.help = Some(hint(&against, envs));
        }
    }
    if let Some(Value::Object(metrics)) = cx.doc.pointer("/compare/metrics") {
        let metrics = metrics.clone();
        for (name, rule) in metrics {
            let Value::Object(rule) = rule else { continue };
            let rules = [
                "threshold",
                "min_absolute_change",
                "min_relative_change",
                "max_regression",
            ];
            if !rules.iter().any(|r| rule.contains_key(*r)) {
                cx.key_error(
                    &format!("/compare/metrics/{}", pointer_token(&name)),
                    format!(
                        "compare.metrics.{name}: no rule besides direction, so it can never fail"
                    ),
                )
                .help = Some(format!("add one of: {}", rules.join(", ")));
            }
            let improve = rule.contains_key("min_absolute_change")
                || rule.contains_key("min_relative_change");
            if improve && rule.contains_key("max_regression") {
                cx.key_error(
                    &format!("/compare/metrics/{}/max_regression", pointer_token(&name)),
                    format!("compare.metrics.{name}: max_regression contradicts a required improvement (min_*_change)"),
                );
            }
        }
    }
}

fn package(cx: &mut Ctx) {
    if cx.doc.pointer("/package").is_none() {
        return;
    }
    if let Some(repo) = cx.str_at("/package/repository").map(str::to_string) {
        use crate::oci::reference::{parse_repository, ImageLocation};
        match ImageLocation::parse(&repo) {
            Ok(ImageLocation::Layout(_)) => {}
            Err(e) if ImageLocation::names_layout(&repo) => {
                cx.error("/package/repository", format!("package.repository: {e}"));
            }
            _ => {
                if let Err(e) = parse_repository(&repo) {
                    cx.error("/package/repository", format!("package.repository: {e}"))
                        .help = Some("use host[:port]/path such as 127.0.0.1:5000/acme/churn, or oci:PATH for an image layout on disk".into());
                }
            }
        }
    }
    let base = cx.doc.pointer("/package/base_image").is_some();
    let dockerfile = cx.doc.pointer("/package/dockerfile").is_some();
    if base == dockerfile {
        cx.key_error(
            "/package",
            if base {
                "package: give either base_image or dockerfile, not both".into()
            } else {
                "package: needs base_image (the serving image) or dockerfile".into()
            },
        );
    }
    if let Some(b) = cx.str_at("/package/base_image").map(str::to_string) {
        if let Err(e) = crate::oci::reference::parse_image(&b) {
            cx.error("/package/base_image", format!("package.base_image: {e}"));
        }
    }
    cx.must_exist("/package/dockerfile", "dockerfile", Some(false));
    if let Some(p) = cx.str_at("/package/model_path").map(str::to_string) {
        if !p.starts_with('/') {
            cx.error(
                "/package/model_path",
                format!("package.model_path: \"{p}\" must be an absolute path in the image"),
            );
        }
    }
}

fn sign(cx: &mut Ctx) {
    if cx.doc.pointer("/sign").is_none() {
        return;
    }
    let key = cx.str_at("/sign/key").map(str::to_string);
    let keyless = cx
        .doc
        .pointer("/sign/keyless")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match (&key, keyless) {
        (Some(_), true) => {
            cx.key_error(
                "/sign",
                "sign: give either key or keyless: true, not both".into(),
            );
        }
        (None, false) => {
            cx.key_error(
                "/sign",
                "sign: needs key (a file or env:VAR) or keyless: true".into(),
            );
        }
        (Some(k), false) => {
            if let Some(var) = k.strip_prefix("env:") {
                if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    cx.error(
                        "/sign/key",
                        format!("sign.key: \"{k}\" is not a valid env:VARIABLE"),
                    );
                }
            } else {
                cx.must_exist("/sign/key", "key file", Some(false));
            }
        }
        (None, true) => {}
    }
    cx.must_exist("/sign/public_key", "public key", Some(false));
}
