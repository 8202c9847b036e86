//! Integration tests: the real binary, a fake az, temp directories.
// the tests start bprof and helper programs themselves
#![allow(clippy::disallowed_methods)]
mod harness;

#[cfg(unix)]
mod cleanup;
mod degrade;
mod discovery;
mod e2e;
#[cfg(unix)]
mod files;
mod plan;
mod props;
mod run;
mod schema;
mod session;
mod squatter;
mod trust;
mod validate;
