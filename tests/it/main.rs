//! Integration tests: one binary, one module per area. Tests that need the Docker engine or the
//! registry fail (never skip) when those are absent: `scripts/test` starts them.
// The GitHub fake builds its answers with json!, deep enough to need more than 128.
#![recursion_limit = "256"]

mod actions;
mod common;
mod compare;
mod data;
mod doctor;
mod environments;
mod fake_github;
mod flags;
mod github;
mod incident;
mod init;
mod init_project;
mod keys;
mod limits;
mod monitor;
mod notify;
mod openapi;
mod package;
mod promote;
mod registry_auth;
mod registry_trust;
mod registry_upload;
mod runner;
mod sandbox;
mod text;
mod tracking;
mod validate;
mod workflows;
