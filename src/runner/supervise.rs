//! Following a started container to its end: its output streamed to the step's log, then its
//! exit status; bounded by the step's timeout and by Ctrl-C/SIGTERM whatever the engine does
//! (a log stream that fails or never ends, a wait that never answers).

use bollard::models::EventMessage;
use bollard::query_parameters::{
    EventsOptionsBuilder, KillContainerOptionsBuilder, LogsOptionsBuilder,
};
use futures_util::StreamExt;
use std::collections::HashMap;

use std::time::Duration;

use super::docker::{humanize, DockerRunner};
use super::{LogSink, RunnerError, StepOutcome, StepSpec};

/// How long the output may stay silent once the exit status is known before we stop reading
/// it: the engine closes the stream after the last lines, which on a loaded machine can trail
/// the exit by a few seconds. Still bounded by the step's deadline.
const LOG_GRACE: Duration = Duration::from_secs(5);
/// How long a kill or an inspect may take before we stop waiting for the engine.
const ENGINE_GRACE: Duration = Duration::from_secs(30);
/// How long a step killed by SIGKILL under a memory limit waits for the engine's OOM event.
/// The engine marks a container OOM-killed only when that event comes before the exit; when
/// the process killed is not the step's first (`a | b`) it often comes after, and the event
/// is then the only word of it.
const OOM_EVENT_WAIT: Duration = Duration::from_secs(2);

/// Whether `event` is an OOM kill in container `id` (not trusting the engine to have applied
/// the subscription's filters: another container's event, or another action, is not one).
fn is_oom_of(event: &EventMessage, id: &str) -> bool {
    let actor = event.actor.as_ref().and_then(|a| a.id.as_deref());
    event.action.as_deref() == Some("oom") && actor == Some(id)
}

/// How many bytes of each stream the followed log stream delivered.
#[derive(Default)]
struct Seen {
    stdout: u64,
    stderr: u64,
    console: u64,
}

impl Seen {
    /// The counter of the stream `output` belongs to (stdin is never logged).
    fn of(&mut self, output: &bollard::container::LogOutput) -> Option<&mut u64> {
        use bollard::container::LogOutput::*;
        match output {
            StdOut { .. } => Some(&mut self.stdout),
            StdErr { .. } => Some(&mut self.stderr),
            Console { .. } => Some(&mut self.console),
            StdIn { .. } => None,
        }
    }

    fn count(&mut self, output: &bollard::container::LogOutput) {
        let n = output.as_ref().len() as u64;
        if let Some(c) = self.of(output) {
            *c += n;
        }
    }
}

enum Stop {
    Exited(Result<i64, bollard::errors::Error>),
    Timeout,
    Interrupted,
}

impl DockerRunner {
    /// Starts the container and follows it to the end: exit, timeout or a signal to us.
    pub(super) async fn supervise(
        &self,
        id: &str,
        spec: &StepSpec,
        log: &mut LogSink,
    ) -> Result<(StepOutcome, Option<i64>), RunnerError> {
        // Attach before starting so that no early output is lost.
        let logs_options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let mut logs = self.docker.logs(id, Some(logs_options));
        let mut oom_events = self.oom_events(id);
        let (mut oom_seen, mut events_open) = (false, true);
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| RunnerError::Start {
                step: spec.step.clone(),
                reason: e.to_string(),
            })?;
        let deadline = tokio::time::sleep(spec.resources.timeout);
        tokio::pin!(deadline);
        // The exit status is awaited alongside the output, and everything is bounded by the
        // deadline and by a signal: neither a failing log stream nor a silent engine can make a
        // step outlive its timeout.
        let mut wait = self.docker.wait_container(id, None);
        let grace = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(grace);
        let mut logs_open = true;
        let mut seen = Seen::default();
        let mut exited: Option<Result<i64, bollard::errors::Error>> = None;
        let stop = loop {
            tokio::select! {
                item = logs.next(), if logs_open => match item {
                    Some(Ok(output)) => {
                        seen.count(&output);
                        log.write(&output.into_bytes());
                        if exited.is_some() {
                            // Still draining after the exit: silence, not time, ends it.
                            grace.as_mut().reset(tokio::time::Instant::now() + LOG_GRACE);
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!("log stream: {e}");
                        logs_open = false;
                    }
                    None => logs_open = false,
                },
                status = wait.next(), if exited.is_none() => {
                    exited = Some(match status {
                        Some(Ok(r)) => Ok(r.status_code),
                        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
                        Some(Err(e)) => Err(e),
                        None => Ok(-1),
                    });
                    // The last lines may trail the exit a little; not for long.
                    grace.as_mut().reset(tokio::time::Instant::now() + LOG_GRACE);
                },
                event = oom_events.next(), if events_open && !oom_seen => match event {
                    Some(Ok(event)) => oom_seen = is_oom_of(&event, id),
                    // An engine that cannot stream events still reports OOM kills by inspect.
                    _ => events_open = false,
                },
                _ = &mut grace, if exited.is_some() && logs_open => logs_open = false,
                _ = &mut deadline => break Stop::Timeout,
                _ = crate::interrupt::interrupted() => break Stop::Interrupted,
            }
            if !logs_open {
                if let Some(code) = exited.take() {
                    break Stop::Exited(code);
                }
            }
        };
        let code = match stop {
            Stop::Exited(code) => {
                let code = code?;
                self.catch_up(id, &seen, log).await;
                code
            }
            Stop::Timeout => return Ok((self.kill(id, spec, log, true).await, None)),
            Stop::Interrupted => return Ok((self.kill(id, spec, log, false).await, None)),
        };
        // An event of a process the step outlived (exit 0) is not the step's outcome.
        let mut oom = self.oom_killed(id, spec).await? || (oom_seen && code != 0);
        if !oom && events_open && code == 137 && spec.resources.memory_bytes.is_some() {
            // Killed by SIGKILL under a memory limit: the OOM event may still be on its way.
            let oom_event = async {
                while let Some(Ok(event)) = oom_events.next().await {
                    if is_oom_of(&event, id) {
                        return true;
                    }
                }
                false
            };
            oom = tokio::time::timeout(OOM_EVENT_WAIT, oom_event)
                .await
                .unwrap_or(false);
        }
        let outcome = if oom {
            let limit = spec
                .resources
                .memory_bytes
                .map(|b| format!(" (limit {} MiB)", b >> 20))
                .unwrap_or_default();
            log.note(&format!("killed: out of memory{limit}"));
            StepOutcome::Oom
        } else if code == 0 {
            StepOutcome::Ok
        } else {
            StepOutcome::Failed
        };
        Ok((outcome, Some(code)))
    }

    /// The container's OOM events, from a second before its start (the engine replays them
    /// to a subscription that comes late).
    fn oom_events(
        &self,
        id: &str,
    ) -> std::pin::Pin<
        Box<impl futures_util::Stream<Item = Result<EventMessage, bollard::errors::Error>> + '_>,
    > {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().saturating_sub(1))
            .to_string();
        let filters = HashMap::from([("container", vec![id]), ("event", vec!["oom"])]);
        let options = EventsOptionsBuilder::new()
            .since(&since)
            .filters(&filters)
            .build();
        Box::pin(self.docker.events(Some(options)))
    }

    /// Whether the engine says the container was killed for want of memory.
    async fn oom_killed(&self, id: &str, spec: &StepSpec) -> Result<bool, RunnerError> {
        let inspect = tokio::time::timeout(ENGINE_GRACE, self.docker.inspect_container(id, None))
            .await
            .map_err(|_| RunnerError::Start {
                step: spec.step.clone(),
                reason: format!(
                    "the engine did not describe container {id} within {}s after it exited",
                    ENGINE_GRACE.as_secs()
                ),
            })??;
        Ok(inspect
            .state
            .as_ref()
            .and_then(|s| s.oom_killed)
            .unwrap_or(false))
    }

    /// Kills a container that ran out of time (or was interrupted) and says so in its log.
    async fn kill(
        &self,
        id: &str,
        spec: &StepSpec,
        log: &mut LogSink,
        timeout: bool,
    ) -> StepOutcome {
        let kill = KillContainerOptionsBuilder::default()
            .signal("KILL")
            .build();
        let killed = self.docker.kill_container(id, Some(kill));
        if tokio::time::timeout(ENGINE_GRACE, killed).await.is_err() {
            tracing::warn!("the engine did not confirm killing container {id}");
        }
        if timeout {
            log.note(&format!(
                "timed out after {}; container killed",
                humanize(spec.resources.timeout)
            ));
            return StepOutcome::Timeout;
        }
        log.note("interrupted; container removed");
        StepOutcome::Interrupted
    }

    /// The engine's followed log stream can end before the last lines of an exited container
    /// reach it (Docker 20.10's json-file follower does, on a busy engine, most often with a
    /// last line that has no newline). Once the container has exited its log is complete, so
    /// it is read again, without following, and what the stream did not deliver is written:
    /// per stream, everything after the bytes already seen.
    async fn catch_up(&self, id: &str, seen: &Seen, log: &mut LogSink) {
        let options = LogsOptionsBuilder::default()
            .follow(false)
            .stdout(true)
            .stderr(true)
            .build();
        let mut skip = Seen {
            stdout: seen.stdout,
            stderr: seen.stderr,
            console: seen.console,
        };
        let mut logs = self.docker.logs(id, Some(options));
        let read = async {
            while let Some(item) = logs.next().await {
                let output = match item {
                    Ok(output) => output,
                    Err(e) => {
                        tracing::debug!("re-reading the log: {e}");
                        return;
                    }
                };
                let Some(left) = skip.of(&output) else {
                    continue;
                };
                let bytes = output.as_ref();
                let n = bytes.len() as u64;
                if *left >= n {
                    *left -= n;
                    continue;
                }
                let from = *left as usize;
                *left = 0;
                log.write(&bytes[from..]);
            }
        };
        if tokio::time::timeout(ENGINE_GRACE, read).await.is_err() {
            tracing::warn!("the engine did not re-read the log of container {id} in time");
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against a fake engine on a unix socket that misbehaves the way a real one can.

    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::config::{ImageSource, Resources};

    /// Answers start and kill; fails the log stream at once; never answers wait (the
    /// headers go out, the status never does, as when the container runs on). Records the
    /// requests it saw.
    ///
    /// With `oom_late`, the engine of an OOM race instead: the step's output ends at once, it
    /// exits 137, inspect says it was not OOM-killed, and its OOM event is on the event stream.
    async fn fake_engine(
        socket: std::path::PathBuf,
        seen: Arc<Mutex<Vec<String>>>,
        oom_late: bool,
    ) {
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let Ok(n) = conn.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end + 4);
                    let line = head.lines().next().unwrap_or("").to_string();
                    seen.lock().unwrap().push(line.clone());
                    let reply: &[u8] = if oom_late && line.contains("/events") {
                        let event =
                            br#"{"Type":"container","Action":"oom","Actor":{"ID":"c0ffee"}}"#;
                        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                        let chunk = format!(
                            "{:x}\r\n{}\n\r\n",
                            event.len() + 1,
                            String::from_utf8_lossy(event)
                        );
                        let _ = conn.write_all(format!("{head}{chunk}").as_bytes()).await;
                        std::future::pending::<()>().await;
                        return;
                    } else if oom_late && line.contains("/logs") {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                    } else if oom_late && line.contains("/wait") {
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 31\r\n\r\n{\"StatusCode\":137,\"Error\":null}"
                    } else if oom_late && line.contains("/json") {
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 43\r\n\r\n{\"Id\":\"c0ffee\",\"State\":{\"OOMKilled\":false}}"
                    } else if line.contains("/logs") {
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 33\r\n\r\n{\"message\":\"log stream is gone\"}\n"
                    } else if line.contains("/wait") {
                        let _ = conn
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                            .await;
                        std::future::pending::<()>().await;
                        return;
                    } else {
                        b"HTTP/1.1 204 No Content\r\n\r\n"
                    };
                    if conn.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    }

    fn spec(dir: &std::path::Path, timeout: Duration) -> StepSpec {
        StepSpec {
            step: "train".into(),
            run_id: "r".into(),
            image: ImageSource::Image("x".into()),
            command: vec!["true".into()],
            workspace: dir.to_path_buf(),
            datasets: Vec::new(),
            model_dir: dir.join("model"),
            model_writable: true,
            outputs_dir: dir.join("outputs"),
            params_file: dir.join("params.json"),
            params: Default::default(),
            env: Default::default(),
            resources: Resources {
                cpus: None,
                memory_bytes: None,
                gpus: 0,
                timeout,
                pids: 16,
            },
            network: false,
            mount_git: false,
            git_commit: String::new(),
            log_file: dir.join("train.log"),
        }
    }

    /// A runner talking to [`fake_engine`] on a socket in `dir`, and the requests it sees.
    async fn on_fake_engine(
        dir: &std::path::Path,
        oom_late: bool,
    ) -> (DockerRunner, Arc<Mutex<Vec<String>>>) {
        let socket = dir.join("engine.sock");
        let seen = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(fake_engine(socket.clone(), seen.clone(), oom_late));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let docker = bollard::Docker::connect_with_unix(
            socket.to_str().unwrap(),
            600,
            bollard::API_DEFAULT_VERSION,
        )
        .unwrap();
        (DockerRunner { docker }, seen)
    }

    #[tokio::test]
    async fn a_failing_log_stream_cannot_make_a_step_outlive_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let (runner, seen) = on_fake_engine(dir.path(), false).await;
        let spec = spec(dir.path(), Duration::from_secs(2));
        let mut log = LogSink::open("train", &spec.log_file).unwrap();
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(
            Duration::from_secs(20),
            runner.supervise("c0ffee", &spec, &mut log),
        )
        .await
        .expect("the step outlived its 2 s timeout by 18 s after its log stream failed");
        assert!(
            matches!(result, Ok((StepOutcome::Timeout, None))),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        let seen = seen.lock().unwrap().clone();
        assert!(
            seen.iter()
                .any(|l| l.starts_with("POST") && l.contains("/containers/c0ffee/kill")),
            "the container was not killed: {seen:?}"
        );
    }

    /// The engine's OOM flag comes from an event that can trail the exit (`head | tail`,
    /// the process killed not the step's first): the event says it, and so does the outcome.
    #[tokio::test]
    async fn an_oom_kill_reported_only_as_an_event_is_out_of_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (runner, seen) = on_fake_engine(dir.path(), true).await;
        let mut spec = spec(dir.path(), Duration::from_secs(20));
        spec.resources.memory_bytes = Some(32 << 20);
        let mut log = LogSink::open("train", &spec.log_file).unwrap();
        let result = tokio::time::timeout(
            Duration::from_secs(15),
            runner.supervise("c0ffee", &spec, &mut log),
        )
        .await
        .expect("the step did not finish");
        let seen = seen.lock().unwrap().clone();
        assert!(
            matches!(result, Ok((StepOutcome::Oom, Some(137)))),
            "{result:?} {seen:?}"
        );
    }
}
