//! The one place that starts processes: finding programs (PATH, `BPROF_AZ`), spawning without
//! a shell (each argv element passed as it is), process groups, signals, and stopping a child
//! with everything it started.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[cfg(windows)]
mod job;

/// The polite stop signal (on Windows, where there are no signals, stopping kills).
pub const SIGTERM: i32 = 15;

/// Errors of this layer.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("`{program}` was not found{}", .from_env.then_some(" (BPROF_AZ)").unwrap_or(" on PATH"))]
    Missing { program: String, from_env: bool },
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot start `{program}`: its argument \"{arg}\" contains {what}, which cmd.exe (which runs a batch file) would interpret"
    )]
    Batch {
        program: String,
        arg: String,
        what: &'static str,
    },
    #[error("interrupted")]
    Interrupted { signal: i32 },
}

impl ProcessError {
    /// bprof's exit code for it: an interruption as the signal says (130 for Ctrl-C), else 69
    /// (the program is not there or cannot start).
    pub fn exit_code(&self) -> i32 {
        match self {
            ProcessError::Interrupted { signal } => crate::exit::interrupted_code(*signal),
            ProcessError::Missing { .. } | ProcessError::Spawn { .. } => crate::exit::UNAVAILABLE,
            ProcessError::Batch { .. } => crate::exit::DATA,
        }
    }
}

/// Finds a program on PATH like the OS would (on Windows also `.cmd`, `.bat`, `.exe`: std only
/// adds `.exe`, and az is `az.cmd`).
pub fn which(program: &str) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    let exts: &[&str] = if cfg!(windows) {
        &[".cmd", ".exe", ".bat", ""]
    } else {
        &[""]
    };
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        exts.iter()
            .map(|e| dir.join(format!("{program}{e}")))
            .find(|c| is_executable(c))
    })
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// The program to start for argv[0]: `az` is `az` (the CLI's `BPROF_AZ`) when given.
pub fn resolve_program(program: &str, az: Option<&Path>) -> Result<PathBuf, ProcessError> {
    if program == "az"
        && let Some(az) = az
    {
        let shown = az.to_string_lossy().into_owned();
        return which(&shown).ok_or(ProcessError::Missing {
            program: shown,
            from_env: true,
        });
    }
    which(program).ok_or(ProcessError::Missing {
        program: program.to_string(),
        from_env: false,
    })
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it (Unix).
    Signal(i32),
}

impl Exit {
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }

    fn of(status: &std::process::ExitStatus) -> Exit {
        if let Some(c) = status.code() {
            return Exit::Code(c);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(sig) = status.signal() {
                return Exit::Signal(sig);
            }
        }
        Exit::Code(1)
    }
}

/// "exited with status 3", "was killed by signal 9 (SIGKILL)".
impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Exit::Code(c) => write!(f, "exited with status {c}"),
            Exit::Signal(s) => match signal_name(s) {
                Some(name) => write!(f, "was killed by signal {s} ({name})"),
                None => write!(f, "was killed by signal {s}"),
            },
        }
    }
}

/// The name of a signal number on this system, when it is a common one.
pub fn signal_name(sig: i32) -> Option<&'static str> {
    #[cfg(unix)]
    {
        let names = [
            (libc::SIGHUP, "SIGHUP"),
            (libc::SIGINT, "SIGINT"),
            (libc::SIGQUIT, "SIGQUIT"),
            (libc::SIGILL, "SIGILL"),
            (libc::SIGABRT, "SIGABRT"),
            (libc::SIGBUS, "SIGBUS"),
            (libc::SIGFPE, "SIGFPE"),
            (libc::SIGKILL, "SIGKILL"),
            (libc::SIGSEGV, "SIGSEGV"),
            (libc::SIGPIPE, "SIGPIPE"),
            (libc::SIGALRM, "SIGALRM"),
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGUSR1, "SIGUSR1"),
            (libc::SIGUSR2, "SIGUSR2"),
        ];
        names.iter().find(|(n, _)| *n == sig).map(|(_, name)| *name)
    }
    #[cfg(not(unix))]
    {
        match sig {
            2 => Some("SIGINT"),
            15 => Some("SIGTERM"),
            _ => None,
        }
    }
}

// Wakeups: a child exited or a signal arrived. Waiters take a `Moment`, check what they wait
// for, then sleep until the next event (or their timeout), so nothing is polled on the common
// path and no event between the check and the sleep is lost.
static EVENTS: Mutex<u64> = Mutex::new(0);
static WAKE: Condvar = Condvar::new();

fn events() -> MutexGuard<'static, u64> {
    EVENTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Says that something happened (a child exited, a signal arrived): every waiter wakes.
pub fn notify() {
    let mut n = events();
    *n = n.wrapping_add(1);
    drop(n);
    WAKE.notify_all();
}

/// A point in the stream of events; [`Moment::wait`] returns at the first event after it.
#[derive(Debug, Clone, Copy)]
pub struct Moment(u64);

/// Now: take it before checking the condition waited for.
pub fn moment() -> Moment {
    Moment(*events())
}

impl Moment {
    /// Sleeps until an event after this moment, at most `timeout`.
    pub fn wait(self, timeout: Duration) {
        let guard = events();
        let _ = WAKE.wait_timeout_while(guard, timeout, |n| *n == self.0);
    }
}

/// The longest any wait sleeps without an event: a safety net should a wakeup get lost (a
/// waiter thread that could not start), never the common path.
const NET: Duration = Duration::from_millis(250);

/// The signals bprof handles while it runs children: Ctrl-C, Ctrl-\, hang-up, termination.
#[cfg(unix)]
const HANDLED: [i32; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM];

/// Windows: the flag the console's control handler sets (it takes no argument of ours).
#[cfg(windows)]
static CONSOLE_FLAG: std::sync::OnceLock<Arc<AtomicUsize>> = std::sync::OnceLock::new();

/// Windows' console control handler: Ctrl-C is SIGINT (2); Ctrl-Break, closing the console,
/// logging off and shutting down are SIGTERM. Handled (bprof ends itself, after its cleanup;
/// the children share the console and get the same event from Windows).
#[cfg(windows)]
unsafe extern "system" fn on_console(ctrl: u32) -> windows_sys::core::BOOL {
    let sig = if ctrl == windows_sys::Win32::System::Console::CTRL_C_EVENT {
        2
    } else {
        SIGTERM as usize
    };
    if let Some(flag) = CONSOLE_FLAG.get() {
        flag.store(sig, Ordering::SeqCst);
    }
    1
}

/// Signals received (SIGINT, SIGQUIT, SIGHUP, SIGTERM): the last one's number, 0 when none.
#[derive(Clone)]
pub struct Signals(Arc<AtomicUsize>);

impl Signals {
    /// Installs the handlers: from now on these signals do not kill bprof, they are noted,
    /// wake every waiter, and are forwarded to the children by the code that waits for them.
    pub fn install() -> Signals {
        #[cfg(not(windows))]
        let flag = Arc::new(AtomicUsize::new(0));
        #[cfg(unix)]
        for sig in HANDLED {
            let _ = signal_hook::flag::register_usize(sig, Arc::clone(&flag), sig as usize);
        }
        // the CRT's signal(), which signal-hook uses on Windows, crashes under Wine on Ctrl-C;
        // the console's own handler is what Windows calls first anyway
        #[cfg(windows)]
        let flag = Arc::clone(CONSOLE_FLAG.get_or_init(|| {
            // SAFETY: the handler only stores into a static atomic
            unsafe {
                windows_sys::Win32::System::Console::SetConsoleCtrlHandler(Some(on_console), 1);
            }
            Arc::new(AtomicUsize::new(0))
        }));
        wake_on_signals(&flag);
        Signals(flag)
    }

    /// Signals that no handler raises: for a caller that takes signals itself (the tests that
    /// drive the session layer from a test process).
    pub fn unraised() -> Signals {
        Signals(Arc::new(AtomicUsize::new(0)))
    }

    pub fn received(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            n => i32::try_from(n).ok(),
        }
    }
}

/// The signal bprof passes on to a child for `sig` received: the same, but SIGTERM for SIGQUIT
/// (which would make every child dump core; a terminal's Ctrl-\\ reaches the foreground
/// child itself).
pub fn forwarded(sig: i32) -> i32 {
    #[cfg(unix)]
    if sig == libc::SIGQUIT {
        return SIGTERM;
    }
    sig
}

/// Whether process `pid` is running (any user's: a process bprof may not signal counts).
pub fn alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: signal 0 only checks that the process exists.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(windows)]
    {
        use windows_sys::Win32::Foundation::{
            CloseHandle, ERROR_ACCESS_DENIED, GetLastError, STILL_ACTIVE,
        };
        use windows_sys::Win32::System::Threading::{
            GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
        };
        // SAFETY: the handle is checked and closed once.
        unsafe {
            let h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
            if h.is_null() {
                return GetLastError() == ERROR_ACCESS_DENIED;
            }
            let mut code = 0u32;
            let ok = GetExitCodeProcess(h, &mut code) != 0;
            CloseHandle(h);
            !ok || code == STILL_ACTIVE as u32
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = pid;
        true
    }
}

/// A signal writes a byte to a socket (from the handler, which may do no more); a thread
/// reads it and wakes the waiters.
#[cfg(unix)]
fn wake_on_signals(_flag: &Arc<AtomicUsize>) {
    use std::io::Read;
    let Ok((mut reader, writer)) = std::os::unix::net::UnixStream::pair() else {
        return;
    };
    for sig in HANDLED {
        if let Ok(w) = writer.try_clone() {
            let _ = signal_hook::low_level::pipe::register(sig, w);
        }
    }
    drop(writer);
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut buf = [0u8; 64];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => notify(),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        });
}

/// Windows has no signal pipe: a thread looks at the flag.
#[cfg(not(unix))]
fn wake_on_signals(flag: &Arc<AtomicUsize>) {
    let flag = Arc::clone(flag);
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            loop {
                std::thread::sleep(Duration::from_millis(20));
                let now = flag.load(Ordering::SeqCst);
                if now != seen {
                    seen = now;
                    notify();
                }
            }
        });
}

/// A started child process, in its own process group on Unix when it runs in the background.
/// It is owned: dropping it stops it (and its group), so every early return, error and panic
/// leaves nothing running.
pub struct Child {
    handle: Arc<duct::Handle>,
    #[cfg_attr(not(unix), allow(dead_code))]
    own_group: bool,
    /// The read end of its stderr when spawned with `pipe_stderr`.
    stderr: Option<std::io::PipeReader>,
    /// Windows: the job it runs in (with what it starts), ended when the child is stopped or
    /// bprof ends.
    #[cfg(windows)]
    job: Option<job::Job>,
    /// argv[0] as the plan has it, for messages.
    name: String,
}

/// How a child is started.
pub struct Spawn<'a> {
    pub argv: &'a [String],
    /// Background: stdin from /dev/null, stdout to stderr (stdout stays bprof's own).
    pub background: bool,
    /// Its stderr (and, in the background, its stdout) goes to a pipe instead of bprof's
    /// stderr: [`Child::take_stderr`] returns the read end, whose reader must keep reading it
    /// (a full pipe blocks the child).
    pub pipe_stderr: bool,
    /// Its stdout is captured (read with [`Child::stdout`] once it has exited) instead of
    /// going to bprof's stdout or stderr.
    pub capture_stdout: bool,
    /// The az program to start for argv[0] `az` (`BPROF_AZ`); None: `az` from PATH.
    pub az: Option<&'a Path>,
}

fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

/// What cmd.exe would do to `args` of `program` when that is a batch file (`.cmd`, `.bat`, as
/// az is on Windows): it expands `%NAME%` even in quotes (std's escape for `%` relies on a
/// cmd.exe feature other command processors lack) and ends the command at a line break. The
/// rest of cmd.exe's metacharacters std quotes, and they reach the program literally.
pub fn batch_refusal(program: &Path, args: &[String]) -> Option<ProcessError> {
    let batch = program
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("cmd") || e.eq_ignore_ascii_case("bat"));
    if !batch {
        return None;
    }
    args.iter().find_map(|a| {
        let what = if a.contains('%') {
            "`%`"
        } else if a.contains(['\r', '\n', '\0']) {
            "a line break or NUL"
        } else {
            return None;
        };
        Some(ProcessError::Batch {
            program: program.display().to_string(),
            arg: a.escape_debug().to_string(),
            what,
        })
    })
}

/// Starts a process. A foreground child stays in the terminal's process group when there is a
/// terminal (so it can read it, and Ctrl-C reaches it directly); otherwise, and always in the
/// background, it gets a process group of its own that bprof signals as a whole. A thread
/// blocks on its exit and wakes the waiters ([`notify`]).
pub fn spawn(s: Spawn) -> Result<Child, ProcessError> {
    let (first, rest) = s.argv.split_first().ok_or_else(|| ProcessError::Missing {
        program: String::new(),
        from_env: false,
    })?;
    let program = resolve_program(first, s.az)?;
    if cfg!(windows)
        && let Some(refused) = batch_refusal(&program, rest)
    {
        return Err(refused);
    }
    let own_group = s.background || !stdin_is_terminal();
    // the one place bprof starts a process (clippy.toml forbids it everywhere else)
    #[allow(clippy::disallowed_methods)]
    let mut expr = duct::cmd(&program, rest).unchecked();
    if s.background {
        expr = expr.stdin_null();
        if !s.capture_stdout {
            expr = expr.stdout_to_stderr();
        }
    }
    if s.capture_stdout {
        expr = expr.stdout_capture();
    }
    let mut stderr = None;
    if s.pipe_stderr {
        let (reader, writer) = std::io::pipe().map_err(|source| ProcessError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
        // outermost, so that stdout_to_stderr above sends stdout into the pipe too
        expr = expr.stderr_file(writer);
        stderr = Some(reader);
    }
    #[cfg(unix)]
    if own_group {
        expr = expr.before_spawn(|cmd| {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
            Ok(())
        });
    }
    let handle = expr.start().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ProcessError::Missing {
                program: first.clone(),
                from_env: false,
            }
        } else {
            ProcessError::Spawn {
                program: program.display().to_string(),
                source,
            }
        }
    })?;
    // the expression owns bprof's copy of the pipe's write end: close it, so that the reader
    // sees the end of the file when the child (and whatever inherited it) is gone
    drop(expr);
    let handle = Arc::new(handle);
    let waited = Arc::clone(&handle);
    // no thread: the waits fall back to looking every NET
    let _ = std::thread::Builder::new()
        .name("child-wait".into())
        .spawn(move || {
            let _ = waited.wait();
            notify();
        });
    #[cfg(windows)]
    let job = handle
        .pids()
        .first()
        .and_then(|pid| job::Job::holding(*pid));
    Ok(Child {
        handle,
        own_group,
        stderr,
        #[cfg(windows)]
        job,
        name: first.clone(),
    })
}

impl Child {
    /// The read end of the child's stderr (once), when it was spawned with `pipe_stderr`.
    pub fn take_stderr(&mut self) -> Option<std::io::PipeReader> {
        self.stderr.take()
    }

    /// argv[0] as it was given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id of the child's own process group (its pid), when it has one (Unix, background
    /// or without a terminal).
    pub fn group_id(&self) -> Option<u32> {
        if cfg!(unix) && self.own_group {
            self.handle.pids().first().copied()
        } else {
            None
        }
    }

    /// What it wrote to its stdout, once it has exited (spawned with `capture_stdout`).
    pub fn stdout(&self) -> Option<Vec<u8>> {
        match self.handle.try_wait() {
            Ok(Some(out)) => Some(out.stdout.clone()),
            _ => None,
        }
    }

    /// How it ended, if it has.
    pub fn try_exit(&self) -> Option<Exit> {
        match self.handle.try_wait() {
            Ok(Some(out)) => Some(Exit::of(&out.status)),
            Ok(None) => None,
            Err(_) => Some(Exit::Code(1)),
        }
    }

    /// Sends `sig` to the child's process group (or the child alone when it shares bprof's).
    pub fn signal(&self, sig: i32) {
        #[cfg(unix)]
        for pid in self.handle.pids() {
            let Ok(pid) = libc::pid_t::try_from(pid) else {
                continue;
            };
            // SAFETY: kill/killpg only send a signal; the pid is our own child's.
            unsafe {
                if self.own_group {
                    libc::killpg(pid, sig);
                } else {
                    libc::kill(pid, sig);
                }
            }
        }
        #[cfg(windows)]
        {
            // Windows has no signals or process groups: end the child's job, the whole tree
            // (az.cmd runs cmd.exe, which runs python), or the child alone if it has none
            let _ = sig;
            match &self.job {
                Some(job) => job.terminate(),
                None => {
                    let _ = self.handle.kill();
                }
            }
        }
        #[cfg(not(any(unix, windows)))]
        {
            let _ = sig;
            let _ = self.handle.kill();
        }
    }

    /// Waits at most until `deadline` for the child to end.
    fn exit_by(&self, deadline: Instant) -> Option<Exit> {
        loop {
            let at = moment();
            if let Some(exit) = self.try_exit() {
                return Some(exit);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            at.wait(left.min(NET));
        }
    }

    /// Stops the child and everything in its group: `sig`, a grace period, then SIGKILL.
    pub fn stop(&self, sig: i32, grace: Duration) -> Exit {
        if let Some(exit) = self.try_exit() {
            self.kill_group();
            return exit;
        }
        self.signal(sig);
        let deadline = Instant::now()
            .checked_add(grace)
            .unwrap_or_else(Instant::now);
        if let Some(exit) = self.exit_by(deadline) {
            self.kill_group();
            return exit;
        }
        self.kill_group();
        let _ = self.handle.kill();
        let soon = Instant::now() + Duration::from_secs(1);
        self.exit_by(soon).unwrap_or(Exit::Signal(9))
    }

    /// SIGKILL to the whole group: grandchildren left behind by the child die too.
    fn kill_group(&self) {
        #[cfg(unix)]
        if self.own_group {
            self.signal(libc::SIGKILL);
        }
    }

    /// Waits for the child, blocked until it exits or a signal arrives. A signal to bprof is
    /// forwarded and ends the wait with `Interrupted` once the child is gone; so does a signal
    /// that arrived however the child then ended (its own status after Ctrl-C is not the run's).
    pub fn wait(&self, signals: &Signals) -> Result<Exit, ProcessError> {
        let mut passed_on = false;
        loop {
            let at = moment();
            if let Some(exit) = self.try_exit() {
                self.kill_group();
                return match signals.received() {
                    Some(signal) => Err(ProcessError::Interrupted { signal }),
                    None => Ok(exit),
                };
            }
            if let Some(sig) = signals.received()
                && !passed_on
            {
                passed_on = true;
                self.stop(forwarded(sig), Duration::from_secs(5));
                continue;
            }
            at.wait(NET);
        }
    }
}

/// A child that is dropped while it runs is stopped (SIGTERM, then SIGKILL), with its group.
impl Drop for Child {
    fn drop(&mut self) {
        self.stop(SIGTERM, Duration::from_secs(3));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_files_refuse_what_cmd_exe_would_interpret() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let az = Path::new("C:/az/bin/az.CMD");
        assert!(batch_refusal(az, &args(&["--x", "a^b&c|d<e>f\"g h"])).is_none());
        let e = batch_refusal(az, &args(&["ok", "x%PATH%y"])).map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("`%`") && e.contains("x%PATH%y")),
            "{e:?}"
        );
        let e = batch_refusal(Path::new("run.bat"), &args(&["a\nb"])).map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("line break") && e.contains("a\\nb")),
            "{e:?}"
        );
        // a program that is not a batch file gets its argv as it is
        assert!(batch_refusal(Path::new("az.exe"), &args(&["x%PATH%y", "a\nb"])).is_none());
        assert!(batch_refusal(Path::new("az"), &args(&["x%y"])).is_none());
    }

    #[test]
    fn exits_read_as_people_say_them() {
        assert_eq!(Exit::Code(3).to_string(), "exited with status 3");
        #[cfg(unix)]
        assert_eq!(
            Exit::Signal(9).to_string(),
            "was killed by signal 9 (SIGKILL)"
        );
        assert_eq!(Exit::Signal(99).to_string(), "was killed by signal 99");
        assert!(Exit::Code(0).success() && !Exit::Signal(15).success());
    }

    #[test]
    fn a_moment_wakes_at_the_next_event_not_at_its_timeout() {
        let at = moment();
        let t = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            notify();
        });
        let start = Instant::now();
        at.wait(Duration::from_secs(20));
        assert!(start.elapsed() < Duration::from_secs(10));
        let _ = t.join();
        // an event already past: no sleep at all
        let at = moment();
        notify();
        let start = Instant::now();
        at.wait(Duration::from_secs(20));
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_dropped_child_is_stopped_with_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("grandchild");
        let argv: Vec<String> = ["sh", "-c", "sleep 30 & echo $! > \"$0\"; wait"]
            .iter()
            .map(|s| s.to_string())
            .chain([file.display().to_string()])
            .collect();
        let child = spawn(Spawn {
            argv: &argv,
            background: true,
            pipe_stderr: false,
            capture_stdout: false,
            az: None,
        })
        .unwrap();
        let start = Instant::now();
        while std::fs::read_to_string(&file).map_or(true, |s| s.trim().is_empty())
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let pid: i32 = std::fs::read_to_string(&file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let leader = child.group_id().unwrap();
        drop(child);
        let gone = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                s.split(") ").nth(1).is_some_and(|s| s.starts_with('Z'))
            })
        };
        let start = Instant::now();
        while !(gone(pid) && gone(leader as i32)) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(gone(leader as i32), "the child runs on");
        assert!(gone(pid), "its grandchild runs on");
    }
}
