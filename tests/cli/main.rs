//! Integration tests: the real binary, a fake az, temp directories.
mod harness;

mod discovery;
mod e2e;
mod plan;
mod run;
mod schema;
mod session;
mod validate;
