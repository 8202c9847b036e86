//! The checks of this machine: az and its version, the extensions az's own commands need (only
//! where a profile's path runs them), the tenants az is signed in to, an RDP client, TLS to ARM.

use std::io::Read as _;

use serde_json::Value;

use super::{AzVersion, Check, Found, Scope};
use crate::azure::http::bounded;
use crate::plan::client::{self, ClientCmd, INSTALL_HINT, LINUX_AUTO};
use crate::plan::{self, Os, PlanOptions};
use crate::process::{Signals, Spawn, spawn, which};
use crate::profile::raw::{AuthType, Client, Mode, TunnelEngine};
use crate::profile::resolve::Profile;

/// The bastion extension needs this az (the extension's own minimum).
const BASTION_MIN_AZ: (u64, u64, u64) = (2, 62, 0);
/// `az version`'s output is read up to this size.
const MAX_OUTPUT: usize = 1024 * 1024;

/// Runs `az version -o json`: one process, stdout captured, its stderr read here (az's "a new
/// version is available" notes would only be noise in doctor's report).
pub(super) fn az_version(
    signals: &Signals,
    az: Option<&std::path::Path>,
) -> Result<AzVersion, String> {
    let argv: Vec<String> = ["az", "version", "-o", "json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut child = spawn(Spawn {
        argv: &argv,
        background: true,
        pipe_stderr: true,
        capture_stdout: true,
        az,
    })
    .map_err(|e| e.to_string())?;
    let mut said = Vec::new();
    if let Some(mut err) = child.take_stderr() {
        let mut buf = [0u8; 4096];
        loop {
            match err.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if said.len() < 4096 => said.extend_from_slice(&buf[..n]),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    let exit = child.wait(signals).map_err(|e| e.to_string())?;
    if !exit.success() {
        let said = String::from_utf8_lossy(&said);
        let first = said.lines().map(str::trim).find(|l| !l.is_empty());
        return Err(format!(
            "`az version` {exit}{}",
            first
                .map(|l| format!(": {}", bounded(l, 200)))
                .unwrap_or_default()
        ));
    }
    let out = child.stdout().unwrap_or_default();
    if out.len() > MAX_OUTPUT {
        return Err("`az version` printed more than 1 MiB".into());
    }
    parse_version(&out)
}

/// `{"azure-cli": "2.67.0", ..., "extensions": {"bastion": "1.4.4"}}`.
fn parse_version(out: &[u8]) -> Result<AzVersion, String> {
    let v: Value = serde_json::from_slice(out)
        .map_err(|_| "`az version -o json` did not print JSON".to_string())?;
    Ok(AzVersion {
        version: v
            .get("azure-cli")
            .and_then(Value::as_str)
            .map(|s| bounded(s, 40)),
        extensions: v
            .get("extensions")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .take(200)
            .map(|(k, v)| (bounded(k, 60), bounded(v.as_str().unwrap_or("?"), 40)))
            .collect(),
    })
}

/// Whether version text `v` (`2.67.0`) is at least `min`.
fn at_least(v: &str, min: (u64, u64, u64)) -> bool {
    let mut parts = v.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u64>()
            .unwrap_or(0)
    });
    let got = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    got >= min
}

/// Why a profile's connection runs one of `az network bastion rdp|ssh|tunnel` on `os`, if it
/// does (the native engine needs no extension).
fn bastion_command(p: &Profile, opts: &PlanOptions) -> Option<&'static str> {
    if p.template.is_some() {
        return Some("its own template runs az's commands");
    }
    match p.mode {
        Mode::Ssh if !plan::native_ssh(p, opts) => Some(if p.auth_type == Some(AuthType::Aad) {
            "ssh with Entra (aad) runs `az network bastion ssh`"
        } else {
            "`tunnel_engine: az` runs `az network bastion ssh`"
        }),
        Mode::Rdp if plan::rdp_path(p, opts) == Some(plan::RdpPath::Az) => {
            Some("rdp with `client: auto` on Windows runs `az network bastion rdp`")
        }
        _ if plan::uses_tunnel(p, opts) && plan::engine(p, opts) == TunnelEngine::Az => {
            Some("`tunnel_engine: az` runs `az network bastion tunnel`")
        }
        _ => None,
    }
}

/// Why a profile's connection needs the ssh extension: `az network bastion ssh`, or (Entra on
/// the native engine) `az ssh cert` for the certificate.
fn ssh_command(p: &Profile, opts: &PlanOptions) -> Option<&'static str> {
    if p.mode != Mode::Ssh {
        return None;
    }
    if p.auth_type == Some(AuthType::Aad) && plan::native_ssh(p, opts) {
        return Some("Entra ssh asks `az ssh cert` for its certificate");
    }
    bastion_command(p, opts)
}

/// The considered profiles that need something, with why.
fn needers<'a>(
    scope: &Scope<'a>,
    why: fn(&Profile, &PlanOptions) -> Option<&'static str>,
) -> Vec<(&'a str, &'static str)> {
    scope
        .considered
        .iter()
        .filter_map(|p| why(p, &scope.plan_options()).map(|w| (p.name.as_str(), w)))
        .collect()
}

/// "`a`, `b` and 3 more".
pub(super) fn names(list: &[&str]) -> String {
    let shown: Vec<String> = list.iter().take(3).map(|n| format!("`{n}`")).collect();
    match list.len() {
        0..=3 => shown.join(", "),
        n => format!("{} and {} more", shown.join(", "), n - 3),
    }
}

/// Which profiles these are: "checked" or "in the set".
fn which_profiles(scope: &Scope) -> &'static str {
    if scope.whole_set {
        "in the profile set"
    } else {
        "checked"
    }
}

pub(super) fn checks(scope: &Scope, f: &Found) -> Vec<Check> {
    let bastion = needers(scope, bastion_command);
    let ssh = needers(scope, ssh_command);
    vec![
        az(f, &bastion),
        extension(scope, f, "bastion", &bastion),
        extension(scope, f, "ssh", &ssh),
        tenants(scope, f),
        rdp_client(scope),
        tls_arm(scope, f),
    ]
}

fn az(f: &Found, bastion: &[(&str, &str)]) -> Check {
    let path = match &f.az {
        Ok(p) => p,
        Err(why) => {
            return Check::fail(
                "az",
                format!("{why}: bprof gets every access token from az"),
                crate::azure::AZ_MISSING,
            );
        }
    };
    match &f.version {
        Some(Ok(v)) => {
            let version = v.version.as_deref().unwrap_or("of an unknown version");
            if !bastion.is_empty()
                && !v
                    .version
                    .as_deref()
                    .is_some_and(|x| at_least(x, BASTION_MIN_AZ))
            {
                return Check::warn(
                    "az",
                    format!(
                        "az {version} ({path}): the bastion extension needs az 2.62.0 or later"
                    ),
                    "`az upgrade`",
                );
            }
            Check::ok("az", format!("az {version} ({path})"))
        }
        Some(Err(why)) => Check::warn(
            "az",
            format!("az is {path}, but {why}"),
            "run `az version` to see what is wrong with it",
        ),
        None => Check::ok("az", format!("az is {path}")),
    }
}

fn extension(scope: &Scope, f: &Found, name: &'static str, needers: &[(&str, &str)]) -> Check {
    let check = if name == "ssh" {
        "ssh-extension"
    } else {
        "bastion-extension"
    };
    let Some((_, why)) = needers.first() else {
        let what = if name == "ssh" {
            "`az network bastion ssh`"
        } else {
            "`az network bastion rdp|ssh|tunnel`"
        };
        return Check::skip(
            check,
            format!(
                "no profile {} runs {what} on {}: bprof's native engine needs no az extension",
                which_profiles(scope),
                scope.os.name()
            ),
        );
    };
    let listed: Vec<&str> = needers.iter().map(|(n, _)| *n).collect();
    let users = format!("{} ({why})", names(&listed));
    let installed = match &f.version {
        Some(Ok(v)) => v
            .extensions
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name)),
        Some(Err(why)) => return Check::skip(check, format!("az's extensions are unknown: {why}")),
        None => return Check::skip(check, "az is missing (see check `az`)"),
    };
    match installed {
        Some((_, version)) => Check::ok(check, format!("{name} {version}, for {users}")),
        None if name == "ssh" => Check::fail(
            check,
            format!(
                "the ssh extension is not installed, and {users} need it (az: \"The extension ssh is not installed\")"
            ),
            "`az extension add --name ssh`",
        ),
        None => Check::warn(
            check,
            format!(
                "the bastion extension is not installed, and {users} need it (az offers to install it at first use, where that is allowed)"
            ),
            "`az extension add --name bastion`",
        ),
    }
}

fn tenants(scope: &Scope, f: &Found) -> Check {
    let path = scope
        .azure
        .az_config_dir
        .as_ref()
        .map(|d| d.join("azureProfile.json"));
    let file = path
        .as_ref()
        .map_or_else(|| "azureProfile.json".into(), |p| p.display().to_string());
    let subs = f.az_profile.known.len();
    if subs == 0 {
        let why = if path.as_ref().is_some_and(|p| p.symlink_metadata().is_err()) {
            format!("az has not signed in on this machine ({file} does not exist)")
        } else {
            format!("az is signed in nowhere: {file} lists no subscription")
        };
        return Check::warn(
            "tenants",
            why,
            "`az login --tenant TENANT` (`bprof run` signs in by itself when a profile needs it)",
        );
    }
    let ids = f.az_profile.tenant_ids();
    let named: Vec<String> = ids
        .iter()
        .take(10)
        .map(|id| {
            let known = scope
                .considered
                .iter()
                .chain(scope.profiles)
                .find(|p| p.tenant.id.eq_ignore_ascii_case(id));
            match known {
                Some(p) => format!("`{}` ({id})", p.tenant.name),
                None => bounded(id, 64),
            }
        })
        .collect();
    let more = ids.len().saturating_sub(10);
    Check::ok(
        "tenants",
        format!(
            "az is signed in to {} tenant{}{}{}{}, {subs} subscription{} ({file}; no az call)",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" },
            if named.is_empty() { "" } else { ": " },
            named.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            if subs == 1 { "" } else { "s" }
        ),
    )
}

/// What a client is, for people.
fn kind(c: &ClientCmd) -> &'static str {
    match c.program.as_str() {
        _ if c.freerdp3 => "FreeRDP 3, with Entra (AAD) sign-in; through a tunnel from 3.17",
        "xfreerdp" | "sdl-freerdp" => {
            "FreeRDP without a 3 in its name: bprof passes it no Entra options"
        }
        "remmina" => "Remmina: no Entra sign-in",
        "mstsc" => "Remote Desktop Connection",
        "open" => "macOS `open`, which hands .rdp files to the Windows App",
        _ => "an RDP client",
    }
}

/// Whether the client is there: on PATH, and for macOS `open` the Windows App too.
fn present(c: &ClientCmd) -> bool {
    if which(&c.program).is_none() {
        return false;
    }
    if c.program == "open" && cfg!(target_os = "macos") {
        return [
            "/Applications/Windows App.app",
            "/Applications/Microsoft Remote Desktop.app",
        ]
        .iter()
        .any(|a| std::path::Path::new(a).is_dir());
    }
    true
}

/// Whether an Entra profile's sign-in works with this client on `os`: mstsc through the
/// bastion's gateway on Windows (bprof's or az's), or FreeRDP 3 through the tunnel.
fn entra_capable(p: &Profile, c: &ClientCmd, os: Os) -> bool {
    c.freerdp3
        || (os == Os::Windows && p.client == Client::Auto && crate::plan::gateway::possible(p))
}

fn rdp_client(scope: &Scope) -> Check {
    const NAME: &str = "rdp-client";
    let os = scope.os;
    let users: Vec<(&Profile, ClientCmd)> = scope
        .considered
        .iter()
        .filter(|p| p.mode == Mode::Rdp)
        .filter_map(|p| client::choose(p, os, true).map(|c| (p, c)))
        .collect();
    if users.is_empty() {
        let found = match os {
            Os::Linux => LINUX_AUTO
                .iter()
                .find(|n| which(n).is_some())
                .map(|n| ClientCmd {
                    program: n.to_string(),
                    freerdp3: n.ends_with("freerdp3"),
                }),
            Os::Macos => Some(ClientCmd {
                program: "open".into(),
                freerdp3: false,
            })
            .filter(present),
            Os::Windows => Some(ClientCmd {
                program: "mstsc".into(),
                freerdp3: false,
            })
            .filter(present),
        };
        let none = format!(
            "no rdp profile {} opens a client here",
            which_profiles(scope)
        );
        return match found {
            Some(c) => Check::ok(NAME, format!("{} ({}); {none}", c.program, kind(&c))),
            None => {
                Check::skip(NAME, format!("no RDP client found, and {none}")).with_fix(INSTALL_HINT)
            }
        };
    }
    let missing: Vec<&str> = users
        .iter()
        .filter(|(_, c)| !present(c))
        .map(|(p, _)| p.name.as_str())
        .collect();
    if let Some((_, c)) = users.iter().find(|(_, c)| !present(c)) {
        return Check::fail(
            NAME,
            format!(
                "{} is not installed, and {} open it",
                c.program,
                names(&missing)
            ),
            INSTALL_HINT,
        );
    }
    let no_entra: Vec<&str> = users
        .iter()
        .filter(|(p, c)| p.enable_mfa && !entra_capable(p, c, os))
        .map(|(p, _)| p.name.as_str())
        .collect();
    let shown_clients: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for (_, c) in &users {
            let s = format!("{} ({})", c.program, kind(c));
            if !v.contains(&s) {
                v.push(s);
            }
        }
        v
    };
    if let Some((_, c)) = users
        .iter()
        .find(|(p, c)| p.enable_mfa && !entra_capable(p, c, os))
    {
        return Check::warn(
            NAME,
            format!(
                "{}: Entra sign-in of {} will not work with {} through the tunnel",
                shown_clients.join(", "),
                names(&no_entra),
                c.program
            ),
            "install FreeRDP 3 (3.17 or later for Entra through a tunnel), or sign in with a local account (`auth_type: password`)",
        );
    }
    Check::ok(NAME, shown_clients.join(", "))
}

fn tls_arm(scope: &Scope, f: &Found) -> Check {
    match &f.tls_arm {
        Ok(how) => {
            let mut trusted = vec![if cfg!(target_os = "linux") {
                "the system's CA bundle".to_string()
            } else {
                "the platform's trust store".to_string()
            }];
            for (var, path) in &scope.azure.bundles {
                trusted.push(format!("{var}={}", path.display()));
            }
            Check::ok(
                "tls-arm",
                format!("TLS with ARM at {how}, trusting {}", trusted.join(" and ")),
            )
        }
        Err(e) => Check::fail(
            "tls-arm",
            e.to_string(),
            e.hint().unwrap_or_else(|| {
                "check HTTPS_PROXY, SSL_CERT_FILE and REQUESTS_CA_BUNDLE".into()
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert!(at_least("2.62.0", BASTION_MIN_AZ));
        assert!(at_least("2.100.1", BASTION_MIN_AZ));
        assert!(at_least("3.0.0b1", BASTION_MIN_AZ));
        assert!(!at_least("2.61.9", BASTION_MIN_AZ));
        assert!(!at_least("junk", BASTION_MIN_AZ));
    }

    #[test]
    fn az_version_output() {
        let v = parse_version(br#"{"azure-cli": "2.67.0", "azure-cli-core": "2.67.0", "extensions": {"bastion": "1.4.4", "ssh": 7}}"#).unwrap();
        assert_eq!(v.version.as_deref(), Some("2.67.0"));
        assert_eq!(
            v.extensions,
            [
                ("bastion".into(), "1.4.4".into()),
                ("ssh".into(), "?".into())
            ]
        );
        assert!(parse_version(b"WARNING: not json").is_err());
        assert_eq!(
            names(&["a", "b", "c", "d", "e"]),
            "`a`, `b`, `c` and 2 more"
        );
    }
}
