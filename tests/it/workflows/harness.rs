//! Runs a workflow's jobs step by step as the runner would: `if:` conditions, `env:` at each
//! level, `${{ }}` evaluated (`expr`), each `run:` with bash and its `$GITHUB_OUTPUT`,
//! `$GITHUB_ENV`, `$GITHUB_STEP_SUMMARY` and `$GITHUB_PATH` files read back, our composite
//! actions (`./actions/x` or `owner/repo/actions/x@sha`) resolved to this repository's
//! `actions/` with their inputs (a `with:` key an action does not declare is an error) and
//! outputs, job `outputs`, `needs` and a `matrix` from `fromJSON`. Played by the harness:
//! `actions/checkout` (the workspace is already the checkout), `actions/upload-artifact`, and
//! our `setup` action (the mlops under test goes on PATH instead of a cargo build).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::expr::{interpolate, interpolate_all, truthy, Contexts};

pub struct Harness {
    /// The checkout: where every step runs.
    pub workspace: PathBuf,
    /// This repository (its `actions/`).
    pub actions_root: PathBuf,
    /// `github` context (event_name, repository, event, token, …).
    pub github: Value,
    pub secrets: Map<String, Value>,
    pub vars: Map<String, Value>,
    /// Variables every step's process gets (PATH, DOCKER_HOST, GITHUB_API_URL, …).
    pub base_env: BTreeMap<String, String>,
    /// A workflow's `inputs`: its workflow_dispatch inputs, '' unless given here.
    pub dispatch_inputs: Map<String, Value>,
    workflow_inputs: Value,
    /// What each step wrote to $GITHUB_STEP_SUMMARY, in order.
    pub summaries: Vec<String>,
    /// (job, step) of every step that ran, in order.
    pub ran: Vec<String>,
    temp: tempfile::TempDir,
}

/// One job's state while it runs.
struct Job {
    name: String,
    env: Map<String, Value>,
    steps: Map<String, Value>,
    matrix: Value,
    needs: Value,
    path: Vec<String>,
}

fn obj(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// `name=value` lines and `name<<DELIM` heredocs, as the runner reads these files.
fn read_pairs(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            loop {
                match lines.next() {
                    Some(l) if l == delim => break,
                    Some(l) => value.push(l),
                    None => return Err(format!("{}: heredoc {delim} never ends", path.display())),
                }
            }
            out.push((name.to_string(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            out.push((name.to_string(), value.to_string()));
        } else {
            return Err(format!("{}: cannot read the line {line:?}", path.display()));
        }
    }
    Ok(out)
}

impl Harness {
    pub fn new(workspace: &Path, actions_root: &Path, github: Value) -> Harness {
        Harness {
            workspace: workspace.to_path_buf(),
            actions_root: actions_root.to_path_buf(),
            github,
            secrets: Map::new(),
            vars: Map::new(),
            base_env: BTreeMap::new(),
            dispatch_inputs: Map::new(),
            workflow_inputs: json!({}),
            summaries: Vec::new(),
            ran: Vec::new(),
            temp: tempfile::tempdir().unwrap(),
        }
    }

    fn contexts(&self, job: &Job, env: &Map<String, Value>, inputs: Option<&Value>) -> Contexts {
        let mut cx = Contexts::default();
        cx.roots.insert("github".into(), self.github.clone());
        cx.roots
            .insert("secrets".into(), Value::Object(self.secrets.clone()));
        cx.roots
            .insert("vars".into(), Value::Object(self.vars.clone()));
        cx.roots.insert("env".into(), Value::Object(env.clone()));
        cx.roots
            .insert("steps".into(), Value::Object(job.steps.clone()));
        cx.roots.insert("matrix".into(), job.matrix.clone());
        cx.roots.insert("needs".into(), job.needs.clone());
        cx.roots.insert(
            "runner".into(),
            json!({"temp": self.temp.path(), "os": "Linux"}),
        );
        cx.roots.insert(
            "inputs".into(),
            inputs
                .cloned()
                .unwrap_or_else(|| self.workflow_inputs.clone()),
        );
        cx
    }

    /// Runs every job of the workflow at `path` (in `needs` order); returns each job's outputs.
    pub fn run_workflow(&mut self, path: &Path) -> Result<Map<String, Value>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let wf = mlops::yamlio::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let jobs = obj(&wf["jobs"]);
        let mut declared = Map::new();
        for name in obj(&wf["on"]["workflow_dispatch"]["inputs"]).keys() {
            let given = self.dispatch_inputs.get(name).cloned();
            declared.insert(name.clone(), given.unwrap_or(json!("")));
        }
        self.workflow_inputs = Value::Object(declared);
        let mut done: Map<String, Value> = Map::new();
        while done.len() < jobs.len() {
            let ready = jobs.iter().find(|(name, spec)| {
                !done.contains_key(*name) && needs_of(spec).iter().all(|n| done.contains_key(n))
            });
            let Some((name, spec)) = ready else {
                return Err("jobs wait on each other".into());
            };
            let needs: Map<String, Value> = needs_of(spec)
                .iter()
                .map(|n| (n.clone(), done[n].clone()))
                .collect();
            let outputs = self.run_job(name, spec, &obj(&wf["env"]), Value::Object(needs))?;
            done.insert(name.clone(), outputs);
        }
        Ok(done)
    }

    fn run_job(
        &mut self,
        name: &str,
        spec: &Value,
        workflow_env: &Map<String, Value>,
        needs: Value,
    ) -> Result<Value, String> {
        let mut job = Job {
            name: name.into(),
            env: Map::new(),
            steps: Map::new(),
            matrix: json!({}),
            needs,
            path: Vec::new(),
        };
        let cx = self.contexts(&job, workflow_env, None);
        if let Some(cond) = spec.get("if") {
            if !truthy(&condition(cond, &cx).map_err(|e| format!("{name}: if: {e}"))?) {
                return Ok(json!({"result": "skipped", "outputs": {}}));
            }
        }
        let matrices: Vec<Value> = match spec.pointer("/strategy/matrix") {
            None => vec![json!({})],
            Some(m) => {
                let m = interpolate_all(m, &cx).map_err(|e| format!("{name}: matrix: {e}"))?;
                let (key, values) = obj(&m)
                    .into_iter()
                    .next()
                    .ok_or_else(|| format!("{name}: an empty matrix"))?;
                values
                    .as_array()
                    .cloned()
                    .ok_or_else(|| format!("{name}: matrix.{key} is not a list"))?
                    .into_iter()
                    .map(|v| json!({ key.clone(): v }))
                    .collect()
            }
        };
        let mut outputs = Map::new();
        for matrix in matrices {
            job.matrix = matrix;
            job.steps = Map::new();
            job.path = Vec::new();
            let cx = self.contexts(&job, workflow_env, None);
            let mut env = workflow_env.clone();
            for (k, v) in
                obj(&interpolate_all(&spec["env"], &cx).map_err(|e| format!("{name}: env: {e}"))?)
            {
                env.insert(k, v);
            }
            job.env = env;
            for (i, step) in spec["steps"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let label = step["id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or(format!("#{i}"));
                let outs = self
                    .run_step(&mut job, step, None)
                    .map_err(|e| format!("job {name}, step {label}: {e}"))?;
                if let (Some(id), Some(outs)) = (step["id"].as_str(), outs) {
                    job.steps
                        .insert(id.into(), json!({"outputs": outs, "outcome": "success"}));
                }
            }
            let cx = self.contexts(&job, &job.env, None);
            for (k, v) in obj(&spec["outputs"]) {
                let value =
                    interpolate_all(&v, &cx).map_err(|e| format!("{name}: outputs.{k}: {e}"))?;
                outputs.insert(k, value);
            }
        }
        Ok(json!({"result": "success", "outputs": outputs}))
    }

    /// One step; its outputs (None when skipped).
    fn run_step(
        &mut self,
        job: &mut Job,
        step: &Value,
        inputs: Option<&Value>,
    ) -> Result<Option<Value>, String> {
        let mut env = job.env.clone();
        let cx = self.contexts(job, &env, inputs);
        if let Some(cond) = step.get("if") {
            if !truthy(&condition(cond, &cx)?) {
                return Ok(None);
            }
        }
        for (k, v) in obj(&interpolate_all(&step["env"], &cx)?) {
            env.insert(k, v);
        }
        let cx = self.contexts(job, &env, inputs);
        self.ran.push(format!(
            "{}: {}",
            job.name,
            step["uses"]
                .as_str()
                .or(step["id"].as_str())
                .unwrap_or("run")
        ));
        if let Some(uses) = step["uses"].as_str() {
            let with = interpolate_all(&step["with"], &cx)?;
            return self.uses(job, uses, &with).map(Some);
        }
        let Some(script) = step["run"].as_str() else {
            return Err("a step with neither uses: nor run:".into());
        };
        let script = interpolate(script, &cx)?;
        let action_path = inputs.and_then(|_| env.get("__ACTION_PATH").cloned());
        self.run_script(job, &super::expr::text_of(&script), &env, action_path)
            .map(Some)
    }

    fn uses(&mut self, job: &mut Job, uses: &str, with: &Value) -> Result<Value, String> {
        let name = uses.split('@').next().unwrap_or(uses);
        if name == "actions/checkout" || name == "actions/upload-artifact" {
            return Ok(json!({}));
        }
        let local = name
            .strip_prefix("./actions/")
            .or_else(|| name.split_once("/actions/").map(|(_, a)| a));
        let Some(action) = local else {
            return Err(format!("the harness does not play uses: {uses}"));
        };
        let dir = self.actions_root.join("actions").join(action);
        let text = std::fs::read_to_string(dir.join("action.yml"))
            .map_err(|e| format!("uses: {uses}: {e}"))?;
        let spec = mlops::yamlio::from_yaml(&text).map_err(|e| format!("{uses}: {e}"))?;
        let declared = obj(&spec["inputs"]);
        for key in obj(with).keys() {
            if !declared.contains_key(key) {
                return Err(format!("uses: {uses} has no input {key:?}"));
            }
        }
        // Defaults are evaluated in the caller's github context.
        let cx = self.contexts(job, &job.env, None);
        let mut inputs = Map::new();
        for (k, d) in &declared {
            let given = with.get(k).cloned();
            let value = match given {
                Some(v) => v,
                None => interpolate_all(&d["default"], &cx)?,
            };
            inputs.insert(k.clone(), json!(super::expr::text_of(&value)));
        }
        if action == "setup" {
            return Ok(json!({"version": "mlops (under test)"}));
        }
        let inputs = Value::Object(inputs);
        // The composite's steps see its inputs and their own steps.
        let mut inner = Job {
            name: format!("{} > {action}", job.name),
            env: job.env.clone(),
            steps: Map::new(),
            matrix: job.matrix.clone(),
            needs: job.needs.clone(),
            path: job.path.clone(),
        };
        inner
            .env
            .insert("__ACTION_PATH".into(), json!(dir.display().to_string()));
        for step in spec["runs"]["steps"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let outs = self.run_step(&mut inner, &step, Some(&inputs))?;
            if let (Some(id), Some(outs)) = (step["id"].as_str(), outs) {
                inner
                    .steps
                    .insert(id.into(), json!({"outputs": outs, "outcome": "success"}));
            }
        }
        // $GITHUB_ENV and $GITHUB_PATH changes outlive the action.
        for (k, v) in inner.env {
            if k != "__ACTION_PATH" {
                job.env.insert(k, v);
            }
        }
        job.path = inner.path;
        let cx = self.contexts(&inner_view(&inner.steps), &job.env, Some(&inputs));
        let mut outputs = Map::new();
        // Every declared output exists for the caller (a misspelt name there is an error);
        // one the tool did not write this time is '', as on GitHub.
        for (k, v) in obj(&spec["outputs"]) {
            let value = match interpolate_all(&v["value"], &cx) {
                Ok(v) => v,
                Err(e) if e.contains(" is not set ") => json!(""),
                Err(e) => return Err(format!("{uses}: outputs.{k}: {e}")),
            };
            outputs.insert(k.clone(), value);
        }
        Ok(Value::Object(outputs))
    }

    fn run_script(
        &mut self,
        job: &mut Job,
        script: &str,
        env: &Map<String, Value>,
        action_path: Option<Value>,
    ) -> Result<Value, String> {
        let dir = tempfile::tempdir_in(self.temp.path()).unwrap();
        let files = ["output", "env", "summary", "path"].map(|f| dir.path().join(f));
        for f in &files {
            std::fs::write(f, "").unwrap();
        }
        let script_file = dir.path().join("script.sh");
        std::fs::write(&script_file, script).unwrap();
        let mut cmd = crate::common::clean_command("bash");
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script_file)
            .current_dir(&self.workspace);
        for (k, v) in &self.base_env {
            cmd.env(k, v);
        }
        let mut path = job.path.clone();
        path.push(self.base_env.get("PATH").cloned().unwrap_or_default());
        cmd.env("PATH", path.join(":"));
        for (k, v) in env {
            if k != "__ACTION_PATH" {
                cmd.env(k, super::expr::text_of(v));
            }
        }
        if let Some(p) = action_path {
            cmd.env("GITHUB_ACTION_PATH", super::expr::text_of(&p));
        }
        cmd.env("GITHUB_OUTPUT", &files[0])
            .env("GITHUB_ENV", &files[1])
            .env("GITHUB_STEP_SUMMARY", &files[2])
            .env("GITHUB_PATH", &files[3])
            .env("RUNNER_TEMP", self.temp.path());
        let out = cmd.output().map_err(|e| format!("bash: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        for (k, v) in read_pairs(&files[1])? {
            job.env.insert(k, json!(v));
        }
        for line in std::fs::read_to_string(&files[3])
            .unwrap_or_default()
            .lines()
        {
            if !line.is_empty() {
                job.path.insert(0, line.to_string());
            }
        }
        self.summaries
            .push(std::fs::read_to_string(&files[2]).unwrap_or_default());
        let mut outputs = Map::new();
        for (k, v) in read_pairs(&files[0])? {
            outputs.insert(k, json!(v));
        }
        Ok(Value::Object(outputs))
    }
}

/// A view with only `steps` (to evaluate an action's `outputs`).
fn inner_view(steps: &Map<String, Value>) -> Job {
    Job {
        name: String::new(),
        env: Map::new(),
        steps: steps.clone(),
        matrix: json!({}),
        needs: json!({}),
        path: Vec::new(),
    }
}

fn needs_of(spec: &Value) -> Vec<String> {
    match &spec["needs"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}

/// An `if:` (with or without `${{ }}`).
fn condition(cond: &Value, cx: &Contexts) -> Result<Value, String> {
    match cond {
        Value::String(s) if s.trim().starts_with("${{") => interpolate(s, cx),
        Value::String(s) => super::expr::eval(s, cx),
        other => Ok(other.clone()),
    }
}
