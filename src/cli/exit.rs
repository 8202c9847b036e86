//! Exit codes (see the README), and how a child's status becomes bprof's.

pub const OK: i32 = 0;
pub const USAGE: i32 = 64;
pub const DATA: i32 = 65;
pub const NO_INPUT: i32 = 66;
pub const UNAVAILABLE: i32 = 69;
pub const SOFTWARE: i32 = 70;
pub const CANT_CREATE: i32 = 73;
/// Refused for lack of the person's consent (`bprof trust`).
pub const NO_PERMISSION: i32 = 77;
pub const INTERRUPTED: i32 = 130;

/// az's failing status, passed on unchanged when it is in 1..=63; a status that would read as
/// one of bprof's own codes (64 and up) becomes 1, and is printed.
pub fn pass_through(code: i32) -> i32 {
    if (1..=63).contains(&code) { code } else { 1 }
}

pub fn interrupted_code(signal: i32) -> i32 {
    #[cfg(unix)]
    if signal != libc::SIGINT {
        return 128 + signal;
    }
    let _ = signal;
    INTERRUPTED
}
