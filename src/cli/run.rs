//! `mlops run`: the loop on one machine — validate → data check → train → evaluate → compare →
//! package → sign (after a promote verdict, when configured) — stopping at
//! the first step that fails or gate that says no, with that step's exit code.

use anyhow::Result;

use super::{block_on, step_exit, Cli, Status};
use crate::compare::{self, Verdict};
use crate::runner::{self, steps};
use crate::{config, report};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Override a training parameter (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    #[arg(long, value_parser = ["docker", "process"], default_value = "docker", env = "MLOPS_RUNNER")]
    pub runner: String,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    // 1. validate: every problem at once, like `mlops validate`.
    let checked = config::check(&cli.config)?;
    let Some(config) = checked.config else {
        for d in &checked.diagnostics {
            eprintln!("{}", crate::gha::neutralise(&d.human()));
        }
        eprintln!(
            "mlops run: stopped at validate ({} errors)",
            checked.diagnostics.len()
        );
        return Ok(Status::Refused);
    };
    eprintln!("mlops run: validate ok");
    // 2. data check: schema, changed content and drift against the accepted references.
    let data_report = crate::data::check::check(&config, None)?;
    eprint!("{}", crate::data::check::human(&data_report));
    if !data_report.passed {
        eprintln!("mlops run: stopped at data check");
        return Ok(Status::Refused);
    }
    eprintln!("mlops run: data check ok");
    let overrides = steps::parse_overrides(&args.params)?;
    let settings = super::registry::settings(Some(&config))?;
    block_on(async {
        let runner = runner::select(&args.runner).await?;
        // 3. train
        let (run, trained) = steps::train(&config, runner.as_ref(), &overrides).await?;
        crate::gha::set_outputs(&[("run-id", run.id.as_str())])?;
        crate::fsutil::write_json_atomic(&run.data_check_json(), &data_report)?;
        if let Some(code) = step_exit("training", &trained, &run)? {
            eprintln!("mlops run: stopped at train");
            return Ok(code);
        }
        eprintln!("mlops run: train ok (run {})", run.id);
        // 4. evaluate
        let eval = steps::evaluate(&config, runner.as_ref(), &run).await?;
        if let Some(code) = step_exit("evaluation of the challenger", &eval.challenger, &run)? {
            eprintln!("mlops run: stopped at evaluate");
            return Ok(code);
        }
        if let Some(steps::ChampionEvaluation::Reevaluated { env, result }) = &eval.champion {
            if let Some(code) = step_exit(
                &format!("evaluation of the champion of {env}"),
                result,
                &run,
            )? {
                eprintln!("mlops run: stopped at evaluate");
                return Ok(code);
            }
        }
        eprintln!("mlops run: evaluate ok");
        // 5. compare
        let comparison = compare::compare_run(&config, &run)?;
        print!("{}", report::human(&comparison));
        Ok(match comparison.verdict {
            Verdict::Promote => {
                eprintln!(
                    "mlops run: compare says promote; report: {}",
                    run.report_md().display()
                );
                // 6. package and sign, when configured.
                if config.package.is_some() {
                    let packaged = crate::oci::image::package(&config, &run, &settings).await?;
                    eprintln!("mlops run: package ok ({})", packaged.reference);
                    sign_packaged(&config, &run, &packaged, &settings).await?;
                }
                println!("{}", run.id);
                Status::Done
            }
            Verdict::Reject => {
                eprintln!(
                    "mlops run: stopped at compare (reject); report: {}",
                    run.report_md().display()
                );
                Status::Refused
            }
        })
    })
}

/// Signs and attests the packaged image when a key is at hand; says why not otherwise.
async fn sign_packaged(
    config: &config::Config,
    run: &crate::runs::RunDir,
    packaged: &crate::oci::image::Packaged,
    settings: &crate::oci::credentials::RegistrySettings,
) -> Result<()> {
    use crate::signing::{attest, cosign, Signer};
    if packaged.reference.starts_with("oci:") {
        eprintln!("mlops run: not signed (an OCI layout on disk; signatures live in a registry)");
        return Ok(());
    }
    if config.sign.key.is_none() && !config.sign.keyless {
        eprintln!("mlops run: not signed (no sign: section in mlops.yaml)");
        return Ok(());
    }
    if let Some(crate::config::KeySource::Env(var)) = &config.sign.key {
        if std::env::var_os(var).is_none() {
            eprintln!(
                "mlops run: not signed ({var} is not set; `mlops sign --run {}` signs later)",
                run.id
            );
            return Ok(());
        }
    }
    let signer = Signer::resolve(Some(config), None)?;
    let (image, digest) = cosign::parse_pinned(&packaged.reference)?;
    cosign::sign(&signer, &image, &digest, settings).await?;
    let name = format!("{}/{}", image.registry, image.repository);
    let statements = attest::statements(run, packaged, &name)?;
    cosign::attest(&signer, &image, &digest, &statements, settings).await?;
    crate::fsutil::write_json_atomic(
        &run.sign_json(),
        &serde_json::json!({
            "image": packaged.reference,
            "signature": format!("{name}:{}", cosign::artifact_tag(&digest, "sig")),
            "attestation": format!("{name}:{}", cosign::artifact_tag(&digest, "att")),
            "public_key": signer.public_pem,
        }),
    )?;
    eprintln!("mlops run: sign ok (signature and attestations pushed)");
    Ok(())
}
