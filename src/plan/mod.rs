//! The plan: the exact steps `run` executes, as argv lists, for a given OS. Nothing runs here.
//! `template` renders argv tokens, `shell` quotes them for display, `rdp` makes .rdp content and
//! `client` chooses the RDP client.

pub mod check;
pub mod client;
mod draft;
pub mod rdp;
pub mod shell;
pub mod ssh;
pub mod template;
mod validate;

pub use crate::machine::Host;
pub use validate::validate_all;

use serde::Serialize;
use serde_json::{Value, json};

use crate::profile::load::ProfileSet;
use crate::profile::raw::{Client, LocalPort, Mode, TunnelEngine};
use crate::profile::resolve::Profile;
pub use draft::Draft;
use template::TemplateError;

use crate::profile::diag::Problem;
use crate::profile::load::{Def, Section};
use crate::profile::trust::{Consent, Request};

/// Errors of this layer.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(
        "profile `{profile}` uses shared content that asks for more than shared files may, and you have not approved it"
    )]
    Consent {
        profile: String,
        requests: Vec<(Request, Consent)>,
    },
    #[error("profile `{profile}`: {what} under the native tunnel engine")]
    Native {
        profile: String,
        what: String,
        /// From the command line (`run -- EXTRA`), not the profile.
        usage: bool,
    },
    #[error("{} problem{} in the plan of profile `{profile}`", .problems.len(), if .problems.len() == 1 { "" } else { "s" })]
    Invalid {
        profile: String,
        problems: Vec<Problem>,
    },
}

/// A value that reaches a program or an .rdp file, and who asked for it (shown by `plan`).
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// What it is: `profiles.p.ssh_args`, template `t`, the command line.
    pub what: String,
    /// `file:line`, or `command line`.
    pub from: String,
    /// shared | personal | user-config | command-line, and whether it was approved.
    pub trust: String,
}

/// The operating system a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Windows,
    Linux,
    Macos,
}

impl Os {
    /// The OS bprof is running on.
    pub fn current() -> Os {
        if cfg!(windows) {
            Os::Windows
        } else if cfg!(target_os = "macos") {
            Os::Macos
        } else {
            Os::Linux
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Os::Windows => "windows",
            Os::Linux => "linux",
            Os::Macos => "macos",
        }
    }
}

/// What the runner does with a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// `az login`, interactive, only when not signed in.
    Login,
    /// A command in the foreground, interactive; its exit status is the run's.
    Foreground,
    /// `az network bastion tunnel` in the background for the steps that follow.
    Tunnel { port: u16 },
    /// `az account get-access-token`: the ARM token for the native tunnel, kept in memory.
    Token,
    /// bprof's own tunnel (listening when the step ends) for the steps that follow.
    NativeTunnel(NativeTunnel),
    /// Wait until the tunnel's local port accepts a TCP connection.
    Wait { port: u16 },
    /// Write the temporary .rdp file (these lines) for the client.
    WriteRdp { path: String, lines: Vec<String> },
    /// The RDP client, in the foreground; its exit ends the session.
    Client,
    /// Keep the tunnel open until Ctrl-C; the VM's port, for what to point a client at
    /// ([`connect_hint`] with the local port in use).
    Hold { resource_port: u16 },
    /// `az account set --subscription PREVIOUS`, only when the login changed the default.
    RestoreDefault { previous: String },
}

/// What the native tunnel engine connects (the session layer runs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeTunnel {
    /// The bastion's subscription (the token's), resource group and Azure name.
    pub subscription: String,
    pub resource_group: String,
    pub bastion: String,
    pub dns_name: Option<String>,
    pub target: TunnelTarget,
    pub resource_port: u16,
    /// The local port wanted.
    pub port: u16,
    /// When it is taken: one the OS picks (`local_port: auto` without `--tunnel-only`).
    pub fallback: bool,
    /// The profile's `timeout`, in seconds.
    pub timeout: Option<u32>,
}

/// What a native session connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelTarget {
    /// A VM's ARM id.
    Vm(String),
    /// IP connect.
    Ip(String),
}

/// The engine a profile's tunnel runs on: the profile's `tunnel_engine`, else
/// `BPROF_TUNNEL_ENGINE` (`opts.engine`), else native. A profile with its own template runs
/// what the template says (az's tunnel).
pub fn engine(profile: &Profile, opts: &PlanOptions) -> TunnelEngine {
    if profile.template.is_some() && !opts.tunnel_only {
        return TunnelEngine::Az;
    }
    profile
        .tunnel_engine
        .or(opts.engine)
        .unwrap_or(TunnelEngine::Native)
}

/// The argv of the token call of the native engine.
pub fn token_argv(subscription: &str) -> Vec<String> {
    [
        "az",
        "account",
        "get-access-token",
        "--subscription",
        subscription,
        "-o",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One step of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    /// argv[0] is the program as invoked (`az`); every element exact, no quoting added.
    pub argv: Vec<String>,
    /// A condition such as `not-signed-in`, or null.
    pub when: Option<String>,
    /// What a step that runs no program does (wait, write-rdp, hold).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip)]
    pub kind: StepKind,
}

impl Step {
    fn internal(name: &str, detail: String, kind: StepKind) -> Step {
        Step {
            name: name.into(),
            argv: Vec::new(),
            when: None,
            detail: Some(detail),
            kind,
        }
    }
}

/// The steps `run` would execute for one profile.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub profile: String,
    #[serde(skip)]
    pub os: Os,
    /// The profile's tenant id (for hints: `az login --tenant ...`).
    #[serde(skip)]
    pub tenant: String,
    /// What running it needs of this machine (the CLI's settings).
    #[serde(skip)]
    pub host: Host,
    pub steps: Vec<Step>,
    /// Capability-bearing values in the plan and where they came from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
}

/// What the command line adds to a profile for one plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub os: Os,
    /// `run --configure`: add `--configure` for this run only.
    pub configure: bool,
    /// `run --port N`.
    pub port: Option<u16>,
    /// `run -- EXTRA...`: appended to the connect step's az options.
    pub extra: Vec<String>,
    /// `run --tunnel-only`.
    pub tunnel_only: bool,
    /// Whether the bastion's subscription is known to the local az profile.
    pub signed_in: bool,
    /// az's default subscription before bprof signs in (set back if `az login` changes it).
    pub default_subscription: Option<String>,
    /// `BPROF_TUNNEL_ENGINE`, for profiles that do not say.
    pub engine: Option<TunnelEngine>,
    /// What the plan needs of this machine (the CLI's settings).
    pub host: Host,
}

/// The port `local_port: auto` means for a profile: the same on every machine (FNV-1a of the
/// name, in 50000..=59999), so a teammate's .rdp file and tunnel agree.
pub fn derived_port(profile: &str) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in profile.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    50000 + (h % 10000) as u16
}

/// The local port a profile's tunnel uses (before checking whether it is free).
pub fn local_port(profile: &Profile, requested: Option<u16>) -> u16 {
    match (requested, profile.local_port) {
        (Some(p), _) => p,
        (None, LocalPort::Port(p)) => p,
        (None, LocalPort::Auto(_)) => derived_port(&profile.name),
    }
}

/// Whether an rdp profile connects through bprof's own tunnel (every OS but Windows with
/// `client: auto`, where az opens mstsc itself).
pub fn uses_tunnel(profile: &Profile, os: Os, tunnel_only: bool) -> bool {
    tunnel_only
        || profile.mode == Mode::Tunnel
        || (profile.mode == Mode::Rdp && (os != Os::Windows || profile.client != Client::Auto))
}

/// The template context: profile, tenant, bastion, vm, port, env.
impl PlanError {
    pub fn hint(&self) -> Option<String> {
        match self {
            PlanError::Template(t) => Some(t.hint()),
            PlanError::Native { .. } => Some("bprof opens this tunnel itself, without az's command line; to keep az's tunnel set `tunnel_engine: az` in the profile (or BPROF_TUNNEL_ENGINE=az for this shell)".into()),
            _ => None,
        }
    }
}

impl PlanOptions {
    /// A plan for `os` as it is written: signed in, nothing added from the command line, no
    /// engine from the environment, the default [`Host`].
    pub fn for_os(os: Os) -> PlanOptions {
        PlanOptions {
            os,
            configure: false,
            port: None,
            extra: Vec::new(),
            tunnel_only: false,
            signed_in: true,
            default_subscription: None,
            engine: None,
            host: Host::default(),
        }
    }
}

/// No environment variables: a shared template could send them anywhere.
pub fn context(profile: &Profile, opts: &PlanOptions, port: u16) -> Value {
    let mut p = serde_json::to_value(profile).unwrap_or(Value::Null);
    if opts.configure {
        p["configure"] = Value::Bool(true);
    }
    if !opts.extra.is_empty()
        && let Some(Value::Array(list)) = p.get_mut("extra_args")
    {
        list.extend(opts.extra.iter().cloned().map(Value::String));
    }
    json!({
        "profile": p,
        "tenant": profile.tenant,
        "bastion": profile.bastion,
        "vm": profile.vm,
        "port": port,
    })
}

/// A profile's steps rendered and checked, before consent is asked for.
struct Prepared {
    port: u16,
    tunnel: bool,
    rendered: Vec<Vec<template::Arg>>,
    template_def: Option<Def>,
    requests: Vec<Request>,
}

/// Everything a plan of this profile asks consent for: its own fields' requests and its
/// template's (`bprof trust` approves these).
pub fn requests(
    set: &ProfileSet,
    profile: &Profile,
    opts: &PlanOptions,
) -> Result<Vec<Request>, PlanError> {
    Ok(prepare(set, profile, opts)?.requests)
}

fn prepare(set: &ProfileSet, profile: &Profile, opts: &PlanOptions) -> Result<Prepared, PlanError> {
    let port = local_port(profile, opts.port);
    let tunnel = uses_tunnel(profile, opts.os, opts.tunnel_only);
    let (template_name, steps) = match (&profile.template, opts.tunnel_only) {
        (Some(t), false) => (
            t.clone(),
            template::user_template(set, t)
                .or_else(|| template::builtin(t))
                .unwrap_or_default(),
        ),
        _ => {
            let name = match profile.mode {
                _ if tunnel => "tunnel",
                Mode::Rdp => "rdp",
                Mode::Ssh => "ssh",
                Mode::Tunnel => "tunnel",
            };
            (
                name.to_string(),
                template::builtin(name).unwrap_or_default(),
            )
        }
    };
    let ctx = context(profile, opts, port);
    let rendered = template::render(&template_name, &steps, &ctx)?;
    let template_def = match (&profile.template, opts.tunnel_only) {
        (Some(t), false) => set
            .entry(Section::Templates, t)
            .and_then(|e| e.defs.last().cloned()),
        _ => None,
    };
    let mut requests = profile.requests.clone();
    requests.extend(check_steps(
        set,
        profile,
        opts,
        &template_name,
        template_def.as_ref(),
        &steps,
        &rendered,
    )?);
    Ok(Prepared {
        port,
        tunnel,
        rendered,
        template_def,
        requests,
    })
}

/// Builds the plan of one resolved profile; refuses (`PlanError::Consent`) while the person
/// has not approved what it asks for.
pub fn build(set: &ProfileSet, profile: &Profile, opts: &PlanOptions) -> Result<Plan, PlanError> {
    draft(set, profile, opts)?.approved()
}

/// Builds the plan of one resolved profile without refusing it for lack of consent: the plan,
/// and what it asks consent for with the person's answer (to show what a consent would allow).
/// A plan that cannot be built while consent is missing is refused for the consent, first.
pub fn draft(set: &ProfileSet, profile: &Profile, opts: &PlanOptions) -> Result<Draft, PlanError> {
    let prepared = prepare(set, profile, opts)?;
    let consents: Vec<(Request, Consent)> = prepared
        .requests
        .iter()
        .map(|r| (r.clone(), set.consents.status(r)))
        .collect();
    match assemble(set, profile, opts, prepared, &consents) {
        Ok(plan) => Ok(Draft { plan, consents }),
        Err(e) => Err(draft::refusal(&profile.name, &consents).unwrap_or(e)),
    }
}

/// The steps of a prepared plan.
fn assemble(
    set: &ProfileSet,
    profile: &Profile,
    opts: &PlanOptions,
    prepared: Prepared,
    statuses: &[(Request, Consent)],
) -> Result<Plan, PlanError> {
    let Prepared {
        port,
        tunnel,
        rendered,
        template_def,
        requests: _,
    } = prepared;
    let sources = sources(set, profile, opts, template_def.as_ref(), statuses);
    let rendered: Vec<Vec<String>> = rendered
        .into_iter()
        .map(|step| step.into_iter().map(|a| a.value).collect())
        .collect();
    let mut out = Vec::new();
    if !opts.signed_in {
        let mut argv = vec![
            "az".to_string(),
            "login".into(),
            "--tenant".into(),
            profile.tenant.id.clone(),
        ];
        argv.extend(profile.tenant.login.iter().cloned());
        out.push(Step {
            name: "login".into(),
            argv,
            when: Some("not-signed-in".into()),
            detail: None,
            kind: StepKind::Login,
        });
        if let Some(previous) = &opts.default_subscription {
            out.push(Step {
                name: "restore-default".into(),
                argv: vec![
                    "az".into(),
                    "account".into(),
                    "set".into(),
                    "--subscription".into(),
                    previous.clone(),
                ],
                when: Some("login-changed-default".into()),
                detail: Some(format!(
                    "only if `az login` changed your default subscription: set it back to {previous}"
                )),
                kind: StepKind::RestoreDefault {
                    previous: previous.clone(),
                },
            });
        }
    }
    let native = tunnel && engine(profile, opts) == TunnelEngine::Native;
    if native_ssh(profile, opts) {
        out.push(ssh_step(set, profile, opts)?);
        return Ok(Plan {
            profile: profile.name.clone(),
            os: opts.os,
            tenant: profile.tenant.id.clone(),
            host: opts.host.clone(),
            steps: out,
            sources,
        });
    }
    if native {
        native_steps(profile, opts, port, &mut out)?;
        session_steps(profile, opts, port, true, &mut out);
        return Ok(Plan {
            profile: profile.name.clone(),
            os: opts.os,
            tenant: profile.tenant.id.clone(),
            host: opts.host.clone(),
            steps: out,
            sources,
        });
    }
    let n = rendered.len();
    for (i, argv) in rendered.into_iter().enumerate() {
        let last = i + 1 == n;
        let (name, kind) = if !last {
            (format!("step-{}", i + 1), StepKind::Foreground)
        } else if tunnel && profile.template.is_none() {
            ("tunnel".to_string(), StepKind::Tunnel { port })
        } else {
            ("connect".to_string(), StepKind::Foreground)
        };
        out.push(Step {
            name,
            argv,
            when: None,
            detail: None,
            kind,
        });
    }
    if tunnel && (profile.template.is_none() || opts.tunnel_only) {
        session_steps(profile, opts, port, false, &mut out);
    }
    Ok(Plan {
        profile: profile.name.clone(),
        os: opts.os,
        tenant: profile.tenant.id.clone(),
        host: opts.host.clone(),
        steps: out,
        sources,
    })
}

/// Checks every rendered step ([`check::step`]): what the template's own text asks for becomes
/// a request for consent (when the template comes from a file that grants nothing); a value
/// that would be read as an option, or interpreted by cmd.exe, is refused.
fn check_steps(
    set: &ProfileSet,
    profile: &Profile,
    opts: &PlanOptions,
    template_name: &str,
    template_def: Option<&Def>,
    steps: &[Vec<String>],
    rendered: &[Vec<template::Arg>],
) -> Result<Vec<Request>, PlanError> {
    let trusted = template_def.is_some_and(|d| set.file(d).kind.trusted());
    let programs: &[String] = if trusted { &set.allow_programs } else { &[] };
    let mut reasons = Vec::new();
    let mut problems = Vec::new();
    for (si, step) in rendered.iter().enumerate() {
        for finding in check::step(step, opts.os, programs, &profile.tenant.id) {
            match finding {
                check::Finding::Template(reason) if trusted => {
                    if let Some(program) = step.first().filter(|p| p.value != "az") {
                        return Err(TemplateError::ProgramNotAllowed {
                            template: template_name.to_string(),
                            step: si + 1,
                            program: program.value.clone(),
                        }
                        .into());
                    }
                    let _ = reason; // the person's own template may pass what it likes to az
                }
                check::Finding::Template(reason) => {
                    reasons.push(format!("step {}: {reason}", si + 1))
                }
                check::Finding::Data { index, reason } => {
                    let arg = &step[index];
                    problems.push(data_problem(set, profile, template_def, steps, arg, reason));
                }
            }
        }
    }
    if !problems.is_empty() {
        crate::profile::diag::sort(&mut problems);
        return Err(PlanError::Invalid {
            profile: profile.name.clone(),
            problems,
        });
    }
    if reasons.is_empty() {
        return Ok(Vec::new());
    }
    match template_def {
        Some(def) => Ok(vec![Request::new(
            set.file(def),
            &def.pointer,
            format!("template `{template_name}`"),
            reasons,
            &profile.name,
            profile.destination(),
        )]),
        // a built-in template only says what bprof's own steps say
        None => Err(PlanError::Invalid {
            profile: profile.name.clone(),
            problems: vec![Problem::at_location(
                &profile.defined_at,
                reasons.join("; "),
            )],
        }),
    }
}

/// A refused value, at the place it was written: the template token of a user template, or
/// the field a built-in template's token reads.
fn data_problem(
    set: &ProfileSet,
    profile: &Profile,
    template_def: Option<&Def>,
    steps: &[Vec<String>],
    arg: &template::Arg,
    reason: String,
) -> Problem {
    if let Some(def) = template_def {
        let ptr = format!("{}/{}/{}", def.pointer, arg.step, arg.token);
        return set
            .file(def)
            .problem(&ptr, false, reason)
            .with_help("a value from a profile file lands here; fix the value, or the template");
    }
    let token = steps
        .get(arg.step)
        .and_then(|s| s.get(arg.token))
        .map(String::as_str)
        .unwrap_or("");
    let field = match &arg.kind {
        template::ArgKind::Splice { path } => path.rsplit('.').next().unwrap_or("").to_string(),
        _ => token
            .split("profile.")
            .nth(1)
            .map(|r| {
                r.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .unwrap_or_default(),
    };
    match profile.origins.get(&field) {
        Some(def) => set.file(def).problem(&def.pointer, false, reason),
        None => {
            let mut p = Problem::at_location(&profile.defined_at, reason);
            p.path = format!("profiles.{}", profile.name);
            p
        }
    }
    .with_help(format!("fix the value of `{field}`"))
}

/// The capability-bearing values of a plan, each with where it was written and why it may run.
fn sources(
    set: &ProfileSet,
    profile: &Profile,
    opts: &PlanOptions,
    template_def: Option<&Def>,
    statuses: &[(Request, Consent)],
) -> Vec<Source> {
    let trust = |def: &Def| {
        let file = set.file(def);
        let location = file.location(&def.pointer);
        let asked = statuses.iter().find(|(r, _)| r.location == location);
        let kind = match file.kind {
            crate::profile::load::FileKind::User => "your user config",
            crate::profile::load::FileKind::Override => "personal override (counts as shared)",
            crate::profile::load::FileKind::Shared => "shared",
        };
        let status = if file.kind.trusted() {
            ""
        } else if let Some((_, c)) = asked {
            if *c == Consent::Approved {
                ", approved by you"
            } else {
                ", NOT approved"
            }
        } else {
            ", within the allow-list"
        };
        (location, format!("{kind}{status}"))
    };
    let mut out = Vec::new();
    let mut push = |what: String, def: &Def| {
        let (from, trust) = trust(def);
        out.push(Source { what, from, trust });
    };
    if let Some(def) = template_def {
        push(
            format!(
                "template `{}`",
                profile.template.clone().unwrap_or_default()
            ),
            def,
        );
    }
    for field in ["ssh_args", "extra_args", "rdp.drives"] {
        let used = match field {
            "ssh_args" => !profile.ssh_args.is_empty(),
            "extra_args" => !profile.extra_args.is_empty(),
            _ => profile.rdp.drives == Some(true),
        };
        if used && let Some(def) = profile.origins.get(field) {
            push(format!("`{field}`"), def);
        }
    }
    for key in profile.rdp.properties.keys() {
        if let Some(def) = profile.origins.get(&format!("rdp.properties.{key}")) {
            push(format!("`rdp.properties.{key}`"), def);
        }
    }
    if !opts.signed_in
        && !profile.tenant.login.is_empty()
        && let Some(def) = &profile.tenant.login_at
    {
        push(format!("`login` of tenant `{}`", profile.tenant.name), def);
    }
    if !opts.extra.is_empty() {
        out.push(Source {
            what: format!("`-- {}`", opts.extra.join(" ")),
            from: "the command line".into(),
            trust: "yours".into(),
        });
    }
    out
}

/// `BPROF_TUNNEL_TIMEOUT`: seconds, from 0.1 to 86400 (the command line checks it first).
pub fn parse_tunnel_timeout(value: &str) -> Result<std::time::Duration, String> {
    match value.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (0.1..=86400.0).contains(&s) => {
            Ok(std::time::Duration::from_secs_f64(s))
        }
        _ => Err(format!(
            "`{value}` is not a number of seconds from 0.1 to 86400"
        )),
    }
}

/// Where a client is pointed at the local end of a tunnel: IPv4 loopback, never `localhost`
/// (which some clients resolve to `::1` first, where another user may listen).
pub fn local_address(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Where `run` writes the temporary .rdp of a profile: a directory of the person's own.
pub fn temp_rdp_path(host: &Host, profile: &str) -> String {
    host.rdp_dir
        .join(format!("{profile}.rdp"))
        .display()
        .to_string()
}

/// What to point a client at for the VM's port behind a tunnel on local `port`, for the
/// services people reach that way.
pub fn connect_hint(resource_port: u16, port: u16) -> Option<String> {
    let a = local_address(port);
    let host = a.rsplit_once(':').map_or(a.as_str(), |(h, _)| h);
    Some(match resource_port {
        1433 => format!("SQL Server (Azure Data Studio, SSMS): {host},{port}"),
        5432 => format!("PostgreSQL: psql -h {host} -p {port}"),
        3306 => format!("MySQL: mysql -h {host} -P {port}"),
        6379 => format!("Redis: redis-cli -h {host} -p {port}"),
        27017 => format!("MongoDB: mongodb://{host}:{port}"),
        22 => format!("SSH: ssh -p {port} USER@{host}"),
        3389 => format!("an RDP client: {a}"),
        443 | 8443 => format!("a browser: https://{a}/"),
        80 | 8080 => format!("a browser: http://{a}/"),
        5985 | 5986 => format!("PowerShell remoting: -ComputerName {host} -Port {port}"),
        _ => return None,
    })
}

/// Whether an ssh profile runs OpenSSH through bprof's own tunnel: the native engine with a
/// key or a password (Entra sign-in needs az's ssh extension, which issues the certificate).
pub fn native_ssh(profile: &Profile, opts: &PlanOptions) -> bool {
    profile.mode == Mode::Ssh
        && !opts.tunnel_only
        && engine(profile, opts) == TunnelEngine::Native
        && matches!(
            profile.auth_type,
            Some(crate::profile::raw::AuthType::SshKey | crate::profile::raw::AuthType::Password)
        )
}

/// `ssh` with `bprof proxy` as its ProxyCommand and host keys pinned under `NAME.bprof`.
fn ssh_step(set: &ProfileSet, profile: &Profile, opts: &PlanOptions) -> Result<Step, PlanError> {
    az_only_refused(profile, opts)?;
    let invalid = |why: String| PlanError::Invalid {
        profile: profile.name.clone(),
        problems: vec![Problem::at_location(&profile.defined_at, why)],
    };
    let proxy = ssh::proxy_command(
        &opts.host.bprof,
        &ssh::selection(set),
        &profile.name,
        opts.os == Os::Windows,
    )
    .map_err(invalid)?;
    for (field, v) in [
        ("username", &profile.username),
        ("ssh_key", &profile.ssh_key),
    ] {
        if let Some(v) = v
            && (v.starts_with('-') || crate::profile::allow::control_char(v).is_some())
        {
            let problem = match profile.origins.get(field) {
                Some(def) => set.file(def).problem(
                    &def.pointer,
                    false,
                    format!(
                        "`{field}` {} would reach ssh as an option (or holds a control character)",
                        crate::terminal::value(v)
                    ),
                ),
                None => Problem::at_location(
                    &profile.defined_at,
                    format!("`{field}` would reach ssh as an option"),
                ),
            };
            return Err(PlanError::Invalid {
                profile: profile.name.clone(),
                problems: vec![problem.with_help(format!("fix the value of `{field}`"))],
            });
        }
    }
    let alias = ssh::alias(&profile.name);
    let mut argv = vec![
        "ssh".to_string(),
        "-o".into(),
        format!("ProxyCommand={proxy}"),
        "-o".into(),
        format!("HostKeyAlias={alias}"),
    ];
    if let Some(u) = &profile.username {
        argv.extend(["-l".into(), u.clone()]);
    }
    if let Some(k) = &profile.ssh_key {
        argv.extend(["-i".into(), k.clone()]);
    }
    // OpenSSH reads options before the host, and again after it up to the first other word
    // (the remote command): shared values come after bprof's own options and the host, so
    // bprof's `-o` values win (ssh keeps the first) and the allow-list judges the rest as ssh
    // reads it, as with az's `ssh USER@localhost ... ARGS`
    argv.push(alias.clone());
    argv.extend(profile.ssh_args.iter().cloned());
    Ok(Step {
        name: "connect".into(),
        argv,
        when: None,
        detail: Some(format!(
            "OpenSSH through bprof's own tunnel: its ProxyCommand (`bprof proxy {}`) makes the one az call (the token) and one bastion session to port {}; host keys are checked under {alias}",
            profile.name, profile.resource_port
        )),
        kind: StepKind::Foreground,
    })
}

/// Fields only az's command line reads mean nothing to the native engine: refused, with the
/// way to keep az.
fn az_only_refused(profile: &Profile, opts: &PlanOptions) -> Result<(), PlanError> {
    let refuse = |what: String, usage: bool| {
        Err(PlanError::Native {
            profile: profile.name.clone(),
            what,
            usage,
        })
    };
    if !profile.extra_args.is_empty() {
        return refuse(
            format!(
                "`extra_args` ({}) are az's options and mean nothing",
                profile.extra_args.join(" ")
            ),
            false,
        );
    }
    if !opts.extra.is_empty() {
        return refuse(
            format!(
                "`-- {}` passes options to az, which does not run",
                opts.extra.join(" ")
            ),
            true,
        );
    }
    Ok(())
}

/// The native engine's steps: the token (one az process), then bprof's own listener.
fn native_steps(
    profile: &Profile,
    opts: &PlanOptions,
    port: u16,
    out: &mut Vec<Step>,
) -> Result<(), PlanError> {
    az_only_refused(profile, opts)?;
    let b = &profile.bastion;
    let target = match &profile.vm.ip {
        Some(ip) => TunnelTarget::Ip(ip.clone()),
        None => TunnelTarget::Vm(profile.vm.resource_id.clone()),
    };
    let fallback = !opts.tunnel_only
        && opts.port.is_none()
        && matches!(profile.local_port, LocalPort::Auto(_));
    out.push(Step {
        name: "token".into(),
        argv: token_argv(&b.subscription),
        when: None,
        detail: Some("the ARM access token, kept in memory only (fetched again by the same call when it nears its end)".into()),
        kind: StepKind::Token,
    });
    let host = match &b.dns_name {
        Some(d) => format!("the bastion's host {d} (its dns_name)"),
        None => format!(
            "the bastion's host from ARM (one GET of bastion `{}`, which must be Standard or Premium with native client support)",
            b.name
        ),
    };
    let target_text = match &target {
        TunnelTarget::Vm(_) => format!(
            "vm `{}`",
            profile
                .vm
                .name
                .clone()
                .unwrap_or_else(|| profile.vm.key.clone())
        ),
        TunnelTarget::Ip(ip) => format!("ip {ip}"),
    };
    let busy = if fallback {
        "if it is taken, a port the OS picks"
    } else {
        "if it is taken, an error"
    };
    out.push(Step::internal(
        "tunnel",
        format!(
            "bprof's native tunnel: listen on {} ({busy}), then for each connection one bastion session to {target_text} port {} through {host}, deleted when the connection ends{}",
            local_address(port),
            profile.resource_port,
            profile.timeout.map(|t| format!("; closed after {t} s")).unwrap_or_default()
        ),
        StepKind::NativeTunnel(NativeTunnel {
            subscription: b.subscription.clone(),
            resource_group: b.resource_group.clone(),
            bastion: b.name.clone(),
            dns_name: b.dns_name.clone(),
            target,
            resource_port: profile.resource_port,
            port,
            fallback,
            timeout: profile.timeout,
        }),
    ));
    Ok(())
}

/// The steps after the tunnel: wait (az's tunnel; the native one listens when its step
/// ends), then the .rdp and the client (rdp), or hold it open.
fn session_steps(
    profile: &Profile,
    opts: &PlanOptions,
    port: u16,
    native: bool,
    out: &mut Vec<Step>,
) {
    if !native {
        wait_step(opts, port, out);
    }
    session_tail(profile, opts, port, native, out);
}

/// az's tunnel: wait until it, and only it, listens.
fn wait_step(opts: &PlanOptions, port: u16, out: &mut Vec<Step>) {
    let timeout = opts.host.tunnel_timeout.as_secs_f64();
    // the ownership check of `session::listener` (Linux) or az's ready line (elsewhere)
    let detail = if opts.os == Os::Linux {
        format!(
            "until az's tunnel, and nothing else, listens on port {port} (at most {timeout} s), or az exits; another listener is fatal"
        )
    } else {
        format!(
            "until az says the tunnel is ready and {} accepts a TCP connection (at most {timeout} s), or az exits; az failing to bind the port is fatal",
            local_address(port)
        )
    };
    out.push(Step::internal("wait", detail, StepKind::Wait { port }));
}

fn session_tail(
    profile: &Profile,
    opts: &PlanOptions,
    port: u16,
    native: bool,
    out: &mut Vec<Step>,
) {
    let client = if profile.mode == Mode::Rdp && !opts.tunnel_only {
        crate::plan::client::choose(profile, opts.os, opts.os == Os::current())
    } else {
        None
    };
    if profile.mode == Mode::Rdp && !opts.tunnel_only {
        let path = temp_rdp_path(&opts.host, &profile.name);
        out.push(Step::internal(
            "write-rdp",
            format!(
                "{path}: the profile's .rdp for {}, readable by you only, removed at the end",
                local_address(port)
            ),
            StepKind::WriteRdp {
                path: path.clone(),
                lines: crate::plan::rdp::lines(profile, port),
            },
        ));
        if let Some(c) = &client {
            let missing = opts.os == Os::current() && crate::process::which(&c.program).is_none();
            let no_entra = profile.enable_mfa
                && !c.freerdp3
                && !["mstsc", "open"].contains(&c.program.as_str());
            out.push(Step {
                name: "client".into(),
                argv: c.argv(profile, &path, profile.configure || opts.configure),
                when: None,
                detail: {
                    let mut notes = Vec::new();
                    if missing {
                        notes.push(format!("`{}` is not on PATH: {}", c.program, crate::plan::client::INSTALL_HINT));
                    } else if no_entra {
                        notes.push(format!("`{}` has no Entra sign-in: this profile's `enable_mfa` needs FreeRDP 3 (xfreerdp3, sdl-freerdp3) or sign-in with a local account", c.program));
                    }
                    if (profile.configure || opts.configure) && c.program != "mstsc" {
                        notes.push(crate::plan::client::configure_note(&c.program));
                    }
                    (!notes.is_empty()).then(|| notes.join("; "))
                },
                kind: StepKind::Client,
            });
            if !c.detaches() {
                return;
            }
        }
    }
    let connect = connect_hint(profile.resource_port, port);
    out.push(Step::internal(
        "hold",
        format!(
            "keep the tunnel on {} open until Ctrl-C ({}){}",
            local_address(port),
            if native {
                "a session per connection"
            } else {
                "restarted if it dies"
            },
            connect
                .as_ref()
                .map(|c| format!("; connect with {c}"))
                .unwrap_or_default()
        ),
        StepKind::Hold {
            resource_port: profile.resource_port,
        },
    ));
}

impl Plan {
    /// The plan as lines a person can paste into the target OS's shell (PowerShell on Windows,
    /// POSIX sh elsewhere); conditions and notes are `#` comment lines.
    pub fn to_text(&self) -> String {
        let windows = self.os == Os::Windows;
        let shell = if windows { "PowerShell" } else { "sh" };
        let mut out = format!(
            "# plan for profile `{}` on {} ({shell})\n",
            self.profile,
            self.os.name()
        );
        if !self.sources.is_empty() {
            out.push_str("# values that reach a program or an .rdp file, and who set them:\n");
            for s in &self.sources {
                out.push_str(&format!("#   {}: {} ({})\n", s.what, s.from, s.trust));
            }
        }
        for step in &self.steps {
            if step.when.as_deref() == Some("not-signed-in") {
                out.push_str("# not signed in to this tenant: sign in first\n");
            }
            if step.when.as_deref() == Some("login-changed-default") {
                out.push_str("# only if the login changed your default subscription:\n");
            }
            if let StepKind::Tunnel { port } = step.kind {
                out.push_str(&format!(
                    "# open the tunnel on {} (in the background)\n",
                    local_address(port)
                ));
            }
            if step.argv.is_empty() || step.detail.is_some() {
                out.push_str(&format!(
                    "# {}: {}\n",
                    step.name,
                    step.detail.as_deref().unwrap_or("")
                ));
            }
            if step.argv.is_empty() {
                continue;
            }
            out.push_str(&crate::plan::shell::join(&step.argv, windows));
            out.push('\n');
        }
        out
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_port_is_stable_and_in_range() {
        let p = derived_port("prod-jumpbox");
        assert_eq!(p, derived_port("prod-jumpbox"));
        assert!((50000..60000).contains(&p));
        assert_ne!(derived_port("a"), derived_port("b"));
    }
}
