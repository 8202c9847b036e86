//! The YAML fast path against serde-saphyr's full parse: wherever the fast path answers, the
//! value and every position must be the same (`bprof::profile::yaml::fast_path_agrees` panics
//! otherwise).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = bprof::profile::yaml::fast_path_agrees(text);
    }
});
