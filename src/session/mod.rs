//! Executing a plan: its steps in order, the tunnel in the background (supervised, restarted),
//! the temporary .rdp file, the client, signals, and cleanup however the session ends.
//! stdin, stdout and stderr are inherited (az login and ssh are interactive). Ctrl-C reaches the
//! child's whole process group; bprof waits for it and exits 130.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod az_output;
pub mod entra;
mod gateway;
pub mod listener;
mod temp_rdp;
mod tunnel;

pub use temp_rdp::TempRdp;
use tunnel::*;

use crate::azure::AzureError;
use crate::plan::{Plan, StepKind, local_address};
use crate::process::{Child, Exit, ProcessError, SIGTERM, Signals, Spawn, moment, spawn};
use crate::tunnel::{Engine, StartError};
use az_output::{AzOutput, Seen};
use listener::Owner;

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
    #[error("`az ssh cert` left no usable certificate in {path}")]
    NoCertificate { path: String },
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
    /// bprof's exit code when a run ends with this error: a failed child's own status (see
    /// [`crate::exit::child_code`]), 69 when something it needs is unavailable.
    pub fn exit_code(&self) -> i32 {
        use crate::exit;
        match self {
            RunError::Process(e) => e.exit_code(),
            RunError::Azure(e) => e.exit_code(),
            RunError::StepFailed { .. }
            | RunError::TunnelExited { .. }
            | RunError::TunnelDied { .. }
            | RunError::ClientFailed { .. } => self.child_exit().map_or(1, exit::child_code),
            RunError::TunnelTimeout { .. }
            | RunError::PortBusy { .. }
            | RunError::PortSquatted { .. }
            | RunError::ListenerCheck { .. }
            | RunError::Listen { .. }
            | RunError::NotSignedIn { .. }
            | RunError::NoCertificate { .. } => exit::UNAVAILABLE,
            RunError::NotNative { .. } => exit::USAGE,
            RunError::Write(e) => e.exit_code(),
        }
    }

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
            RunError::Process(ProcessError::Missing { program, .. }) if program == "az" => {
                Some(crate::azure::AZ_MISSING.into())
            }
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

/// What a session owns; dropped in this order however it ends (client, tunnel, file).
#[derive(Default)]
struct Owned<'a> {
    tunnel: Option<Tunnel<'a>>,
    /// The native engine, when the plan uses it (stopped before the file is removed).
    engine: Option<Engine>,
    /// The token fetched by the plan's token step, for the engine.
    token: Option<crate::azure::token::AccessToken>,
    /// The gateway's .rdp file (Windows' gateway path), until the write-rdp step writes it.
    gateway: Option<gateway::Fetched>,
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
                                let t = crate::azure::token::fetch(
                                    &sub,
                                    signals,
                                    plan.host.azure.az.as_deref(),
                                )?;
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
    let now = crate::azure::signin::default_subscription(&plan.host.azure);
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
        StepKind::Foreground if step.argv.iter().any(|a| a == crate::plan::PRINCIPAL) => {
            let cert = plan
                .steps
                .iter()
                .find(|s| matches!(s.kind, StepKind::SshCert { .. }));
            let principal = match cert.map(|s| &s.kind) {
                Some(StepKind::SshCert { key }) => {
                    entra::ensure_cert(plan, cert.unwrap_or(step), key, signals)?
                }
                _ => String::new(),
            };
            foreground(plan, &entra::with_principal(step, &principal), signals)?
        }
        StepKind::SshKey { key } => entra::ensure_key(plan, step, key, signals)?,
        StepKind::SshCert { key } => {
            entra::ensure_cert(plan, step, key, signals)?;
        }
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
                owned.token = Some(crate::azure::token::fetch(
                    &sub,
                    signals,
                    plan.host.azure.az.as_deref(),
                )?);
            }
            StepKind::NativeTunnel(t) => start_engine(plan, t, signals, quiet, owned)?,
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
            StepKind::Gateway(g) => {
                let token = owned.token.take().ok_or_else(|| AzureError::Io {
                    what: "the gateway file".into(),
                    why: "the plan has no token step before it".into(),
                })?;
                owned.gateway = Some(gateway::fetch(plan, g, &token, signals)?);
            }
            StepKind::WriteRdp { path, lines } if owned.gateway.is_some() => {
                if let Some(fetched) = owned.gateway.take() {
                    owned.rdp = Some(gateway::write(fetched, Path::new(path), lines)?);
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
                if let Some(code) = client_step(plan, step, signals, owned)? {
                    return Ok(code);
                }
            }
            // run by `command_step` above
            StepKind::Login
            | StepKind::Foreground
            | StepKind::RestoreDefault { .. }
            | StepKind::SshKey { .. }
            | StepKind::SshCert { .. } => {}
            // made by the engine, for each connection
            StepKind::Request { .. } => {}
            StepKind::Hold { resource_port } => return hold(*resource_port, signals, quiet, owned),
        }
    }
    Ok(0)
}

/// bprof's own tunnel: started (with the token the plan's token step fetched), said, owned.
fn start_engine(
    plan: &Plan,
    t: &crate::plan::NativeTunnel,
    signals: &Signals,
    quiet: bool,
    owned: &mut Owned<'_>,
) -> Result<(), RunError> {
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
    Ok(())
}

/// The RDP client, in the foreground, while the tunnel lives: `Some(code)` ends the run,
/// `None` goes on (macOS `open` returned: the tunnel is held by the steps that follow).
fn client_step<'a>(
    plan: &'a Plan,
    step: &crate::plan::Step,
    signals: &Signals,
    owned: &mut Owned<'a>,
) -> Result<Option<i32>, RunError> {
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
        az: plan.host.azure.az.as_deref(),
    })?;
    loop {
        let at = moment();
        if let Some(exit) = client.try_exit() {
            interrupted(signals)?;
            if exit.success() {
                if argv.first().is_some_and(|p| p == "open") {
                    // macOS `open` hands the file to the app and returns: hold
                    // the tunnel
                    return Ok(None);
                }
                return Ok(Some(0));
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
        if (owned.tunnel.is_some() || owned.engine.is_some()) && !owned.keep_alive(signals)? {
            return Ok(Some(0));
        }
        // woken at once when the client (or the tunnel) exits or a signal comes;
        // the tunnel is looked at every 100 ms
        at.wait(Duration::from_millis(100));
    }
}

/// Holds the tunnel open until Ctrl-C (or it ends), saying where to connect.
fn hold(
    resource_port: u16,
    signals: &Signals,
    quiet: bool,
    owned: &mut Owned<'_>,
) -> Result<i32, RunError> {
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
        if let Some(c) = crate::plan::connect_hint(resource_port, port) {
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
        azure: plan.host.azure.clone(),
        workers: plan.host.tunnel_workers,
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
        az: plan.host.azure.az.as_deref(),
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
