//! OpenSSH through bprof's own tunnel: the `ProxyCommand` that runs `bprof proxy PROFILE`, the
//! host alias that pins host keys per profile, and values checked against what ssh_config
//! expands. Used by `run` of ssh profiles on the native engine and by `ssh-config`.

use std::path::PathBuf;

use crate::profile::load::{FileKind, ProfileSet};

/// The alias a profile's VM is reached by: `NAME.bprof` never names a real host.
pub fn alias(profile: &str) -> String {
    format!("{profile}.bprof")
}

/// Refuses characters ssh_config expands or splits on in the values bprof writes (`%` tokens,
/// `${VAR}`, quotes, backslashes) and control characters.
pub fn config_safe(v: &str) -> Result<(), String> {
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
pub fn config_value(v: &str) -> String {
    if v.contains([' ', '\t']) {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

/// bprof's own absolute path.
pub fn bprof_path() -> Result<String, String> {
    std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map(|p| p.display().to_string())
        .map_err(|e| format!("cannot find bprof's own path: {e}"))
}

/// The directories of the set's shared files and overrides, absolute (ssh runs the
/// ProxyCommand from any directory).
pub fn set_dirs(set: &ProfileSet) -> Vec<String> {
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

/// The ProxyCommand: `bprof --profiles DIR... proxy PROFILE`, each element one argument for
/// the shell ssh runs it with (POSIX sh; on Windows ssh starts it directly). Paths ssh_config
/// would expand are refused.
pub fn proxy_command(
    bprof: &str,
    dirs: &[String],
    profile: &str,
    windows: bool,
) -> Result<String, String> {
    for v in std::iter::once(bprof).chain(dirs.iter().map(String::as_str)) {
        config_safe(v).map_err(|why| {
            format!("the ProxyCommand cannot be written: {why}; move bprof or the profiles to a plainer path")
        })?;
    }
    let mut argv = vec![bprof.to_string()];
    for d in dirs {
        argv.push("--profiles".into());
        argv.push(d.clone());
    }
    argv.push("proxy".into());
    argv.push(profile.to_string());
    Ok(if windows {
        argv.iter()
            .map(|a| config_value(a))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        super::shell::join(&argv, false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_ssh_would_expand_are_refused() {
        assert!(config_safe("azureuser").is_ok());
        assert!(config_safe("/home/a b/.ssh/id").is_ok());
        for bad in ["a%h", "${HOME}/k", "a\"b", "a'b", "a\nb", "a\\b", "`id`"] {
            assert!(config_safe(bad).is_err(), "{bad:?}");
        }
        assert_eq!(config_value("a b"), "\"a b\"");
    }

    #[test]
    fn the_proxy_command_is_one_argument_per_element() {
        let c = proxy_command("/opt/bprof dir/bprof", &["/srv/p".into()], "web", false).unwrap();
        assert_eq!(c, "'/opt/bprof dir/bprof' --profiles /srv/p proxy web");
        let c = proxy_command("C:/Program Files/bprof.exe", &["C:/p".into()], "web", true).unwrap();
        assert_eq!(
            c,
            "\"C:/Program Files/bprof.exe\" --profiles C:/p proxy web"
        );
        assert!(proxy_command("/opt/%h/bprof", &[], "web", false).is_err());
    }
}
