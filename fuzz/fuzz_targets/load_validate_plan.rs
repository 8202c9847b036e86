//! Bytes as profile files (split at 0xFF into two shared files, an override and the user
//! config) through load, validate and plan for every OS: never a panic, a hang or a blow-up.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// Where the input files are written: one directory, reused by every run of this target (a
/// directory per process would be left behind by each job: libFuzzer exits without dropping
/// statics). Run one instance at a time.
static DIR: OnceLock<PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join("bprof-fuzz-load_validate_plan");
        std::fs::create_dir_all(&dir).expect("a temp directory");
        dir
    });
    let _ = bprof_fuzz::load_validate_plan(dir, data);
});
