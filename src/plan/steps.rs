//! The steps bprof runs itself around az's: OpenSSH through `bprof proxy`, the native
//! engine's token and tunnel, the wait, the temporary .rdp and the client, the hold.

use super::*;

/// The argv of the token call of the native engine.
pub fn token_argv(subscription: &str) -> Vec<String> {
    crate::azure::token::TokenFor::Subscription(subscription.to_string()).argv()
}

/// The token step: az's one call, the ARM token kept in memory (`detail` says for what).
pub(super) fn token_step(subscription: &str, detail: &str) -> Step {
    Step {
        name: "token".into(),
        argv: token_argv(subscription),
        when: None,
        detail: Some(detail.into()),
        kind: StepKind::Token,
    }
}

/// Where `run` writes the temporary .rdp of a profile: a directory of the person's own.
pub fn temp_rdp_path(host: &Host, profile: &str) -> String {
    host.rdp_dir
        .join(format!("{profile}.rdp"))
        .display()
        .to_string()
}

/// Whether an ssh profile runs OpenSSH through bprof's own tunnel: the native engine with a
/// key or a password (Entra sign-in needs az's ssh extension, which issues the certificate).
pub fn native_ssh(profile: &Profile, opts: &PlanOptions) -> bool {
    profile.mode == Mode::Ssh
        && !opts.tunnel_only
        && engine(profile, opts) == TunnelEngine::Native
        && profile.auth_type.is_some()
}

/// `ssh` with `bprof proxy` as its ProxyCommand and host keys pinned under `NAME.bprof`.
pub(super) fn ssh_step(
    set: &ProfileSet,
    profile: &Profile,
    opts: &PlanOptions,
) -> Result<Step, PlanError> {
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
    let entra = (profile.auth_type == Some(crate::profile::raw::AuthType::Aad))
        .then(|| crate::entra::Paths::of(&opts.host.state_dir, &profile.name));
    match (&profile.username, &entra) {
        (Some(u), _) => argv.extend(["-l".into(), u.clone()]),
        (None, Some(_)) => argv.extend(["-l".into(), PRINCIPAL.into()]),
        (None, None) => {}
    }
    if let Some(paths) = &entra {
        argv.extend([
            "-i".into(),
            paths.key.display().to_string(),
            "-o".into(),
            format!("CertificateFile={}", paths.cert().display()),
        ]);
    } else if let Some(k) = &profile.ssh_key {
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

/// In the plan, where the Entra certificate's principal goes (`run` puts it in).
pub const PRINCIPAL: &str = "<the certificate's principal>";

/// An Entra (aad) ssh profile's steps before OpenSSH: its key pair when missing, its
/// certificate from `az ssh cert` when missing or within five minutes of its end.
pub(super) fn entra_steps(profile: &Profile, opts: &PlanOptions, out: &mut Vec<Step>) {
    let paths = crate::entra::Paths::of(&opts.host.state_dir, &profile.name);
    out.push(Step {
        name: "ssh-key".into(),
        argv: crate::entra::keygen_argv(&paths),
        when: Some("key-missing".into()),
        detail: Some("only when the profile's key pair is missing: an RSA key for Entra to sign, readable by you alone".into()),
        kind: StepKind::SshKey {
            key: paths.key.display().to_string(),
        },
    });
    out.push(Step {
        name: "ssh-cert".into(),
        argv: crate::entra::cert_argv(&paths),
        when: Some("certificate-expiring".into()),
        detail: Some("skipped while the certificate is valid (more than 5 minutes left): Entra signs the key for the signed-in user (az's ssh extension)".into()),
        kind: StepKind::SshCert {
            key: paths.key.display().to_string(),
        },
    });
}

/// Fields only az's command line reads mean nothing to the native engine: refused, with the
/// way to keep az.
pub(super) fn az_only_refused(profile: &Profile, opts: &PlanOptions) -> Result<(), PlanError> {
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
pub(super) fn native_steps(
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
    out.push(token_step(
        &b.subscription,
        "the ARM access token, kept in memory only (refreshed in the background from 10 minutes before its end)",
    ));
    if b.sku == Some(crate::profile::raw::Sku::Developer) {
        out.push(broker_step());
    }
    let host = match &b.dns_name {
        Some(d) => format!("the bastion's host {d} (its dns_name)"),
        None => format!(
            "the bastion's host from ARM (one GET of bastion `{}`, which must be Standard or Premium with native client support, or Developer)",
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

/// The Developer SKU's request for each session's data pod (the engine makes it).
pub(super) fn broker_step() -> Step {
    Step {
        name: "connection".into(),
        argv: Vec::new(),
        when: None,
        detail: Some("for each connection, the Developer SKU's broker (the bastion's dnsName from ARM) names the data pod of its session; the ARM token goes in the JSON body (elided here), and on only to a data pod under the broker's domain".into()),
        kind: StepKind::Request {
            method: "POST",
            url: "https://<the bastion's dnsName from ARM>/api/connection".into(),
        },
    }
}

/// The RDP client with the run's .rdp file, and notes: missing, no Entra sign-in, what
/// `--configure` does with it.
pub(super) fn client_step(
    profile: &Profile,
    opts: &PlanOptions,
    c: &crate::plan::client::ClientCmd,
    path: &str,
) -> Step {
    let missing = opts.os == Os::current() && crate::process::which(&c.program).is_none();
    let no_entra =
        profile.enable_mfa && !c.freerdp3 && !["mstsc", "open"].contains(&c.program.as_str());
    let mut notes = Vec::new();
    if missing {
        notes.push(format!(
            "`{}` is not on PATH: {}",
            c.program,
            crate::plan::client::INSTALL_HINT
        ));
    } else if no_entra {
        notes.push(format!("`{}` has no Entra sign-in: this profile's `enable_mfa` needs FreeRDP 3 (xfreerdp3, sdl-freerdp3) or sign-in with a local account", c.program));
    }
    if (profile.configure || opts.configure) && c.program != "mstsc" {
        notes.push(crate::plan::client::configure_note(&c.program));
    }
    Step {
        name: "client".into(),
        argv: c.argv(profile, path, profile.configure || opts.configure),
        when: None,
        detail: (!notes.is_empty()).then(|| notes.join("; ")),
        kind: StepKind::Client,
    }
}

/// The steps after the tunnel: wait (az's tunnel; the native one listens when its step
/// ends), then the .rdp and the client (rdp), or hold it open.
pub(super) fn session_steps(
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
pub(super) fn wait_step(opts: &PlanOptions, port: u16, out: &mut Vec<Step>) {
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

pub(super) fn session_tail(
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
            out.push(client_step(profile, opts, c, &path));
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
