//! bprof's own environment variables, parsed strictly before any command runs: a bad value is
//! a usage error that names the variable (a typo must not silently become a default). An
//! empty value counts as unset. Variables bprof does not own keep their own conventions
//! (`NO_COLOR`: any non-empty value; a relative `XDG_CONFIG_HOME` is ignored, as the XDG spec
//! says).

use std::ffi::OsString;

use super::Error;

/// Checks every `BPROF_*` variable bprof reads.
pub(super) fn check() -> Result<(), Error> {
    check_with(|name| std::env::var_os(name))
}

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
