//! `bprof ssh-config [PROFILE]...`: ssh_config `Host NAME.bprof` blocks that reach ssh profiles
//! through `bprof proxy`, with only what ssh reads back as written.

use clap_complete::engine::ArgValueCandidates;

use super::output::print;
use super::{Cli, Error, Out, completions, exit, load_set};
use crate::plan::ssh::config_word;
use crate::profile::raw::{AuthType, Mode};
use crate::profile::resolve::{self, Profile};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profiles (default: every ssh profile).
    #[arg(value_name = "PROFILE", add = ArgValueCandidates::new(completions::ssh_profiles))]
    pub names: Vec<String>,
}

/// Whether a profile reaches an ssh server: mode ssh, or a tunnel to port 22.
pub(super) fn ssh_capable(p: &Profile) -> bool {
    p.mode == Mode::Ssh || (p.mode == Mode::Tunnel && p.resource_port == 22)
}

/// One profile's block, and what it leaves out because ssh would not read it back as it is.
/// An Entra profile's `Match` block (its `exec` renews the certificate) and key files.
pub(super) struct Entra {
    match_line: String,
    paths: crate::entra::Paths,
}

fn host_block(p: &Profile, proxy: &str, entra: Option<&Entra>) -> (String, Vec<String>) {
    let alias = crate::plan::ssh::alias(&p.name);
    let mut left = Vec::new();
    let mut b = format!("# {}", p.name);
    if let Some(d) = &p.description {
        // one comment line, whatever the description holds
        let d: String = d
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        b.push_str(&format!(": {}", crate::terminal::value(&d)));
    }
    b.push('\n');
    // Entra: the certificate is renewed by `exec` before ssh reads the files it names
    let mut user = p.username.clone();
    if let Some(e) = entra {
        b.push_str(&format!("{}\n", e.match_line));
        for (directive, path) in [
            ("IdentityFile", e.paths.key.clone()),
            ("CertificateFile", e.paths.cert()),
        ] {
            match config_word(&path.display().to_string()) {
                Ok(w) => b.push_str(&format!("  {directive} {w}\n")),
                Err(why) => left.push(format!("`{directive}` {why}")),
            }
        }
        if user.is_none()
            && let crate::entra::Status::Valid(c) | crate::entra::Status::Expiring(c) =
                crate::entra::status(&e.paths, crate::entra::now())
        {
            user = c.principals.into_iter().next();
        }
    }
    b.push_str(&format!(
        "Host {alias}\n  HostKeyAlias {alias}\n  ProxyCommand {proxy}\n"
    ));
    let ssh_key = if entra.is_some() {
        None
    } else {
        p.ssh_key.clone()
    };
    for (directive, field, value) in [
        ("User", "username", &user),
        ("IdentityFile", "ssh_key", &ssh_key),
    ] {
        if let Some(v) = value {
            match config_word(v) {
                Ok(w) => b.push_str(&format!("  {directive} {w}\n")),
                Err(why) => left.push(format!("`{field}` {why}")),
            }
        }
    }
    let (lines, left_args) = crate::plan::ssh::config_directives(&p.ssh_args);
    for l in lines {
        b.push_str(&format!("  {l}\n"));
    }
    left.extend(left_args.into_iter().map(|a| format!("`ssh_args` {a}")));
    if entra.is_some() && user.is_none() {
        b.push_str("  # Entra ID (aad): no User yet: run `bprof ssh-cert NAME` once (the certificate names it),\n  # then this command again, or set `username` in the profile\n");
    }
    for l in &left {
        b.push_str(&format!("  # left out: {}\n", l.replace('\n', " ")));
    }
    b.push_str("  # each new connection costs one token call: share one with\n  #   ControlMaster auto\n  #   ControlPath ~/.ssh/bprof-%C\n  #   ControlPersist 10m\n");
    (b, left)
}

/// `bprof ssh-config [PROFILE]...`.
pub(super) fn run(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    let names = &args.names;
    let set = load_set(cli, out)?;
    out.elsewhere(&set);
    let bprof = &cli.settings.host.bprof;
    let dirs = crate::plan::ssh::selection(&set);
    let listed: Vec<String> = if names.is_empty() {
        set.names(crate::profile::load::Section::Profiles)
            .map(str::to_string)
            .collect()
    } else {
        names.to_vec()
    };
    let mut text = String::from(
        "# bprof ssh-config: `ssh NAME.bprof` reaches each profile's VM through `bprof proxy`.\n# Host keys are checked per profile (HostKeyAlias): the first connection asks, as ssh does.\n\n",
    );
    let mut n = 0;
    for name in &listed {
        let p = match resolve::resolve(&set, name) {
            Ok(p) => p,
            Err(e) if names.is_empty() => {
                out.note(&format!("bprof: warning: `{name}` left out: {e}"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if !ssh_capable(&p) {
            if names.is_empty() {
                continue;
            }
            return Err(Error::Usage(format!(
                "profile `{name}` is mode {} on port {}: not an ssh server",
                resolve::mode_name(p.mode),
                p.resource_port
            )));
        }
        let proxy = crate::plan::ssh::proxy_command(bprof, &dirs, &p.name, cfg!(windows))
            .map_err(Error::Usage)?;
        let entra = if p.auth_type == Some(AuthType::Aad) {
            let match_line =
                crate::plan::ssh::match_exec_line(bprof, &dirs, &p.name, cfg!(windows))
                    .map_err(Error::Usage)?;
            Some(Entra {
                match_line,
                paths: crate::entra::Paths::of(&cli.settings.host.state_dir, &p.name),
            })
        } else {
            None
        };
        let (block, left) = host_block(&p, &proxy, entra.as_ref());
        for l in &left {
            out.note(&format!(
                "bprof: warning: `{name}`: left out of its Host block: {l}"
            ));
        }
        text.push_str(&block);
        text.push('\n');
        n += 1;
    }
    if n == 0 {
        out.note("bprof: no ssh profile in the set (mode ssh, or a tunnel to port 22)");
    }
    print(&text)?;
    Ok(exit::OK)
}
