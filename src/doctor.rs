//! `mlops doctor`: is this machine (or CI job) set up to run the loop? One check per service
//! the steps use, each a line, with the fix when it fails: the config validates; the engine
//! answers; the credentials may push to `package.repository` (a blob upload that is started
//! and cancelled); the signing key decrypts and matches `sign.public_key`; the forge's token
//! has what promote needs. Only reads, and that one cancelled upload, are sent anywhere.

use base64::Engine as _;

use crate::config::{Config, ForgeKind, KeySource};
use crate::oci::credentials::RegistrySettings;
use crate::oci::reference::ImageLocation;

/// The checks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckName {
    Config,
    Engine,
    Registry,
    Signing,
    Forge,
    Tracking,
}

impl CheckName {
    pub const ALL: [CheckName; 6] = [
        CheckName::Config,
        CheckName::Engine,
        CheckName::Registry,
        CheckName::Signing,
        CheckName::Forge,
        CheckName::Tracking,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CheckName::Config => "config",
            CheckName::Engine => "engine",
            CheckName::Registry => "registry",
            CheckName::Signing => "signing",
            CheckName::Forge => "forge",
            CheckName::Tracking => "tracking",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Fail,
    Skip,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: CheckName,
    pub verdict: Verdict,
    pub what: String,
    /// What to do, when it failed.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: CheckName, what: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Ok,
            what: what.into(),
            fix: None,
        }
    }
    fn fail(name: CheckName, what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Fail,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn skip(name: CheckName, what: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Skip,
            what: what.into(),
            fix: None,
        }
    }
}

/// The engine answers: its version and API version.
pub async fn engine() -> Check {
    let name = CheckName::Engine;
    let runner = match crate::runner::docker::DockerRunner::connect().await {
        Ok(r) => r,
        Err(e) => {
            return Check::fail(
                name,
                first_line(&e.to_string()),
                "start the Docker engine, or set DOCKER_HOST to where it listens",
            )
        }
    };
    match runner.client().version().await {
        Ok(v) => Check::ok(
            name,
            format!(
                "Docker {} answers (API {})",
                v.version.unwrap_or_else(|| "?".into()),
                v.api_version.unwrap_or_else(|| "?".into())
            ),
        ),
        Err(e) => Check::fail(
            name,
            format!("the engine does not answer: {e}"),
            "start the Docker engine, or set DOCKER_HOST to where it listens",
        ),
    }
}

/// The credentials may push to package.repository.
pub async fn registry(config: &Config, settings: &RegistrySettings) -> Check {
    let name = CheckName::Registry;
    let Some(pkg) = &config.package else {
        return Check::skip(name, "mlops.yaml has no package: section");
    };
    let ImageLocation::Registry(repo) = &pkg.repository else {
        return Check::ok(name, "package.repository is an OCI layout on disk");
    };
    let fix = format!(
        "give credentials that may push to {}/{}: MLOPS_REGISTRY_USER and MLOPS_REGISTRY_PASSWORD with MLOPS_REGISTRY={} (in a workflow: the registry-username/-password inputs, and `packages: write` for ghcr.io), or a ~/.docker/config.json entry for {}",
        repo.registry, repo.repository, repo.registry, repo.registry
    );
    let client = match crate::oci::registry::Registry::new(&repo.registry, settings) {
        Ok(c) => c,
        Err(e) => return Check::fail(name, format!("{e:#}"), fix),
    };
    match client.probe_push(&repo.repository).await {
        Ok(()) => Check::ok(
            name,
            format!(
                "registry {} accepts a push to {} (upload started and cancelled)",
                repo.registry, repo.repository
            ),
        ),
        Err(e) => Check::fail(
            name,
            format!(
                "registry {} takes no push to {}: {}",
                repo.registry,
                repo.repository,
                first_line(&format!("{e:#}"))
            ),
            fix,
        ),
    }
}

/// The signing key decrypts with MLOPS_SIGNING_PASSWORD and is the pair of sign.public_key.
pub fn signing(config: &Config) -> Check {
    let name = CheckName::Signing;
    if config.sign.keyless {
        return Check::skip(name, "sign.keyless: no key to check");
    }
    let Some(source) = &config.sign.key else {
        return Check::fail(
            name,
            "mlops.yaml has no sign.key",
            "run `mlops sign --generate-key cosign` and set sign.key: env:MLOPS_SIGNING_KEY",
        );
    };
    let origin = match source {
        KeySource::Env(var) => format!("${var}"),
        KeySource::File(p) => p.display().to_string(),
    };
    let signer = match crate::signing::Signer::resolve(Some(config), None) {
        Ok(s) => s,
        Err(e) => {
            let fix = match &e {
                crate::signing::SigningError::KeyVariableUnset { var } => format!(
                    "set {var} to the contents of cosign.key (in a workflow: the MLOPS_SIGNING_KEY secret)"
                ),
                crate::signing::SigningError::Undecryptable { .. } => format!(
                    "set MLOPS_SIGNING_PASSWORD to the password {origin} was generated with (in a workflow: the MLOPS_SIGNING_PASSWORD secret)"
                ),
                _ => "generate a pair with `mlops sign --generate-key cosign`".into(),
            };
            return Check::fail(name, first_line(&e.to_string()), fix);
        }
    };
    let Some(public) = &config.sign.public_key else {
        return Check::fail(
            name,
            format!("the key from {origin} decrypts, but mlops.yaml has no sign.public_key"),
            "set sign.public_key: cosign.pub (the key's public half, committed)",
        );
    };
    let committed = match std::fs::read_to_string(public) {
        Ok(t) => t,
        Err(e) => {
            return Check::fail(
                name,
                format!("cannot read sign.public_key {}: {e}", public.display()),
                "commit the public half of the key (cosign.pub) at that path",
            )
        }
    };
    if pem_body(&committed) != pem_body(&signer.public_pem) || pem_body(&committed).is_none() {
        return Check::fail(
            name,
            format!(
                "the key from {origin} is not the pair of sign.public_key {}",
                public.display()
            ),
            format!(
                "store the private key that belongs to {} as MLOPS_SIGNING_KEY, or commit that key's public half there",
                public.display()
            ),
        );
    }
    Check::ok(
        name,
        format!(
            "the key from {origin} decrypts and matches {}",
            public.display()
        ),
    )
}

/// The DER inside a PEM text (None when it is not one).
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let b64: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .filter(|d| !d.is_empty())
}

/// The forge answers and its token may do what promote does.
pub fn forge(config: &Config, settings: Option<crate::forge::github::Settings>) -> Check {
    let name = CheckName::Forge;
    if config.forge.kind == ForgeKind::Local {
        return Check::ok(name, "forge.type is local: promotions are local branches");
    }
    let Some(settings) = settings else {
        return Check::fail(
            name,
            "no GitHub settings",
            "set GITHUB_TOKEN (or a GitHub App)",
        );
    };
    if settings.auth.is_none() {
        return Check::fail(
            name,
            "no GITHUB_TOKEN (nor GITHUB_APP_ID)",
            "set GITHUB_TOKEN (in a workflow: github-token, the job's token)",
        );
    }
    let permissions_fix = "give the job `permissions: contents: write, pull-requests: write, issues: write` (a personal token: the repo scope, or those fine-grained permissions)";
    let github = match crate::forge::github::GitHub::new(&config.root, &config.forge, &settings) {
        Ok(g) => g,
        Err(e) => return Check::fail(name, first_line(&format!("{e:#}")), permissions_fix),
    };
    let repo = crate::forge::github::repository(&config.forge, &settings).unwrap_or_default();
    match github.access() {
        Ok(access) if access.missing.is_empty() => Check::ok(
            name,
            format!(
                "GitHub ({}) answers; the token reads {repo}, its pull requests and issues",
                settings.api_url
            ),
        ),
        Ok(access) => {
            let names: Vec<&str> = access.missing.iter().map(|(p, _)| p.as_str()).collect();
            let why: Vec<String> = access
                .missing
                .iter()
                .map(|(p, w)| format!("{p}: {w}"))
                .collect();
            Check::fail(
                name,
                format!(
                    "the token lacks {} on {repo} ({})",
                    names.join(", "),
                    why.join("; ")
                ),
                permissions_fix,
            )
        }
        Err(e) => Check::fail(
            name,
            format!(
                "GitHub ({}): {}",
                settings.api_url,
                first_line(&e.to_string())
            ),
            format!("check GITHUB_API_URL, GITHUB_TOKEN and that {repo} exists; {permissions_fix}"),
        ),
    }
}

/// The tracking server. Hook: `tracking:` (MLflow) arrives with the tracking work; until this
/// build's Config has it, there is nothing to check.
pub fn tracking(_config: &Config) -> Check {
    Check::skip(
        CheckName::Tracking,
        "this build has no tracking: section to check",
    )
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bodies_compare_what_is_encoded_not_how_it_is_wrapped() {
        let a = "-----BEGIN PUBLIC KEY-----\nAAEC\nAwQ=\n-----END PUBLIC KEY-----\n";
        let b = "-----BEGIN PUBLIC KEY-----\r\nAAECAwQ=\r\n-----END PUBLIC KEY-----";
        assert_eq!(pem_body(a), Some(vec![0, 1, 2, 3, 4]));
        assert_eq!(pem_body(a), pem_body(b));
        assert_eq!(pem_body("not a pem"), None);
    }
}
