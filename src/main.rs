use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mlops::cli::Cli::parse();
    mlops::cli::init_logging(&cli);
    mlops::cli::run(cli)
}
