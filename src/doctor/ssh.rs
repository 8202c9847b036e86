//! The ssh side of this machine: the OpenSSH client that bprof starts for ssh profiles on the
//! native engine, and the key files those profiles name.

use std::path::{Path, PathBuf};

use super::{Check, Scope};
use crate::process::which;
use crate::profile::raw::Mode;

/// How to get OpenSSH's client, per system.
const SSH_INSTALL: &str = "install the OpenSSH client (Debian/Ubuntu: apt install openssh-client; Fedora: dnf install openssh-clients; Windows: Settings > Optional features > OpenSSH Client; macOS has it)";

/// `ssh_key` as OpenSSH reads it: `~/` is the home directory; a relative path is relative to
/// the directory ssh runs in (bprof's); `None` when it needs a home that is not known.
fn key_path(key: &str, home: Option<&Path>) -> Option<PathBuf> {
    match key.strip_prefix("~/").or_else(|| key.strip_prefix("~\\")) {
        Some(rest) => home.map(|h| h.join(rest)),
        None if key == "~" => home.map(Path::to_path_buf),
        None => Some(PathBuf::from(key)),
    }
}

/// `ssh`: the client is there when a profile of the scope runs it, and each `ssh_key` it names
/// is a file.
pub(super) fn ssh_client(scope: &Scope) -> Check {
    const NAME: &str = "ssh";
    let opts = scope.plan_options();
    let users: Vec<_> = scope
        .considered
        .iter()
        .filter(|p| p.mode == Mode::Ssh && crate::plan::native_ssh(p, &opts))
        .collect();
    if users.is_empty() {
        return Check::skip(NAME, "no ssh profile here runs OpenSSH through bprof");
    }
    let user_names: Vec<&str> = users.iter().map(|p| p.name.as_str()).collect();
    let Some(ssh) = which("ssh") else {
        return Check::fail(
            NAME,
            format!(
                "OpenSSH's `ssh` is not on PATH, and {} run it",
                super::local::names(&user_names)
            ),
            SSH_INSTALL,
        );
    };
    let missing: Vec<String> = users
        .iter()
        .filter_map(|p| {
            let key = p.ssh_key.as_deref()?;
            let found = key_path(key, scope.home).is_some_and(|k| k.is_file());
            (!found).then(|| format!("`{}` names {}", p.name, crate::terminal::value(key)))
        })
        .collect();
    if !missing.is_empty() {
        return Check::fail(
            NAME,
            format!("ssh_key is not a file: {}", missing.join("; ")),
            "correct `ssh_key` in the profile (your own path belongs in a *.local.yaml or your user config), or create the key: ssh-keygen -t ed25519 -f PATH",
        );
    }
    Check::ok(
        NAME,
        format!(
            "{} (for {}); every ssh_key named is a file",
            ssh.display(),
            super::local::names(&user_names)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::key_path;
    use std::path::{Path, PathBuf};

    #[test]
    fn a_key_path_is_read_as_ssh_reads_it() {
        let home = Some(Path::new("/home/a"));
        assert_eq!(
            key_path("~/.ssh/id", home),
            Some(PathBuf::from("/home/a/.ssh/id"))
        );
        assert_eq!(key_path("/k", home), Some(PathBuf::from("/k")));
        assert_eq!(key_path("~/.ssh/id", None), None);
        assert_eq!(key_path("k", None), Some(PathBuf::from("k")));
    }
}
