//! `tracking:` — every run and model version mirrored into an MLflow tracking server, in
//! MLflow's own conventions, so teams browse in MLflow what the gate decided. The evidence of
//! record stays the signed attestation: nothing here feeds a verdict.
//!
//! One MLflow run per mlops run, found again by its tag `mlops.run_id`, so a step run again
//! updates it. [`Tracker`] is the one interface the steps call, once per step:
//! [`Tracker::trained`], [`Tracker::evaluated`], [`Tracker::compared`], [`Tracker::packaged`],
//! [`Tracker::signed`], [`Tracker::deployed`]. A failing server is a warning with its URL and
//! status (and tracking stops for the rest of the command), unless `tracking.required: true`,
//! when it is an error. The tracker holds no interrupt guard: an interrupted step reports itself
//! KILLED on the path the step already returns through.

pub(crate) mod api;
pub(crate) mod client;
mod content;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use tokio::sync::Mutex;

use crate::compare::Comparison;
use crate::config::Config;
use crate::oci::image::Packaged;
use crate::runner::StepOutcome;
use crate::runs::RunDir;

pub(crate) use client::{Auth, Mlflow, Settings};

/// The mirror of one command's runs; [`Tracker::off`] when mlops.yaml has no `tracking:`.
pub struct Tracker {
    inner: Option<Inner>,
}

struct Inner {
    client: Mlflow,
    experiment: String,
    model: String,
    /// `mlflow.user`: who ran the command.
    user: String,
    required: bool,
    /// Set after a failure when tracking is optional: the rest of the command skips it.
    gave_up: AtomicBool,
    /// The experiment and run once known (one lookup per command).
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    experiment_id: Option<String>,
    run: Option<(String, api::RunInfo)>,
}

impl Tracker {
    /// Tracks nothing.
    pub fn off() -> Tracker {
        Tracker { inner: None }
    }

    /// Tracks into `client`'s server, experiment `experiment`, registered model `model`.
    pub(crate) fn new(
        client: Mlflow,
        experiment: &str,
        model: &str,
        user: &str,
        required: bool,
    ) -> Tracker {
        Tracker {
            inner: Some(Inner {
                client,
                experiment: experiment.to_string(),
                model: model.to_string(),
                user: user.to_string(),
                required,
                gave_up: AtomicBool::new(false),
                cache: Mutex::new(Cache::default()),
            }),
        }
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The same tracker with failures as errors (`mlops track`, asked for explicitly).
    pub(crate) fn required(mut self) -> Tracker {
        if let Some(inner) = &mut self.inner {
            inner.required = true;
        }
        self
    }

    /// After `mlops train`: the run (created or found), its params, tags and datasets, and the
    /// step's status.
    pub async fn trained(&self, config: &Config, run: &RunDir, outcome: StepOutcome) -> Result<()> {
        self.guard("train", |t| async move {
            let info = t.run(run).await?;
            let record = run.read_record()?;
            let (params, tags) = content::params_and_tags(config, &record, &t.user);
            let metrics = content::train_metrics(run);
            api::log_batch(&t.client, &info.run_id, &metrics, &params, &tags).await?;
            let inputs = content::datasets(config, &record);
            api::log_inputs(&t.client, &info.run_id, &inputs).await?;
            t.ended(&info, outcome).await?;
            tracing::info!("tracking: run {} at {}", run.id, t.link(&info));
            Ok(())
        })
        .await
    }

    /// After `mlops evaluate`: the challenger's metrics, the champion's as `champion.<metric>`.
    pub async fn evaluated(&self, run: &RunDir, outcome: StepOutcome) -> Result<()> {
        self.guard("evaluate", |t| async move {
            let info = t.run(run).await?;
            let metrics = content::eval_metrics(run);
            api::log_batch(&t.client, &info.run_id, &metrics, &[], &[]).await?;
            t.ended(&info, outcome).await
        })
        .await
    }

    /// After `mlops compare`: the verdict, the report as the run's description, the evidence
    /// files as artifacts.
    pub async fn compared(&self, run: &RunDir, comparison: &Comparison) -> Result<()> {
        self.guard("compare", |t| async move {
            let info = t.run(run).await?;
            let report = std::fs::read_to_string(run.report_md()).unwrap_or_default();
            let tags = vec![
                ("mlops.verdict".to_string(), verdict(comparison).to_string()),
                ("mlflow.note.content".to_string(), report),
            ];
            api::log_batch(&t.client, &info.run_id, &[], &[], &tags).await?;
            t.upload_evidence(run, &info).await?;
            t.ended(&info, StepOutcome::Ok).await
        })
        .await
    }

    /// After `mlops package`: a version of the registered model holding the image's digest.
    pub async fn packaged(&self, run: &RunDir, packaged: &Packaged) -> Result<()> {
        self.guard("package", |t| async move {
            let info = t.run(run).await?;
            t.version_for(run, &info, packaged).await.map(|_| ())
        })
        .await
    }

    /// After `mlops sign`: the version of `digest` tagged with its signature.
    pub async fn signed(&self, digest: &str, signature: &str) -> Result<()> {
        self.guard("sign", |t| async move {
            let Some(v) = api::find_version(&t.client, &t.model, "mlops.digest", digest).await?
            else {
                anyhow::bail!(
                    "no version of registered model {} holds {digest}: package with tracking on first",
                    t.model
                );
            };
            api::set_version_tag(&t.client, &t.model, &v.version, "mlops.signature", signature)
                .await?;
            Ok(())
        })
        .await
    }

    /// After a deploy or rollback of `env`: alias `env` points at the version holding `digest`,
    /// so `models:/<model>@<env>` is what runs there.
    pub async fn deployed(&self, env: &str, digest: &str) -> Result<()> {
        self.guard("deploy", |t| async move {
            let Some(v) = api::find_version(&t.client, &t.model, "mlops.digest", digest).await?
            else {
                anyhow::bail!(
                    "no version of registered model {} holds {digest}, so alias {env} stays where it was: package with tracking on first",
                    t.model
                );
            };
            api::set_alias(&t.client, &t.model, env, &v.version).await?;
            tracing::info!(
                "tracking: models:/{}@{env} is version {} ({digest})",
                t.model,
                v.version
            );
            Ok(())
        })
        .await
    }

    /// Applies the failure policy to one step's tracking.
    async fn guard<'a, F, Fut>(&'a self, step: &str, work: F) -> Result<()>
    where
        F: FnOnce(&'a Inner) -> Fut,
        Fut: std::future::Future<Output = Result<()>> + 'a,
    {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        if inner.gave_up.load(Ordering::SeqCst) {
            return Ok(());
        }
        match work(inner).await {
            Ok(()) => Ok(()),
            Err(e) if inner.required => Err(e.context(format!(
                "tracking the {step} step in MLflow failed, and tracking.required is true"
            ))),
            Err(e) => {
                inner.gave_up.store(true, Ordering::SeqCst);
                tracing::warn!(
                    "tracking: the {step} step is not in MLflow: {e:#} (the step goes on; \
                     tracking is skipped for the rest of this command; tracking.required: true makes this an error)"
                );
                Ok(())
            }
        }
    }
}

/// How an evaluation ended: the challenger's outcome, then the re-evaluated champion's.
pub fn evaluation_outcome(eval: &crate::steps::Evaluation) -> StepOutcome {
    match (&eval.challenger.outcome, &eval.champion) {
        (StepOutcome::Ok, Some(crate::steps::ChampionEvaluation::Reevaluated { result, .. })) => {
            result.outcome
        }
        (outcome, _) => *outcome,
    }
}

/// A step outcome as run.json records it (`ok`, `failed`, `timeout`, `oom`, `interrupted`).
pub(crate) fn recorded_outcome(text: &str) -> StepOutcome {
    match text {
        "ok" => StepOutcome::Ok,
        "interrupted" => StepOutcome::Interrupted,
        "timeout" => StepOutcome::Timeout,
        "oom" => StepOutcome::Oom,
        _ => StepOutcome::Failed,
    }
}

fn verdict(c: &Comparison) -> &'static str {
    match c.verdict {
        crate::compare::Verdict::Promote => "promote",
        crate::compare::Verdict::Reject => "reject",
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Inner {
    async fn experiment_id(&self) -> Result<String> {
        let mut cache = self.cache.lock().await;
        if let Some(id) = &cache.experiment_id {
            return Ok(id.clone());
        }
        let id = api::experiment(&self.client, &self.experiment).await?;
        cache.experiment_id = Some(id.clone());
        Ok(id)
    }

    /// The MLflow run of `run`: found by its tag; created when missing (any step may be the
    /// first one tracked, e.g. after the server was down during training).
    async fn run(&self, run: &RunDir) -> Result<api::RunInfo> {
        if let Some((id, info)) = &self.cache.lock().await.run {
            if *id == run.id {
                return Ok(info.clone());
            }
        }
        let experiment_id = self.experiment_id().await?;
        let record = run.read_record().ok();
        let start_ms = record
            .as_ref()
            .and_then(|r| r.steps.values().next())
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s.started_at).ok())
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(now_ms);
        let tags = content::create_tags(&run.id, record.as_ref(), &self.user);
        let info =
            api::find_or_create_run(&self.client, &experiment_id, &run.id, start_ms, &tags).await?;
        self.cache.lock().await.run = Some((run.id.clone(), info.clone()));
        Ok(info)
    }

    /// FINISHED, FAILED or KILLED, with the end time, as the step ended.
    async fn ended(&self, info: &api::RunInfo, outcome: StepOutcome) -> Result<()> {
        let status = match outcome {
            StepOutcome::Ok => "FINISHED",
            StepOutcome::Interrupted => "KILLED",
            StepOutcome::Failed | StepOutcome::Timeout | StepOutcome::Oom => "FAILED",
        };
        api::update_run(&self.client, &info.run_id, status, Some(now_ms())).await?;
        Ok(())
    }

    fn link(&self, info: &api::RunInfo) -> String {
        format!(
            "{}/#/experiments/{}/runs/{}",
            self.client.ui_base(),
            info.experiment_id,
            info.run_id
        )
    }

    /// run.json, compare.json, report.md, metrics.json and predictions.csv through the
    /// server's artifact proxy.
    async fn upload_evidence(&self, run: &RunDir, info: &api::RunInfo) -> Result<()> {
        for (name, path) in content::evidence_files(run) {
            let Some(target) = api::artifact_path(&info.artifact_uri, &name) else {
                anyhow::bail!(
                    "the run's artifacts live at {} and only MLflow's artifact proxy (mlflow-artifacts:/, `mlflow server --serve-artifacts`) is supported",
                    crate::text::clean(&info.artifact_uri)
                );
            };
            let bytes = crate::outputs::read_limited(&path, content::MAX_ARTIFACT_BYTES, &name)?;
            self.client.put_artifact(&target, &bytes).await?;
        }
        Ok(())
    }

    /// The version of the registered model holding the packaged digest: found, or created
    /// with the image by digest as its source (the run's artifacts when the server refuses it).
    async fn version_for(
        &self,
        run: &RunDir,
        info: &api::RunInfo,
        packaged: &Packaged,
    ) -> Result<api::ModelVersion> {
        let digest = packaged.digest.to_string();
        api::ensure_registered_model(&self.client, &self.model).await?;
        if let Some(v) =
            api::find_version(&self.client, &self.model, "mlops.digest", &digest).await?
        {
            return Ok(v);
        }
        let tags = content::version_tags(run, packaged);
        let image_source = content::image_source(packaged);
        let created = match api::create_version(
            &self.client,
            &self.model,
            &image_source,
            &info.run_id,
            &tags,
        )
        .await
        {
            Err(e) if e.code() == Some("INVALID_PARAMETER_VALUE") => {
                tracing::info!(
                    "tracking: MLflow refuses {image_source} as a model source ({e}); the version points at the run's artifacts, the image is in its tags"
                );
                let source = info.artifact_uri.clone();
                api::create_version(&self.client, &self.model, &source, &info.run_id, &tags).await?
            }
            other => other?,
        };
        tracing::info!(
            "tracking: registered model {} version {} holds {digest}",
            self.model,
            created.version
        );
        Ok(created)
    }
}
