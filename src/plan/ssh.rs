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

/// A value as one ssh_config argument that ssh reads back as exactly `v`: bare when it is
/// plain, else in double quotes with `\\` and `\"` (the only escapes ssh_config's quotes know;
/// quotes also keep a `#` from starting a comment). A value that cannot be written faithfully is
/// refused: `%` tokens and `${VAR}` are expanded by ssh in some directives and versions, `~` at
/// the start names a home directory, and control characters end the line.
pub fn config_word(v: &str) -> Result<String, String> {
    let shown = crate::terminal::value(v);
    if v.is_empty() {
        return Err("is empty".into());
    }
    if crate::profile::allow::control_char(v).is_some() {
        return Err(format!("{shown} holds a control character"));
    }
    if v.contains('%') || v.contains("${") || v.starts_with('~') {
        return Err(format!(
            "{shown} holds `%`, `${{` or a leading `~`, which ssh would expand"
        ));
    }
    let plain = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@,".contains(c));
    Ok(if plain {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    })
}

/// A profile's `ssh_args` as ssh_config lines of its Host block: the options a shared file may
/// pass become their directives (`-L` LocalForward, `-D` DynamicForward, `-o Name=value`,
/// `-C`, `-4`, `-6`, `-v`, `-q`). Left out, each named in the second list: what is outside the
/// allow-list, and what would change every use of the host (`-N`, `-T`, `-t`, a remote
/// command: VS Code's sessions included); give those on ssh's command line.
pub fn config_directives(args: &[String]) -> (Vec<String>, Vec<String>) {
    use crate::profile::allow::{SshOpt, forward_parts, ssh_parse};
    let mut lines = Vec::new();
    let mut left = Vec::new();
    let (opts, command) = ssh_parse(args);
    let mut level: Option<&str> = None;
    for o in &opts {
        if o.verdict.is_err() {
            let shown = crate::terminal::value(&args[o.index]);
            left.push(format!("`{shown}` (not on the allow-list)"));
            continue;
        }
        for f in o.flags.chars() {
            match f {
                'C' => lines.push("Compression yes".into()),
                '4' => lines.push("AddressFamily inet".into()),
                '6' => lines.push("AddressFamily inet6".into()),
                'q' => level = Some("QUIET"),
                'v' => {
                    level = Some(match level {
                        Some("DEBUG1") => "DEBUG2",
                        Some("DEBUG2" | "DEBUG3") => "DEBUG3",
                        _ => "DEBUG1",
                    })
                }
                _ => left.push(format!("`-{f}` (a session option)")),
            }
        }
        match &o.opt {
            Some(SshOpt::Local(spec)) => {
                let parts = forward_parts(spec);
                let (listen, target) = parts.split_at(parts.len().saturating_sub(2));
                lines.push(format!(
                    "LocalForward {} {}",
                    listen.join(":"),
                    target.join(":")
                ));
            }
            Some(SshOpt::Dynamic(spec)) => lines.push(format!("DynamicForward {spec}")),
            Some(SshOpt::Option(opt)) => {
                let (name, value) = opt
                    .split_once(['=', ' ', '\t'])
                    .map(|(n, v)| (n, v.trim_start_matches(['=', ' ', '\t'])))
                    .unwrap_or((opt, ""));
                lines.push(format!("{name} {value}"));
            }
            // refused above: no other option passes the allow-list
            Some(SshOpt::Other(..)) | None => {}
        }
    }
    if let Some(l) = level {
        lines.push(format!("LogLevel {l}"));
    }
    if command < args.len() {
        let rest: Vec<String> = args[command..]
            .iter()
            .map(|a| crate::terminal::value(a).into_owned())
            .collect();
        left.push(format!("the remote command {}", rest.join(" ")));
    }
    (lines, left)
}

/// The paths that select the set, absolute, as `--profiles` arguments: the ProxyCommand runs
/// `bprof proxy` from any directory and must plan the same set (a named file stays that file,
/// not its directory). A set loaded without a selection names its shared files.
pub fn selection(set: &ProfileSet) -> Vec<String> {
    if !set.selection.is_empty() {
        return set
            .selection
            .iter()
            .map(|p| p.display().to_string())
            .collect();
    }
    let mut paths: Vec<String> = Vec::new();
    for f in set.files.iter().filter(|f| f.kind == FileKind::Shared) {
        let p = std::fs::canonicalize(&f.path).unwrap_or_else(|_| PathBuf::from(&f.path));
        let p = p.display().to_string();
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    paths
}

/// The ProxyCommand: `bprof --profiles PATH... proxy PROFILE` (the paths of [`selection`]),
/// each element one argument for the shell ssh runs it with (POSIX sh; on Windows ssh starts
/// it directly). Paths ssh_config would expand are refused.
pub fn proxy_command(
    bprof: &str,
    dirs: &[String],
    profile: &str,
    windows: bool,
) -> Result<String, String> {
    bprof_command(
        bprof,
        dirs,
        &["proxy", profile],
        windows,
        "the ProxyCommand",
    )
}

/// An Entra profile's `Match` line: for `NAME.bprof` as written (`originalhost`: before a
/// `HostName` could change it), `exec` runs `bprof ssh-cert NAME`, which renews the certificate
/// when it is missing or near its end (and is quick when it is fresh), so the block's
/// `CertificateFile` is valid by the time ssh reads it. The command is one double-quoted
/// argument for ssh, single-quoted words inside for the shell ssh runs it with; on Windows
/// (no shell, and no nested quotes) a path that needs quoting is refused.
pub fn match_exec_line(
    bprof: &str,
    dirs: &[String],
    profile: &str,
    windows: bool,
) -> Result<String, String> {
    let cmd = bprof_command(
        bprof,
        dirs,
        &["ssh-cert", profile],
        windows,
        "the Match exec line",
    )?;
    if windows && cmd.contains('"') {
        return Err("the Match exec line cannot quote a path with spaces on Windows; move bprof or the profiles to a path without them".into());
    }
    Ok(format!(
        "Match originalhost {} exec \"{cmd}\"",
        alias(profile)
    ))
}

/// `bprof --profiles PATH... ARGS`, each element one argument for the shell ssh runs it with
/// (POSIX sh; on Windows ssh starts it directly). Paths ssh_config would expand are refused.
fn bprof_command(
    bprof: &str,
    dirs: &[String],
    args: &[&str],
    windows: bool,
    what: &str,
) -> Result<String, String> {
    for v in std::iter::once(bprof).chain(dirs.iter().map(String::as_str)) {
        config_safe(v).map_err(|why| {
            format!("{what} cannot be written: {why}; move bprof or the profiles to a plainer path")
        })?;
    }
    let mut argv = vec![bprof.to_string()];
    for d in dirs {
        argv.push("--profiles".into());
        argv.push(d.clone());
    }
    argv.extend(args.iter().map(|a| a.to_string()));
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
    fn the_match_exec_line_quotes_for_the_shell_and_refuses_what_windows_cannot_quote() {
        let dirs = vec!["/p/profiles".to_string()];
        let line = match_exec_line("/opt/my tools/bprof", &dirs, "web", false).unwrap();
        assert_eq!(
            line,
            "Match originalhost web.bprof exec \"'/opt/my tools/bprof' --profiles /p/profiles ssh-cert web\""
        );
        // Windows: no shell and no nested quotes for a path with a space
        assert!(match_exec_line("C:/Program Files/bprof.exe", &dirs, "web", true).is_err());
        assert!(match_exec_line("C:/tools/bprof.exe", &dirs, "web", true).is_ok());
        assert!(match_exec_line("/a%h/bprof", &dirs, "web", false).is_err());
    }

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
