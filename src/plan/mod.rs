//! The plan: the exact steps `run` executes, as argv lists, for a given OS. Nothing runs here.
//! `template` renders argv tokens, `shell` quotes them for display, `rdp` makes .rdp content and
//! `client` chooses the RDP client.

pub mod check;
mod checked;
pub mod client;
mod draft;
pub mod gateway;
mod ports;
pub mod rdp;
pub mod shell;
pub mod ssh;
mod steps;
pub mod template;
mod text;
mod validate;

pub use crate::machine::Host;
use checked::*;
pub use ports::{connect_hint, derived_port, local_address, local_port};
use steps::*;
pub use steps::{PRINCIPAL, native_ssh, temp_rdp_path, token_argv};
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
    #[error("profile `{profile}`: bastion `{bastion}` is the Developer SKU, and {what}")]
    Developer {
        profile: String,
        bastion: String,
        what: String,
        hint: String,
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
    /// An HTTP request bprof makes itself (the engine makes it; shown, never run as a step).
    Request { method: &'static str, url: String },
    /// The bastion's RD gateway file (Windows' gateway path), fetched by bprof and held in
    /// memory for the write-rdp step that follows; shown as a request.
    Gateway(gateway::Gateway),
    /// `ssh-keygen` of an Entra profile's key pair, only when it is missing.
    SshKey { key: String },
    /// `az ssh cert` for that key, only when its certificate is missing or near its end.
    SshCert { key: String },
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
    /// The HTTP request a step is (method and URL, no token), when it is one.
    pub fn request(&self) -> Option<(&'static str, String)> {
        match &self.kind {
            StepKind::Request { method, url } => Some((method, url.clone())),
            StepKind::Gateway(g) => Some(("GET", g.url())),
            _ => None,
        }
    }

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

/// How an rdp profile reaches its VM on the plan's OS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdpPath {
    /// `az network bastion rdp` opens mstsc itself (Windows, `client: auto`, az's engine or a
    /// template).
    Az,
    /// bprof fetches the bastion's RD gateway file and opens mstsc with it (Windows,
    /// `client: auto`, the native engine, a VM by id with the gateway kept).
    Gateway,
    /// A tunnel (either engine) and an RDP client with bprof's own .rdp file.
    Tunnel,
}

/// The path of an rdp profile (None for other modes): on Windows with `client: auto`, az's own
/// (`tunnel_engine: az` or a template), else the gateway when it can be used
/// ([`gateway::possible`]), else bprof's tunnel and mstsc; with any named client, with
/// `--tunnel-only`, or on Linux and macOS, the tunnel.
pub fn rdp_path(profile: &Profile, opts: &PlanOptions) -> Option<RdpPath> {
    if profile.mode != Mode::Rdp {
        return None;
    }
    Some(
        if opts.os != Os::Windows || profile.client != Client::Auto || opts.tunnel_only {
            RdpPath::Tunnel
        } else if engine(profile, opts) == TunnelEngine::Az {
            RdpPath::Az
        } else if gateway::possible(profile) {
            RdpPath::Gateway
        } else {
            RdpPath::Tunnel
        },
    )
}

/// Whether bprof itself makes the profile's connection (no az command line but the token's):
/// OpenSSH through `bprof proxy`, the native tunnel, or Windows' gateway path.
pub fn native(profile: &Profile, opts: &PlanOptions) -> bool {
    native_ssh(profile, opts)
        || (uses_tunnel(profile, opts) && engine(profile, opts) == TunnelEngine::Native)
        || rdp_path(profile, opts) == Some(RdpPath::Gateway)
}

/// Whether a profile's plan opens a tunnel: `--tunnel-only`, mode tunnel, or rdp on the
/// tunnel path ([`rdp_path`]).
pub fn uses_tunnel(profile: &Profile, opts: &PlanOptions) -> bool {
    opts.tunnel_only
        || profile.mode == Mode::Tunnel
        || rdp_path(profile, opts) == Some(RdpPath::Tunnel)
}

/// The template context: profile, tenant, bastion, vm, port, env.
impl PlanError {
    /// bprof's exit code for it: 77 without consent, 64 for a flag the engine cannot honour, else
    /// 65 (the profile's data).
    pub fn exit_code(&self) -> i32 {
        match self {
            PlanError::Consent { .. } => crate::exit::NO_PERMISSION,
            PlanError::Native { usage: true, .. } => crate::exit::USAGE,
            PlanError::Template(_)
            | PlanError::Invalid { .. }
            | PlanError::Native { .. }
            | PlanError::Developer { .. } => crate::exit::DATA,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            PlanError::Template(t) => Some(t.hint()),
            PlanError::Developer { hint, .. } => Some(hint.clone()),
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
    let tunnel = uses_tunnel(profile, opts);
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

/// A Developer SKU bastion is served by bprof's own engine (and by az's ssh): az's tunnel and
/// az's rdp refuse it, so a plan that would run them is refused here, with what to change.
pub(crate) fn developer_path(
    profile: &Profile,
    opts: &PlanOptions,
    tunnel: bool,
) -> Result<(), PlanError> {
    if profile.bastion.sku != Some(crate::profile::raw::Sku::Developer)
        || profile.template.is_some()
    {
        return Ok(());
    }
    let refuse = |what: &str, hint: &str| {
        Err(PlanError::Developer {
            profile: profile.name.clone(),
            bastion: profile.bastion.key.clone(),
            what: what.into(),
            hint: hint.into(),
        })
    };
    if tunnel && engine(profile, opts) == TunnelEngine::Az {
        return refuse(
            "az's tunnel does not serve it (az offers only ssh there)",
            "leave out `tunnel_engine: az` (and unset BPROF_TUNNEL_ENGINE): bprof's own tunnel serves the Developer SKU",
        );
    }
    if profile.mode == Mode::Rdp && !tunnel {
        return refuse(
            "`az network bastion rdp` does not serve it",
            "leave out `tunnel_engine: az` (and unset BPROF_TUNNEL_ENGINE), or set a `client` (such as `client: mstsc`): bprof then opens its own tunnel and mstsc through it",
        );
    }
    Ok(())
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
    developer_path(profile, opts, tunnel)?;
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
    let done = |steps: Vec<Step>| Plan {
        profile: profile.name.clone(),
        os: opts.os,
        tenant: profile.tenant.id.clone(),
        host: opts.host.clone(),
        steps,
        sources,
    };
    if rdp_path(profile, opts) == Some(RdpPath::Gateway) {
        az_only_refused(profile, opts)?;
        gateway::steps(profile, opts, &mut out);
        return Ok(done(out));
    }
    if native_ssh(profile, opts) {
        // `bprof proxy` (ssh's ProxyCommand) asks the broker for each connection
        if profile.bastion.sku == Some(crate::profile::raw::Sku::Developer) {
            out.push(steps::broker_step());
        }
        if profile.auth_type == Some(crate::profile::raw::AuthType::Aad) {
            steps::entra_steps(profile, opts, &mut out);
        }
        out.push(ssh_step(set, profile, opts)?);
        return Ok(done(out));
    }
    if native {
        native_steps(profile, opts, port, &mut out)?;
        session_steps(profile, opts, port, true, &mut out);
        return Ok(done(out));
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
    Ok(done(out))
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
