//! `plan` and `run`: a profile's plan, shown or executed.

use clap_complete::engine::ArgValueCandidates;

use super::output::{print, print_json};
use super::{Cli, Error, Format, Out, completions, exit, load_set, pick};
use crate::plan::{self, Os, PlanOptions};
use crate::process::{self, Signals};
use crate::profile::resolve::{self, Profile};
use crate::session::{self, RunError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (`bprof list` shows them); on a terminal, without one, a picker opens.
    /// Several with --tunnel-only: one bprof holds all their tunnels.
    #[arg(value_name = "PROFILE", add = ArgValueCandidates::new(completions::profiles))]
    pub names: Vec<String>,
    /// Print the plan instead of running it.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: the plan for another system.
    #[arg(long, value_enum, requires = "dry_run")]
    pub os: Option<Os>,
    #[command(flatten)]
    pub session: SessionArgs,
    /// Appended to the connect step's az options (before ssh's `--`).
    #[arg(last = true, value_name = "EXTRA")]
    pub extra: Vec<String>,
}

/// What `run` (and `plan`, to show it) adds to a profile for one session.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct SessionArgs {
    /// Add --configure for this run (rdp: sign in as another Entra user).
    #[arg(long)]
    pub configure: bool,
    /// The local port of the tunnel.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Open the tunnel alone (any profile) and wait for Ctrl-C.
    #[arg(long)]
    pub tunnel_only: bool,
}

/// `bprof run [PROFILE]...`: one profile's plan (picked on a terminal when none is named),
/// shown with --dry-run or executed; several profiles' tunnels together.
pub(super) fn run(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    if args.names.len() > 1 {
        return run_several(cli, args, out);
    }
    let picked = args.names.is_empty();
    let profile = match args.names.first() {
        Some(p) => p.clone(),
        None if pick::available() => match pick::choose(&load_set(cli, out)?, out)? {
            Some(p) => p,
            None => return Ok(exit::OK),
        },
        None => {
            return Err(Error::Usage(
                "name a profile: bprof run PROFILE (`bprof list` shows them; on a terminal, `bprof run` alone opens a picker)".into(),
            ));
        }
    };
    let draft = make_plan(
        cli,
        &profile,
        args.os,
        &args.session,
        args.extra.clone(),
        !args.dry_run,
        out,
    )?;
    if args.dry_run {
        return show_plan(&draft, out);
    }
    let plan = draft.approved()?;
    if picked {
        // the person sees what will run before it runs
        crate::terminal::eprint(&plan.to_text(), false);
        if !pick::confirm() {
            out.note("nothing was run");
            return Ok(exit::OK);
        }
    }
    run_plan(&plan, out)
}

/// Loads the set, resolves the profile and builds its plan for `run` (`for_run`: check that
/// the local port is free) or `plan`: a draft, with what it asks consent for (`run` runs only
/// an approved one, [`plan::Draft::approved`]).
pub(super) fn make_plan(
    cli: &Cli,
    profile: &str,
    os: Option<Os>,
    session: &SessionArgs,
    extra: Vec<String>,
    for_run: bool,
    out: &Out,
) -> Result<plan::Draft, Error> {
    let set = load_set(cli, out)?;
    let p = resolve::resolve(&set, profile)?;
    out.elsewhere(&set);
    let opts = plan_options(&cli.settings, &p, os, session, extra, for_run, out)?;
    let draft = plan::draft(&set, &p, &opts)?;
    if !for_run {
        // a plan is printed and the process ends: the set need not be freed
        super::leave(set);
    }
    Ok(draft)
}

/// What the command line and this machine (az's sign-in, `BPROF_TUNNEL_ENGINE`) add to a
/// profile's plan.
pub(super) fn plan_options(
    settings: &super::Settings,
    p: &Profile,
    os: Option<Os>,
    session: &SessionArgs,
    extra: Vec<String>,
    for_run: bool,
    out: &Out,
) -> Result<PlanOptions, Error> {
    let os = os.unwrap_or_else(Os::current);
    let SessionArgs {
        configure,
        port,
        tunnel_only,
    } = *session;
    if configure && p.mode != crate::profile::raw::Mode::Rdp {
        return Err(Error::Usage(format!(
            "--configure is an rdp option, and profile `{}` has mode {}",
            p.name,
            resolve::mode_name(p.mode)
        )));
    }
    let shape = PlanOptions {
        tunnel_only,
        engine: settings.engine,
        ..PlanOptions::for_os(os)
    };
    if port.is_some() && !plan::uses_tunnel(p, &shape) {
        return Err(Error::Usage(format!(
            "--port sets the local end of a tunnel, and profile `{}` opens none on {} (add --tunnel-only to open one)",
            p.name,
            os.name()
        )));
    }
    if extra
        .iter()
        .any(|a| matches!(a.as_str(), "--debug" | "--verbose"))
    {
        out.note("bprof: warning: with --debug or --verbose az prints access tokens and request details: keep this output to yourself");
    }
    let az = crate::azure::signin::AzProfile::read(settings.azure());
    let signed_in = az.knows(&p.bastion.subscription);
    Ok(PlanOptions {
        os,
        configure,
        port: choose_port(p, &shape, port, for_run, out)?,
        extra,
        tunnel_only,
        signed_in,
        default_subscription: if signed_in { None } else { az.default },
        engine: settings.engine,
        host: settings.host.clone(),
    })
}

/// `plan` and `run --dry-run`: the plan on stdout. One that is not approved is printed marked
/// (nothing in it can be pasted by accident), and ends with the refusal (exit 77).
pub(super) fn show_plan(draft: &plan::Draft, out: &Out) -> Result<i32, Error> {
    match out.format {
        Format::Json => print_json(&draft.to_json())?,
        Format::Text | Format::Github => print(&draft.to_text())?,
    }
    match draft.refusal() {
        Some(e) => Err(e.into()),
        None => Ok(exit::OK),
    }
}

/// `run A B... --tunnel-only`: every profile's native tunnel, held by one bprof.
fn run_several(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    let (profiles, dry_run, os, session, extra) = (
        &args.names,
        args.dry_run,
        args.os,
        &args.session,
        &args.extra,
    );
    let usage = |m: &str| Err(Error::Usage(m.to_string()));
    if !session.tunnel_only {
        return usage("several profiles run together only as tunnels: add --tunnel-only");
    }
    if session.port.is_some() {
        return usage(
            "--port names one port; with several profiles each uses its own `local_port`",
        );
    }
    if session.configure || !extra.is_empty() {
        return usage("--configure and `-- EXTRA` are for one profile's run");
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut drafts = Vec::new();
    for p in profiles {
        if !seen.insert(p.as_str()) {
            return Err(Error::Usage(format!("profile `{p}` is named twice")));
        }
        let draft = make_plan(cli, p, os, session, Vec::new(), !dry_run, out)?;
        if !dry_run && let Some(e) = draft.refusal() {
            return Err(e.into());
        }
        if !draft
            .plan
            .steps
            .iter()
            .any(|s| matches!(s.kind, plan::StepKind::NativeTunnel(_)))
        {
            return Err(Error::Usage(format!(
                "profile `{p}` uses az's tunnel; one bprof holds several tunnels on the native engine only (run it on its own)"
            )));
        }
        drafts.push(draft);
    }
    if dry_run {
        match out.format {
            Format::Json => print_json(&serde_json::Value::Array(
                drafts.iter().map(plan::Draft::to_json).collect(),
            ))?,
            _ => {
                let text: Vec<String> = drafts.iter().map(plan::Draft::to_text).collect();
                print(&text.join("\n"))?;
            }
        }
        return match drafts.iter().find_map(plan::Draft::refusal) {
            Some(e) => Err(e.into()),
            None => Ok(exit::OK),
        };
    }
    let plans: Vec<plan::Plan> = drafts.into_iter().map(|d| d.plan).collect();
    let signals = Signals::install();
    Ok(session::execute_several(&plans, &signals, out.quiet)?)
}

fn run_plan(plan: &plan::Plan, out: &Out) -> Result<i32, Error> {
    // a missing RDP client is found before the tunnel starts
    for step in plan
        .steps
        .iter()
        .filter(|s| s.kind == plan::StepKind::Client)
    {
        if let Some(program) = step.argv.first() {
            process::resolve_program(program, plan.host.azure.az.as_deref())
                .map_err(RunError::from)?;
        }
        if let Some(note) = &step.detail {
            out.note(&format!("bprof: note: {note}"));
        }
    }
    let signals = Signals::install();
    if out.verbose {
        crate::terminal::eprint(&plan.to_text(), false);
    }
    Ok(session::execute(plan, &signals, out.quiet)?)
}

/// The local port of a tunnel: `--port`, the profile's, or (auto) the derived one, or a free
/// one when that is busy. On Linux and macOS a port below 1024 is refused (binding it needs
/// root). Busy ports are checked by `run` only.
pub(super) fn choose_port(
    p: &Profile,
    shape: &PlanOptions,
    requested: Option<u16>,
    for_run: bool,
    out: &Out,
) -> Result<Option<u16>, Error> {
    let os = shape.os;
    if !plan::uses_tunnel(p, shape) {
        return Ok(requested);
    }
    let port = plan::local_port(p, requested);
    if os != Os::Windows && port < 1024 {
        return Err(Error::Usage(format!(
            "local port {port} is below 1024: binding it needs root on {}; use a port from 1024 up, or `auto`",
            os.name()
        )));
    }
    // the native engine binds the port itself (falling back to one the OS picks): no
    // check-then-bind race
    let native = plan::engine(p, shape) == crate::profile::raw::TunnelEngine::Native;
    // plans show the configured (or derived) port; only a run checks that it is free
    if native && requested.is_none() {
        // `auto` stays a choice of the engine's: it may move off a taken derived port
        return Ok(None);
    }
    if !for_run || native || port_is_free(port) {
        return Ok(Some(port));
    }
    let derived =
        requested.is_none() && matches!(p.local_port, crate::profile::raw::LocalPort::Auto(_));
    if !derived || shape.tunnel_only {
        return Err(RunError::PortBusy { port, derived }.into());
    }
    // a port the OS offers on 127.0.0.1, and free on [::1] too
    let free = (0..10)
        .find_map(|_| {
            std::net::TcpListener::bind(("127.0.0.1", 0))
                .and_then(|l| l.local_addr())
                .ok()
                .map(|a| a.port())
                .filter(|p| port_is_free(*p))
        })
        .ok_or(RunError::PortBusy { port, derived })?;
    out.note(&format!(
        "bprof: port {port} (derived from the profile name) is busy; using {free} for this run"
    ));
    Ok(Some(free))
}

/// Free: it can be bound on 127.0.0.1 and on [::1] (someone listening on either could take a
/// client's connection). A machine without IPv6 loopback has only the first.
pub(super) fn port_is_free(port: u16) -> bool {
    let Ok(_v4) = std::net::TcpListener::bind(("127.0.0.1", port)) else {
        return false;
    };
    match std::net::TcpListener::bind(("::1", port)) {
        Ok(_v6) => true,
        Err(e) => no_ipv6_loopback(&e),
    }
}

/// The error of binding [::1] on a machine without IPv6 (loopback).
fn no_ipv6_loopback(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::AddrNotAvailable | ErrorKind::Unsupported
    ) {
        return true;
    }
    #[cfg(unix)]
    let no_family = libc::EAFNOSUPPORT;
    #[cfg(windows)]
    let no_family = 10047; // WSAEAFNOSUPPORT
    #[cfg(not(any(unix, windows)))]
    let no_family = -1;
    e.raw_os_error() == Some(no_family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_bound_on_either_loopback_is_busy() {
        let v4 = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = v4.local_addr().unwrap().port();
        assert!(!port_is_free(port), "bound on 127.0.0.1");
        drop(v4);
        match std::net::TcpListener::bind(("::1", port)) {
            Ok(v6) => {
                assert!(!port_is_free(port), "bound on [::1] only");
                drop(v6);
            }
            Err(e) => assert!(no_ipv6_loopback(&e), "{e}"),
        }
        assert!(port_is_free(port), "free again");
    }

    #[test]
    fn no_ipv6_is_not_busy() {
        let e = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
        assert!(no_ipv6_loopback(&e));
        let e = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        assert!(!no_ipv6_loopback(&e));
    }
}
