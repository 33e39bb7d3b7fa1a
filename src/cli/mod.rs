//! Command line: one file per subcommand. Only this module writes to stdout, and [`run`] alone
//! chooses exit codes: 0 done, 1 a gate or check said no ([`Status::Refused`]), 2 the tool failed
//! (any error: bad input, unreachable service), 130 interrupted ([`crate::interrupt::Interrupted`]).

mod compare;
mod data;
mod deploy;
mod doctor;
mod evaluate;
mod forge;
mod history;
mod incident;
mod init;
mod monitor;
mod notify;
mod package;
mod promote;
mod registry;
mod run;
mod sign;
mod status;
mod track;
mod tracking;
mod train;
mod validate;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// How a command ended when the tool did not fail; [`run`] turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Exit 0.
    Done,
    /// A gate, a check or a signature said no (exit 1); the command has said why.
    Refused,
}

/// What every subcommand returns.
type Exit = anyhow::Result<Status>;

/// Exit code when a gate or a check said no.
pub const EXIT_REJECTED: u8 = 1;
/// Exit code when the tool could not do its job.
pub const EXIT_FAILED: u8 = 2;
/// Exit code after Ctrl-C or SIGTERM (128 + SIGINT), once containers are cleaned up.
pub const EXIT_INTERRUPTED: u8 = crate::interrupt::EXIT_INTERRUPTED as u8;

#[derive(Debug, Parser)]
#[command(
    name = "mlops",
    version,
    about = "GitOps CI/CD/CT for machine-learning models"
)]
pub struct Cli {
    /// Path of mlops.yaml; its directory is the repository root for every step.
    #[arg(long, global = true, env = "MLOPS_CONFIG", default_value = crate::config::DEFAULT_FILE)]
    pub config: PathBuf,
    /// More logs on stderr (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check mlops.yaml against its schema and rules; every error with file:line:column.
    Validate(validate::Args),
    /// Data gates against the accepted references (`check`), and accepting new ones (`accept`).
    Data(data::Args),
    /// Train in a container: a new run in .mlops/runs/<id>/ with the model and run.json.
    Train(train::Args),
    /// Score the run's model and the champion's on the same test set.
    Evaluate(evaluate::Args),
    /// The champion/challenger gate: exit 0 promote, 1 reject; writes compare.json and report.md.
    Compare(compare::Args),
    /// Build the serving image with the run's model, push it by digest (daemonless).
    Package(package::Args),
    /// Sign IMAGE@DIGEST (cosign-compatible) and attest the run's evidence.
    Sign(sign::Args),
    /// Verify IMAGE@DIGEST's signature (and attestation) with a public key; fails closed.
    Verify(verify::Args),
    /// The loop on this machine: validate → data check → train → evaluate → compare → package
    /// → sign; stops at the first no.
    Run(run::Args),
    /// Propose pinning the run's signed digest in an environment (a branch with one commit).
    Promote(promote::Args),
    /// Run what an environment file pins, after verifying its signature (docker target).
    Deploy(deploy::Args),
    /// What every environment runs now: model, digest, run, metrics, when, through which change.
    Status(status::Args),
    /// Promotions and rollbacks of one environment, newest first, from its file's git log.
    History(history::Args),
    /// Mirror a run (params, metrics, datasets, artifacts, model version) into MLflow again.
    Track(track::Args),
    /// Watch what an environment serves: captured inputs and predictions against the training
    /// reference and the model's test-set predictions, live quality, errors, latency.
    /// Exit 0 healthy (or not enough data), 1 alert.
    Monitor(monitor::Args),
    /// Scaffold mlops.yaml and the GitHub workflows (CI, promote, deploy); --check reports drift.
    Init(init::Args),
    /// Check this machine or CI job is ready: config, engine, registry push, signing key,
    /// forge token; exit 1 with a fix per failing check.
    Doctor(doctor::Args),
}

/// The formats of the commands that render all four: compare, data check, status, history.
/// Every other command takes the narrower enum of what it renders, so clap refuses the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Markdown,
    Github,
}

/// The formats of a command whose result is one value: a line for people, or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResultFormat {
    Human,
    Json,
}

pub fn init_logging(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("mlops={default},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(NeutralStderr::default)
        .with_target(false)
        .without_time()
        .try_init();
}

/// One log event, written to stderr on drop with [`crate::text::neutralise`] applied: events quote
/// values (paths, names, responses) that must not become workflow commands.
#[derive(Default)]
struct NeutralStderr(Vec<u8>);

impl std::io::Write for NeutralStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for NeutralStderr {
    fn drop(&mut self) {
        use std::io::Write;
        let text = crate::text::neutralise(&String::from_utf8_lossy(&self.0));
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

/// Prints a result as pretty JSON on stdout, with no text the runner could read as a command.
fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{}", crate::text::neutralise_json(&text));
    Ok(())
}

pub fn run(cli: Cli) -> ExitCode {
    crate::interrupt::install();
    let result = match &cli.command {
        Command::Validate(args) => validate::run(&cli, args),
        Command::Data(args) => data::run(&cli, args),
        Command::Train(args) => train::run(&cli, args),
        Command::Evaluate(args) => evaluate::run(&cli, args),
        Command::Compare(args) => compare::run(&cli, args),
        Command::Package(args) => package::run(&cli, args),
        Command::Sign(args) => sign::run(&cli, args),
        Command::Verify(args) => verify::run(&cli, args),
        Command::Run(args) => run::run(&cli, args),
        Command::Promote(args) => promote::run(&cli, args),
        Command::Deploy(args) => deploy::run(&cli, args),
        Command::Status(args) => status::run(&cli, args),
        Command::History(args) => history::run(&cli, args),
        Command::Init(args) => init::run(&cli, args),
        Command::Doctor(args) => doctor::run(&cli, args),
        Command::Track(args) => track::run(&cli, args),
        Command::Monitor(args) => monitor::run(&cli, args),
    };
    match result {
        Ok(Status::Done) => ExitCode::SUCCESS,
        Ok(Status::Refused) => ExitCode::from(EXIT_REJECTED),
        Err(e) if e.downcast_ref::<crate::interrupt::Interrupted>().is_some() => {
            eprintln!("mlops: {}", crate::text::neutralise(&e.to_string()));
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Err(e) => {
            report_failure(&e);
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Prints a tool failure (exit 2) on stderr, and as an annotation under GitHub Actions.
fn report_failure(e: &anyhow::Error) {
    let text = format!("{e:#}");
    eprintln!("error: {}", crate::text::neutralise(&text));
    if crate::gha::active() {
        eprintln!("::error title=mlops::{}", crate::text::escape_data(&text));
    }
}

/// The environment `name` of mlops.yaml, or an error naming the ones it has.
fn environment<'a>(
    config: &'a crate::config::Config,
    name: &str,
) -> anyhow::Result<&'a crate::config::EnvironmentConfig> {
    Ok(config.environment(name)?)
}

/// A step that said no (exit 1): why, on stderr and as an annotation under GitHub Actions.
fn refuse(command: &str, outcome: &str, why: &str) -> Status {
    eprintln!(
        "{}",
        crate::text::neutralise(&format!("mlops {command}: {outcome}: {why}"))
    );
    if crate::gha::active() {
        eprintln!(
            "::error title=mlops {command}::{}",
            crate::text::escape_data(why)
        );
    }
    Status::Refused
}

/// Runs async work on a runtime made for this one command.
fn block_on<T, F: std::future::Future<Output = anyhow::Result<T>>>(f: F) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(f)
}

/// How a step that did not succeed ends the command (None when it succeeded), with the reason
/// on stderr; an interrupted step is the error [`crate::interrupt::Interrupted`].
fn step_exit(
    what: &str,
    result: &crate::runner::StepResult,
    run: &crate::runs::RunDir,
) -> anyhow::Result<Option<Status>> {
    let Some(reason) = result.failure(what, &run.id)? else {
        return Ok(None);
    };
    print_step_failure(&reason, result, run);
    Ok(Some(Status::Refused))
}

/// A failed step's reason, the last lines of its log and where the whole log is.
fn print_step_failure(reason: &str, result: &crate::runner::StepResult, run: &crate::runs::RunDir) {
    eprintln!(
        "{}",
        crate::text::neutralise(&format!(
            "error: {reason} (run {}); last lines of its log:",
            run.id
        ))
    );
    for line in &result.tail {
        // Tail lines hold no line end (the sink split them); a lone \r would be one.
        eprintln!("{}", crate::text::neutralise(&format!("  | {line}")));
    }
    eprintln!("full log: {}", run.logs_dir().display());
    if crate::gha::active() {
        eprintln!("::error title=mlops::{}", crate::text::escape_data(reason));
    }
}
