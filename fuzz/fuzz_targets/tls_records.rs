//! The tunnel's TLS records as bprof opens them (`fuzz/src/lib.rs`, `tls_records`): sealed
//! records open to what was sealed, a changed byte is refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bprof_fuzz::tls_records(data);
});
