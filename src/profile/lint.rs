//! Lints: profiles that are valid but will probably not do what their authors want. Each is a
//! warning in `validate` (an error with `--strict`), at the place to change, with the fix.

use crate::profile::diag::Problem;
use crate::profile::load::{FileKind, ProfileSet};
use crate::profile::raw::{AuthType, Mode, VmOs};
use crate::profile::resolve::Profile;

/// Whether a user name looks like an Entra ID user (`user@domain.tld`).
pub fn looks_like_entra(username: &str) -> bool {
    let Some((user, domain)) = username.split_once('@') else {
        return false;
    };
    !user.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
}

/// A warning at the place `field` of `p` was set (or the profile itself).
fn at(set: &ProfileSet, p: &Profile, field: &str, message: String, help: &str) -> Problem {
    let problem = match p.origins.get(field) {
        Some(def) => set.file(def).problem(&def.pointer, true, message),
        None => {
            let mut q = Problem::at_location(&p.defined_at, message);
            q.path = format!("profiles.{}", p.name);
            q
        }
    };
    problem.warning().with_help(help)
}

/// The lints of one resolved profile.
pub fn profile(set: &ProfileSet, p: &Profile) -> Vec<Problem> {
    let mut out = Vec::new();
    if p.mode != Mode::Rdp {
        return out;
    }
    let entra_user = p.username.as_deref().is_some_and(looks_like_entra);
    if entra_user
        && p.vm.os == VmOs::Windows
        && !p.enable_mfa
        && p.auth_type != Some(AuthType::Password)
    {
        out.push(at(
            set,
            p,
            "username",
            format!(
                "`username` looks like an Entra ID user, but profile `{}` has no `enable_mfa`: Entra sign-in will fail with \"The login attempt failed\"",
                p.name
            ),
            "add `enable_mfa: true` (Entra sign-in), or use a local account's name with `auth_type: password`",
        ));
    }
    if p.enable_mfa && (p.vm.ip.is_some() || p.disable_gateway) {
        let why = if p.vm.ip.is_some() {
            "a vm given by `ip`"
        } else {
            "`disable_gateway`"
        };
        out.push(at(
            set,
            p,
            "enable_mfa",
            format!("`enable_mfa` does nothing with {why}: the connection is a plain tunnel to 127.0.0.1 there (az's or bprof's), where Entra sign-in does not work"),
            "give the vm by `resource_id` or `name` and keep the gateway for Entra sign-in, or remove `enable_mfa`",
        ));
    }
    if entra_user
        && let Some(def) = p.origins.get("username")
        && set.file(def).kind == FileKind::Shared
    {
        out.push(at(
            set,
            p,
            "username",
            "an Entra ID user name in a shared file: every teammate would sign in as this person".into(),
            "put your `username` in a personal override (a *.local.yaml beside the shared files, or your user config)",
        ));
    }
    if p.vm.os == VmOs::Linux {
        out.push(at(
            set,
            p,
            "mode",
            format!(
                "profile `{}` connects with RDP to vm `{}`, which is declared `os: linux`",
                p.name, p.vm.key
            ),
            "use `mode: ssh` for a Linux VM (or fix the vm's `os` if it runs Windows); RDP to Linux needs xrdp on the VM",
        ));
    }
    out
}

/// The lints of the set's `defaults`: `configure: true` there opens the RDP client's settings
/// on every connection (a switch-user profile is the place for it).
pub fn defaults(set: &ProfileSet) -> Vec<Problem> {
    set.defaults
        .iter()
        .filter(|d| {
            set.value(d)
                .and_then(|v| v.get("configure"))
                .and_then(|v| v.as_bool())
                == Some(true)
        })
        .map(|d| {
            set.file(d)
                .problem(
                    &format!("{}/configure", d.pointer),
                    true,
                    "`configure: true` in `defaults`: every connection would open the RDP client's settings first",
                )
                .warning()
                .with_help("set `configure: true` on a switch-user profile (`extends` the everyday one), or use `bprof run PROFILE --configure` once")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_looking_names() {
        assert!(looks_like_entra("alice@contoso.com"));
        assert!(!looks_like_entra("azureuser"));
        assert!(!looks_like_entra("alice@localhost"));
        assert!(!looks_like_entra("@contoso.com"));
        assert!(!looks_like_entra("a@b@c.com"));
    }
}
