//! `package.dockerfile`: the serving image built through the Docker engine (for teams that need
//! system packages in it), pushed next to the model images as `<repository>:serve-<run id>`;
//! the model layer is then appended to it like to any base image.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::config::{Config, PackageConfig, RepositoryTarget};
use crate::runner::docker::DockerRunner;
use crate::runner::logs::LogSink;
use crate::runs::RunDir;

pub async fn build_and_push_base(
    config: &Config,
    pkg: &PackageConfig,
    dockerfile: &Path,
    run: &RunDir,
) -> Result<String> {
    let RepositoryTarget::Registry(repo) = &pkg.repository else {
        bail!(
            "package.dockerfile needs package.repository to be a registry: the engine pushes the serving image there before the model layer is added"
        );
    };
    let target = format!("{repo}:serve-{}", run.id);
    let engine = DockerRunner::connect()
        .await
        .context("package.dockerfile builds through the Docker engine")?;
    std::fs::create_dir_all(run.logs_dir())?;
    let mut log = LogSink::open("package", &run.logs_dir().join("package-build.log"))?;
    engine
        .build_and_push(&config.root, dockerfile, &target, &mut log)
        .await?;
    log.finish();
    Ok(target)
}
