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

/// bprof's exit code for a child that failed: its status when in 1..=63 ([`pass_through`]);
/// killed by a signal, 1 (128+N would read as bprof itself interrupted by that signal).
pub fn child_code(exit: crate::process::Exit) -> i32 {
    match exit {
        crate::process::Exit::Code(c) => pass_through(c),
        crate::process::Exit::Signal(_) => 1,
    }
}

/// Why bprof exits `child_code(exit)` rather than the child's own status, when it does.
pub fn child_note(exit: crate::process::Exit) -> Option<String> {
    match exit {
        crate::process::Exit::Code(0) => {
            Some("bprof exits 1 for it: the step ended before it was done".into())
        }
        crate::process::Exit::Code(c) if pass_through(c) != c => Some(format!(
            "bprof exits 1 for it, since {c} is one of bprof's own exit codes"
        )),
        crate::process::Exit::Code(_) => None,
        crate::process::Exit::Signal(s) => Some(format!(
            "bprof exits 1 for it (128+{s} would read as bprof itself stopped by that signal)"
        )),
    }
}

pub fn interrupted_code(signal: i32) -> i32 {
    #[cfg(unix)]
    if signal != libc::SIGINT {
        return 128 + signal;
    }
    let _ = signal;
    INTERRUPTED
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Exit;

    #[test]
    fn a_childs_end_never_reads_as_one_of_bprofs_codes() {
        assert_eq!(child_code(Exit::Code(5)), 5);
        assert_eq!(child_code(Exit::Code(63)), 63);
        for own in [0, 64, 65, 69, 73, 77, 130, 137, 255] {
            assert_eq!(child_code(Exit::Code(own)), 1, "{own}");
        }
        assert_eq!(child_code(Exit::Signal(9)), 1);
        assert!(child_note(Exit::Code(5)).is_none());
        assert!(child_note(Exit::Code(70)).is_some_and(|n| n.contains("70")));
        assert!(child_note(Exit::Signal(9)).is_some());
    }
}
