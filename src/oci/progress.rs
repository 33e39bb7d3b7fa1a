//! Progress of long uploads: a bar on a terminal (indicatif, all bars of a command in one
//! `MultiProgress`), else a line every 10 s through the log (CI logs stay readable).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often a line is logged when stderr is not a terminal.
const EVERY: Duration = Duration::from_secs(10);

fn bars() -> &'static indicatif::MultiProgress {
    static BARS: OnceLock<indicatif::MultiProgress> = OnceLock::new();
    BARS.get_or_init(indicatif::MultiProgress::new)
}

/// One transfer's progress; cheap to clone (the clones share it).
#[derive(Clone)]
pub(crate) struct Progress(Arc<Inner>);

struct Inner {
    label: String,
    total: u64,
    bar: Option<indicatif::ProgressBar>,
    at: AtomicU64,
    last_line: Mutex<Instant>,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = bars().add(indicatif::ProgressBar::new(total));
            let style = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.set_message(label.to_string());
            bar
        });
        Progress(Arc::new(Inner {
            label: label.to_string(),
            total,
            bar,
            at: AtomicU64::new(0),
            last_line: Mutex::new(Instant::now()),
        }))
    }

    /// The transfer is at byte `at` (it may go back when bytes are sent again).
    pub fn set(&self, at: u64) {
        let inner = &self.0;
        inner.at.store(at, Ordering::Relaxed);
        if let Some(bar) = &inner.bar {
            bar.set_position(at);
            return;
        }
        let mut last = inner.last_line.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= EVERY {
            *last = Instant::now();
            let pct = (at as f64 * 100.0 / inner.total.max(1) as f64).min(100.0);
            tracing::info!(
                "{}: {} of {} MiB ({pct:.0}%)",
                inner.label,
                at >> 20,
                inner.total >> 20
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0.bar {
            bar.finish_and_clear();
        }
    }
}
