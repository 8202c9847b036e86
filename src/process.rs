//! The one place that starts processes: finding programs (PATH, `BPROF_AZ`), spawning without
//! a shell (each argv element passed as it is), process groups, signals, and stopping a child
//! with everything it started.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
    #[error("interrupted")]
    Interrupted { signal: i32 },
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

/// The program to start for argv[0]: `az` is `BPROF_AZ` when set.
pub fn resolve_program(program: &str) -> Result<PathBuf, ProcessError> {
    if program == "az"
        && let Some(az) = std::env::var_os("BPROF_AZ").filter(|v| !v.is_empty())
    {
        let az = az.to_string_lossy().into_owned();
        return which(&az).ok_or(ProcessError::Missing {
            program: az,
            from_env: true,
        });
    }
    which(program).ok_or(ProcessError::Missing {
        program: program.to_string(),
        from_env: false,
    })
}

/// Signals received (SIGINT, SIGTERM, SIGHUP): the last one's number, 0 when none.
#[derive(Clone)]
pub struct Signals(Arc<AtomicUsize>);

impl Signals {
    /// Installs the handlers: from now on these signals do not kill bprof, they are noted and
    /// forwarded to the children by the code that waits for them.
    pub fn install() -> Signals {
        let flag = Arc::new(AtomicUsize::new(0));
        #[cfg(unix)]
        let sigs = [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ];
        #[cfg(not(unix))]
        let sigs = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];
        for sig in sigs {
            let _ = signal_hook::flag::register_usize(sig, Arc::clone(&flag), sig as usize);
        }
        Signals(flag)
    }

    pub fn received(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n as i32),
        }
    }
}

/// A started child process, in its own process group on Unix when it runs in the background.
pub struct Child {
    handle: duct::Handle,
    #[cfg_attr(not(unix), allow(dead_code))]
    own_group: bool,
    /// The read end of its stderr when spawned with `pipe_stderr`.
    stderr: Option<std::io::PipeReader>,
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
}

fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

/// Starts a process. A foreground child stays in the terminal's process group when there is a
/// terminal (so it can read it, and Ctrl-C reaches it directly); otherwise, and always in the
/// background, it gets a process group of its own that bprof signals as a whole.
pub fn spawn(s: Spawn) -> Result<Child, ProcessError> {
    let (first, rest) = s.argv.split_first().ok_or_else(|| ProcessError::Missing {
        program: String::new(),
        from_env: false,
    })?;
    let program = resolve_program(first)?;
    let own_group = s.background || !stdin_is_terminal();
    // the one place bprof starts a process (clippy.toml forbids it everywhere else)
    #[allow(clippy::disallowed_methods)]
    let mut expr = duct::cmd(&program, rest).unchecked();
    if s.background {
        expr = expr.stdin_null().stdout_to_stderr();
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
    Ok(Child {
        handle,
        own_group,
        stderr,
    })
}

impl Child {
    /// The read end of the child's stderr (once), when it was spawned with `pipe_stderr`.
    pub fn take_stderr(&mut self) -> Option<std::io::PipeReader> {
        self.stderr.take()
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

    /// The exit code if it has exited (128 + signal when killed by one).
    pub fn try_code(&self) -> Option<i32> {
        match self.handle.try_wait() {
            Ok(Some(out)) => Some(exit_code(&out.status)),
            Ok(None) => None,
            Err(_) => Some(1),
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
        #[cfg(not(unix))]
        {
            // Windows has no signals or process groups: end the whole tree (az.cmd runs
            // cmd.exe, which runs python) while its root is still alive to find it by
            let _ = sig;
            for pid in self.handle.pids() {
                #[allow(clippy::disallowed_methods)]
                let _ = std::process::Command::new("taskkill")
                    .args(["/T", "/F", "/PID", &pid.to_string()])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
            let _ = self.handle.kill();
        }
    }

    /// Stops the child and everything in its group: `sig`, a grace period, then SIGKILL.
    pub fn stop(&self, sig: i32, grace: Duration) -> i32 {
        if let Some(code) = self.try_code() {
            self.kill_group();
            return code;
        }
        self.signal(sig);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(code) = self.try_code() {
                self.kill_group();
                return code;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill_group();
        let _ = self.handle.kill();
        self.try_code().unwrap_or(128 + 9)
    }

    /// SIGKILL to the whole group: grandchildren left behind by the child die too.
    fn kill_group(&self) {
        #[cfg(unix)]
        if self.own_group {
            self.signal(libc::SIGKILL);
        }
    }

    /// Waits for the child. A signal to bprof is forwarded and ends the wait with
    /// `Interrupted` once the child is gone.
    pub fn wait(&self, signals: &Signals) -> Result<i32, ProcessError> {
        let mut forwarded = None;
        loop {
            if let Some(code) = self.try_code() {
                self.kill_group();
                return match forwarded {
                    Some(sig) => Err(ProcessError::Interrupted { signal: sig }),
                    None => Ok(code),
                };
            }
            if let Some(sig) = signals.received()
                && forwarded.is_none()
            {
                forwarded = Some(sig);
                self.stop(sig, Duration::from_secs(5));
                continue;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn exit_code(status: &std::process::ExitStatus) -> i32 {
    if let Some(c) = status.code() {
        return c;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return 128 + sig;
        }
    }
    1
}
