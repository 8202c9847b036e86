//! Integration tests: the real binary, a fake az, temp directories.
mod harness;

mod discovery;
mod plan;
mod run;
mod schema;
mod validate;
