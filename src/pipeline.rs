//! `mlops run`: the loop on one machine, after validation — data check → train → evaluate →
//! compare → package → sign (after a promote verdict, when configured) — stopping at the first
//! step that fails or gate that says no. What happens is told as it happens through [`Event`]s;
//! the caller prints them. Nothing here prints or chooses an exit code.

use anyhow::Result;

use crate::compare::{Comparison, Verdict};
use crate::config::Config;
use crate::data::check;
use crate::oci::credentials::RegistrySettings;
use crate::oci::image::Packaged;
use crate::oci::reference::ImageLocation;
use crate::runner::{self, RunnerKind, StepResult};
use crate::runs::RunDir;
use crate::signing::{attest, cosign, Signer, SigningError};
use crate::steps::{self, ChampionEvaluation};

/// How to run the loop.
pub struct Options {
    pub runner: RunnerKind,
    /// Training parameter overrides, `KEY=VALUE`.
    pub params: Vec<String>,
    pub settings: RegistrySettings,
    /// Mirrors the run into MLflow (`tracking:`); never changes what the loop decides.
    pub tracker: crate::tracking::Tracker,
}

/// What the loop did, as it did it.
pub enum Event<'a> {
    DataChecked(&'a check::Report),
    /// The run exists (its id is known) and training starts.
    Started(&'a RunDir),
    /// A step did not succeed: why, and its result (the last lines of its log).
    StepFailed {
        reason: &'a str,
        result: &'a StepResult,
        run: &'a RunDir,
    },
    Trained(&'a RunDir),
    Evaluated,
    Compared(&'a Comparison, &'a RunDir),
    Packaged(&'a Packaged),
    /// Packaged but not signed, and why (no key at hand, an OCI layout).
    NotSigned(String),
    Signed,
}

/// Where the loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    DataCheck,
    Train,
    Evaluate,
    Compare,
}

pub enum Ended {
    /// Every step passed and the gate said promote.
    Done(RunDir),
    /// A step failed or a gate said no at `at` (the run, once there is one).
    Stopped { at: Stage, run: Option<RunDir> },
}

/// Runs the loop for a valid `config`; `show` hears every [`Event`].
pub async fn run(
    config: &Config,
    options: &Options,
    show: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<Ended> {
    // Schema, changed content and drift against the accepted references.
    let data_report = check::check(config, None)?;
    show(Event::DataChecked(&data_report))?;
    if !data_report.passed {
        return Ok(Ended::Stopped {
            at: Stage::DataCheck,
            run: None,
        });
    }
    let overrides = steps::parse_overrides(&options.params)?;
    let runner = runner::select(options.runner).await?;
    let (run, trained) = steps::train(config, runner.as_ref(), &overrides).await?;
    show(Event::Started(&run))?;
    crate::fsutil::write_json_atomic(&run.data_check_json(), &data_report)?;
    let tracker = &options.tracker;
    tracker.trained(config, &run, trained.outcome).await?;
    if failed("training", &trained, &run, show)? {
        return Ok(stopped(Stage::Train, run));
    }
    show(Event::Trained(&run))?;
    let eval = steps::evaluate(config, runner.as_ref(), &run).await?;
    tracker
        .evaluated(&run, crate::tracking::evaluation_outcome(&eval))
        .await?;
    if failed("evaluation of the challenger", &eval.challenger, &run, show)? {
        return Ok(stopped(Stage::Evaluate, run));
    }
    if let Some(ChampionEvaluation::Reevaluated { env, result }) = &eval.champion {
        let what = format!("evaluation of the champion of {env}");
        if failed(&what, result, &run, show)? {
            return Ok(stopped(Stage::Evaluate, run));
        }
    }
    show(Event::Evaluated)?;
    let comparison = steps::compare(config, &run)?;
    tracker.compared(&run, &comparison).await?;
    show(Event::Compared(&comparison, &run))?;
    if comparison.verdict == Verdict::Reject {
        return Ok(stopped(Stage::Compare, run));
    }
    if config.package.is_some() {
        let packaged = steps::package(config, &run, &options.settings).await?;
        tracker.packaged(&run, &packaged).await?;
        show(Event::Packaged(&packaged))?;
        sign(config, &run, &packaged, options, show).await?;
    }
    Ok(Ended::Done(run))
}

fn stopped(at: Stage, run: RunDir) -> Ended {
    Ended::Stopped { at, run: Some(run) }
}

/// Whether the step failed (told to `show`); an interrupted step is an error.
fn failed(
    what: &str,
    result: &StepResult,
    run: &RunDir,
    show: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<bool> {
    match result.failure(what, &run.id)? {
        None => Ok(false),
        Some(reason) => {
            show(Event::StepFailed {
                reason: &reason,
                result,
                run,
            })?;
            Ok(true)
        }
    }
}

/// Signs and attests the packaged image when a key is at hand; says why not otherwise.
async fn sign(
    config: &Config,
    run: &RunDir,
    packaged: &Packaged,
    options: &Options,
    show: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<()> {
    let settings = &options.settings;
    if let ImageLocation::Layout(_) = packaged.location()? {
        return show(Event::NotSigned(
            "an OCI layout on disk; signatures live in a registry".into(),
        ));
    }
    if config.sign.key.is_none() && !config.sign.keyless {
        return show(Event::NotSigned("no sign: section in mlops.yaml".into()));
    }
    let signer = match Signer::resolve(Some(config), None) {
        Ok(s) => s,
        Err(SigningError::KeyVariableUnset { var }) => {
            return show(Event::NotSigned(format!(
                "{var} is not set; `mlops sign --run {}` signs later",
                run.id
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let (image, digest) = packaged.pinned("signatures live in a registry")?;
    cosign::sign(&signer, &image, &digest, settings).await?;
    let name = image.name();
    let statements = attest::statements(run, packaged, &name)?;
    cosign::attest(&signer, &image, &digest, &statements, settings).await?;
    let signature = format!("{name}:{}", cosign::artifact_tag(&digest, "sig"));
    crate::fsutil::write_json_atomic(
        &run.sign_json(),
        &serde_json::json!({
            "image": packaged.reference,
            "signature": signature,
            "attestation": format!("{name}:{}", cosign::artifact_tag(&digest, "att")),
            "public_key": signer.public_pem,
        }),
    )?;
    options.tracker.signed(digest.as_ref(), &signature).await?;
    show(Event::Signed)
}
