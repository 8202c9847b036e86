//! `proxy` (one tunnel session on stdin/stdout, for ssh's ProxyCommand) and `ssh-config` (the
//! ssh_config blocks that use it).

use std::path::PathBuf;

use super::output::print;
use super::{Cli, Error, Out, exit, load_set};
use crate::plan::{self, Os, PlanOptions};
use crate::process::Signals;
use crate::profile::load::{FileKind, ProfileSet};
use crate::profile::raw::{AuthType, Mode};
use crate::profile::resolve::{self, Profile};
use crate::session::{self, RunError};

/// The plan of a profile's tunnel (as `run --tunnel-only` would open it).
fn tunnel_plan(set: &ProfileSet, p: &Profile) -> Result<plan::Plan, Error> {
    let az = crate::azure::signin::AzProfile::read();
    if !az.knows(&p.bastion.subscription) {
        return Err(RunError::NotSignedIn {
            subscription: p.bastion.subscription.clone(),
            tenant: p.tenant.id.clone(),
        }
        .into());
    }
    let opts = PlanOptions {
        tunnel_only: true,
        ..PlanOptions::for_os(Os::current())
    };
    Ok(plan::build(set, p, &opts)?)
}

pub(super) fn proxy(cli: &Cli, profile: &str, out: &Out) -> Result<i32, Error> {
    let set = load_set(cli, out)?;
    let p = resolve::resolve(&set, profile)?;
    out.elsewhere(&set);
    let plan = tunnel_plan(&set, &p)?;
    super::leave(set);
    let signals = Signals::install();
    session::proxy(&plan, &signals)?;
    Ok(exit::OK)
}

/// Whether a profile reaches an ssh server: mode ssh, or a tunnel to port 22.
fn ssh_capable(p: &Profile) -> bool {
    p.mode == Mode::Ssh || (p.mode == Mode::Tunnel && p.resource_port == 22)
}

/// Characters ssh_config expands or splits on in the values bprof writes (`%` tokens,
/// `${VAR}`, quotes), and control characters: refused rather than escaped.
fn ssh_config_safe(v: &str) -> Result<(), String> {
    match v
        .chars()
        .find(|c| matches!(c, '$' | '%' | '"' | '\'' | '\\' | '`') || c.is_control())
    {
        Some(c) => Err(format!(
            "{} holds {}, which ssh_config would expand or split on",
            crate::terminal::value(v),
            crate::terminal::value(&c.to_string())
        )),
        None => Ok(()),
    }
}

/// A value for an ssh_config line: in double quotes when it has spaces.
fn ssh_config_value(v: &str) -> String {
    if v.contains([' ', '\t']) {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

/// The ProxyCommand: bprof's absolute path and the set's directories, each one argument for
/// the shell ssh runs it with (POSIX sh; on Windows ssh starts it directly).
fn proxy_command(bprof: &str, dirs: &[String], profile: &str) -> String {
    let mut argv = vec![bprof.to_string()];
    for d in dirs {
        argv.push("--profiles".into());
        argv.push(d.clone());
    }
    argv.push("proxy".into());
    argv.push(profile.to_string());
    if cfg!(windows) {
        argv.iter()
            .map(|a| ssh_config_value(a))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        crate::plan::shell::join(&argv, false)
    }
}

/// The directories the set's shared files are in, absolute.
fn set_dirs(set: &ProfileSet) -> Vec<String> {
    let mut dirs: Vec<String> = Vec::new();
    for f in set.files.iter().filter(|f| f.kind != FileKind::User) {
        let dir = f.path.parent().map(PathBuf::from).unwrap_or_default();
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let d = dir.display().to_string();
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// One profile's block.
fn host_block(p: &Profile, proxy: &str) -> Result<String, String> {
    let alias = format!("{}.bprof", p.name);
    let mut b = format!("# {}", p.name);
    if let Some(d) = &p.description {
        b.push_str(&format!(": {}", crate::terminal::value(d)));
    }
    b.push('\n');
    b.push_str(&format!(
        "Host {alias}\n  HostKeyAlias {alias}\n  ProxyCommand {proxy}\n"
    ));
    if let Some(u) = &p.username {
        ssh_config_safe(u)?;
        b.push_str(&format!("  User {}\n", ssh_config_value(u)));
    }
    if let Some(k) = &p.ssh_key {
        ssh_config_safe(k)?;
        b.push_str(&format!("  IdentityFile {}\n", ssh_config_value(k)));
    }
    if p.auth_type == Some(AuthType::Aad) {
        b.push_str("  # Entra ID (aad): the bastion carries the bytes, sshd checks an Entra certificate that\n  # az's ssh extension issues: `az ssh cert --file ~/.ssh/bprof-entra` then add\n  # `CertificateFile ~/.ssh/bprof-entra` and `IdentityFile ~/.ssh/bprof-entra-key` here (the\n  # certificate lasts about an hour); or `bprof run` this profile, which uses az ssh.\n");
    }
    b.push_str("  # each new connection costs one token call: share one with\n  #   ControlMaster auto\n  #   ControlPath ~/.ssh/bprof-%C\n  #   ControlPersist 10m\n");
    Ok(b)
}

pub(super) fn ssh_config(cli: &Cli, names: &[String], out: &Out) -> Result<i32, Error> {
    let set = load_set(cli, out)?;
    out.elsewhere(&set);
    let bprof = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map(|p| p.display().to_string())
        .map_err(|e| Error::Usage(format!("cannot find bprof's own path: {e}")))?;
    let dirs = set_dirs(&set);
    for v in std::iter::once(&bprof).chain(&dirs) {
        ssh_config_safe(v).map_err(|why| {
            Error::Usage(format!(
                "the ProxyCommand cannot be written: {why}; move bprof or the profiles to a plainer path"
            ))
        })?;
    }
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
        let proxy = proxy_command(&bprof, &dirs, &p.name);
        match host_block(&p, &proxy) {
            Ok(b) => {
                text.push_str(&b);
                text.push('\n');
                n += 1;
            }
            Err(why) if names.is_empty() => {
                out.note(&format!("bprof: warning: `{name}` left out: {why}"));
            }
            Err(why) => return Err(Error::Usage(format!("profile `{name}`: {why}"))),
        }
    }
    if n == 0 {
        out.note("bprof: no ssh profile in the set (mode ssh, or a tunnel to port 22)");
    }
    print(&text)?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_ssh_would_expand_are_refused() {
        assert!(ssh_config_safe("azureuser").is_ok());
        assert!(ssh_config_safe("/home/a b/.ssh/id").is_ok());
        for bad in ["a%h", "${HOME}/k", "a\"b", "a'b", "a\nb", "a\\b", "`id`"] {
            assert!(ssh_config_safe(bad).is_err(), "{bad:?}");
        }
        assert_eq!(ssh_config_value("a b"), "\"a b\"");
    }

    #[cfg(unix)]
    #[test]
    fn the_proxy_command_is_one_argument_per_element() {
        let c = proxy_command("/opt/bprof dir/bprof", &["/srv/p".into()], "web");
        assert_eq!(c, "'/opt/bprof dir/bprof' --profiles /srv/p proxy web");
    }
}
