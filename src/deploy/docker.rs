//! The docker target: run the image (by digest) on this machine's engine, published on
//! `deploy.host:deploy.port`, and replace the previous version only once the new one is healthy.
//!
//! A host port can be published by one container at a time, so the new version is first
//! started as a probe on an ephemeral port and must pass its health check there; only then is
//! the old container stopped and the new one started on the real port. If the new one fails
//! there, the old one is started again. The window without a listener is the new container's
//! start-up (about a second for the serving image); a failing version never replaces a working one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptions, StopContainerOptionsBuilder,
};
use bollard::Docker;

use super::Deployed;
use crate::environment::EnvironmentState;
use crate::runner::docker::DockerRunner;
use crate::runner::logs::LogSink;

pub const DEPLOYMENT_LABEL: &str = "dev.mlops.deployment";
pub const DIGEST_LABEL: &str = "dev.mlops.digest";

pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub health: &'a str,
    /// The port the serving runtime listens on inside the container.
    pub container_port: u16,
    pub health_timeout: Duration,
}

/// Ok(Err(why)) when the new version failed its health check and the previous one kept (or
/// went back to) serving: the deployment said no. Err for everything that stopped the tool.
pub async fn deploy(
    state: &EnvironmentState,
    target: &Target<'_>,
    log_path: &std::path::Path,
) -> Result<std::result::Result<Deployed, String>> {
    let runner = DockerRunner::connect().await?;
    let docker = runner.client();
    let deployment = format!("{}/{}", state.model, state.environment);
    let name = format!("mlops-{}-{}", state.model, state.environment);
    let url = format!("http://{}:{}{}", target.host, target.port, target.health);

    let existing = containers(docker, &deployment).await?;
    if let Some(c) = existing
        .iter()
        .find(|c| c.running && c.digest == state.digest && c.name == name)
    {
        return Ok(Ok(Deployed {
            environment: state.environment.clone(),
            image: state.image.clone(),
            digest: state.digest.clone(),
            action: "unchanged",
            container: c.name.clone(),
            url,
            replaced: Vec::new(),
        }));
    }

    let mut log = LogSink::open("deploy", log_path)?;
    runner.pull(&state.image, &mut log).await?;
    log.finish();

    // Ctrl-C or SIGTERM at any point: the probe goes, and a half-done swap is undone (the
    // previous version renamed back and restarted) before we exit.
    let undo = std::sync::Mutex::new(Undo::default());
    let _cleanup = crate::interrupt::cleanup_guard();
    let work = async {
        // 1. The new version must be healthy on an ephemeral port before it replaces anything.
        let short = state
            .digest
            .trim_start_matches("sha256:")
            .get(..12)
            .unwrap_or("");
        let probe = format!("{name}-probe-{short}");
        remove(docker, &probe).await;
        undo.lock().unwrap().probe = Some(probe.clone());
        create(docker, &probe, state, &deployment, target, "127.0.0.1", 0).await?;
        docker
            .start_container(&probe, None)
            .await
            .context("starting the new version")?;
        let probe_port = published_port(docker, &probe, target.container_port).await?;
        let healthy = wait_healthy(
            &format!("http://127.0.0.1:{probe_port}{}", target.health),
            target.health_timeout,
        )
        .await;
        remove(docker, &probe).await;
        undo.lock().unwrap().probe = None;
        if let Err(why) = healthy {
            return Ok(Err(format!(
                "the new version {} failed its health check ({why}); {}",
                state.digest,
                if existing.iter().any(|c| c.running) {
                    "the running version keeps serving"
                } else {
                    "nothing was running before, nothing runs now"
                }
            )));
        }

        // 2. Swap: the old container steps aside (kept until the new one is healthy on the port).
        let old: Vec<&Existing> = existing.iter().filter(|c| c.name != probe).collect();
        let mut set_aside = Vec::new();
        for c in &old {
            if c.running {
                let stop = StopContainerOptionsBuilder::default().t(10).build();
                docker.stop_container(&c.id, Some(stop)).await.ok();
            }
            let aside = format!("{name}-previous-{}", &c.id[..12.min(c.id.len())]);
            if c.name != aside {
                docker
                    .rename_container(
                        &c.id,
                        RenameContainerOptions {
                            name: aside.clone(),
                        },
                    )
                    .await
                    .ok();
            }
            set_aside.push((c.id.clone(), c.name.clone(), c.running));
            undo.lock().unwrap().set_aside = set_aside.clone();
        }
        let started = async {
            create(
                docker,
                &name,
                state,
                &deployment,
                target,
                target.host,
                target.port,
            )
            .await?;
            docker
                .start_container(&name, None)
                .await
                .context("starting the new version")?;
            wait_healthy(&url, target.health_timeout)
                .await
                .map_err(anyhow::Error::msg)
        }
        .await;
        if let Err(e) = started {
            // Roll back: the previous version serves again.
            restore(docker, &name, &set_aside).await;
            *undo.lock().unwrap() = Undo::default();
            return Ok(Err(format!(
                "the new version {} did not come up on {}:{} ({e:#}); the previous version was restarted",
                state.digest, target.host, target.port
            )));
        }
        // The new version serves: from here on there is nothing to undo.
        *undo.lock().unwrap() = Undo::default();
        for (id, _, _) in &set_aside {
            remove(docker, id).await;
        }
        Ok(Ok(Deployed {
            environment: state.environment.clone(),
            image: state.image.clone(),
            digest: state.digest.clone(),
            action: "deployed",
            container: name,
            url,
            replaced: set_aside
                .into_iter()
                .map(|(id, name, _)| format!("{name} ({})", &id[..12.min(id.len())]))
                .collect(),
        }))
    };
    tokio::select! {
        r = work => r,
        _ = crate::interrupt::interrupted() => {
            let pending = std::mem::take(&mut *undo.lock().unwrap());
            pending.run(docker).await;
            Err(crate::interrupt::Interrupted(
                "the probe container was removed and the previous version left serving",
            )
            .into())
        }
    }
}

/// What an interruption must undo at this point of the deployment.
#[derive(Default)]
struct Undo {
    probe: Option<String>,
    new: Option<String>,
    set_aside: Vec<(String, String, bool)>,
}

impl Undo {
    async fn run(self, docker: &Docker) {
        if let Some(p) = &self.probe {
            remove(docker, p).await;
        }
        if let Some(n) = &self.new {
            restore(docker, n, &self.set_aside).await;
        } else if !self.set_aside.is_empty() {
            restore(docker, "", &self.set_aside).await;
        }
    }
}

/// Removes the new container (if named) and brings the previous ones back under their names.
async fn restore(docker: &Docker, new: &str, set_aside: &[(String, String, bool)]) {
    if !new.is_empty() {
        remove(docker, new).await;
    }
    for (id, old_name, was_running) in set_aside {
        docker
            .rename_container(
                id,
                RenameContainerOptions {
                    name: old_name.clone(),
                },
            )
            .await
            .ok();
        if *was_running {
            docker.start_container(id, None).await.ok();
        }
    }
}

struct Existing {
    id: String,
    name: String,
    digest: String,
    running: bool,
}

async fn containers(docker: &Docker, deployment: &str) -> Result<Vec<Existing>> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{DEPLOYMENT_LABEL}={deployment}")],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let list = docker.list_containers(Some(options)).await?;
    Ok(list
        .into_iter()
        .map(|c| Existing {
            id: c.id.unwrap_or_default(),
            name: c
                .names
                .and_then(|n| n.into_iter().next())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            digest: c
                .labels
                .and_then(|l| l.get(DIGEST_LABEL).cloned())
                .unwrap_or_default(),
            running: c.state.map(|s| s.to_string() == "running").unwrap_or(false),
        })
        .collect())
}

#[allow(clippy::too_many_arguments)]
async fn create(
    docker: &Docker,
    name: &str,
    state: &EnvironmentState,
    deployment: &str,
    target: &Target<'_>,
    host: &str,
    port: u16,
) -> Result<()> {
    let cport = format!("{}/tcp", target.container_port);
    let host_config = HostConfig {
        port_bindings: Some(HashMap::from([(
            cport.clone(),
            Some(vec![PortBinding {
                host_ip: Some(host.to_string()),
                host_port: Some(if port == 0 {
                    String::new()
                } else {
                    port.to_string()
                }),
            }]),
        )])),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        security_opt: Some(vec!["no-new-privileges".into()]),
        ..Default::default()
    };
    let labels = HashMap::from([
        (DEPLOYMENT_LABEL.to_string(), deployment.to_string()),
        (DIGEST_LABEL.to_string(), state.digest.clone()),
        ("dev.mlops.run-id".to_string(), state.run_id.clone()),
    ]);
    let body = ContainerCreateBody {
        image: Some(state.image.clone()),
        labels: Some(labels),
        exposed_ports: Some(vec![cport]),
        host_config: Some(host_config),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    docker
        .create_container(Some(options), body)
        .await
        .with_context(|| format!("cannot create container {name} from {}", state.image))?;
    Ok(())
}

async fn published_port(docker: &Docker, name: &str, container_port: u16) -> Result<u16> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let inspect = docker.inspect_container(name, None).await?;
        let port = inspect
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|p| p.get(&format!("{container_port}/tcp")).cloned().flatten())
            .and_then(|b| b.into_iter().find_map(|b| b.host_port))
            .and_then(|p| p.parse().ok());
        if let Some(p) = port {
            return Ok(p);
        }
        if Instant::now() > deadline {
            bail!("container {name} published no port for {container_port}/tcp");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_healthy(url: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match client.get(url).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("GET {url} answered {}", r.status()),
            Err(e) => last = format!("GET {url}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!("{last} after {} s", timeout.as_secs()))
}

async fn remove(docker: &Docker, name: &str) {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker.remove_container(name, Some(options)).await;
}
