//! Bytes as profile files (split at 0xFF into two shared files, an override and the user
//! config) through load, validate and plan for every OS: never a panic, a hang or a blow-up.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temp directory"));
    let _ = bprof_fuzz::load_validate_plan(dir.path(), data);
});
