//! bprof: declarative Azure Bastion profiles, validated, planned and run.
//!
//! Layers, each using only those below it: `cli` (commands, output, exit codes) -> `session`
//! (executing a plan) and the features `tunnel` (the native tunnel engine), `doctor` (the
//! preflight checks) and `import` (a profile file from Resource Graph) -> `azure` (the client:
//! what az and Azure know) -> `plan` (steps from a resolved profile) -> `profile` (files to
//! resolved profiles). `exit` (the exit codes, each layer's error naming its own), `entra` (Entra ssh certificates:
//! where a profile's key lives, what its certificate says), `process` (the one place that starts programs), `sockets` (the kernel's
//! socket tables), `terminal` (the one output rule) and `write` (atomic file writes) are leaves
//! any layer may use.
pub mod azure;
pub mod cli;
pub mod doctor;
pub mod entra;
pub mod exit;
pub mod files;
pub mod import;
pub mod machine;
pub mod owner;
pub mod plan;
pub mod process;
pub mod profile;
pub mod session;
pub mod sockets;
pub mod terminal;
pub mod text;
pub mod tunnel;
pub mod write;
