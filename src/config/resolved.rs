//! The configuration every step works from: defaults applied, durations and sizes parsed,
//! paths resolved against the directory that holds mlops.yaml.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::Serialize;

use super::raw::{
    ChampionMode, ChangedCheck, Compression, DeployTarget, Direction, DriftTest, ForgeKind,
    RawConfig, SchemaCheck,
};
use super::units::{parse_duration, parse_size};
use crate::oci::reference::{parse_image, ImageLocation};

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Directory holding mlops.yaml: the repository root for every step.
    pub root: PathBuf,
    /// The mlops.yaml path as given.
    pub file: PathBuf,
    pub model: String,
    pub data: DataConfig,
    pub train: StepConfig,
    pub evaluate: EvaluateConfig,
    pub compare: CompareConfig,
    pub package: Option<PackageConfig>,
    pub sign: SignConfig,
    pub environments: IndexMap<String, EnvironmentConfig>,
    pub forge: ForgeConfig,
    /// `notify:` webhooks, in the order written.
    pub notify: Vec<super::notify::NotifyConfig>,
    /// None: no `tracking:` section (nothing is mirrored, whatever the environment says).
    pub tracking: Option<TrackingConfig>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DataConfig {
    /// Datasets by name (`train`, `test`), in declaration order.
    pub datasets: IndexMap<String, DatasetConfig>,
    pub target: Option<String>,
    pub checks: ChecksConfig,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetConfig {
    /// As written in mlops.yaml (relative to root).
    pub path: String,
    pub abs_path: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChecksConfig {
    pub schema: SchemaCheck,
    pub changed: ChangedCheck,
    pub drift: DriftConfig,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftConfig {
    pub test: DriftTest,
    pub p_value: f64,
    pub threshold: f64,
    pub max_drifted_share: f64,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub enum ImageSource {
    /// An image reference to run (pulled when missing).
    Image(String),
    /// Build through the engine: context directory and Dockerfile path (both absolute).
    Build {
        context: PathBuf,
        dockerfile: PathBuf,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Resources {
    pub cpus: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub gpus: u32,
    #[serde(with = "duration_secs")]
    pub timeout: Duration,
    /// The container's pids limit.
    pub pids: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepConfig {
    pub image: ImageSource,
    pub command: Vec<String>,
    pub params: IndexMap<String, serde_json::Value>,
    pub env: IndexMap<String, String>,
    pub resources: Resources,
    pub network: bool,
    /// `/workspace` shows `.git/config` and `.mlops` (hidden by default).
    pub mount_git: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvaluateConfig {
    pub step: StepConfig,
    pub champion: ChampionMode,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompareConfig {
    pub against: Option<String>,
    pub metrics: IndexMap<String, MetricRule>,
    pub significance: Option<SignificanceConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRule {
    pub direction: Direction,
    pub threshold: Option<f64>,
    pub min_absolute_change: Option<f64>,
    pub min_relative_change: Option<f64>,
    pub max_regression: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignificanceConfig {
    pub confidence: f64,
    pub resamples: u32,
    pub require: bool,
    pub seed: u64,
}

pub use crate::oci::image::{PackageConfig, ServingBase};

#[derive(Debug, Clone, Serialize)]
pub enum KeySource {
    /// A file holding cosign's encrypted PEM private key.
    File(PathBuf),
    /// An environment variable holding the PEM itself.
    Env(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct SignConfig {
    pub key: Option<KeySource>,
    pub public_key: Option<PathBuf>,
    pub keyless: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentConfig {
    pub requires: Option<String>,
    pub deploy: DeployConfig,
    /// deploy.capture, absolute: where the serving container's capture files land.
    pub capture: Option<PathBuf>,
    pub monitor: Option<super::monitor::MonitorConfig>,
}

#[derive(Debug, Clone, Serialize)]
pub enum DeployConfig {
    Docker {
        host: String,
        port: u16,
        health: String,
    },
    Kubernetes {
        template: PathBuf,
        output: PathBuf,
        apply: bool,
    },
    Command {
        command: Vec<String>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ForgeConfig {
    pub kind: ForgeKind,
    pub repository: Option<String>,
    pub base: String,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
}

fn data(raw: &RawConfig, root: &Path) -> DataConfig {
    let at = |p: &str| root.join(p);
    let mut datasets = IndexMap::new();
    for (name, ds) in [("train", &raw.data.train), ("test", &raw.data.test)] {
        datasets.insert(
            name.to_string(),
            DatasetConfig {
                path: ds.path.clone(),
                abs_path: at(&ds.path),
            },
        );
    }
    let checks = raw.data.checks.as_ref();
    let drift = checks.and_then(|c| c.drift.as_ref());
    DataConfig {
        datasets,
        target: raw.data.target.clone(),
        checks: ChecksConfig {
            schema: checks.and_then(|c| c.schema).unwrap_or(SchemaCheck::Strict),
            changed: checks
                .and_then(|c| c.changed)
                .unwrap_or(ChangedCheck::Required),
            drift: DriftConfig {
                test: drift.and_then(|d| d.test).unwrap_or(DriftTest::Auto),
                p_value: drift.and_then(|d| d.p_value).unwrap_or(0.01),
                threshold: drift.and_then(|d| d.threshold).unwrap_or(0.2),
                max_drifted_share: drift.and_then(|d| d.max_drifted_share).unwrap_or(0.5),
                exclude: drift.and_then(|d| d.exclude.clone()).unwrap_or_default(),
            },
        },
    }
}

fn steps(raw: &RawConfig, root: &Path) -> Result<(StepConfig, EvaluateConfig), String> {
    let at = |p: &str| root.join(p);
    let t = &raw.train;
    let res = t.resources.as_ref();
    let resources = Resources {
        cpus: res.and_then(|r| r.cpus),
        memory_bytes: match res.and_then(|r| r.memory.as_deref()) {
            Some(m) => Some(parse_size(m)?),
            None => None,
        },
        gpus: res.and_then(|r| r.gpus).unwrap_or(0),
        timeout: match res.and_then(|r| r.timeout.as_deref()) {
            Some(d) => parse_duration(d)?,
            None => DEFAULT_TIMEOUT,
        },
        pids: res.and_then(|r| r.pids).unwrap_or(DEFAULT_PIDS),
    };
    let train_image = match (&t.image, &t.build) {
        (Some(image), None) => ImageSource::Image(image.clone()),
        (None, Some(b)) => {
            let context = at(b.context.as_deref().unwrap_or("."));
            let dockerfile = context.join(b.dockerfile.as_deref().unwrap_or("Dockerfile"));
            ImageSource::Build {
                context,
                dockerfile,
            }
        }
        _ => return Err("train needs exactly one of image and build".into()),
    };
    let train = StepConfig {
        image: train_image.clone(),
        command: t.command.clone(),
        params: t.params.clone().unwrap_or_default(),
        env: t.env.clone().unwrap_or_default(),
        resources,
        network: t.network.unwrap_or(false),
        mount_git: t.mount_git.unwrap_or(false),
    };
    let e = &raw.evaluate;
    let evaluate = EvaluateConfig {
        step: StepConfig {
            image: e
                .image
                .clone()
                .map(ImageSource::Image)
                .unwrap_or(train_image),
            command: e.command.clone(),
            ..train.clone()
        },
        champion: e.champion.unwrap_or(ChampionMode::Reevaluate),
    };
    Ok((train, evaluate))
}

fn compare(raw: &RawConfig) -> CompareConfig {
    match &raw.compare {
        Some(c) => CompareConfig {
            against: c.against.clone(),
            metrics: c
                .metrics
                .iter()
                .map(|(k, r)| {
                    (
                        k.clone(),
                        MetricRule {
                            direction: r.direction,
                            threshold: r.threshold,
                            min_absolute_change: r.min_absolute_change,
                            min_relative_change: r.min_relative_change,
                            max_regression: r.max_regression,
                        },
                    )
                })
                .collect(),
            significance: c.significance.as_ref().map(|s| SignificanceConfig {
                confidence: s.confidence.unwrap_or(0.95),
                resamples: s.resamples.unwrap_or(2000),
                require: s.require.unwrap_or(false),
                seed: s.seed.unwrap_or(0),
            }),
        },
        None => CompareConfig {
            against: None,
            metrics: IndexMap::new(),
            significance: None,
        },
    }
}

fn package(raw: &RawConfig, root: &Path) -> Result<Option<PackageConfig>, String> {
    let at = |p: &str| root.join(p);
    Ok(match &raw.package {
        None => None,
        Some(p) => Some(PackageConfig {
            repository: match ImageLocation::parse(&p.repository)? {
                ImageLocation::Layout(path) => ImageLocation::Layout(root.join(path)),
                registry => registry,
            },
            base: match (&p.base_image, &p.dockerfile) {
                (Some(img), None) => ServingBase::Image(parse_image(img)?),
                (None, Some(df)) => ServingBase::Dockerfile(at(df)),
                _ => return Err("package needs exactly one of base_image and dockerfile".into()),
            },
            model_path: p.model_path.clone().unwrap_or_else(|| "/model".into()),
            command: p.command.clone().unwrap_or_default(),
            port: p.port,
            compression: p.compression.unwrap_or(Compression::None),
        }),
    })
}

fn sign(raw: &RawConfig, root: &Path) -> SignConfig {
    let at = |p: &str| root.join(p);
    match &raw.sign {
        None => SignConfig {
            key: None,
            public_key: None,
            keyless: false,
        },
        Some(s) => {
            let key = s.key.as_deref().map(|k| match k.strip_prefix("env:") {
                Some(var) => KeySource::Env(var.to_string()),
                None => KeySource::File(at(k)),
            });
            let public_key = s.public_key.as_deref().map(at).or_else(|| match &key {
                Some(KeySource::File(p)) => Some(p.with_extension("pub")),
                _ => None,
            });
            SignConfig {
                key,
                public_key,
                keyless: s.keyless.unwrap_or(false),
            }
        }
    }
}

fn environments(
    raw: &RawConfig,
    root: &Path,
    drift: &DriftConfig,
) -> Result<IndexMap<String, EnvironmentConfig>, String> {
    let at = |p: &str| root.join(p);
    let mut environments = IndexMap::new();
    for (name, env) in raw.environments.iter().flatten() {
        let d = &env.deploy;
        let deploy = match d.target {
            DeployTarget::Docker => DeployConfig::Docker {
                host: d.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
                port: d
                    .port
                    .ok_or_else(|| format!("environments.{name}.deploy.port is required"))?,
                health: d.health.clone().unwrap_or_else(|| "/health".into()),
            },
            DeployTarget::Kubernetes => DeployConfig::Kubernetes {
                template: at(d.template.as_deref().unwrap_or_default()),
                output: at(d.output.as_deref().unwrap_or_default()),
                apply: d.apply.unwrap_or(false),
            },
            DeployTarget::Command => DeployConfig::Command {
                command: d.command.clone().unwrap_or_default(),
            },
        };
        let capture = d.capture.as_deref().map(at);
        let monitor = match &env.monitor {
            Some(m) => Some(super::monitor::resolve(
                m,
                &super::monitor::Inherited {
                    root,
                    env: name,
                    capture: capture.as_deref(),
                    drift,
                    target: raw.data.target.as_deref(),
                    compare_direction: &|metric| {
                        raw.compare
                            .as_ref()
                            .and_then(|c| c.metrics.get(metric))
                            .map(|r| r.direction)
                    },
                },
            )?),
            None => None,
        };
        environments.insert(
            name.clone(),
            EnvironmentConfig {
                requires: env.requires.clone(),
                deploy,
                capture,
                monitor,
            },
        );
    }
    Ok(environments)
}

/// `tracking:` with its defaults; the environment's MLFLOW_* settings are applied by the CLI.
#[derive(Debug, Clone, Serialize)]
pub struct TrackingConfig {
    pub uri: Option<String>,
    pub experiment: String,
    pub required: bool,
}

fn tracking(raw: &RawConfig) -> Option<TrackingConfig> {
    raw.tracking.as_ref().map(|t| TrackingConfig {
        uri: t.uri.clone(),
        experiment: t.experiment.clone().unwrap_or_else(|| raw.model.clone()),
        required: t.required.unwrap_or(false),
    })
}

fn forge(raw: &RawConfig) -> ForgeConfig {
    match &raw.forge {
        Some(f) => ForgeConfig {
            kind: f.kind,
            repository: f.repository.clone(),
            base: f.base.clone().unwrap_or_else(|| "main".into()),
            labels: f.labels.clone().unwrap_or_default(),
            reviewers: f.reviewers.clone().unwrap_or_default(),
        },
        None => ForgeConfig {
            kind: ForgeKind::Local,
            repository: None,
            base: "main".into(),
            labels: Vec::new(),
            reviewers: Vec::new(),
        },
    }
}

mod duration_secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// A fork bomb in a step stops here, not at the host's limit.
pub(crate) const DEFAULT_PIDS: u32 = 4096;

impl Config {
    /// Resolves a raw config that already passed validation; an error here is an invariant the
    /// validator should have caught, reported as text.
    pub fn resolve(raw: RawConfig, file: &Path) -> Result<Config, String> {
        let root = file
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let root = std::fs::canonicalize(&root).unwrap_or(root);
        let data = data(&raw, &root);
        let (train, evaluate) = steps(&raw, &root)?;
        let compare = compare(&raw);
        let package = package(&raw, &root)?;
        let sign = sign(&raw, &root);
        let environments = environments(&raw, &root, &data.checks.drift)?;
        let forge = forge(&raw);
        let notify = super::notify::resolve(raw.notify.as_ref());
        let tracking = tracking(&raw);

        Ok(Config {
            file: file.to_path_buf(),
            root,
            model: raw.model,
            data,
            train,
            evaluate,
            compare,
            package,
            sign,
            environments,
            forge,
            notify,
            tracking,
        })
    }
}
