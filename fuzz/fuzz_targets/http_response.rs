//! HTTP answers as bprof's client reads them (`fuzz/src/lib.rs`, `http_response`): a response
//! within the limit or an error, never a panic, the same whether read in pieces or at once.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bprof_fuzz::http_response(data);
});
