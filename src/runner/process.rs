//! `--runner process`: the same command on this machine, with the same variables pointing at
//! host directories, for debugging a step without Docker. Datasets appear under a temporary
//! data directory laid out like /mlops/data (symlinks); the working directory is the repository.
//! The environment is cleared: the step gets the protocol's variables, `train.env`, and `PATH`,
//! `HOME` and `LANG`. It is not a sandbox: the step runs as you, sees the whole repository
//! (`.git/config` and `.mlops` included) and can write wherever you can.

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncReadExt;

use super::{
    dataset_file_name, protocol_env, LogSink, ProtocolPaths, Runner, RunnerError, StepOutcome,
    StepResult, StepSpec,
};

pub struct ProcessRunner;

/// The only variables a host step inherits from mlops' environment.
pub const INHERITED: &[&str] = &["PATH", "HOME", "LANG"];

#[async_trait]
impl Runner for ProcessRunner {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn run(&self, spec: &StepSpec) -> Result<StepResult, RunnerError> {
        let mut log = LogSink::open(&spec.step, &spec.log_file)?;
        let data_root = tempfile::Builder::new().prefix("mlops-data-").tempdir()?;
        let mut datasets = Vec::new();
        for d in &spec.datasets {
            let dir = data_root.path().join(&d.name);
            if d.host_path.is_dir() {
                std::os::unix::fs::symlink(&d.host_path, &dir)?;
                datasets.push((d.name.clone(), dir.display().to_string()));
            } else {
                std::fs::create_dir_all(&dir)?;
                let inside = dir.join(dataset_file_name(&d.host_path));
                std::os::unix::fs::symlink(&d.host_path, &inside)?;
                datasets.push((d.name.clone(), inside.display().to_string()));
            }
        }
        std::fs::create_dir_all(&spec.outputs_dir)?;
        std::fs::create_dir_all(&spec.model_dir)?;
        let paths = ProtocolPaths {
            data_dir: data_root.path().display().to_string(),
            datasets,
            model_dir: spec.model_dir.display().to_string(),
            outputs_dir: spec.outputs_dir.display().to_string(),
            params_file: spec.params_file.display().to_string(),
        };
        let Some((program, args)) = spec.command.split_first() else {
            return Err(RunnerError::Start {
                step: spec.step.clone(),
                reason: "empty command".into(),
            });
        };
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
            .current_dir(&spec.workspace)
            // Only the protocol's variables, train.env and what a shell needs: never the
            // registry password, the signing key, GITHUB_TOKEN or the runner's ACTIONS_* tokens.
            .env_clear()
            .envs(
                INHERITED
                    .iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (*k, v))),
            )
            .envs(protocol_env(spec, &paths))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group: a timeout or Ctrl-C kills the whole tree.
            .process_group(0);
        let started_at = chrono::Utc::now();
        let mut child = tokio::process::Command::from(cmd)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| RunnerError::Start {
                step: spec.step.clone(),
                reason: format!("{program}: {e}"),
            })?;
        let pgid = child.id().map(|p| p as i32);
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        // Until the process group is gone, a signal is ours to handle (kill the group).
        let _cleanup = crate::interrupt::cleanup_guard();
        let deadline = tokio::time::sleep(spec.resources.timeout);
        tokio::pin!(deadline);
        let (mut out_buf, mut err_buf) = (vec![0u8; 8192], vec![0u8; 8192]);
        let mut stop: Option<StepOutcome> = None;
        let status = loop {
            tokio::select! {
                n = read_some(&mut stdout, &mut out_buf) => match n {
                    Some(n) => log.write(&out_buf[..n]),
                    None => stdout = None,
                },
                n = read_some(&mut stderr, &mut err_buf) => match n {
                    Some(n) => log.write(&err_buf[..n]),
                    None => stderr = None,
                },
                status = child.wait(), if stdout.is_none() && stderr.is_none() => break Some(status?),
                _ = &mut deadline => { stop = Some(StepOutcome::Timeout); break None; }
                _ = crate::interrupt::interrupted() => { stop = Some(StepOutcome::Interrupted); break None; }
            }
        };
        if let Some(outcome) = stop {
            if let Some(pgid) = pgid {
                kill_group(pgid);
            }
            let _ = child.wait().await;
            log.note(match outcome {
                StepOutcome::Timeout => "timed out; process group killed",
                _ => "interrupted; process group killed",
            });
            return Ok(StepResult {
                outcome,
                exit_code: None,
                image: None,
                started_at,
                finished_at: chrono::Utc::now(),
                tail: log.finish(),
            });
        }
        let code = status.and_then(|s| s.code()).map(i64::from);
        Ok(StepResult {
            outcome: if code == Some(0) {
                StepOutcome::Ok
            } else {
                StepOutcome::Failed
            },
            exit_code: code.or(Some(-1)),
            image: None,
            started_at,
            finished_at: chrono::Utc::now(),
            tail: log.finish(),
        })
    }
}

async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut Option<R>,
    buf: &mut [u8],
) -> Option<usize> {
    match reader {
        Some(r) => match r.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

fn kill_group(pgid: i32) {
    // `kill -KILL -PGID`: the standard tool, no libc binding needed.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
}
