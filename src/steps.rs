//! The steps of a run, above the runner: train and evaluate (the step built from the config and
//! the run, run, recorded in run.json) and compare (the verdict, compare.json and report.md).
//! They tie the runner to the data, the environments and the gate, so they live here and not
//! in `runner`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use indexmap::IndexMap;

use crate::compare::{self, metrics, Comparison, Inputs};
use crate::config::{ChampionMode, Config, StepConfig};
use crate::runner::{DatasetMount, Runner, StepOutcome, StepResult, StepSpec};
use crate::runs::{self, RunDir, RunRecord, Side, StepRecord};

fn datasets(config: &Config) -> Vec<DatasetMount> {
    config
        .data
        .datasets
        .iter()
        .map(|(name, ds)| DatasetMount {
            name: name.clone(),
            host_path: ds.abs_path.clone(),
        })
        .collect()
}

/// Which model a step sees and where its outputs go.
struct Io {
    model_dir: PathBuf,
    model_writable: bool,
    outputs_dir: PathBuf,
}

fn spec(
    config: &Config,
    run: &RunDir,
    git_commit: &str,
    step: &str,
    cfg: &StepConfig,
    params: &IndexMap<String, serde_json::Value>,
    io: Io,
) -> StepSpec {
    let Io {
        model_dir,
        model_writable,
        outputs_dir,
    } = io;
    StepSpec {
        step: step.to_string(),
        run_id: run.id.clone(),
        image: cfg.image.clone(),
        command: cfg.command.clone(),
        workspace: config.root.clone(),
        datasets: datasets(config),
        model_dir,
        model_writable,
        outputs_dir,
        params_file: run.path.join("params.json"),
        params: params.clone(),
        env: cfg.env.clone(),
        resources: cfg.resources.clone(),
        network: cfg.network,
        mount_git: cfg.mount_git,
        git_commit: git_commit.to_string(),
        log_file: run.logs_dir().join(format!("{step}.log")),
    }
}

fn record(result: &StepResult, runner: &dyn Runner, spec: &StepSpec) -> StepRecord {
    StepRecord {
        runner: runner.name().to_string(),
        image: result.image.clone(),
        command: spec.command.clone(),
        started_at: result.started_at.to_rfc3339(),
        finished_at: result.finished_at.to_rfc3339(),
        duration_secs: (result.finished_at - result.started_at)
            .num_milliseconds()
            .max(0) as f64
            / 1000.0,
        exit_code: result.exit_code,
        outcome: result.outcome.as_str().to_string(),
        log: spec
            .log_file
            .strip_prefix(&spec.workspace)
            .unwrap_or(&spec.log_file)
            .display()
            .to_string(),
    }
}

/// Parses `key=value` overrides; values that parse as JSON (numbers, booleans, lists) keep their
/// type, anything else is a string.
pub fn parse_overrides(overrides: &[String]) -> Result<IndexMap<String, serde_json::Value>> {
    let mut out = IndexMap::new();
    for o in overrides {
        let Some((k, v)) = o.split_once('=') else {
            bail!("--param {o:?}: expected key=value");
        };
        if k.is_empty() {
            bail!("--param {o:?}: the key is empty");
        }
        let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()));
        out.insert(k.to_string(), value);
    }
    Ok(out)
}

/// Creates a run and trains in it. The run record is written whatever the outcome.
pub async fn train(
    config: &Config,
    runner: &dyn Runner,
    overrides: &IndexMap<String, serde_json::Value>,
) -> Result<(RunDir, StepResult)> {
    let mut params = config.train.params.clone();
    for (k, v) in overrides {
        params.insert(k.clone(), v.clone());
    }
    let data = crate::data::dataset_digests(config)?;
    let run = runs::create(&config.root)?;
    runs::set_latest(&config.root, &run)?;
    crate::fsutil::write_json_atomic(&run.path.join("params.json"), &params)?;
    std::fs::create_dir_all(run.model_dir())?;
    let r = &config.train.resources;
    let mut record_ = RunRecord {
        run_id: run.id.clone(),
        model: config.model.clone(),
        git: crate::git::info(&config.root),
        params: params.clone(),
        data,
        resources: serde_json::json!({
            "cpus": r.cpus, "memory_bytes": r.memory_bytes, "gpus": r.gpus,
            "timeout_secs": r.timeout.as_secs_f64(), "pids": r.pids,
            "network": config.train.network, "mount_git": config.train.mount_git,
        }),
        steps: IndexMap::new(),
    };
    run.write_record(&record_)?;
    tracing::info!("run {} in {}", run.id, run.path.display());
    let s = spec(
        config,
        &run,
        &record_.git.commit,
        "train",
        &config.train,
        &params,
        Io {
            model_dir: run.model_dir(),
            model_writable: true,
            outputs_dir: run.train_outputs(),
        },
    );
    let result = runner.run(&s).await?;
    record_
        .steps
        .insert("train".into(), record(&result, runner, &s));
    run.write_record(&record_)?;
    Ok((run, result))
}

/// What evaluate did for each side.
pub struct Evaluation {
    pub challenger: StepResult,
    /// None: no champion (first run, or nothing pinned in the environment compared against).
    pub champion: Option<ChampionEvaluation>,
}

pub enum ChampionEvaluation {
    Reevaluated { env: String, result: StepResult },
    Recorded { env: String },
}

/// Scores the run's model (the challenger) and, when an environment pins one, the champion.
pub async fn evaluate(config: &Config, runner: &dyn Runner, run: &RunDir) -> Result<Evaluation> {
    let mut rec = run.read_record()?;
    match rec.steps.get("train") {
        Some(t) if t.outcome == "ok" => {}
        Some(t) => bail!(
            "run {} did not train successfully (outcome: {}); train again before evaluating",
            run.id,
            t.outcome
        ),
        None => bail!("run {} has no trained model", run.id),
    }
    let params = rec.params.clone();
    let commit = rec.git.commit.clone();
    let challenger_spec = spec(
        config,
        run,
        &commit,
        "evaluate-challenger",
        &config.evaluate.step,
        &params,
        Io {
            model_dir: run.model_dir(),
            model_writable: false,
            outputs_dir: run.eval_dir(Side::Challenger),
        },
    );
    let challenger = runner.run(&challenger_spec).await?;
    rec.steps.insert(
        "evaluate-challenger".into(),
        record(&challenger, runner, &challenger_spec),
    );
    run.write_record(&rec)?;
    if challenger.outcome != StepOutcome::Ok {
        return Ok(Evaluation {
            challenger,
            champion: None,
        });
    }
    metrics::load_metrics(&run.metrics(Side::Challenger))?;

    let Some(env) = config.compare.against.clone() else {
        return Ok(Evaluation {
            challenger,
            champion: None,
        });
    };
    let Some(state) = crate::environment::read(config, &env)? else {
        tracing::info!("no champion: nothing is promoted to {env} yet");
        return Ok(Evaluation {
            challenger,
            champion: None,
        });
    };
    let champion_dir = run.eval_dir(Side::Champion);
    match config.evaluate.champion {
        ChampionMode::Recorded => {
            if state.metrics.is_empty() {
                bail!("environment {env} records no metrics for its champion; use evaluate.champion: reevaluate");
            }
            crate::fsutil::write_json_atomic(&champion_dir.join("metrics.json"), &state.metrics)?;
            Ok(Evaluation {
                challenger,
                champion: Some(ChampionEvaluation::Recorded { env }),
            })
        }
        ChampionMode::Reevaluate => {
            let model_dir = champion_model(config, &state, &env)?;
            let champion_params = champion_params(config, &state);
            let s = spec(
                config,
                run,
                &commit,
                "evaluate-champion",
                &config.evaluate.step,
                &champion_params,
                Io {
                    model_dir,
                    model_writable: false,
                    outputs_dir: champion_dir,
                },
            );
            let result = runner.run(&s).await?;
            rec.steps
                .insert("evaluate-champion".into(), record(&result, runner, &s));
            run.write_record(&rec)?;
            if result.outcome == StepOutcome::Ok {
                metrics::load_metrics(&run.metrics(Side::Champion))?;
            }
            Ok(Evaluation {
                challenger,
                champion: Some(ChampionEvaluation::Reevaluated { env, result }),
            })
        }
    }
}

/// The champion's model directory: the run directory the environment file names.
fn champion_model(
    config: &Config,
    state: &crate::environment::EnvironmentState,
    env: &str,
) -> Result<PathBuf> {
    if let Some(dir) = &state.model_dir {
        let path = config.root.join(dir);
        if path.is_dir() {
            return Ok(path);
        }
    }
    let run_model = runs::runs_root(&config.root)
        .join(&state.run_id)
        .join("model");
    if run_model.is_dir() {
        return Ok(run_model);
    }
    Err(anyhow::anyhow!(
        "the champion of {env} (run {}, image {}) has no model directory on this machine",
        state.run_id,
        state.image
    ))
    .context("set evaluate.champion: recorded to compare against its recorded metrics instead")
}

fn champion_params(
    config: &Config,
    state: &crate::environment::EnvironmentState,
) -> IndexMap<String, serde_json::Value> {
    let path = runs::runs_root(&config.root)
        .join(&state.run_id)
        .join("params.json");
    crate::fsutil::read_json(&path).unwrap_or_else(|_| config.train.params.clone())
}

/// Compares a run's challenger with its champion and writes compare.json and report.md.
pub fn compare(config: &Config, run: &RunDir) -> Result<Comparison> {
    let chal_metrics = run.metrics(Side::Challenger);
    if !crate::outputs::present(&chal_metrics) {
        anyhow::bail!(
            "run {} has no {}: run `mlops evaluate` first",
            run.id,
            chal_metrics.display()
        );
    }
    let challenger = metrics::load_metrics(&chal_metrics)?;
    let champ_metrics = run.metrics(Side::Champion);
    let champion = if crate::outputs::present(&champ_metrics) {
        Some(metrics::load_metrics(&champ_metrics)?)
    } else {
        None
    };
    let chal_pred = run.predictions(Side::Challenger);
    let champ_pred = run.predictions(Side::Champion);
    let comparison = compare::compare(
        config,
        Inputs {
            challenger,
            champion,
            predictions: Some((&chal_pred, &champ_pred)),
            run_id: Some(run.id.clone()),
        },
    )?;
    crate::fsutil::write_json_atomic(&run.compare_json(), &comparison)?;
    let report = crate::report::markdown(&comparison, Some(run))?;
    crate::fsutil::write_atomic(&run.report_md(), report.as_bytes())?;
    Ok(comparison)
}

/// Packages the run's model on the serving base (built through the engine first when
/// `package.dockerfile` is set) and pushes it, or writes the OCI layout.
pub async fn package(
    config: &Config,
    run: &RunDir,
    settings: &crate::oci::credentials::RegistrySettings,
) -> Result<crate::oci::image::Packaged> {
    use crate::oci::image::{self, Project, ServingBase};
    let pkg = config.package.as_ref().with_context(|| {
        format!(
            "{} has no package: section (repository, base_image, model_path, command, port)",
            config.file.display()
        )
    })?;
    image::model_dir(run)?;
    let base = match &pkg.base {
        ServingBase::Image(img) => img.clone(),
        ServingBase::Dockerfile(df) => serving_base(config, pkg, df, run, settings).await?,
    };
    let project = Project {
        root: &config.root,
        model: &config.model,
    };
    image::package(pkg, &base, &project, run, settings).await
}

/// `package.dockerfile`: the serving image built through the Docker engine (for teams that
/// need system packages in it), pushed next to the model images as
/// `<repository>:serve-<content hash>` (the hash of the build context, Dockerfile and build
/// arguments); when that tag is already in the registry the build is skipped and the pushed
/// base reused. The model layer is then appended to it like to any base.
async fn serving_base(
    config: &Config,
    pkg: &crate::oci::image::PackageConfig,
    dockerfile: &std::path::Path,
    run: &RunDir,
    settings: &crate::oci::credentials::RegistrySettings,
) -> Result<crate::oci::reference::ImageRef> {
    use crate::oci::reference::ImageLocation;
    let ImageLocation::Registry(repository) = &pkg.repository else {
        bail!(
            "package.dockerfile needs package.repository to be a registry: the engine pushes the serving image there before the model layer is added"
        );
    };
    let rel = dockerfile
        .strip_prefix(&config.root)
        .map(|p| p.to_string_lossy().into_owned())
        .with_context(|| {
            format!(
                "package.dockerfile {} must be inside the project {}",
                dockerfile.display(),
                config.root.display()
            )
        })?;
    let args = crate::runner::docker::build_args();
    let hash = crate::runner::context::context_digest(&config.root, &rel, &args)?;
    let tag = format!("serve-{}", &hash[..16]);
    let target = crate::oci::reference::ImageRef {
        tag: Some(tag.clone()),
        digest: None,
        ..repository.clone()
    };
    std::fs::create_dir_all(run.logs_dir())?;
    let log_file = run.logs_dir().join("package-build.log");
    let mut log = crate::runner::LogSink::open("package", &log_file)?;
    let registry = crate::oci::registry::Registry::new(&repository.registry, settings)?;
    if registry
        .manifest_digest(&repository.repository, &tag)
        .await?
        .is_some()
    {
        log.note(&format!(
            "reusing {target}: the serving base of this build context is already pushed"
        ));
        log.finish();
        return Ok(target);
    }
    let engine = crate::runner::docker::DockerRunner::connect()
        .await
        .context("package.dockerfile builds through the Docker engine")?;
    engine
        .build_and_push(&config.root, dockerfile, &target, &mut log)
        .await?;
    log.finish();
    Ok(target)
}
