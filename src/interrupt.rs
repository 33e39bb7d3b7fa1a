//! One Ctrl-C / SIGTERM handler for the whole process.
//!
//! [`install`] starts it once (the CLI does, before any command runs). When a signal arrives:
//! - if no [`Cleanup`] guard is alive, nothing needs undoing: the process ends at once with
//!   exit code 130 (a pull, an upload, a git call, a wait on a registry all end there);
//! - otherwise every [`interrupted`] future resolves, and the code holding the guard removes its
//!   containers or undoes its half-done swap, then returns [`Interrupted`], which the CLI maps to
//!   exit code 130. A second signal ends the process at once.
//!
//! The handler runs on a thread of its own with its own runtime, so it outlives the per-command
//! runtimes and sees a signal whatever the main thread is doing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// Exit code after Ctrl-C or SIGTERM (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static CLEANUPS: AtomicUsize = AtomicUsize::new(0);
static SIGNALLED: OnceLock<tokio::sync::watch::Sender<bool>> = OnceLock::new();

/// Interrupted by Ctrl-C or SIGTERM, after cleaning up; the text says what was cleaned up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

/// While alive, a signal is handed to [`interrupted`] futures instead of ending the process.
#[must_use = "the guard protects the cleanup only while it is alive"]
pub struct Cleanup(());

impl Drop for Cleanup {
    fn drop(&mut self) {
        CLEANUPS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Declares that the caller has something to undo if the process is interrupted now.
pub fn cleanup_guard() -> Cleanup {
    CLEANUPS.fetch_add(1, Ordering::SeqCst);
    Cleanup(())
}

/// Whether a signal has arrived.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

fn sender() -> &'static tokio::sync::watch::Sender<bool> {
    SIGNALLED.get_or_init(|| tokio::sync::watch::channel(false).0)
}

/// Resolves once Ctrl-C or SIGTERM has arrived (at once if one already has). Never resolves
/// when [`install`] was not called.
pub async fn interrupted() {
    let mut rx = sender().subscribe();
    // The sender is static: `wait_for` cannot fail with a closed channel.
    let _ = rx.wait_for(|signalled| *signalled).await;
}

/// Starts the process-wide handler; later calls do nothing. Returns once the handler is in
/// place, so a signal sent after this call is never missed.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("mlops-signals".into())
            .spawn(move || listen(ready_tx));
        match spawned {
            Ok(_) => {
                let _ = ready_rx.recv();
            }
            Err(e) => tracing::warn!("no signal handler ({e}): Ctrl-C ends mlops at once"),
        }
    });
}

fn listen(ready: std::sync::mpsc::Sender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!("no signal handler ({e}): Ctrl-C ends mlops at once");
            let _ = ready.send(());
            return;
        }
    };
    runtime.block_on(async move {
        let (mut int, mut term) = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("no signal handler ({e}): Ctrl-C ends mlops at once");
                let _ = ready.send(());
                return;
            }
        };
        let _ = ready.send(());
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            let again = REQUESTED.swap(true, Ordering::SeqCst);
            if again || CLEANUPS.load(Ordering::SeqCst) == 0 {
                eprintln!("mlops: interrupted");
                std::process::exit(EXIT_INTERRUPTED);
            }
            tracing::warn!("interrupted: cleaning up (Ctrl-C again to stop at once)");
            sender().send_replace(true);
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn guards_count() {
        let before = super::CLEANUPS.load(std::sync::atomic::Ordering::SeqCst);
        let a = super::cleanup_guard();
        let b = super::cleanup_guard();
        assert_eq!(
            super::CLEANUPS.load(std::sync::atomic::Ordering::SeqCst),
            before + 2
        );
        drop((a, b));
        assert_eq!(
            super::CLEANUPS.load(std::sync::atomic::Ordering::SeqCst),
            before
        );
    }
}
