//! bprof: declarative Azure Bastion profiles, validated, planned and run.
pub mod cli;
pub mod client;
pub mod diag;
pub mod init;
pub mod load;
pub mod plan;
pub mod raw;
pub mod rdp;
pub mod resolve;
pub mod run;
pub mod schema;
pub mod shell;
pub mod signin;
pub mod template;
pub mod write;
pub mod yaml;
