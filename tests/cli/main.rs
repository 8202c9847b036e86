//! Integration tests: the real binary, a fake az, temp directories.
// the tests start bprof and helper programs themselves
#![allow(clippy::disallowed_methods)]
mod az_reads;
/// The fuzz targets' pipelines, shared with the regression and property tests.
#[path = "../../fuzz/src/lib.rs"]
mod fuzz_pipeline;
mod harness;
#[cfg(target_os = "linux")]
mod hostile_http;
#[cfg(target_os = "linux")]
mod import;
mod known;
mod lint;
#[cfg(target_os = "linux")]
mod native;
mod newcomer;
mod output;

#[cfg(unix)]
mod cleanup;
mod degrade;
mod developer;
mod discovery;
#[cfg(target_os = "linux")]
mod doctor;
mod e2e;
#[cfg(target_os = "linux")]
mod fake_azure;
#[cfg(target_os = "linux")]
mod fake_bastion;
#[cfg(unix)]
mod files;
mod fuzz_regressions;
#[cfg(target_os = "linux")]
mod gateway;
mod plan;
mod props;
mod props_load;
#[cfg(target_os = "linux")]
mod proxy;
#[cfg(target_os = "linux")]
mod records;
mod run;
mod schema;
mod session;
mod squatter;
#[cfg(unix)]
mod ssh_reads;
#[cfg(target_os = "linux")]
mod tokens;
mod trust;
mod validate;
