//! The runner: the one module that starts processes. No shell, ever: each argv element is
//! passed as it is. stdin, stdout and stderr are inherited (az login and ssh are interactive).
//! Ctrl-C reaches the child's whole process group; bprof waits for it and exits 130.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::plan::{Plan, StepKind};

/// The polite stop signal (on Windows, where there are no signals, stopping kills).
const SIGTERM: i32 = 15;

/// Where to get the Azure CLI.
pub const AZ_INSTALL_URL: &str = "https://learn.microsoft.com/cli/azure/install-azure-cli";

/// Errors of this layer.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("`{program}` was not found{}", .from_env.then_some(" (BPROF_AZ)").unwrap_or(" on PATH"))]
    Missing { program: String, from_env: bool },
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("step `{step}` failed with exit status {code}")]
    StepFailed { step: String, code: i32 },
    #[error("interrupted")]
    Interrupted { signal: i32 },
    #[error("the tunnel exited with status {code} before it was ready")]
    TunnelExited { code: i32 },
    #[error("the tunnel did not accept connections on localhost:{port} within {secs} s")]
    TunnelTimeout { port: u16, secs: f64 },
    #[error("the tunnel died again (az exited {code}) after {restarts} restarts")]
    TunnelDied { restarts: u32, code: i32 },
    #[error(transparent)]
    Write(#[from] crate::write::WriteError),
    #[error("local port {port} is busy")]
    PortBusy { port: u16, derived: bool },
}

impl RunError {
    pub fn hint(&self) -> Option<String> {
        match self {
            RunError::Missing { program, .. } if program == "az" => Some(format!(
                "install the Azure CLI ({AZ_INSTALL_URL}), or set BPROF_AZ to its path"
            )),
            RunError::Missing { program, .. } if crate::client::PROGRAMS.contains(&program.as_str()) => {
                Some(crate::client::INSTALL_HINT.into())
            }
            RunError::Missing { .. } => Some("install it, or put it on PATH".into()),
            RunError::TunnelExited { .. } => Some("az's own message is above; `bprof run PROFILE -- --debug` shows more".into()),
            RunError::TunnelTimeout { .. } => Some("check the bastion and the VM; set BPROF_TUNNEL_TIMEOUT (seconds) to wait longer".into()),
            RunError::PortBusy { derived: true, .. } => Some("another tunnel for this profile may be open already; this port is derived from the profile name so that teammates' .rdp files match: close the other tunnel, or pass --port N".into()),
            RunError::PortBusy { .. } => Some("close what uses it, or pass --port N".into()),
            RunError::Write(e) => Some(e.hint().into()),
            _ => None,
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

/// The program to start for argv[0]: `az` is `BPROF_AZ` when set.
pub fn resolve_program(program: &str) -> Result<PathBuf, RunError> {
    if program == "az"
        && let Some(az) = std::env::var_os("BPROF_AZ").filter(|v| !v.is_empty())
    {
        let az = az.to_string_lossy().into_owned();
        return which(&az).ok_or(RunError::Missing {
            program: az,
            from_env: true,
        });
    }
    which(program).ok_or(RunError::Missing {
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
}

/// How a child is started.
pub struct Spawn<'a> {
    pub argv: &'a [String],
    /// Background: stdin from /dev/null, stdout to stderr (stdout stays bprof's own).
    pub background: bool,
}

fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

/// Starts a process. A foreground child stays in the terminal's process group when there is a
/// terminal (so it can read it, and Ctrl-C reaches it directly); otherwise, and always in the
/// background, it gets a process group of its own that bprof signals as a whole.
pub fn spawn(s: Spawn) -> Result<Child, RunError> {
    let (first, rest) = s.argv.split_first().ok_or_else(|| RunError::Missing {
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
            RunError::Missing {
                program: first.clone(),
                from_env: false,
            }
        } else {
            RunError::Spawn {
                program: program.display().to_string(),
                source,
            }
        }
    })?;
    Ok(Child { handle, own_group })
}

impl Child {
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
    pub fn wait(&self, signals: &Signals) -> Result<i32, RunError> {
        let mut forwarded = None;
        loop {
            if let Some(code) = self.try_code() {
                self.kill_group();
                return match forwarded {
                    Some(sig) => Err(RunError::Interrupted { signal: sig }),
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

fn exit_code(status: &std::process::ExitStatus) -> i32 {
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

/// How many times a tunnel that dies during a session is restarted.
pub const MAX_TUNNEL_RESTARTS: u32 = 3;

/// Waits until `port` on localhost accepts a TCP connection. Fails when the tunnel exits
/// first, the timeout passes, or a signal arrives.
fn wait_ready(tunnel: &Child, port: u16, signals: &Signals) -> Result<(), RunError> {
    let timeout = crate::plan::tunnel_timeout();
    let start = Instant::now();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Some(sig) = signals.received() {
            return Err(RunError::Interrupted { signal: sig });
        }
        if let Some(code) = tunnel.try_code() {
            return Err(RunError::TunnelExited { code });
        }
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(RunError::TunnelTimeout {
                port,
                secs: timeout.as_secs_f64(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The tunnel of a session: restarted on the same port when it dies, a bounded number of times.
struct Tunnel<'a> {
    argv: &'a [String],
    port: u16,
    child: Option<Child>,
    restarts: u32,
}

impl Tunnel<'_> {
    fn start(&mut self) -> Result<(), RunError> {
        self.child = Some(spawn(Spawn {
            argv: self.argv,
            background: true,
        })?);
        Ok(())
    }

    /// Checks the tunnel; restarts it if it died. Ok(false): it ended normally (exit 0, such as
    /// az's `--timeout`), and the session ends.
    fn keep_alive(&mut self, signals: &Signals) -> Result<bool, RunError> {
        let Some(child) = &self.child else {
            return Ok(false);
        };
        let Some(code) = child.try_code() else {
            return Ok(true);
        };
        child.stop(SIGTERM, Duration::from_millis(100));
        if code == 0 {
            eprintln!("bprof: the tunnel closed (az exited 0)");
            return Ok(false);
        }
        if self.restarts >= MAX_TUNNEL_RESTARTS {
            return Err(RunError::TunnelDied {
                restarts: self.restarts,
                code,
            });
        }
        self.restarts += 1;
        eprintln!(
            "bprof: the tunnel on localhost:{} died (az exited {code}); restarting it ({}/{MAX_TUNNEL_RESTARTS})",
            self.port, self.restarts
        );
        self.start()?;
        if let Some(c) = &self.child {
            wait_ready(c, self.port, signals)?;
        }
        eprintln!("bprof: the tunnel is back on localhost:{}", self.port);
        Ok(true)
    }

    fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            c.stop(SIGTERM, Duration::from_secs(3));
        }
    }
}

/// Runs a plan's steps in order; stops at the first that fails, passing its status on. A
/// tunnel step starts the tunnel in the background; the session steps after it (wait,
/// write-rdp, client, hold) run while it lives; at the end (client exit, Ctrl-C, error) the
/// tunnel's process group is stopped and the temporary .rdp removed.
/// `quiet` (`-q`) leaves out the progress notes (tunnel ready, held open); warnings such as a
/// tunnel restart are always said.
pub fn execute(plan: &Plan, signals: &Signals, quiet: bool) -> Result<i32, RunError> {
    let mut tunnel: Option<Tunnel> = None;
    let mut written: Option<PathBuf> = None;
    let result = run_steps(plan, signals, quiet, &mut tunnel, &mut written);
    if let Some(t) = &mut tunnel {
        t.stop();
    }
    if let Some(p) = written {
        let _ = std::fs::remove_file(&p);
        if let Some(dir) = p.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    result
}

fn run_steps<'a>(
    plan: &'a Plan,
    signals: &Signals,
    quiet: bool,
    tunnel: &mut Option<Tunnel<'a>>,
    written: &mut Option<PathBuf>,
) -> Result<i32, RunError> {
    for step in &plan.steps {
        match &step.kind {
            StepKind::Login | StepKind::Foreground => {
                let child = spawn(Spawn {
                    argv: &step.argv,
                    background: false,
                })?;
                let code = child.wait(signals)?;
                if code != 0 {
                    return Err(RunError::StepFailed {
                        step: step.name.clone(),
                        code,
                    });
                }
            }
            StepKind::Tunnel { port } => {
                let mut t = Tunnel {
                    argv: &step.argv,
                    port: *port,
                    child: None,
                    restarts: 0,
                };
                t.start()?;
                *tunnel = Some(t);
            }
            StepKind::Wait { port } => {
                if let Some(c) = tunnel.as_ref().and_then(|t| t.child.as_ref()) {
                    wait_ready(c, *port, signals)?;
                    if !quiet {
                        eprintln!("bprof: tunnel ready on localhost:{port}");
                    }
                }
            }
            StepKind::WriteRdp { path, lines } => {
                let path = PathBuf::from(path);
                if let Some(dir) = path.parent() {
                    create_private_dir(dir).map_err(|source| crate::write::WriteError::Write {
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
                crate::write::write_atomic(&path, &crate::rdp::encode(lines), true, true)?;
                *written = Some(path);
            }
            StepKind::Client => {
                let client = spawn(Spawn {
                    argv: &step.argv,
                    background: false,
                })?;
                loop {
                    if let Some(code) = client.try_code() {
                        if step.argv.first().is_some_and(|p| p == "open") && code == 0 {
                            // macOS `open` hands the file to the app and returns: hold the tunnel
                            break;
                        }
                        return Ok(code);
                    }
                    if let Some(sig) = signals.received() {
                        client.stop(sig, Duration::from_secs(5));
                        return Err(RunError::Interrupted { signal: sig });
                    }
                    if let Some(t) = tunnel.as_mut() {
                        match t.keep_alive(signals) {
                            Ok(true) => {}
                            Ok(false) => {
                                client.stop(SIGTERM, Duration::from_secs(5));
                                return Ok(0);
                            }
                            Err(e) => {
                                client.stop(SIGTERM, Duration::from_secs(5));
                                return Err(e);
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            StepKind::Hold => {
                if let Some(t) = tunnel.as_ref()
                    && !quiet
                {
                    eprintln!(
                        "bprof: tunnel open on localhost:{}; press Ctrl-C to close it",
                        t.port
                    );
                }
                loop {
                    if let Some(sig) = signals.received() {
                        return Err(RunError::Interrupted { signal: sig });
                    }
                    let alive = match tunnel.as_mut() {
                        Some(t) => t.keep_alive(signals)?,
                        None => false,
                    };
                    if !alive {
                        return Ok(0);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    Ok(0)
}

/// Creates `dir` readable by the user only (0700 on Unix).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let meta = std::fs::symlink_metadata(dir)?;
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        if !meta.is_dir() || meta.uid() != uid {
            return Err(std::io::Error::other(format!(
                "{} is not a directory of yours",
                dir.display()
            )));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}
