//! The kubernetes target: render `deploy.template` (minijinja) into `deploy.output`, the
//! directory Argo CD or Flux syncs; `kubectl apply -f` it only when `deploy.apply` is true.
//! Template variables: model, env (also environment), image (by digest), digest, run_id,
//! git_commit, port, metrics, capture (deploy.capture as an absolute path, or none: declare a
//! volume mounted at /mlops/capture with it) and serving_env (MLOPS_DIGEST, MLOPS_MODEL,
//! MLOPS_ENVIRONMENT, and MLOPS_CAPTURE_DIR=/mlops/capture with capture). An unknown variable is an error naming the template and line.
//! Values cannot change the structure of the manifests: a string that is not a safe plain
//! scalar is an error unless written as `{{ value|yaml }}` (a double-quoted YAML scalar), and
//! the rendered text must parse as YAML.

use std::path::Path;

use anyhow::{bail, Context, Result};
use minijinja::{Environment, UndefinedBehavior};

use super::Deployed;
use crate::environment::EnvironmentState;

pub fn deploy(
    state: &EnvironmentState,
    template: &Path,
    output: &Path,
    apply: bool,
    port: u16,
    capture: Option<&Path>,
) -> Result<Deployed> {
    let source = std::fs::read_to_string(template)
        .with_context(|| format!("cannot read deploy.template {}", template.display()))?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // minijinja would JSON-quote every value in a .yaml template; manifests want them as written
    // when that is safe. A string that could change the document's structure (a newline, `: `,
    // `#`, a flow indicator, a quote) is an error unless the template asks for it quoted with
    // the `yaml` filter, which gives a double-quoted YAML scalar (to be used as a whole value).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_filter(
        "yaml",
        |v: minijinja::Value| -> Result<minijinja::Value, minijinja::Error> {
            let json = serde_json::to_value(&v).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
            })?;
            Ok(minijinja::Value::from_safe_string(crate::yamlio::flow(
                &json,
            )))
        },
    );
    env.set_formatter(|out, state, value| {
        if let Some(s) = value.as_str() {
            if !(value.is_safe() || plain_safe(s)) {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!(
                        "the value {:?} cannot be written into a YAML manifest as it is; write it with the yaml filter ({{{{ name|yaml }}}}) to get a quoted YAML string",
                        crate::text::clean(s)
                    ),
                ));
            }
            out.write_str(s)?;
            return Ok(());
        }
        if matches!(
            value.kind(),
            minijinja::value::ValueKind::Map | minijinja::value::ValueKind::Seq
        ) {
            let json = serde_json::to_value(value).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
            })?;
            out.write_str(&crate::yamlio::flow(&json))?;
            return Ok(());
        }
        minijinja::escape_formatter(out, state, value)
    });
    let name = template
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "template".into());
    env.add_template(&name, &source)
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", template.display()))?;
    let mut rendered = env
        .get_template(&name)?
        .render(minijinja::context! {
            model => &state.model,
            env => &state.environment,
            environment => &state.environment,
            image => &state.image,
            digest => state.digest.as_str(),
            run_id => &state.run_id,
            git_commit => &state.git_commit,
            port => port,
            capture => capture.map(|p| p.display().to_string()),
            serving_env => minijinja::Value::from_pairs(super::capture::serving_env(
                state,
                capture.map(|_| super::capture::CONTAINER_CAPTURE_DIR),
            )),
            metrics => minijinja::Value::from(minijinja::value::Serde(&state.metrics)),
        })
        .map_err(|e| anyhow::anyhow!("rendering {}: {e:#}", template.display()))?;
    if !rendered.ends_with('\n') {
        rendered.push('\n');
    }
    check_yaml(&rendered).with_context(|| {
        format!(
            "rendering {} gave text that is not valid YAML, so nothing was written",
            template.display()
        )
    })?;
    let file = output.join(name.strip_suffix(".j2").unwrap_or(&name));
    let unchanged = std::fs::read_to_string(&file).is_ok_and(|old| old == rendered);
    if !unchanged {
        crate::fsutil::write_atomic(&file, rendered.as_bytes())?;
    }
    if apply {
        let out = std::process::Command::new("kubectl")
            .args(["apply", "-f"])
            .arg(output)
            .output()
            .context(
                "deploy.apply is true but kubectl cannot be run (is it installed and on PATH?)",
            )?;
        if !out.status.success() {
            bail!(
                "kubectl apply -f {} failed: {}",
                output.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(Deployed {
        environment: state.environment.clone(),
        image: state.image.clone(),
        digest: state.digest.clone(),
        action: if unchanged { "unchanged" } else { "deployed" },
        container: String::new(),
        url: file.display().to_string(),
        replaced: Vec::new(),
    })
}

/// A string written into a manifest as it is: it reads back as the same plain scalar in block
/// and flow context and cannot end one (no spaces, quotes, `#`, `,`, brackets or braces, and no
/// `:` at the end). Anything else is quoted.
fn plain_safe(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || "./_".contains(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || "._/@:+-".contains(c))
        && !s.ends_with(':')
}

/// The rendered manifests parse as YAML (any number of documents).
fn check_yaml(text: &str) -> Result<()> {
    use saphyr::LoadableYamlNode;
    saphyr::YamlOwned::load_from_str(text)
        .map(|_| ())
        .map_err(|e| {
            anyhow::anyhow!(
                "line {}:{}: {}",
                e.marker().line(),
                e.marker().col() + 1,
                e.info()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> EnvironmentState {
        let digest = format!("sha256:{}", "a".repeat(64));
        let mut metrics = indexmap::IndexMap::new();
        metrics.insert("f1".to_string(), 0.91);
        EnvironmentState {
            environment: "production".into(),
            model: "churn".into(),
            image: format!("127.0.0.1:5000/acme/churn@{digest}"),
            digest: crate::oci::digest::Digest::parse(&digest).unwrap(),
            signature: None,
            run_id: "20261125T000000Z-abcdef".into(),
            git_commit: "0123abc".into(),
            data: indexmap::IndexMap::new(),
            metrics,
            promoted_at: "2026-11-25T00:00:00Z".into(),
            model_dir: None,
            change: None,
        }
    }

    const TEMPLATE: &str = "kind: Deployment\nmetadata:\n  name: {{ model }}-{{ env }}\n  labels: {app: {{ model }}, commit: {{ git_commit }}}\n  annotations:\n    run: {{ run_id }}\n{% for name, value in metrics|items %}    metric-{{ name }}: {{ value }}\n{% endfor %}spec:\n  image: {{ image }}\n";

    fn render(state: &EnvironmentState, template: &str) -> Result<String> {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("deployment.yaml.j2");
        std::fs::write(&t, template).unwrap();
        let out = dir.path().join("out");
        deploy(state, &t, &out, false, 8080, None)?;
        Ok(std::fs::read_to_string(out.join("deployment.yaml")).unwrap())
    }

    #[test]
    fn templates_receive_capture_and_the_serving_variables() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("d.yaml.j2");
        std::fs::write(
            &t,
            "env:\n{% for k, v in serving_env|items %}  {{ k }}: {{ v }}\n{% endfor %}{% if capture %}volume: {{ capture }}\n{% endif %}",
        )
        .unwrap();
        let out = dir.path().join("out");
        deploy(
            &state(),
            &t,
            &out,
            false,
            8080,
            Some(Path::new("/srv/capture")),
        )
        .unwrap();
        let text = std::fs::read_to_string(out.join("d.yaml")).unwrap();
        assert!(text.contains("  MLOPS_MODEL: churn\n"), "{text}");
        assert!(text.contains("  MLOPS_ENVIRONMENT: production\n"), "{text}");
        assert!(
            text.contains(&format!("  MLOPS_DIGEST: {}\n", state().digest)),
            "{text}"
        );
        assert!(
            text.contains("  MLOPS_CAPTURE_DIR: /mlops/capture\n"),
            "{text}"
        );
        assert!(text.contains("volume: /srv/capture\n"), "{text}");
        deploy(&state(), &t, &out, false, 8080, None).unwrap();
        let text = std::fs::read_to_string(out.join("d.yaml")).unwrap();
        assert!(
            !text.contains("volume") && !text.contains("CAPTURE"),
            "{text}"
        );
    }

    fn load(text: &str) -> saphyr::YamlOwned {
        use saphyr::LoadableYamlNode;
        let mut docs = saphyr::YamlOwned::load_from_str(text).unwrap();
        assert_eq!(docs.len(), 1, "{text}");
        docs.remove(0)
    }

    #[test]
    fn plain_values_are_written_as_they_are() {
        let text = render(&state(), TEMPLATE).unwrap();
        assert!(text.contains("  name: churn-production\n"), "{text}");
        assert!(
            text.contains(&format!("  image: {}\n", state().image)),
            "{text}"
        );
        assert!(
            text.contains("    run: 20261125T000000Z-abcdef\n"),
            "{text}"
        );
        assert!(text.contains("    metric-f1: 0.91\n"), "{text}");
    }

    fn hostile() -> EnvironmentState {
        let mut s = state();
        s.git_commit = "abc}\nkind: Secret\n---\nkind: Secret #".into();
        s.metrics.insert("f1: 1\n    injected".into(), 0.5);
        s.metrics.insert("auc, injected: 1}".into(), 0.5);
        s
    }

    #[test]
    fn a_value_that_could_change_the_structure_is_an_error_naming_it() {
        let e = render(&hostile(), TEMPLATE).unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("cannot be written into a YAML manifest"),
            "{text}"
        );
        assert!(text.contains("abc}\\nkind: Secret"), "{text}");
        // A template that never prints the hostile values renders.
        let text = render(&hostile(), "kind: Deployment\nspec: {image: {{ image }}}\n").unwrap();
        assert_eq!(
            load(&text)["spec"]["image"].as_str(),
            Some(state().image.as_str())
        );
    }

    #[test]
    fn the_yaml_filter_quotes_values_that_then_cannot_add_keys_or_documents() {
        let s = hostile();
        let template = "kind: Deployment\nmetadata:\n  labels: {app: {{ model }}, commit: {{ git_commit|yaml }}}\n  annotations:\n{% for name, value in metrics|items %}    {{ name|yaml }}: {{ value }}\n{% endfor %}  all: {{ metrics }}\n";
        let text = render(&s, template).unwrap();
        let doc = load(&text);
        let keys: Vec<&str> = doc
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(|k| k.as_str())
            .collect();
        assert_eq!(keys, ["kind", "metadata"], "{text}");
        let meta = &doc["metadata"];
        assert_eq!(
            meta["labels"]["commit"].as_str(),
            Some(s.git_commit.as_str()),
            "{text}"
        );
        let mut names: Vec<&str> = meta["annotations"]
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(|k| k.as_str())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["auc, injected: 1}", "f1", "f1: 1\n    injected"],
            "{text}"
        );
        assert_eq!(meta["all"].as_mapping().unwrap().len(), 3, "{text}");
    }

    #[test]
    fn a_value_the_template_quotes_itself_fails_instead_of_breaking_out() {
        let mut s = state();
        s.run_id = "x\", injected: \"y".into();
        let e = render(&s, "metadata: {annotations: {run: \"{{ run_id }}\"}}\n").unwrap_err();
        assert!(format!("{e:#}").contains("cannot be written"), "{e:#}");
        let e = render(
            &s,
            "metadata: {annotations: {run: \"{{ run_id|yaml }}\"}}\n",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("not valid YAML"), "{e:#}");
    }
}
