//! mlops: continuous integration, delivery and training for machine-learning models, driven
//! from the team's own git repository. The binary in `main.rs` is a thin shell over [`cli`].

pub mod cli;
pub mod compare;
pub mod config;
pub mod data;
pub mod deploy;
pub mod diagnostic;
pub mod environment;
pub mod forge;
pub mod fsutil;
pub mod gha;
pub mod git;
pub(crate) mod http;
pub mod incident;
pub mod init;
pub mod interrupt;
pub mod monitor;
pub mod notify;
pub mod oci;
pub mod outcome;
pub mod outputs;
pub mod pipeline;
pub mod promote;
pub mod report;
pub mod runner;
pub mod runs;
pub mod signing;
pub mod steps;
pub mod text;
pub mod yamlio;
