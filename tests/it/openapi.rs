//! GitHub's own OpenAPI description of api.github.com (`@octokit/openapi`, installed by
//! `scripts/github-openapi`; `MLOPS_GITHUB_OPENAPI` names its `api.github.com.json`), used to
//! check the fake: every request the fake receives (method, path against the templates, query,
//! JSON body) and every answer it gives (status, JSON body against the response schema) is
//! validated, and a fake that drifts from GitHub fails the test that used it. No network: the
//! spec's `$ref`s are resolved inside the file.
//!
//! OpenAPI 3.0's schemas are turned into JSON Schema 2020-12 (`nullable` becomes a `null`
//! alternative). Statuses an operation does not list are allowed only where GitHub answers
//! them on every endpoint (401, 403, 429, 5xx), with its `basic-error` shape. GraphQL (`POST
//! /graphql`) is outside the REST description: it is checked against GraphQL-over-HTTP's
//! request and response shape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Map, Value};

use crate::fake_github::{Fake, OWNER};

/// Where `scripts/github-openapi` installs the description when MLOPS_GITHUB_OPENAPI is unset.
fn default_path() -> std::path::PathBuf {
    let cache = std::env::var("MLOPS_CACHE_DIR").unwrap_or_else(|_| "/var/cache/mlops-test".into());
    std::path::PathBuf::from(cache)
        .join("octokit-openapi/node_modules/@octokit/openapi/generated/api.github.com.json")
}

pub struct Spec {
    /// `components.schemas`, in JSON Schema terms.
    schemas: Map<String, Value>,
    components: Value,
    /// (method, path template, operation).
    operations: Vec<(String, Vec<String>, Value)>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// The description, loaded once per test process; a test that needs it fails without it.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = std::env::var_os("MLOPS_GITHUB_OPENAPI")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(default_path);
        let text = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "GitHub's OpenAPI description is not at {} ({e}): run scripts/github-openapi (scripts/test does) and set MLOPS_GITHUB_OPENAPI to the path it prints",
                path.display()
            )
        });
        let doc: Value = serde_json::from_slice(&text).expect("api.github.com.json is JSON");
        Spec::new(doc)
    })
}

/// OpenAPI 3.0's `nullable: true` as JSON Schema: `null` is one more allowed value.
fn json_schema(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        Value::Object(m) => {
            let mut out: Map<String, Value> = m
                .iter()
                .filter(|(k, _)| k.as_str() != "nullable" && k.as_str() != "example")
                .map(|(k, v)| {
                    // Property names and examples are data, not schemas.
                    let converted = if k == "examples" {
                        v.clone()
                    } else {
                        json_schema(v)
                    };
                    (k.clone(), converted)
                })
                .collect();
            if m.get("nullable") != Some(&Value::Bool(true)) {
                return Value::Object(out);
            }
            match out.get("type").cloned() {
                Some(Value::String(t)) => {
                    out.insert("type".into(), json!([t, "null"]));
                    if let Some(Value::Array(e)) = out.get_mut("enum") {
                        e.push(Value::Null);
                    }
                    Value::Object(out)
                }
                _ if out
                    .keys()
                    .any(|k| ["allOf", "anyOf", "oneOf", "$ref"].contains(&k.as_str())) =>
                {
                    json!({"anyOf": [Value::Object(out), {"type": "null"}]})
                }
                _ => Value::Object(out),
            }
        }
        other => other.clone(),
    }
}

/// The `#/components/schemas/...` names `v` refers to.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                if let Some(name) = r.strip_prefix("#/components/schemas/") {
                    out.push(name.to_string());
                }
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

impl Spec {
    fn new(doc: Value) -> Spec {
        let schemas = doc["components"]["schemas"]
            .as_object()
            .expect("components.schemas")
            .iter()
            .map(|(k, v)| (k.clone(), json_schema(v)))
            .collect();
        let mut operations = Vec::new();
        for (template, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().into_iter().flatten() {
                if op.get("operationId").is_some() {
                    let segments = template.split('/').map(str::to_string).collect();
                    operations.push((method.to_uppercase(), segments, op.clone()));
                }
            }
        }
        Spec {
            schemas,
            components: doc["components"].clone(),
            operations,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// A `$ref` to `#/components/<kind>/<name>` resolved (parameters, responses, bodies).
    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        let mut v = v;
        for _ in 0..8 {
            let Some(r) = v["$ref"].as_str() else { break };
            let mut target = &self.components;
            for part in r.trim_start_matches("#/components/").split('/') {
                target = &target[part];
            }
            v = target;
        }
        v
    }

    /// The operation for `method path`, and its path parameters: exact segments first; a
    /// parameter GitHub marks `x-multi-segment` takes the rest of the path.
    pub fn operation(&self, method: &str, path: &str) -> Option<(&Value, HashMap<String, String>)> {
        let parts: Vec<&str> = path.split('/').collect();
        let mut best: Option<(usize, &Value, HashMap<String, String>)> = None;
        for (m, template, op) in &self.operations {
            if m != method {
                continue;
            }
            let Some(params) = self.matches(op, template, &parts) else {
                continue;
            };
            let literal = template.iter().filter(|s| !s.starts_with('{')).count();
            if best.as_ref().is_none_or(|(l, _, _)| literal > *l) {
                best = Some((literal, op, params));
            }
        }
        best.map(|(_, op, params)| (op, params))
    }

    fn matches(
        &self,
        op: &Value,
        template: &[String],
        parts: &[&str],
    ) -> Option<HashMap<String, String>> {
        let mut params = HashMap::new();
        let mut i = 0;
        for (t, seg) in template.iter().enumerate() {
            let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                if parts.get(i) != Some(&seg.as_str()) {
                    return None;
                }
                i += 1;
                continue;
            };
            let multi = self
                .parameters(op)
                .any(|p| p["name"] == name && p["x-multi-segment"] == true);
            let take = if multi && t == template.len() - 1 {
                parts.len().saturating_sub(i)
            } else {
                1
            };
            let value = parts.get(i..i + take)?.join("/");
            if value.is_empty() {
                return None;
            }
            params.insert(name.to_string(), value);
            i += take;
        }
        (i == parts.len()).then_some(params)
    }

    fn parameters<'a>(&'a self, op: &'a Value) -> impl Iterator<Item = &'a Value> + 'a {
        op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| self.resolve(p))
    }

    /// A validator for `schema`, with the component schemas it refers to (cached by `key`).
    fn validator(&self, key: &str, schema: &Value) -> Arc<jsonschema::Validator> {
        if let Some(v) = self.validators.lock().unwrap().get(key) {
            return v.clone();
        }
        let schema = json_schema(schema);
        let mut wanted = Vec::new();
        refs(&schema, &mut wanted);
        let mut closure = Map::new();
        while let Some(name) = wanted.pop() {
            if closure.contains_key(&name) {
                continue;
            }
            let s = self
                .schemas
                .get(&name)
                .unwrap_or_else(|| panic!("no schema {name}"));
            refs(s, &mut wanted);
            closure.insert(name, s.clone());
        }
        let mut root = match schema {
            Value::Object(m) => m,
            other => panic!("a schema that is not an object: {other}"),
        };
        root.insert("components".into(), json!({"schemas": closure}));
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .unwrap_or_else(|e| panic!("{key}: the schema does not compile: {e}"));
        let validator = Arc::new(validator);
        self.validators
            .lock()
            .unwrap()
            .insert(key.to_string(), validator.clone());
        validator
    }

    fn check(&self, key: &str, schema: &Value, instance: &Value, what: &str) -> Vec<String> {
        let validator = self.validator(key, schema);
        validator
            .iter_errors(instance)
            .take(20)
            .map(|e| format!("{what}: at {:?}: {e}", e.instance_path().to_string()))
            .collect()
    }

    /// What is wrong with a request, by GitHub's description (empty: nothing).
    pub fn check_request(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &Value,
    ) -> Vec<String> {
        let what = format!("{method} {path}");
        if method == "POST" && path == "/graphql" {
            let shape = json!({"type": "object", "required": ["query"], "additionalProperties": false,
                "properties": {"query": {"type": "string"}, "variables": {"type": ["object", "null"]},
                               "operationName": {"type": ["string", "null"]}}});
            return self.check("graphql request", &shape, body, &what);
        }
        let Some((op, params)) = self.operation(method, path) else {
            return vec![format!("{what}: no such operation in GitHub's REST API")];
        };
        let id = op["operationId"].as_str().unwrap_or_default();
        let mut problems = Vec::new();
        let mut query_values: Vec<(String, String)> = Vec::new();
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            query_values.push((k.to_string(), crate::fake_github::decode(v)));
        }
        for p in self.parameters(op) {
            let name = p["name"].as_str().unwrap_or_default();
            let value = match p["in"].as_str() {
                Some("path") => params.get(name).cloned(),
                Some("query") => query_values
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone()),
                _ => continue,
            };
            let Some(value) = value else {
                if p["required"] == true {
                    problems.push(format!("{what}: the required parameter {name} is missing"));
                }
                continue;
            };
            let schema = &p["schema"];
            let typed = match schema["type"].as_str() {
                Some("integer") => value
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(value)),
                Some("boolean") => match value.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::String(value),
                },
                _ => Value::String(value),
            };
            let key = format!("{id} parameter {name}");
            problems.extend(self.check(&key, schema, &typed, &format!("{what}: parameter {name}")));
        }
        for (k, _) in &query_values {
            if !self
                .parameters(op)
                .any(|p| p["in"] == "query" && p["name"] == k.as_str())
            {
                problems.push(format!("{what}: GitHub documents no query parameter {k}"));
            }
        }
        let request_body = self.resolve(&op["requestBody"]);
        match (&request_body["content"]["application/json"]["schema"], body) {
            (Value::Null, Value::Null) => {}
            (Value::Null, _) => problems.push(format!("{what}: a body GitHub does not take")),
            (_, Value::Null) if request_body["required"] == true => {
                problems.push(format!("{what}: the required JSON body is missing"))
            }
            (_, Value::Null) => {}
            (schema, body) => {
                problems.extend(self.check(&format!("{id} request"), schema, body, &what))
            }
        }
        problems
    }

    /// What is wrong with an answer to `method path` (empty: nothing).
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Vec<String> {
        let what = format!("{method} {path} answered {status}");
        if method == "POST" && path == "/graphql" {
            let shape = json!({"type": "object", "anyOf": [{"required": ["data"]}, {"required": ["errors"]}],
                "properties": {"data": {"type": ["object", "null"]},
                               "errors": {"type": "array", "items": {"type": "object", "required": ["message"]}}}});
            return self.check("graphql response", &shape, body, &what);
        }
        let Some((op, _)) = self.operation(method, path) else {
            return vec![format!("{what}: no such operation in GitHub's REST API")];
        };
        let id = op["operationId"].as_str().unwrap_or_default();
        let documented = &op["responses"][status.to_string()];
        let response = if documented.is_null() {
            if !matches!(status, 401 | 403 | 429 | 500..=599) {
                return vec![format!("{what}: GitHub documents no {status} for {id}")];
            }
            return self.check(
                "basic-error",
                &json!({"$ref": "#/components/schemas/basic-error"}),
                body,
                &what,
            );
        } else {
            self.resolve(documented)
        };
        let content = &response["content"];
        let schema = if content["application/json"].is_object() {
            &content["application/json"]["schema"]
        } else {
            content
                .as_object()
                .and_then(|c| c.values().next())
                .map(|c| &c["schema"])
                .unwrap_or(&Value::Null)
        };
        match (schema, body) {
            (Value::Null, Value::Null) => Vec::new(),
            (Value::Null, _) => vec![format!("{what}: GitHub sends no body with it")],
            (schema, body) => self.check(&format!("{id} {status}"), schema, body, &what),
        }
    }
}

// ----------------------------------------------------------------------------------------
// Tests of the fake against the description, and of the endpoints monitoring uses.

use mlops::forge::github::{issues::IssueText, Auth, GitHub, Settings};

const TOKEN: &str = "ghs_openapiTESTtoken";

fn client(fake: &Fake) -> GitHub {
    let settings = Settings {
        api_url: fake.url.clone(),
        auth: Some(Auth::Token(TOKEN.into())),
        policy: mlops_policy(),
        ..Settings::default()
    };
    GitHub::connect(&format!("{OWNER}/{}", crate::fake_github::NAME), &settings).unwrap()
}

fn mlops_policy() -> mlops::forge::github::Policy {
    mlops::forge::github::Policy {
        backoff: std::time::Duration::from_millis(20),
        ..Settings::default().policy
    }
}

#[test]
fn the_description_has_every_operation_the_client_and_the_fake_use() {
    let spec = spec();
    for (method, path) in [
        (
            "GET",
            "/repos/acme/churn/git/ref/heads/mlops/promote/churn/staging",
        ),
        ("PATCH", "/repos/acme/churn/git/refs/heads/main"),
        (
            "GET",
            "/repos/acme/churn/contents/.mlops/environments/staging.yaml",
        ),
        ("GET", "/repos/acme/churn/compare/abc...def"),
        ("POST", "/repos/acme/churn/issues/5/comments"),
        ("PATCH", "/repos/acme/churn/issues/comments/1001"),
        ("POST", "/repos/acme/churn/dispatches"),
        ("POST", "/app/installations/42/access_tokens"),
    ] {
        assert!(spec.operation(method, path).is_some(), "{method} {path}");
    }
    let (op, params) = spec
        .operation(
            "GET",
            "/repos/acme/churn/git/ref/heads/mlops/promote/churn/staging",
        )
        .unwrap();
    assert_eq!(op["operationId"], "git/get-ref");
    assert_eq!(params["ref"], "heads/mlops/promote/churn/staging");
    let (op, _) = spec
        .operation("PATCH", "/repos/acme/churn/issues/comments/1001")
        .unwrap();
    assert_eq!(op["operationId"], "issues/update-comment");
    assert!(spec
        .operation("GET", "/repos/acme/churn/nothing-here")
        .is_none());
}

/// What monitoring will ask of GitHub, end to end against the fake, every request and answer
/// checked against the description (the fake's check runs when it is dropped).
#[test]
fn monitoring_opens_updates_comments_on_and_closes_an_incident_issue() {
    let fake = Fake::start(TOKEN);
    let gh = client(&fake);
    let labels = vec!["mlops".to_string(), "incident".to_string()];
    let opened = gh
        .open_issue(&IssueText {
            title: "churn/staging: input drift".into(),
            body: "3 of 5 features drifted".into(),
            labels: labels.clone(),
        })
        .unwrap();
    assert_eq!(opened.title, "churn/staging: input drift");
    // A pull request in the same list is not an issue.
    fake.add_pull("mlops/promote/churn/staging", "main", "Promote churn");
    let found = gh.open_issues(&labels).unwrap();
    assert_eq!(
        found.iter().map(|i| i.number).collect::<Vec<_>>(),
        vec![opened.number]
    );
    assert!(gh.open_issues(&["other".to_string()]).unwrap().is_empty());
    let updated = gh
        .update_issue(
            opened.number,
            &IssueText {
                title: "churn/staging: input drift (day 2)".into(),
                body: "4 of 5 features drifted".into(),
                labels: vec![],
            },
        )
        .unwrap();
    assert_eq!(updated.body.as_deref(), Some("4 of 5 features drifted"));
    let c = gh.comment(opened.number, "Retraining started.").unwrap();
    assert_eq!(c.body.as_deref(), Some("Retraining started."));
    let comments = gh.issue_comments(opened.number).unwrap();
    assert_eq!(comments.len(), 1);
    gh.dispatch(
        "mlops-retrain",
        json!({"model": "churn", "environment": "staging"}),
    )
    .unwrap();
    let closed = gh.close_issue(opened.number).unwrap();
    assert_eq!(closed.state, octocrab::models::IssueState::Closed);
    assert!(gh.open_issues(&labels).unwrap().is_empty());

    let s = fake.state.lock().unwrap();
    assert_eq!(
        s.dispatches,
        vec![(
            "mlops-retrain".to_string(),
            json!({"model": "churn", "environment": "staging"})
        )]
    );
    assert_eq!(s.issues.len(), 1);
    assert_eq!(s.issues[0].state, "closed");
    assert_eq!(s.issues[0].labels, labels);
}

/// The check is not a formality: a wrong field in the fake's answer, and a request GitHub
/// would refuse, are both reported.
#[test]
fn a_wrong_field_in_an_answer_or_a_request_is_caught() {
    let spec = spec();
    let fake = Fake::start(TOKEN);
    let number = fake.add_pull("mlops/promote/churn/staging", "main", "Promote churn");
    let good = fake.pull_json(number);
    let path = "/repos/acme/churn/pulls/1";
    assert_eq!(
        spec.check_response("PATCH", path, 200, &good),
        Vec::<String>::new()
    );
    let mut wrong = good.clone();
    wrong["number"] = json!("1");
    let problems = spec.check_response("PATCH", path, 200, &wrong);
    assert!(
        problems.iter().any(|p| p.contains("/number")),
        "{problems:?}"
    );
    let mut missing = good.clone();
    missing["head"].as_object_mut().unwrap().remove("sha");
    let problems = spec.check_response("PATCH", path, 200, &missing);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("/head") && p.contains("sha")),
        "{problems:?}"
    );
    // Requests: a tree entry mode GitHub does not know, an unknown query parameter, a body
    // without its required field.
    let tree = json!({"base_tree": "abc", "tree": [{"path": "a", "mode": "644", "type": "blob", "content": "x"}]});
    let problems = spec.check_request("POST", "/repos/acme/churn/git/trees", "", &tree);
    assert!(
        problems.iter().any(|p| p.contains("/tree/0/mode")),
        "{problems:?}"
    );
    let problems = spec.check_request(
        "GET",
        "/repos/acme/churn/pulls",
        "state=open&colour=red",
        &Value::Null,
    );
    assert!(
        problems.iter().any(|p| p.contains("colour")),
        "{problems:?}"
    );
    let problems = spec.check_request("GET", "/repos/acme/churn/pulls", "state=shut", &Value::Null);
    assert!(
        problems.iter().any(|p| p.contains("parameter state")),
        "{problems:?}"
    );
    let problems = spec.check_request(
        "POST",
        "/repos/acme/churn/dispatches",
        "",
        &json!({"client_payload": {}}),
    );
    assert!(
        problems.iter().any(|p| p.contains("event_type")),
        "{problems:?}"
    );

    // End to end: the fake, told to answer with a wrong field, records the violation the
    // client's request met.
    fake.state.lock().unwrap().tamper = Some(|v: &mut Value| {
        if v.get("node_id").is_some() {
            v["node_id"] = json!(42);
        }
    });
    let gh = client(&fake);
    let _ = gh.issue_comments(number);
    let _ = gh.comment(number, "hello");
    let violations = fake.take_violations();
    assert!(
        violations
            .iter()
            .any(|v| v.contains("issues/") && v.contains("node_id")),
        "{violations:?}"
    );
}
