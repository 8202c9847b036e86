//! The bastion's gateway .rdp file from the network (`fuzz/src/lib.rs`, `gateway_file`):
//! refused, or merged into lines with no control character, one address and the bastion's
//! gateway; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bprof_fuzz::gateway_file(data);
});
