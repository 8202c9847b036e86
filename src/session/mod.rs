//! Executing a plan: its steps in order, the tunnel in the background (supervised, restarted),
//! the temporary .rdp file, the client, signals, and cleanup however the session ends.
//! stdin, stdout and stderr are inherited (az login and ssh are interactive). Ctrl-C reaches the
//! child's whole process group; bprof waits for it and exits 130.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod az_output;
pub mod listener;

use crate::azure::AzureError;
use crate::plan::{Plan, StepKind, local_address};
use crate::process::{Child, Exit, ProcessError, SIGTERM, Signals, Spawn, moment, spawn};
use crate::tunnel::{Engine, StartError};
use az_output::{AzOutput, Seen};
use listener::Owner;

/// Where to get the Azure CLI.
pub const AZ_INSTALL_URL: &str = "https://learn.microsoft.com/cli/azure/install-azure-cli";

/// Errors of this layer.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("step `{step}` failed: `{program}` {exit}")]
    StepFailed {
        step: String,
        program: String,
        exit: Exit,
        /// The hint of a known failure az's output showed.
        known: Option<String>,
    },
    #[error("the tunnel's `{program}` {exit} before it was ready")]
    TunnelExited {
        program: String,
        exit: Exit,
        known: Option<String>,
    },
    #[error("the RDP client `{program}` {exit}")]
    ClientFailed { program: String, exit: Exit },
    #[error("the tunnel did not accept connections on 127.0.0.1:{port} within {secs} s")]
    TunnelTimeout { port: u16, secs: f64 },
    #[error("the tunnel died again (`{program}` {exit}) after {restarts} restarts")]
    TunnelDied {
        restarts: u32,
        program: String,
        exit: Exit,
    },
    #[error(transparent)]
    Write(#[from] crate::write::WriteError),
    #[error(transparent)]
    Azure(AzureError),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("local port {port} is busy")]
    PortBusy { port: u16, derived: bool },
    #[error("profile `{profile}` uses az's tunnel; `bprof proxy` needs the native engine")]
    NotNative { profile: String },
    #[error(
        "az is not signed in to subscription {subscription}, and `bprof proxy` cannot sign in (its stdin and stdout are ssh's)"
    )]
    NotSignedIn {
        subscription: String,
        tenant: String,
    },
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

impl From<AzureError> for RunError {
    fn from(e: AzureError) -> RunError {
        match e {
            // Ctrl-C while az fetched the token is an interruption like any other
            AzureError::Process(p) => RunError::Process(p),
            e => RunError::Azure(e),
        }
    }
}

impl From<StartError> for RunError {
    fn from(e: StartError) -> RunError {
        match e {
            StartError::Azure(a) => a.into(),
            StartError::Busy(b) => RunError::PortBusy {
                port: b.port,
                derived: false,
            },
            StartError::Listen { port, source } => RunError::Listen { port, source },
        }
    }
}

impl RunError {
    /// How the child whose end is this error ended, when it is one.
    pub fn child_exit(&self) -> Option<Exit> {
        match self {
            RunError::StepFailed { exit, .. }
            | RunError::TunnelExited { exit, .. }
            | RunError::ClientFailed { exit, .. }
            | RunError::TunnelDied { exit, .. } => Some(*exit),
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            RunError::Process(ProcessError::Missing { program, .. }) if program == "az" => Some(format!(
                "install the Azure CLI ({AZ_INSTALL_URL}), or set BPROF_AZ to its path"
            )),
            RunError::Process(ProcessError::Missing { program, .. }) if crate::plan::client::PROGRAMS.contains(&program.as_str()) => {
                Some(crate::plan::client::INSTALL_HINT.into())
            }
            RunError::Process(ProcessError::Missing { .. }) => Some("install it, or put it on PATH".into()),
            RunError::StepFailed { known: Some(k), .. } | RunError::TunnelExited { known: Some(k), .. } => Some(k.clone()),
            RunError::TunnelExited { .. } => Some("az's own message is above; `bprof run PROFILE -- --debug` shows more".into()),
            RunError::TunnelTimeout { .. } => Some("check the bastion and the VM; set BPROF_TUNNEL_TIMEOUT (seconds) to wait longer".into()),
            RunError::PortBusy { derived: true, .. } => Some("another tunnel for this profile may be open already; this port is derived from the profile name so that teammates' .rdp files match: close the other tunnel, or pass --port N".into()),
            RunError::PortBusy { .. } => Some("close what uses it, or pass --port N".into()),
            RunError::PortSquatted { port, .. } => Some(format!("something outside az's tunnel took the port while the tunnel started (another user of this machine can): see who with `ss -ltnp 'sport = :{port}'` (Linux) or `lsof -nP -iTCP:{port} -sTCP:LISTEN` (macOS); use another port with --port N")),
            RunError::Write(e) => Some(e.hint().into()),
            RunError::Azure(e) => e.hint(),
            RunError::NotNative { .. } => Some("remove `tunnel_engine: az` (or a `template`) from the profile, or unset BPROF_TUNNEL_ENGINE".into()),
            RunError::NotSignedIn { tenant, .. } => Some(format!("sign in first: az login --tenant {tenant}")),
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
    plan: &Plan,
    child: &Child,
    output: &AzOutput,
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
        if let Some(exit) = child.try_exit() {
            // az's last words first: they may say why
            output.drain(DRAIN);
            if output.seen().port_unavailable {
                return Err(squatted());
            }
            return Err(RunError::TunnelExited {
                program: child.name().to_string(),
                exit,
                known: known_hint(plan, &output.tail()),
            });
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
/// It owns the running az: dropping the tunnel stops it.
struct Tunnel<'a> {
    plan: &'a Plan,
    argv: &'a [String],
    port: u16,
    /// The running az and its watched output.
    child: Option<(Child, AzOutput)>,
    restarts: u32,
}

impl Tunnel<'_> {
    fn start(&mut self) -> Result<(), RunError> {
        let mut child = spawn(Spawn {
            argv: self.argv,
            background: true,
            pipe_stderr: true,
            capture_stdout: false,
        })?;
        let output = match child.take_stderr() {
            Some(pipe) => AzOutput::watch(pipe),
            None => AzOutput::watch(std::io::empty()),
        };
        self.child = Some((child, output));
        Ok(())
    }

    fn wait_ready(&self, signals: &Signals) -> Result<(), RunError> {
        match &self.child {
            Some((c, output)) => wait_ready(self.plan, c, output, self.port, signals),
            None => Ok(()),
        }
    }

    /// Checks the tunnel; restarts it if it died. Ok(false): it ended normally (exit 0, such as
    /// az's `--timeout`), and the session ends.
    fn keep_alive(&mut self, signals: &Signals) -> Result<bool, RunError> {
        let Some((child, output)) = &self.child else {
            return Ok(false);
        };
        let Some(exit) = child.try_exit() else {
            return Ok(true);
        };
        child.stop(SIGTERM, Duration::from_millis(100));
        output.drain(DRAIN);
        let program = child.name().to_string();
        if exit.success() {
            crate::terminal::eprintln(&format!("bprof: the tunnel closed (`{program}` {exit})"));
            return Ok(false);
        }
        if let Some(h) = known_hint(self.plan, &output.tail()) {
            crate::terminal::eprintln(&format!("bprof: hint: {h}"));
        }
        if self.restarts >= MAX_TUNNEL_RESTARTS {
            return Err(RunError::TunnelDied {
                restarts: self.restarts,
                program,
                exit,
            });
        }
        self.restarts += 1;
        crate::terminal::eprintln(&format!(
            "bprof: the tunnel on {} died (`{program}` {exit}); restarting it ({}/{MAX_TUNNEL_RESTARTS})",
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

impl Drop for Tunnel<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The temporary .rdp file of one run: a name no other run uses (`PROFILE-PID-N.rdp`, created
/// new, so nothing can be placed there first) in the private directory. Owned: dropping it
/// removes the file (and the directory, when no other run has a file in it).
pub struct TempRdp {
    path: PathBuf,
}

impl TempRdp {
    /// Writes `bytes` (0600) under a fresh name beside `planned` (the plan's representative
    /// path, `DIR/PROFILE.rdp`), in `DIR` created private (0700).
    pub fn create(planned: &Path, bytes: &[u8]) -> Result<TempRdp, crate::write::WriteError> {
        use std::io::Write;
        let dir = planned.parent().unwrap_or(Path::new("."));
        let err = |path: &Path, source| crate::write::WriteError::Write {
            path: path.display().to_string(),
            source,
        };
        create_private_dir(dir).map_err(|e| err(dir, e))?;
        let stem = planned
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bprof".into());
        let pid = std::process::id();
        let mut attempt = 0u32;
        loop {
            let path = dir.join(format!("{stem}-{pid}-{attempt}.rdp"));
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(&path) {
                Ok(mut f) => {
                    // owned from here: a failed write removes it
                    let guard = TempRdp { path };
                    f.write_all(bytes)
                        .and_then(|()| f.sync_all())
                        .map_err(|e| err(&guard.path, e))?;
                    return Ok(guard);
                }
                // a file of a crashed run with this pid, or another run of ours: the next name
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 1000 => {
                    attempt += 1;
                }
                // another run that ended removed the (then empty) directory meanwhile
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 1000 => {
                    create_private_dir(dir).map_err(|e| err(dir, e))?;
                    attempt += 1;
                }
                Err(e) => return Err(err(&path, e)),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempRdp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            // only when empty: another run's file keeps it
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// What a session owns; dropped in this order however it ends (client, tunnel, file).
#[derive(Default)]
struct Owned<'a> {
    tunnel: Option<Tunnel<'a>>,
    /// The native engine, when the plan uses it (stopped before the file is removed).
    engine: Option<Engine>,
    /// The token fetched by the plan's token step, for the engine.
    token: Option<crate::azure::token::AccessToken>,
    rdp: Option<TempRdp>,
}

impl Owned<'_> {
    /// The local port the plan's `port` became (the native engine may have moved it).
    fn port(&self, port: u16) -> u16 {
        self.engine.as_ref().map_or(port, Engine::port)
    }

    /// An .rdp line with the planned local address replaced by the one in use.
    fn actual(&self, planned: u16, line: &str) -> String {
        let now = self.port(planned);
        if now == planned {
            return line.to_string();
        }
        line.replace(&local_address(planned), &local_address(now))
    }

    /// Whether the tunnel (either engine) keeps going; Ok(false): it ended normally.
    fn keep_alive(&mut self, signals: &Signals) -> Result<bool, RunError> {
        if let Some(e) = &self.engine {
            return Ok(!e.ended());
        }
        match self.tunnel.as_mut() {
            Some(t) => t.keep_alive(signals),
            None => Ok(false),
        }
    }
}

/// Runs a plan's steps in order; stops at the first that fails, passing its status on. A
/// tunnel step starts the tunnel in the background; the session steps after it (wait,
/// write-rdp, client, hold) run while it lives; at the end (client exit, a signal, an error, a
/// panic) the session's guards stop the client and the tunnel's process group and remove the
/// temporary .rdp. Once bprof has received a signal, the run ends as interrupted by it,
/// whatever the child it was waiting for returned.
/// `quiet` (`-q`) leaves out the progress notes (tunnel ready, held open); warnings such as a
/// tunnel restart are always said.
pub fn execute(plan: &Plan, signals: &Signals, quiet: bool) -> Result<i32, RunError> {
    let mut owned = Owned::default();
    let result = run_steps(plan, signals, quiet, &mut owned);
    drop(owned);
    match signals.received() {
        Some(signal) => Err(ProcessError::Interrupted { signal }.into()),
        None => result,
    }
}

/// Several plans' native tunnels, held by one bprof until Ctrl-C: each plan's sign-in steps
/// first, one token per subscription, then every listener; then they are held together.
pub fn execute_several(plans: &[Plan], signals: &Signals, quiet: bool) -> Result<i32, RunError> {
    /// The engines, stopped together however the run ends.
    struct Engines(Vec<(String, Engine, Option<String>)>);
    impl Drop for Engines {
        fn drop(&mut self) {
            for (_, e, _) in &self.0 {
                e.signal_stop();
            }
        }
    }
    let mut held = Engines(Vec::new());
    let engines = &mut held.0;
    let result = (|| {
        let mut tokens: Vec<(String, crate::azure::token::AccessToken)> = Vec::new();
        for plan in plans {
            let mut token = None;
            for step in &plan.steps {
                interrupted(signals)?;
                if command_step(plan, step, signals)? {
                    continue;
                }
                match &step.kind {
                    StepKind::Token => {
                        let sub = token_subscription(step);
                        token = match tokens.iter().find(|(s, _)| *s == sub) {
                            Some((_, t)) => Some(t.clone()),
                            None => {
                                let t = crate::azure::token::fetch(&sub, signals)?;
                                tokens.push((sub, t.clone()));
                                Some(t)
                            }
                        };
                    }
                    StepKind::NativeTunnel(t) => {
                        let engine =
                            Engine::start(engine_config(plan, t), signals, true, token.take())?;
                        let connect = crate::plan::connect_hint(t.resource_port, engine.port());
                        engines.push((plan.profile.clone(), engine, connect));
                    }
                    _ => {}
                }
            }
        }
        Ok::<(), RunError>(())
    })();
    result?;
    if !quiet {
        for (profile, e, connect) in engines.iter() {
            crate::terminal::eprintln(&format!(
                "bprof: {profile}: tunnel open on {}{}",
                local_address(e.port()),
                connect
                    .as_ref()
                    .map(|c| format!("; connect with {c}"))
                    .unwrap_or_default()
            ));
        }
        crate::terminal::eprintln("bprof: press Ctrl-C to close them");
    }
    loop {
        let at = moment();
        interrupted(signals)?;
        if engines.iter().all(|(_, e, _)| e.ended()) {
            return Ok(0);
        }
        at.wait(Duration::from_millis(100));
    }
}

/// `az account set` back to the previous default, when `az login` changed it.
fn restore_default(
    plan: &Plan,
    step: &crate::plan::Step,
    previous: &str,
    signals: &Signals,
) -> Result<(), RunError> {
    let now = crate::azure::signin::default_subscription();
    if now.is_some_and(|n| !n.eq_ignore_ascii_case(previous)) {
        crate::terminal::eprintln(&format!(
            "bprof: az login changed your default subscription; setting it back to {previous}"
        ));
        foreground(plan, step, signals)?;
    }
    Ok(())
}

/// Runs a step that is a command of its own (login, restore-default, a template's steps);
/// Ok(false) for the others.
fn command_step(
    plan: &Plan,
    step: &crate::plan::Step,
    signals: &Signals,
) -> Result<bool, RunError> {
    match &step.kind {
        StepKind::Login | StepKind::Foreground => foreground(plan, step, signals)?,
        StepKind::RestoreDefault { previous } => restore_default(plan, step, previous, signals)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// The subscription of the token step (`az account get-access-token --subscription SUB`).
fn token_subscription(step: &crate::plan::Step) -> String {
    step.argv
        .iter()
        .position(|a| a == "--subscription")
        .and_then(|i| step.argv.get(i + 1))
        .cloned()
        .unwrap_or_default()
}

fn interrupted(signals: &Signals) -> Result<(), RunError> {
    match signals.received() {
        Some(signal) => Err(ProcessError::Interrupted { signal }.into()),
        None => Ok(()),
    }
}

fn run_steps<'a>(
    plan: &'a Plan,
    signals: &Signals,
    quiet: bool,
    owned: &mut Owned<'a>,
) -> Result<i32, RunError> {
    for step in &plan.steps {
        interrupted(signals)?;
        if command_step(plan, step, signals)? {
            continue;
        }
        match &step.kind {
            StepKind::Token => {
                let sub = token_subscription(step);
                owned.token = Some(crate::azure::token::fetch(&sub, signals)?);
            }
            StepKind::NativeTunnel(t) => {
                let cfg = engine_config(plan, t);
                // with bprof's own client to start, connections wait for it
                let has_client = plan.steps.iter().any(|s| s.kind == StepKind::Client);
                let engine = Engine::start(cfg, signals, !has_client, owned.token.take())?;
                if let Some(from) = engine.moved_from {
                    crate::terminal::eprintln(&format!(
                        "bprof: port {from} (derived from the profile name) is busy; using {} for this run",
                        engine.port()
                    ));
                }
                if !quiet {
                    crate::terminal::eprintln(&format!(
                        "bprof: tunnel ready on {}",
                        local_address(engine.port())
                    ));
                }
                owned.engine = Some(engine);
            }
            StepKind::Tunnel { port } => {
                let t = owned.tunnel.insert(Tunnel {
                    plan,
                    argv: &step.argv,
                    port: *port,
                    child: None,
                    restarts: 0,
                });
                t.start()?;
            }
            StepKind::Wait { port } => {
                if let Some(t) = owned.tunnel.as_ref() {
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
                let planned = PathBuf::from(path);
                let lines: Vec<String> = match plan_port(plan) {
                    Some(p) => lines.iter().map(|l| owned.actual(p, l)).collect(),
                    None => lines.clone(),
                };
                let file = TempRdp::create(&planned, &crate::plan::rdp::encode(&lines))?;
                owned.rdp = Some(file);
            }
            StepKind::Client => {
                // the plan names the representative path; this run's file has its own name
                let argv: Vec<String> = match (&owned.rdp, plan_rdp_path(plan)) {
                    (Some(file), Some(planned)) => step
                        .argv
                        .iter()
                        .map(|a| {
                            if a == planned {
                                file.path().display().to_string()
                            } else {
                                a.clone()
                            }
                        })
                        .collect(),
                    _ => step.argv.clone(),
                };
                if let Some(e) = &owned.engine {
                    e.set_gate(true);
                }
                // owned: every return below stops it (dropped), unless it has ended
                let client = spawn(Spawn {
                    argv: &argv,
                    background: false,
                    pipe_stderr: false,
                    capture_stdout: false,
                })?;
                loop {
                    let at = moment();
                    if let Some(exit) = client.try_exit() {
                        interrupted(signals)?;
                        if exit.success() {
                            if argv.first().is_some_and(|p| p == "open") {
                                // macOS `open` hands the file to the app and returns: hold
                                // the tunnel
                                break;
                            }
                            return Ok(0);
                        }
                        return Err(RunError::ClientFailed {
                            program: client.name().to_string(),
                            exit,
                        });
                    }
                    if let Some(sig) = signals.received() {
                        client.stop(crate::process::forwarded(sig), Duration::from_secs(5));
                        return Err(ProcessError::Interrupted { signal: sig }.into());
                    }
                    if (owned.tunnel.is_some() || owned.engine.is_some())
                        && !owned.keep_alive(signals)?
                    {
                        return Ok(0);
                    }
                    // woken at once when the client (or the tunnel) exits or a signal comes;
                    // the tunnel is looked at every 100 ms
                    at.wait(Duration::from_millis(100));
                }
            }
            // run by `command_step` above
            StepKind::Login | StepKind::Foreground | StepKind::RestoreDefault { .. } => {}
            StepKind::Hold { resource_port } => {
                let port = owned
                    .tunnel
                    .as_ref()
                    .map(|t| t.port)
                    .or(owned.engine.as_ref().map(Engine::port));
                if let Some(port) = port
                    && !quiet
                {
                    crate::terminal::eprintln(&format!(
                        "bprof: tunnel open on {}; press Ctrl-C to close it",
                        local_address(port)
                    ));
                    if let Some(c) = crate::plan::connect_hint(*resource_port, port) {
                        crate::terminal::eprintln(&format!("bprof: connect with {c}"));
                    }
                }
                loop {
                    let at = moment();
                    interrupted(signals)?;
                    if !owned.keep_alive(signals)? {
                        return Ok(0);
                    }
                    at.wait(Duration::from_millis(100));
                }
            }
        }
    }
    Ok(0)
}

/// `bprof proxy`: the plan's native tunnel as one session on stdin/stdout.
pub fn proxy(plan: &Plan, signals: &Signals) -> Result<(), RunError> {
    let Some(t) = plan.steps.iter().find_map(|s| match &s.kind {
        StepKind::NativeTunnel(t) => Some(t),
        _ => None,
    }) else {
        return Err(RunError::NotNative {
            profile: plan.profile.clone(),
        });
    };
    let result = crate::tunnel::proxy(engine_config(plan, t), signals);
    if let Some(signal) = signals.received() {
        return Err(ProcessError::Interrupted { signal }.into());
    }
    Ok(result?)
}

/// The local port the plan names for its tunnel.
fn plan_port(plan: &Plan) -> Option<u16> {
    plan.steps.iter().find_map(|s| match &s.kind {
        StepKind::NativeTunnel(t) => Some(t.port),
        StepKind::Tunnel { port } => Some(*port),
        _ => None,
    })
}

/// The engine's configuration from the plan's step.
fn engine_config(plan: &Plan, t: &crate::plan::NativeTunnel) -> crate::tunnel::Config {
    crate::tunnel::Config {
        profile: plan.profile.clone(),
        tenant: plan.tenant.clone(),
        tunnel: t.clone(),
    }
}

/// The representative .rdp path the plan shows (its write-rdp step).
fn plan_rdp_path(plan: &Plan) -> Option<&String> {
    plan.steps.iter().find_map(|s| match &s.kind {
        StepKind::WriteRdp { path, .. } => Some(path),
        _ => None,
    })
}

/// Whether a step's stderr is relayed through bprof (to recognise az's known failures): az's
/// steps, except `az network bastion ssh`, whose ssh session keeps the terminal as it is.
fn relayed(step: &crate::plan::Step) -> bool {
    step.argv.first().is_some_and(|p| p == "az")
        && step.argv.get(1..4) != Some(&["network".to_string(), "bastion".into(), "ssh".into()][..])
}

/// The hint for what az's output shows, when it is a known failure.
fn known_hint(plan: &Plan, output: &str) -> Option<String> {
    crate::azure::known::recognise(output)
        .map(|k| crate::azure::known::hint(k, &plan.profile, &plan.tenant))
}

/// Runs a step in the foreground; a failing status ends the run with it (and, when az's
/// output shows a known failure, with its hint).
fn foreground(plan: &Plan, step: &crate::plan::Step, signals: &Signals) -> Result<(), RunError> {
    let relay = relayed(step);
    let mut child = spawn(Spawn {
        argv: &step.argv,
        background: false,
        pipe_stderr: relay,
        capture_stdout: false,
    })?;
    let output = child.take_stderr().map(AzOutput::watch);
    let exit = child.wait(signals)?;
    if exit.success() {
        if let Some(o) = &output {
            o.drain(DRAIN);
        }
        return Ok(());
    }
    let known = output.and_then(|o| {
        o.drain(DRAIN);
        known_hint(plan, &o.tail())
    });
    Err(RunError::StepFailed {
        step: step.name.clone(),
        program: child.name().to_string(),
        exit,
        known,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_rdp_files_are_unique_per_run_and_removed_when_dropped() {
        let d = tempfile::tempdir().unwrap();
        let planned = d.path().join("bprof-alice/p.rdp");
        // a file left by a crashed run with this pid, under the first name
        let a = TempRdp::create(&planned, b"a").unwrap();
        let b = TempRdp::create(&planned, b"b").unwrap();
        assert_ne!(a.path(), b.path(), "two runs, two files");
        assert_eq!(std::fs::read(a.path()).unwrap(), b"a");
        assert_eq!(std::fs::read(b.path()).unwrap(), b"b");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(a.path()), 0o600);
            assert_eq!(mode(planned.parent().unwrap()), 0o700);
        }
        let (pa, pb) = (a.path().to_path_buf(), b.path().to_path_buf());
        drop(a);
        assert!(
            !pa.exists() && pb.exists(),
            "one run's end leaves the other's file"
        );
        // a panic is an end too
        let r = std::panic::catch_unwind(move || {
            let _b = b;
            panic!("a bug");
        });
        assert!(r.is_err());
        assert!(
            !pb.exists() && !planned.parent().unwrap().exists(),
            "nothing left"
        );
    }

    #[test]
    fn a_stale_file_under_the_first_name_is_passed_by() {
        let d = tempfile::tempdir().unwrap();
        let planned = d.path().join("bprof-alice/p.rdp");
        create_private_dir(planned.parent().unwrap()).unwrap();
        let stale = planned.with_file_name(format!("p-{}-0.rdp", std::process::id()));
        std::fs::write(&stale, b"stale").unwrap();
        let f = TempRdp::create(&planned, b"new").unwrap();
        assert_ne!(f.path(), stale);
        assert_eq!(
            std::fs::read(&stale).unwrap(),
            b"stale",
            "not written through"
        );
    }
}
