//! The docker target: run the image (by digest) on this machine's engine, published on
//! `deploy.host:deploy.port`, and replace the previous version only once the new one is healthy.
//!
//! A host port can be published by one container at a time, so the new version is first
//! started as a probe on an ephemeral port and must pass its health check there; only then is
//! the old container stopped and the new one started on the real port. If the new one fails
//! there, the old one is started again. The window without a listener is the new container's
//! start-up (about a second for the serving image); a failing version never replaces a working one.
//! Ctrl-C or SIGTERM at any point undoes what was done so far: the probe is removed, and after
//! the swap the new container is removed and the previous one gets its name and port back.

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
use crate::outcome::Outcome;
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
    /// deploy.capture: the host directory mounted at /mlops/capture (MLOPS_CAPTURE_DIR).
    pub capture: Option<&'a std::path::Path>,
}

/// Refused when the new version failed its health check and the previous one kept (or went
/// back to) serving: the deployment said no. Err for everything that stopped the tool.
pub async fn deploy(
    state: &EnvironmentState,
    target: &Target<'_>,
    log_path: &std::path::Path,
) -> Result<Outcome<Deployed>> {
    let runner = DockerRunner::connect().await?;
    let docker = runner.client();
    let deployment = format!("{}/{}", state.model, state.environment);
    let name = format!("mlops-{}-{}", state.model, state.environment);
    let url = format!("http://{}:{}{}", target.host, target.port, target.health);

    let existing = containers(docker, &deployment).await?;
    if let Some(c) = existing
        .iter()
        .find(|c| c.running && state.digest == c.digest.as_str() && c.name == name)
    {
        return Ok(Outcome::Done(Deployed {
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
    if let Some(dir) = target.capture {
        let user = docker
            .inspect_image(&state.image)
            .await
            .with_context(|| format!("cannot inspect {}", state.image))?
            .config
            .and_then(|c| c.user)
            .unwrap_or_default();
        super::capture::prepare(dir, &user)?;
    }

    // Ctrl-C or SIGTERM at any point: the probe goes, and a half-done swap is undone (the new
    // container removed, the previous version renamed back and restarted) before we exit.
    let undo = Pending::default();
    let _cleanup = crate::interrupt::cleanup_guard();
    let job = Job {
        docker,
        state,
        target,
        deployment: &deployment,
        name: &name,
        url: &url,
        undo: &undo,
    };
    let work = async {
        if let Outcome::Refused(why) = job.probe().await? {
            return Ok(Outcome::refused(format!(
                "the new version {} failed its health check ({why}); {}",
                state.digest,
                if existing.iter().any(|c| c.running) {
                    "the running version keeps serving"
                } else {
                    "nothing was running before, nothing runs now"
                }
            )));
        }
        job.swap(&existing).await
    };
    let outcome = tokio::select! {
        r = work => match r {
            Ok(outcome) => outcome,
            Err(e) => {
                // The tool failed part-way (the engine refused something): undo what is
                // pending just as for an interruption, then report the failure.
                undo.take().run(docker).await;
                return Err(e);
            }
        },
        _ = crate::interrupt::interrupted() => {
            let pending = undo.take();
            let done = pending.describe();
            pending.run(docker).await;
            return Err(crate::interrupt::Interrupted(format!("interrupted; {done}")).into());
        }
    };
    // The new version serves: removing the previous containers is no longer interruptible
    // (a second Ctrl-C still ends the process at once).
    match outcome {
        Outcome::Done((deployed, retired)) => {
            for id in &retired {
                remove(docker, id).await;
            }
            Ok(Outcome::Done(deployed))
        }
        Outcome::Refused(why) => Ok(Outcome::Refused(why)),
    }
}

/// Refused when the new version said no; else the deployment and the previous container ids.
type Swapped = Result<Outcome<(Deployed, Vec<String>)>>;

/// One deployment in progress: what it deploys, where, and what an interruption must undo.
struct Job<'a> {
    docker: &'a Docker,
    state: &'a EnvironmentState,
    target: &'a Target<'a>,
    deployment: &'a str,
    name: &'a str,
    url: &'a str,
    undo: &'a Pending,
}

impl Job<'_> {
    /// The new version must be healthy on an ephemeral port before it replaces anything.
    async fn probe(&self) -> Result<Outcome<()>> {
        let short = self.state.digest.hex().get(..12).unwrap_or("");
        let probe = format!("{}-probe-{short}", self.name);
        remove(self.docker, &probe).await;
        self.undo.with(|u| u.probe = Some(probe.clone()));
        let (state, target, deployment) = (self.state, self.target, self.deployment);
        create(
            self.docker,
            &probe,
            state,
            deployment,
            target,
            "127.0.0.1",
            0,
        )
        .await?;
        self.docker
            .start_container(&probe, None)
            .await
            .context("starting the new version")?;
        let probe_port = published_port(self.docker, &probe, target.container_port).await?;
        let healthy = wait_healthy(
            &format!("http://127.0.0.1:{probe_port}{}", target.health),
            target.health_timeout,
        )
        .await;
        remove(self.docker, &probe).await;
        self.undo.with(|u| u.probe = None);
        Ok(match healthy {
            Ok(()) => Outcome::Done(()),
            Err(why) => Outcome::refused(why),
        })
    }

    /// The old containers step aside (stopped, renamed, kept) and the new version takes the
    /// name and the port; if it does not become healthy there, the old ones come back.
    /// On success: the deployment, and the previous containers (ids) to remove.
    async fn swap(&self, existing: &[Existing]) -> Swapped {
        let (docker, name, state, target) = (self.docker, self.name, self.state, self.target);
        let mut set_aside = Vec::new();
        let probes = format!("{name}-probe-");
        for c in existing {
            if c.name.starts_with(&probes) {
                // A probe left by an earlier, killed run: never a serving version.
                remove(docker, &c.id).await;
                continue;
            }
            // Recorded before it is touched: an interruption from here on brings it back.
            set_aside.push((c.id.clone(), c.name.clone(), c.running));
            self.undo.with(|u| u.set_aside = set_aside.clone());
            if c.running {
                let stop = StopContainerOptionsBuilder::default().t(10).build();
                docker.stop_container(&c.id, Some(stop)).await.ok();
            }
            let aside = format!("{name}-previous-{}", &c.id[..12.min(c.id.len())]);
            if c.name != aside {
                let to = RenameContainerOptions { name: aside };
                docker.rename_container(&c.id, to).await.ok();
            }
        }
        // From its creation on, the new container holds the name and the port: an
        // interruption must remove it before the previous version can have them back.
        self.undo.with(|u| u.new = Some(name.to_string()));
        let started = async {
            let (host, port) = (target.host, target.port);
            create(docker, name, state, self.deployment, target, host, port).await?;
            docker
                .start_container(name, None)
                .await
                .context("starting the new version")?;
            wait_healthy(self.url, target.health_timeout)
                .await
                .map_err(anyhow::Error::msg)
        }
        .await;
        if let Err(e) = started {
            // Roll back: the previous version serves again.
            self.undo.take().run(docker).await;
            return Ok(Outcome::refused(format!(
                "the new version {} did not come up on {}:{} ({e:#}); the previous version was restarted",
                state.digest, target.host, target.port
            )));
        }
        // The new version serves: from here on there is nothing to undo.
        self.undo.take();
        let retired = set_aside.iter().map(|(id, _, _)| id.clone()).collect();
        let deployed = Deployed {
            environment: state.environment.clone(),
            image: state.image.clone(),
            digest: state.digest.clone(),
            action: "deployed",
            container: name.to_string(),
            url: self.url.to_string(),
            replaced: set_aside
                .into_iter()
                .map(|(id, name, _)| format!("{name} ({})", &id[..12.min(id.len())]))
                .collect(),
        };
        Ok(Outcome::Done((deployed, retired)))
    }
}

/// The undo record shared between the deployment and the interrupt branch.
#[derive(Default)]
struct Pending(std::sync::Mutex<Undo>);

impl Pending {
    fn with(&self, f: impl FnOnce(&mut Undo)) {
        // A panic while holding the lock cannot leave `Undo` half-written: every update is a
        // plain field assignment, so a poisoned lock still holds a consistent record.
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard);
    }

    fn take(&self) -> Undo {
        let mut taken = Undo::default();
        self.with(|u| taken = std::mem::take(u));
        taken
    }
}

/// What an interruption must undo at this point of the deployment.
#[derive(Default)]
struct Undo {
    probe: Option<String>,
    /// The new container once it was created under the environment's name.
    new: Option<String>,
    /// (id, original name, was running) of each previous container that stepped aside.
    set_aside: Vec<(String, String, bool)>,
}

impl Undo {
    fn describe(&self) -> &'static str {
        match (&self.new, self.set_aside.is_empty()) {
            (Some(_), false) => {
                "the new container was removed and the previous version restored under its name and port"
            }
            (Some(_), true) => "the new container was removed; nothing was running before",
            (None, false) => "the previous version was restored under its name and port",
            (None, true) => "the probe container was removed and the previous version left serving",
        }
    }

    async fn run(self, docker: &Docker) {
        if let Some(p) = &self.probe {
            remove(docker, p).await;
        }
        if let Some(n) = &self.new {
            remove(docker, n).await;
        }
        restore(docker, &self.set_aside).await;
    }
}

/// Brings the previous containers back under their names (the new one must be gone).
async fn restore(docker: &Docker, set_aside: &[(String, String, bool)]) {
    for (id, old_name, was_running) in set_aside {
        let to = RenameContainerOptions {
            name: old_name.clone(),
        };
        if let Err(e) = docker.rename_container(id, to).await {
            // Renaming to the name it already has fails too: only a real conflict matters.
            let current = docker
                .inspect_container(id, None)
                .await
                .ok()
                .and_then(|i| i.name)
                .unwrap_or_default();
            if current.trim_start_matches('/') != old_name {
                tracing::warn!(
                    "could not give container {id} its name {old_name} back ({e}); rename it with `docker rename {id} {old_name}`"
                );
            }
        }
        if *was_running {
            if let Err(e) = docker.start_container(id, None).await {
                tracing::warn!(
                    "could not restart the previous version {old_name} ({e}); start it with `docker start {old_name}`"
                );
            }
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
        binds: target.capture.map(|dir| {
            vec![format!(
                "{}:{}:rw",
                dir.display(),
                super::capture::CONTAINER_CAPTURE_DIR
            )]
        }),
        ..Default::default()
    };
    let capture_dir = target
        .capture
        .map(|_| super::capture::CONTAINER_CAPTURE_DIR);
    let env: Vec<String> = super::capture::serving_env(state, capture_dir)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let labels = HashMap::from([
        (DEPLOYMENT_LABEL.to_string(), deployment.to_string()),
        (DIGEST_LABEL.to_string(), state.digest.to_string()),
        ("dev.mlops.run-id".to_string(), state.run_id.clone()),
    ]);
    let body = ContainerCreateBody {
        image: Some(state.image.clone()),
        labels: Some(labels),
        exposed_ports: Some(vec![cport]),
        env: Some(env),
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
