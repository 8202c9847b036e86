//! The plan: the exact steps `run` executes, as argv lists, for a given OS. Nothing runs here.
//! `template` renders argv tokens, `shell` quotes them for display, `rdp` makes .rdp content and
//! `client` chooses the RDP client.

pub mod client;
pub mod rdp;
pub mod shell;
pub mod template;

use serde::Serialize;
use serde_json::{Value, json};

use crate::profile::load::ProfileSet;
use crate::profile::raw::{Client, LocalPort, Mode};
use crate::profile::resolve::Profile;
use template::TemplateError;

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
    /// Wait until the tunnel's local port accepts a TCP connection.
    Wait { port: u16 },
    /// Write the temporary .rdp file (these lines) for the client.
    WriteRdp { path: String, lines: Vec<String> },
    /// The RDP client, in the foreground; its exit ends the session.
    Client,
    /// Keep the tunnel open until Ctrl-C.
    Hold,
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
    pub steps: Vec<Step>,
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
}

/// Every problem of the set: its entries ([`crate::profile::resolve::validate_all`]) and its
/// templates, sorted by file and line.
pub fn validate_all(set: &ProfileSet) -> Vec<crate::profile::diag::Problem> {
    let mut problems = crate::profile::resolve::validate_all(set);
    problems.extend(template::check_all(set));
    crate::profile::diag::sort(&mut problems);
    problems
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
    let env: serde_json::Map<String, Value> = std::env::vars()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    json!({
        "profile": p,
        "tenant": profile.tenant,
        "bastion": profile.bastion,
        "vm": profile.vm,
        "port": port,
        "env": env,
    })
}

/// Builds the plan of one resolved profile.
pub fn build(
    set: &ProfileSet,
    profile: &Profile,
    opts: &PlanOptions,
) -> Result<Plan, TemplateError> {
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
    let rendered = template::render(&template_name, &steps, &ctx, &set.allow_programs)?;
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
        session_steps(profile, opts, port, &mut out);
    }
    Ok(Plan {
        profile: profile.name.clone(),
        os: opts.os,
        steps: out,
    })
}

/// How long `run` waits for a tunnel to accept connections (`BPROF_TUNNEL_TIMEOUT` seconds,
/// default 30: az's tunnel is usually ready in a few seconds).
pub fn tunnel_timeout() -> std::time::Duration {
    let secs = std::env::var("BPROF_TUNNEL_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(30.0);
    std::time::Duration::from_secs_f64(secs)
}

/// Where a client is pointed at the local end of a tunnel: IPv4 loopback, never `localhost`
/// (which some clients resolve to `::1` first, where another user may listen).
pub fn local_address(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Where `run` writes the temporary .rdp of a profile: a directory of the user's own.
pub fn temp_rdp_path(profile: &str) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "user".into());
    let user: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    std::env::temp_dir()
        .join(format!("bprof-{user}"))
        .join(format!("{profile}.rdp"))
        .display()
        .to_string()
}

/// The steps after the tunnel: wait, then the .rdp and the client (rdp), or hold it open.
fn session_steps(profile: &Profile, opts: &PlanOptions, port: u16, out: &mut Vec<Step>) {
    let timeout = tunnel_timeout().as_secs_f64();
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
    let client = if profile.mode == Mode::Rdp && !opts.tunnel_only {
        crate::plan::client::choose(profile, opts.os, opts.os == Os::current())
    } else {
        None
    };
    if profile.mode == Mode::Rdp && !opts.tunnel_only {
        let path = temp_rdp_path(&profile.name);
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
                detail: if missing {
                    Some(format!("`{}` is not on PATH: {}", c.program, crate::plan::client::INSTALL_HINT))
                } else if no_entra {
                    Some(format!("`{}` has no Entra sign-in: this profile's `enable_mfa` needs FreeRDP 3 (xfreerdp3, sdl-freerdp3) or sign-in with a local account", c.program))
                } else {
                    None
                },
                kind: StepKind::Client,
            });
            if !c.detaches() {
                return;
            }
        }
    }
    out.push(Step::internal(
        "hold",
        format!(
            "keep the tunnel on {} open until Ctrl-C (restarted if it dies)",
            local_address(port)
        ),
        StepKind::Hold,
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
        for step in &self.steps {
            if step.when.as_deref() == Some("not-signed-in") {
                out.push_str("# not signed in to this tenant: sign in first\n");
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
