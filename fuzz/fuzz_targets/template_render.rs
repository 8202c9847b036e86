//! Bytes as a template (steps split at U+001E, tokens at U+001F) rendered with the context of
//! a bundled profile: never a panic, a stack overflow or unbounded time.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static CONTEXTS: OnceLock<Vec<(Value, String)>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let contexts = CONTEXTS.get_or_init(|| {
        bprof_fuzz::contexts(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles"))
    });
    let _ = bprof_fuzz::template_render(contexts, data);
});
