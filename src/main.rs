use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the scans allocate and free many small buffers from two threads (glibc's malloc
/// and free were 15-18% of a 1M-row data check).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = mlops::cli::Cli::parse();
    mlops::cli::init_logging(&cli);
    mlops::cli::run(cli)
}
