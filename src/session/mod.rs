//! Executing a plan: its steps in order, the tunnel in the background (supervised, restarted),
//! the temporary .rdp file, the client, signals, and cleanup however the session ends.
//! stdin, stdout and stderr are inherited (az login and ssh are interactive). Ctrl-C reaches the
//! child's whole process group; bprof waits for it and exits 130.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod listener;
pub mod tunnel_output;

use crate::plan::{Plan, StepKind, local_address};
use crate::process::{Child, ProcessError, SIGTERM, Signals, Spawn, spawn};
use listener::Owner;
use tunnel_output::{Seen, TunnelOutput};

/// Where to get the Azure CLI.
pub const AZ_INSTALL_URL: &str = "https://learn.microsoft.com/cli/azure/install-azure-cli";

/// Errors of this layer.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("step `{step}` failed with exit status {code}")]
    StepFailed { step: String, code: i32 },
    #[error("the tunnel exited with status {code} before it was ready")]
    TunnelExited { code: i32 },
    #[error("the tunnel did not accept connections on 127.0.0.1:{port} within {secs} s")]
    TunnelTimeout { port: u16, secs: f64 },
    #[error("the tunnel died again (az exited {code}) after {restarts} restarts")]
    TunnelDied { restarts: u32, code: i32 },
    #[error(transparent)]
    Write(#[from] crate::write::WriteError),
    #[error("local port {port} is busy")]
    PortBusy { port: u16, derived: bool },
    #[error(
        "another process listens on {at}: bprof will not point the client at a listener it does not own"
    )]
    PortSquatted { port: u16, at: String },
    #[error("cannot check who listens on port {port}: /proc/net/tcp: {source}")]
    ListenerCheck {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    pub fn hint(&self) -> Option<String> {
        match self {
            RunError::Process(ProcessError::Missing { program, .. }) if program == "az" => Some(format!(
                "install the Azure CLI ({AZ_INSTALL_URL}), or set BPROF_AZ to its path"
            )),
            RunError::Process(ProcessError::Missing { program, .. }) if crate::plan::client::PROGRAMS.contains(&program.as_str()) => {
                Some(crate::plan::client::INSTALL_HINT.into())
            }
            RunError::Process(ProcessError::Missing { .. }) => Some("install it, or put it on PATH".into()),
            RunError::TunnelExited { .. } => Some("az's own message is above; `bprof run PROFILE -- --debug` shows more".into()),
            RunError::TunnelTimeout { .. } => Some("check the bastion and the VM; set BPROF_TUNNEL_TIMEOUT (seconds) to wait longer".into()),
            RunError::PortBusy { derived: true, .. } => Some("another tunnel for this profile may be open already; this port is derived from the profile name so that teammates' .rdp files match: close the other tunnel, or pass --port N".into()),
            RunError::PortBusy { .. } => Some("close what uses it, or pass --port N".into()),
            RunError::PortSquatted { port, .. } => Some(format!("something outside az's tunnel took the port while the tunnel started (another user of this machine can): see who with `ss -ltnp 'sport = :{port}'` (Linux) or `lsof -nP -iTCP:{port} -sTCP:LISTEN` (macOS); use another port with --port N")),
            RunError::Write(e) => Some(e.hint().into()),
            _ => None,
        }
    }
}

/// How many times a tunnel that dies during a session is restarted.
pub const MAX_TUNNEL_RESTARTS: u32 = 3;

/// How often readiness is checked (reading /proc is cheap).
const POLL: Duration = Duration::from_millis(50);

/// How long az's last output may take to reach bprof's stderr after az exited.
const DRAIN: Duration = Duration::from_secs(1);

/// Who listens on the tunnel's port. Linux: the LISTEN sockets on the port and the tunnel's
/// process group (`listener`). Elsewhere bprof cannot see socket owners: az's ready line and a
/// connection to 127.0.0.1 are taken as the tunnel's.
fn owner(port: u16, child: &Child, seen: Seen) -> Result<Owner, RunError> {
    #[cfg(target_os = "linux")]
    {
        let _ = seen;
        listener::check(port, child.group_id())
            .map_err(|source| RunError::ListenerCheck { port, source })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = child;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        if seen.ready && std::net::TcpStream::connect_timeout(&addr, POLL * 4).is_ok() {
            Ok(Owner::Tunnel)
        } else {
            Ok(Owner::Nobody)
        }
    }
}

/// Waits until the tunnel, and only the tunnel, listens on `port`. Fails when another process
/// listens on it (or az says its bind failed), when the tunnel exits first, when the timeout
/// passes, or when a signal arrives.
fn wait_ready(
    child: &Child,
    output: &TunnelOutput,
    port: u16,
    signals: &Signals,
) -> Result<(), RunError> {
    let timeout = crate::plan::tunnel_timeout();
    let start = Instant::now();
    let squatted = || RunError::PortSquatted {
        port,
        at: format!("{} (or [::1]:{port})", local_address(port)),
    };
    loop {
        if let Some(sig) = signals.received() {
            return Err(ProcessError::Interrupted { signal: sig }.into());
        }
        if output.seen().port_unavailable {
            return Err(squatted());
        }
        if let Some(code) = child.try_code() {
            // az's last words first: they may say why
            output.drain(DRAIN);
            if output.seen().port_unavailable {
                return Err(squatted());
            }
            return Err(RunError::TunnelExited { code });
        }
        match owner(port, child, output.seen())? {
            Owner::Tunnel => return Ok(()),
            Owner::Foreign(addr) => {
                return Err(RunError::PortSquatted {
                    port,
                    at: addr.to_string(),
                });
            }
            Owner::Nobody => {}
        }
        if start.elapsed() >= timeout {
            return Err(RunError::TunnelTimeout {
                port,
                secs: timeout.as_secs_f64(),
            });
        }
        output.wait(POLL);
    }
}

/// The tunnel of a session: restarted on the same port when it dies, a bounded number of times.
struct Tunnel<'a> {
    argv: &'a [String],
    port: u16,
    /// The running az and its watched output.
    child: Option<(Child, TunnelOutput)>,
    restarts: u32,
}

impl Tunnel<'_> {
    fn start(&mut self) -> Result<(), RunError> {
        let mut child = spawn(Spawn {
            argv: self.argv,
            background: true,
            pipe_stderr: true,
        })?;
        let output = match child.take_stderr() {
            Some(pipe) => TunnelOutput::watch(pipe),
            None => TunnelOutput::watch(std::io::empty()),
        };
        self.child = Some((child, output));
        Ok(())
    }

    fn wait_ready(&self, signals: &Signals) -> Result<(), RunError> {
        match &self.child {
            Some((c, output)) => wait_ready(c, output, self.port, signals),
            None => Ok(()),
        }
    }

    /// Checks the tunnel; restarts it if it died. Ok(false): it ended normally (exit 0, such as
    /// az's `--timeout`), and the session ends.
    fn keep_alive(&mut self, signals: &Signals) -> Result<bool, RunError> {
        let Some((child, output)) = &self.child else {
            return Ok(false);
        };
        let Some(code) = child.try_code() else {
            return Ok(true);
        };
        child.stop(SIGTERM, Duration::from_millis(100));
        output.drain(DRAIN);
        if code == 0 {
            crate::terminal::eprintln("bprof: the tunnel closed (az exited 0)");
            return Ok(false);
        }
        if self.restarts >= MAX_TUNNEL_RESTARTS {
            return Err(RunError::TunnelDied {
                restarts: self.restarts,
                code,
            });
        }
        self.restarts += 1;
        crate::terminal::eprintln(&format!(
            "bprof: the tunnel on {} died (az exited {code}); restarting it ({}/{MAX_TUNNEL_RESTARTS})",
            local_address(self.port),
            self.restarts
        ));
        self.start()?;
        self.wait_ready(signals)?;
        crate::terminal::eprintln(&format!(
            "bprof: the tunnel is back on {}",
            local_address(self.port)
        ));
        Ok(true)
    }

    fn stop(&mut self) {
        if let Some((c, output)) = self.child.take() {
            c.stop(SIGTERM, Duration::from_secs(3));
            output.drain(DRAIN);
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
            StepKind::Login | StepKind::Foreground => foreground(step, signals)?,
            StepKind::RestoreDefault { previous } => {
                let now = crate::azure::signin::default_subscription();
                if now.is_some_and(|n| !n.eq_ignore_ascii_case(previous)) {
                    crate::terminal::eprintln(&format!(
                        "bprof: az login changed your default subscription; setting it back to {previous}"
                    ));
                    foreground(step, signals)?;
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
                if let Some(t) = tunnel.as_ref() {
                    t.wait_ready(signals)?;
                    if !quiet {
                        crate::terminal::eprintln(&format!(
                            "bprof: tunnel ready on {}",
                            local_address(*port)
                        ));
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
                crate::write::write_atomic(&path, &crate::plan::rdp::encode(lines), true, true)?;
                *written = Some(path);
            }
            StepKind::Client => {
                let client = spawn(Spawn {
                    argv: &step.argv,
                    background: false,
                    pipe_stderr: false,
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
                        return Err(ProcessError::Interrupted { signal: sig }.into());
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
                    crate::terminal::eprintln(&format!(
                        "bprof: tunnel open on {}; press Ctrl-C to close it",
                        local_address(t.port)
                    ));
                }
                loop {
                    if let Some(sig) = signals.received() {
                        return Err(ProcessError::Interrupted { signal: sig }.into());
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

/// Runs a step in the foreground; a failing status ends the run with it.
fn foreground(step: &crate::plan::Step, signals: &Signals) -> Result<(), RunError> {
    let child = spawn(Spawn {
        argv: &step.argv,
        background: false,
        pipe_stderr: false,
    })?;
    match child.wait(signals)? {
        0 => Ok(()),
        code => Err(RunError::StepFailed {
            step: step.name.clone(),
            code,
        }),
    }
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
