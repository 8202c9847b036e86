//! Settings: everything bprof takes from its environment, read once when it starts (ripgrep's
//! low and high arguments) and passed down; nothing below `cli` reads the environment (the
//! PATH lookup in `process` aside). bprof's own variables are parsed strictly: a bad value is
//! a usage error that names the variable (a typo must not silently become a default). An empty
//! value counts as unset. Variables bprof does not own keep their own conventions (`NO_COLOR`:
//! any non-empty value; a relative `XDG_CONFIG_HOME` is ignored, as the XDG spec says).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::Error;
use crate::plan::Host;
use crate::profile::load::Sources;
use crate::profile::raw::TunnelEngine;

/// What bprof read from its environment.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `BPROF_PROFILES`.
    pub profiles: Option<OsString>,
    /// The working directory (where discovery starts).
    pub cwd: PathBuf,
    /// `HOME` (`USERPROFILE` on Windows).
    pub home: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME/bprof/local.yaml` (`%APPDATA%\bprof\local.yaml` on Windows).
    pub user_config: Option<PathBuf>,
    /// `BPROF_TUNNEL_ENGINE`.
    pub engine: Option<TunnelEngine>,
    /// What plans need of this machine: the tunnel's wait, the .rdp directory, bprof's path.
    pub host: Host,
}

impl Settings {
    /// The settings of this process (a bad `BPROF_*` value is a usage error).
    pub fn read() -> Result<Settings, Error> {
        check_with(|name| std::env::var_os(name))?;
        Ok(Settings::from_vars(
            |name| std::env::var_os(name),
            std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            std::env::temp_dir(),
            std::env::current_exe()
                .and_then(std::fs::canonicalize)
                .ok()
                .map(|p| p.display().to_string()),
        ))
    }

    /// Settings from these variables (checked by [`check_with`]) and facts.
    fn from_vars(
        get: impl Fn(&str) -> Option<OsString>,
        cwd: PathBuf,
        temp: PathBuf,
        exe: Option<String>,
    ) -> Settings {
        let var = |name: &str| get(name).filter(|v| !v.is_empty());
        let home = var(if cfg!(windows) { "USERPROFILE" } else { "HOME" }).map(PathBuf::from);
        // a base directory: Windows' variable, else the XDG one (absolute only, as the XDG
        // spec says), else its default under home
        let base = |windows: &str, xdg: &str, under_home: &[&str]| {
            if cfg!(windows) {
                var(windows).map(PathBuf::from)
            } else {
                var(xdg)
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .or_else(|| {
                        home.as_ref()
                            .map(|h| under_home.iter().fold(h.clone(), |p, d| p.join(d)))
                    })
            }
        };
        let config = base("APPDATA", "XDG_CONFIG_HOME", &[".config"]);
        let user = var("USER")
            .or_else(|| var("USERNAME"))
            .map(|u| u.to_string_lossy().into_owned())
            .unwrap_or_else(|| "user".into());
        let user: String = user
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
            .collect();
        let timeout = var("BPROF_TUNNEL_TIMEOUT")
            .and_then(|v| crate::plan::parse_tunnel_timeout(&v.to_string_lossy()).ok())
            .unwrap_or(Duration::from_secs(30));
        let azure = azure(&var, home.as_deref());
        let state_dir = base("LOCALAPPDATA", "XDG_STATE_HOME", &[".local", "state"])
            .unwrap_or_else(|| temp.join(format!("bprof-{user}-state")))
            .join("bprof");
        Settings {
            profiles: var("BPROF_PROFILES"),
            cwd,
            home,
            user_config: config.map(|b| b.join("bprof").join("local.yaml")),
            engine: match var("BPROF_TUNNEL_ENGINE").as_ref().and_then(|v| v.to_str()) {
                Some("native") => Some(TunnelEngine::Native),
                Some("az") => Some(TunnelEngine::Az),
                _ => None,
            },
            host: Host {
                tunnel_timeout: timeout,
                tunnel_workers: match var("BPROF_TUNNEL_WORKERS")
                    .as_ref()
                    .and_then(|v| v.to_str())
                {
                    Some("1") => 1,
                    Some("2") => 2,
                    _ => crate::tunnel::workers(
                        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                    ),
                },
                rdp_dir: temp.join(format!("bprof-{user}")),
                bprof: exe.unwrap_or_else(|| "bprof".into()),
                state_dir,
                azure,
            },
        }
    }

    /// The Azure client's part.
    pub fn azure(&self) -> &crate::azure::Config {
        &self.host.azure
    }

    /// Where profile files come from: `--profiles` (or `validate PATH...`), then these settings.
    pub fn sources(&self, paths: Vec<PathBuf>) -> Sources {
        Sources {
            paths,
            env: self.profiles.clone(),
            cwd: self.cwd.clone(),
            home: self.home.clone(),
            user_config: self.user_config.clone(),
            trust_store: self
                .user_config
                .as_ref()
                .map(|p| p.with_file_name("trust.json")),
        }
    }
}

/// The Azure client's settings: ARM's endpoint, az's profile directory, the proxy, the extra
/// CA bundles, the az program.
fn azure(
    var: &impl Fn(&str) -> Option<OsString>,
    home: Option<&std::path::Path>,
) -> crate::azure::Config {
    let text = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| var(n).map(|v| v.to_string_lossy().into_owned()))
            .filter(|v| !v.trim().is_empty())
    };
    crate::azure::Config {
        arm_endpoint: text(&["BPROF_ARM_ENDPOINT"]),
        az_config_dir: var("AZURE_CONFIG_DIR")
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(".azure"))),
        proxy: text(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]),
        no_proxy: text(&["NO_PROXY", "no_proxy"]),
        bundles: ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"]
            .iter()
            .filter_map(|n| var(n).map(|v| (n.to_string(), PathBuf::from(v))))
            .collect(),
        az: var("BPROF_AZ").map(PathBuf::from),
    }
}

/// Checks every `BPROF_*` variable bprof reads.
fn check_with(get: impl Fn(&str) -> Option<OsString>) -> Result<(), Error> {
    let var = |name: &str| get(name).filter(|v| !v.is_empty());
    let bad = |name: &str, v: &OsString, want: &str| {
        Error::Usage(format!(
            "{name}={} is not {want}; fix or unset it",
            crate::terminal::value(&v.to_string_lossy())
        ))
    };
    if let Some(v) = var("BPROF_TUNNEL_TIMEOUT") {
        v.to_str()
            .ok_or(())
            .and_then(|s| crate::plan::parse_tunnel_timeout(s).map_err(|_| ()))
            .map_err(|()| {
                bad(
                    "BPROF_TUNNEL_TIMEOUT",
                    &v,
                    "a number of seconds from 0.1 to 86400",
                )
            })?;
    }
    if let Some(v) = var("BPROF_TUNNEL_WORKERS")
        && !matches!(v.to_str(), Some("1" | "2"))
    {
        return Err(bad("BPROF_TUNNEL_WORKERS", &v, "1 or 2"));
    }
    if let Some(v) = var("BPROF_TUNNEL_ENGINE")
        && !matches!(v.to_str(), Some("native" | "az"))
    {
        return Err(bad("BPROF_TUNNEL_ENGINE", &v, "`native` or `az`"));
    }
    if let Some(v) = var("BPROF_ARM_ENDPOINT")
        && v.to_str()
            .is_none_or(|u| crate::azure::http::Endpoint::parse_url(u).is_err())
    {
        return Err(bad(
            "BPROF_ARM_ENDPOINT",
            &v,
            "an https://host[:port] URL (Azure Resource Manager's, e.g. https://management.azure.com)",
        ));
    }
    if let Some(v) = var("BPROF_PROFILES")
        && std::env::split_paths(&v).all(|p| p.as_os_str().is_empty())
    {
        return Err(bad("BPROF_PROFILES", &v, "a list of paths (it names none)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<(), Error> {
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        check_with(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert!(with(&[]).is_ok());
        assert!(with(&[("BPROF_TUNNEL_TIMEOUT", "12.5")]).is_ok());
        assert!(with(&[("BPROF_TUNNEL_WORKERS", "2")]).is_ok());
        for bad in ["0", "3", "two", " 2"] {
            let e = with(&[("BPROF_TUNNEL_WORKERS", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("BPROF_TUNNEL_WORKERS") && e.contains("1 or 2"),
                "{bad}: {e}"
            );
        }
        assert!(
            with(&[("BPROF_TUNNEL_TIMEOUT", "")]).is_ok(),
            "empty is unset"
        );
        for bad in ["inf", "abc", "-1", "0", "NaN", "1e9"] {
            let e = with(&[("BPROF_TUNNEL_TIMEOUT", bad)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("BPROF_TUNNEL_TIMEOUT"), "{bad}: {e}");
        }
        assert!(with(&[("BPROF_TUNNEL_ENGINE", "az")]).is_ok());
        assert!(with(&[("BPROF_TUNNEL_ENGINE", "python")]).is_err());
        assert!(with(&[("BPROF_PROFILES", ":")]).is_err());
        assert!(with(&[("BPROF_ARM_ENDPOINT", "https://management.usgovcloudapi.net")]).is_ok());
        for bad in [
            "http://x",
            "https://u@x",
            "https://x?y",
            "management.azure.com",
        ] {
            assert!(with(&[("BPROF_ARM_ENDPOINT", bad)]).is_err(), "{bad}");
        }
        assert!(with(&[("BPROF_PROFILES", "a:b")]).is_ok());
    }
}
