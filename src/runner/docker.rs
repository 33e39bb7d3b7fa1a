//! The default runner: one container per step through the Docker engine API (bollard).
//! Containers run as a non-root user, with no new privileges, every capability dropped, a
//! read-only root filesystem (tmpfs on /tmp), a pids limit, no network unless the config asks
//! for one, and a `/workspace` without `.git/config` and `.mlops` unless `train.mount_git`.
//! They are removed on every path: success, failure, timeout, Ctrl-C and SIGTERM.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::{
    dataset_file_name, protocol_env, DatasetMount, LogSink, ProtocolPaths, Runner, RunnerError,
    StepResult, StepSpec, CONTAINER_DATA, CONTAINER_MODEL, CONTAINER_OUTPUTS, CONTAINER_PARAMS,
    CONTAINER_WORKSPACE,
};
use crate::config::ImageSource;
use crate::runs::ImageInfo;

/// Label on every container this toolkit starts: the run it belongs to.
pub const RUN_LABEL: &str = "dev.mlops.run";
pub const STEP_LABEL: &str = "dev.mlops.step";

pub struct DockerRunner {
    pub(super) docker: Docker,
}

/// `--build-arg`s for every image this process builds (`train.build`, `package.dockerfile`):
/// set once by the command from `MLOPS_BUILD_ARGS`, so a CI job (or a test) can point the
/// Dockerfiles' `ARG`s at other base images without editing them.
static BUILD_ARGS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

pub fn set_build_args(args: Vec<(String, String)>) {
    *BUILD_ARGS.lock().unwrap_or_else(|e| e.into_inner()) = args;
}

pub fn build_args() -> Vec<(String, String)> {
    BUILD_ARGS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// `NAME=value` pairs separated by whitespace or newlines (`MLOPS_BUILD_ARGS`).
pub fn parse_build_args(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in text.split_whitespace() {
        let Some((name, value)) = item.split_once('=') else {
            return Err(format!("{item:?} is not NAME=value"));
        };
        let valid = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!(
                "{name:?} is not a build argument name (letters, digits, _)"
            ));
        }
        out.retain(|(n, _)| n != name);
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

fn endpoint() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

impl DockerRunner {
    pub async fn connect() -> Result<DockerRunner, RunnerError> {
        let engine = |source| RunnerError::Engine {
            endpoint: endpoint(),
            source,
        };
        let docker = Docker::connect_with_defaults().map_err(engine)?;
        // The engine may speak an older API than bollard's default (Debian's 20.10 speaks 1.41).
        let docker = docker.negotiate_version().await.map_err(engine)?;
        Ok(DockerRunner { docker })
    }

    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Makes sure the image exists locally (pulling or building it) and returns its reference and id.
    pub async fn prepare_image(
        &self,
        source: &ImageSource,
        tag_hint: &str,
        log: &mut LogSink,
    ) -> Result<ImageInfo, RunnerError> {
        match source {
            ImageSource::Image(reference) => {
                if let Ok(found) = self.docker.inspect_image(reference).await {
                    return Ok(ImageInfo {
                        reference: reference.clone(),
                        digest: found.id.unwrap_or_default(),
                    });
                }
                self.pull(reference, log).await?;
                let found = self.docker.inspect_image(reference).await.map_err(|e| {
                    RunnerError::ImageUnavailable {
                        image: reference.clone(),
                        reason: e.to_string(),
                    }
                })?;
                Ok(ImageInfo {
                    reference: reference.clone(),
                    digest: found.id.unwrap_or_default(),
                })
            }
            ImageSource::Build {
                context,
                dockerfile,
            } => {
                let tag = format!("mlops-build/{tag_hint}:latest");
                self.build(context, dockerfile, &tag, log).await?;
                let found = self.docker.inspect_image(&tag).await?;
                Ok(ImageInfo {
                    reference: tag,
                    digest: found.id.unwrap_or_default(),
                })
            }
        }
    }

    /// Builds an image from a Dockerfile and pushes it as `target` (`registry/repo:tag`);
    /// for `package.dockerfile`, whose result then serves as the base of the model image.
    pub async fn build_and_push(
        &self,
        context: &std::path::Path,
        dockerfile: &std::path::Path,
        target: &crate::oci::reference::ImageRef,
        log: &mut LogSink,
    ) -> Result<(), RunnerError> {
        use bollard::query_parameters::PushImageOptionsBuilder;
        let text = target.to_string();
        self.build(context, dockerfile, &text, log).await?;
        log.note(&format!("pushing {text}"));
        let tag = target.tag.as_deref().unwrap_or("latest");
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self.docker.push_image(&target.name(), Some(options), None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| RunnerError::ImageUnavailable {
                image: text.clone(),
                reason: format!("push failed: {e}"),
            })?;
            if let Some(err) = info.error_detail.and_then(|e| e.message) {
                return Err(RunnerError::ImageUnavailable {
                    image: text,
                    reason: format!("push failed: {err}"),
                });
            }
        }
        Ok(())
    }

    pub async fn pull(&self, reference: &str, log: &mut LogSink) -> Result<(), RunnerError> {
        log.note(&format!("pulling {reference}"));
        let image = crate::oci::reference::parse_image(reference).map_err(|reason| {
            RunnerError::ImageUnavailable {
                image: reference.into(),
                reason,
            }
        })?;
        // By digest: the whole reference and no tag (the engine takes it so); else name and tag.
        let name = format!("{}/{}", image.registry, image.repository);
        let (from_image, tag) = match (&image.digest, &image.tag) {
            (Some(d), _) => (format!("{name}@{d}"), String::new()),
            (None, Some(t)) => (name, t.clone()),
            (None, None) => (name, "latest".to_string()),
        };
        let options = CreateImageOptionsBuilder::default()
            .from_image(&from_image)
            .tag(&tag)
            .build();
        // The engine does not read the client's credentials: hand over the pulled registry's
        // own (exactly its host[:port]), never another registry's.
        let credentials = crate::oci::credentials::engine_credentials(&image.registry).map(|c| {
            bollard::auth::DockerCredentials {
                username: Some(c.username),
                password: Some(c.password),
                serveraddress: Some(image.registry.clone()),
                ..Default::default()
            }
        });
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        let mut last_report = std::time::Instant::now();
        // A live spinner on a terminal; plain periodic lines in CI logs.
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message(format!("pulling {reference}"));
            bar
        });
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(err) = info.error_detail.and_then(|e| e.message) {
                        return Err(RunnerError::ImageUnavailable {
                            image: reference.into(),
                            reason: err,
                        });
                    }
                    if let (Some(bar), Some(status)) = (&bar, &info.status) {
                        let detail = info
                            .progress_detail
                            .as_ref()
                            .and_then(|p| Some((p.current?, p.total?)))
                            .map(|(c, t)| format!(" {} / {} MiB", c >> 20, t >> 20))
                            .unwrap_or_default();
                        bar.set_message(format!("pull {reference}: {status}{detail}"));
                    } else if last_report.elapsed() > Duration::from_secs(2) {
                        if let Some(status) = info.status {
                            log.note(&format!("pull {reference}: {status}"));
                        }
                        last_report = std::time::Instant::now();
                    }
                }
                Err(e) => {
                    return Err(RunnerError::ImageUnavailable {
                        image: reference.into(),
                        reason: e.to_string(),
                    })
                }
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(())
    }

    async fn build(
        &self,
        context: &std::path::Path,
        dockerfile: &std::path::Path,
        tag: &str,
        log: &mut LogSink,
    ) -> Result<(), RunnerError> {
        let build_err = |reason: String| RunnerError::Build {
            dockerfile: dockerfile.display().to_string(),
            reason,
        };
        let rel = dockerfile
            .strip_prefix(context)
            .map_err(|_| build_err("the Dockerfile must be inside the build context".into()))?
            .to_string_lossy()
            .into_owned();
        let tar = super::context::context_tar(context, &rel)
            .map_err(|e| build_err(format!("cannot read the build context: {e:#}")))?;
        log.note(&format!("building {tag} from {}", dockerfile.display()));
        let args: HashMap<String, String> = build_args().into_iter().collect();
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(&rel)
            .buildargs(&args)
            .t(tag)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(tar.into())));
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| build_err(e.to_string()))?;
            if let Some(detail) = info.error_detail {
                return Err(build_err(detail.message.unwrap_or_default()));
            }
            if let Some(text) = info.stream {
                log.write(text.as_bytes());
            }
        }
        Ok(())
    }

    async fn remove(&self, id: &str) {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        if let Err(e) = self.docker.remove_container(id, Some(options)).await {
            tracing::warn!("could not remove container {id}: {e}");
        }
    }
}

/// The user steps run as: the caller's uid:gid, or nobody (65534) when the caller is root.
pub fn step_user() -> (u32, u32) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse::<u32>().ok())
    };
    match (field("Uid:"), field("Gid:")) {
        (Some(0), _) | (None, _) => (65534, 65534),
        (Some(u), Some(g)) => (u, g),
        (Some(u), None) => (u, u),
    }
}

/// The repository is mounted read-only at /workspace and the step runs as `user`: a project
/// directory that user cannot enter would fail inside the container with a bare
/// "Permission denied". Say so before starting, with the fix.
fn check_readable(
    workspace: &std::path::Path,
    step: &str,
    (uid, gid): (u32, u32),
) -> Result<(), RunnerError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(workspace)?;
    let mode = meta.mode();
    let ok = if meta.uid() == uid {
        mode & 0o500 == 0o500
    } else if meta.gid() == gid {
        mode & 0o050 == 0o050
    } else {
        mode & 0o005 == 0o005
    };
    if ok {
        return Ok(());
    }
    Err(RunnerError::Start {
        step: step.to_string(),
        reason: format!(
            "{} (mode {:o}) cannot be read by the step's user {uid}:{gid}{}\n  help: chmod o+rx {} (and make its files readable), or run as the user who owns it",
            workspace.display(),
            mode & 0o7777,
            if uid == 65534 { " (nobody: steps never run as root)" } else { "" },
            workspace.display()
        ),
    })
}

/// Gives the step's user the directories it must write to.
fn hand_over(dir: &std::path::Path, (uid, gid): (u32, u32)) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
}

fn bind(host: &std::path::Path, container: &str, writable: bool) -> String {
    format!(
        "{}:{}:{}",
        host.display(),
        container,
        if writable { "rw" } else { "ro" }
    )
}

/// What `/workspace` hides unless `train.mount_git: true`: `.git/config`, where
/// actions/checkout persists its token (an empty file over it, so git still works), and
/// `.mlops`, the runs and every other state (an empty read-only tmpfs over it). When either is
/// a link to somewhere else in the repository, that place is hidden instead.
fn hide_secrets(
    workspace: &std::path::Path,
    binds: &mut Vec<String>,
    tmpfs: &mut HashMap<String, String>,
) {
    if let Some((inside, meta)) = inside_workspace(workspace, ".git/config") {
        if meta.is_file() {
            binds.push(format!("/dev/null:{inside}:ro"));
        }
    }
    if let Some((inside, meta)) = inside_workspace(workspace, ".mlops") {
        if meta.is_dir() {
            tmpfs.insert(inside, "ro,size=4k,mode=0555".to_string());
        }
    }
}

/// Where `rel` (links resolved) is inside the container's `/workspace`, and what it is; None
/// when it does not exist or resolves outside the repository (the step cannot see it then).
fn inside_workspace(workspace: &std::path::Path, rel: &str) -> Option<(String, std::fs::Metadata)> {
    let real = std::fs::canonicalize(workspace.join(rel)).ok()?;
    let root = std::fs::canonicalize(workspace).ok()?;
    let below = real.strip_prefix(&root).ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    Some((format!("{CONTAINER_WORKSPACE}/{}", below.display()), meta))
}

fn data_binds(datasets: &[DatasetMount]) -> (Vec<String>, Vec<(String, String)>) {
    let mut binds = Vec::new();
    let mut seen = Vec::new();
    for d in datasets {
        let base = format!("{CONTAINER_DATA}/{}", d.name);
        if d.host_path.is_dir() {
            binds.push(bind(&d.host_path, &base, false));
            seen.push((d.name.clone(), base));
        } else {
            let inside = format!("{base}/{}", dataset_file_name(&d.host_path));
            binds.push(bind(&d.host_path, &inside, false));
            seen.push((d.name.clone(), inside));
        }
    }
    (binds, seen)
}

#[async_trait]
impl Runner for DockerRunner {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn run(&self, spec: &StepSpec) -> Result<StepResult, RunnerError> {
        let mut log = LogSink::open(&spec.step, &spec.log_file)?;
        let image = self
            .prepare_image(&spec.image, &spec.run_id.to_ascii_lowercase(), &mut log)
            .await?;
        let user = step_user();
        check_readable(&spec.workspace, &spec.step, user)?;
        hand_over(&spec.outputs_dir, user)?;
        if spec.model_writable {
            hand_over(&spec.model_dir, user)?;
        }

        let (mut binds, datasets) = data_binds(&spec.datasets);
        binds.push(bind(&spec.workspace, CONTAINER_WORKSPACE, false));
        binds.push(bind(&spec.model_dir, CONTAINER_MODEL, spec.model_writable));
        binds.push(bind(&spec.outputs_dir, CONTAINER_OUTPUTS, true));
        binds.push(bind(&spec.params_file, CONTAINER_PARAMS, false));
        let mut tmpfs = HashMap::from([("/tmp".to_string(), "rw,exec,size=1g".to_string())]);
        if !spec.mount_git {
            hide_secrets(&spec.workspace, &mut binds, &mut tmpfs);
        }
        let paths = ProtocolPaths {
            data_dir: CONTAINER_DATA.into(),
            datasets,
            model_dir: CONTAINER_MODEL.into(),
            outputs_dir: CONTAINER_OUTPUTS.into(),
            params_file: CONTAINER_PARAMS.into(),
        };
        let env: Vec<String> = protocol_env(spec, &paths)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();

        let r = &spec.resources;
        let host_config = HostConfig {
            binds: Some(binds),
            network_mode: Some(if spec.network { "bridge" } else { "none" }.into()),
            nano_cpus: r.cpus.map(|c| (c * 1e9) as i64),
            memory: r.memory_bytes.map(|m| m as i64),
            // Swap equal to memory: hitting the limit kills instead of swapping.
            memory_swap: r.memory_bytes.map(|m| m as i64),
            device_requests: (r.gpus > 0).then(|| {
                vec![DeviceRequest {
                    driver: Some("nvidia".into()),
                    count: Some(r.gpus as i64),
                    capabilities: Some(vec![vec!["gpu".into()]]),
                    ..Default::default()
                }]
            }),
            security_opt: Some(vec!["no-new-privileges".into()]),
            cap_drop: Some(vec!["ALL".into()]),
            readonly_rootfs: Some(true),
            tmpfs: Some(tmpfs),
            pids_limit: Some(i64::from(r.pids)),
            ..Default::default()
        };
        let mut labels = HashMap::new();
        labels.insert(RUN_LABEL.to_string(), spec.run_id.clone());
        labels.insert(STEP_LABEL.to_string(), spec.step.clone());
        let body = ContainerCreateBody {
            image: Some(image.reference.clone()),
            cmd: Some(spec.command.clone()),
            env: Some(env),
            working_dir: Some(CONTAINER_WORKSPACE.into()),
            user: Some(format!("{}:{}", user.0, user.1)),
            labels: Some(labels),
            host_config: Some(host_config),
            ..Default::default()
        };
        let name = format!("mlops-{}-{}", spec.run_id.to_ascii_lowercase(), spec.step);
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let started_at = chrono::Utc::now();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| RunnerError::Start {
                step: spec.step.clone(),
                reason: e.to_string(),
            })?;
        let id = created.id;
        // From here a signal must not end the process before the container is removed.
        let cleanup = crate::interrupt::cleanup_guard();
        let result = self.supervise(&id, spec, &mut log).await;
        self.remove(&id).await;
        drop(cleanup);
        let tail = log.finish();
        let (outcome, exit_code) = result?;
        Ok(StepResult {
            outcome,
            exit_code,
            image: Some(image),
            started_at,
            finished_at: chrono::Utc::now(),
            tail,
        })
    }
}

pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{}s", d.as_secs_f64()),
        120..=7199 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn build_args_are_name_value_pairs_and_the_last_one_wins() {
        let args = parse_build_args("A=1\n B_2=x=y  A=3").unwrap();
        assert_eq!(
            args,
            [("B_2".into(), "x=y".into()), ("A".into(), "3".into())]
        );
        assert!(parse_build_args("novalue")
            .unwrap_err()
            .contains("NAME=value"));
        assert!(parse_build_args("1A=x").is_err());
        assert!(parse_build_args("").unwrap().is_empty());
    }

    #[test]
    fn secrets_are_hidden_where_they_really_are() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::create_dir_all(ws.join(".git")).unwrap();
        std::fs::write(ws.join(".git/config"), "token").unwrap();
        std::fs::create_dir_all(ws.join("state/runs")).unwrap();
        std::os::unix::fs::symlink("state", ws.join(".mlops")).unwrap();
        let (mut binds, mut tmpfs) = (Vec::new(), HashMap::new());
        hide_secrets(ws, &mut binds, &mut tmpfs);
        assert_eq!(binds, ["/dev/null:/workspace/.git/config:ro"]);
        assert_eq!(tmpfs.keys().collect::<Vec<_>>(), ["/workspace/state"]);

        // Nothing to hide: no bind, no tmpfs (a mount over a missing path would fail).
        let empty = tempfile::tempdir().unwrap();
        let (mut binds, mut tmpfs) = (Vec::new(), HashMap::new());
        hide_secrets(empty.path(), &mut binds, &mut tmpfs);
        assert!(binds.is_empty() && tmpfs.is_empty());
    }
}
