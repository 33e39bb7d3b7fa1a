//! The kubernetes target: render `deploy.template` (minijinja) into `deploy.output`, the
//! directory Argo CD or Flux syncs; `kubectl apply -f` it only when `deploy.apply` is true.
//! Template variables: model, env (also environment), image (by digest), digest, run_id,
//! git_commit, port, metrics. An unknown variable is an error naming the template and line.

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
) -> Result<Deployed> {
    let source = std::fs::read_to_string(template)
        .with_context(|| format!("cannot read deploy.template {}", template.display()))?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // minijinja would JSON-quote every value in a .yaml template; manifests want them as written.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
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
            digest => &state.digest,
            run_id => &state.run_id,
            git_commit => &state.git_commit,
            port => port,
            metrics => minijinja::Value::from_iter(state.metrics.iter().map(|(k, v)| (k.clone(), *v))),
        })
        .map_err(|e| anyhow::anyhow!("rendering {}: {e:#}", template.display()))?;
    if !rendered.ends_with('\n') {
        rendered.push('\n');
    }
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
