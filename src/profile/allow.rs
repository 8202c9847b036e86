//! What a shared file may say: positive lists for every field that reaches a process or an
//! .rdp file. Each check returns why the content is outside its list (empty: it passes); the
//! caller decides what that means (consent for shared files, nothing for the person's own).
//! The lists, with their sources, are in the README's Trust section.

use crate::profile::raw::RdpValue;

/// Why one element of a list falls outside its allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outside {
    /// The index of the element in the list.
    pub index: usize,
    pub reason: String,
}

fn outside(index: usize, reason: impl Into<String>) -> Outside {
    Outside {
        index,
        reason: reason.into(),
    }
}

/// ssh options (`-o Name=value`) a team may share: keep-alives, timeouts, compression, tty,
/// forwarding failure handling, logging verbosity. None runs, loads or writes anything locally
/// or changes where the connection goes (ssh_config(5)).
pub const SSH_OPTIONS: &[&str] = &[
    "serveraliveinterval",
    "serveralivecountmax",
    "tcpkeepalive",
    "connecttimeout",
    "connectionattempts",
    "compression",
    "requesttty",
    "exitonforwardfailure",
    "loglevel",
    "ipqos",
];

/// ssh flags a team may share (ssh(1)): no forwarding of agent or X11, no files, no other host.
pub const SSH_FLAGS: &str = "NTtvqC46";

/// Options appended to `az network bastion ...` from shared files. `--debug` and `--verbose`
/// print access tokens and request details; `--subscription` would override bprof's own.
pub const AZ_EXTRA_FLAGS: &[&str] = &["--only-show-errors"];
/// az's output formats, for `--output`/`-o`.
pub const AZ_OUTPUT_FORMATS: &[&str] = &["json", "jsonc", "none", "table", "tsv", "yaml", "yamlc"];

/// `az login` options that choose neither an identity, nor a credential, nor a tenant.
pub const LOGIN_FLAGS: &[&str] = &[
    "--use-device-code",
    "--allow-no-subscriptions",
    "--only-show-errors",
];

/// .rdp display and session settings a shared file may set (name and type, as clients match
/// them: lower case, single spaces).
pub const RDP_SETTINGS: &[&str] = &[
    "screen mode id:i",
    "desktopwidth:i",
    "desktopheight:i",
    "desktop size id:i",
    "session bpp:i",
    "use multimon:i",
    "selectedmonitors:s",
    "maximizetocurrentdisplays:i",
    "singlemoninwindowedmode:i",
    "smart sizing:i",
    "dynamic resolution:i",
    "desktopscalefactor:i",
    "winposstr:s",
    "compression:i",
    "keyboardhook:i",
    "displayconnectionbar:i",
    "pinconnectionbar:i",
    "disable wallpaper:i",
    "allow font smoothing:i",
    "allow desktop composition:i",
    "disable full window drag:i",
    "disable menu anims:i",
    "disable themes:i",
    "disable cursor setting:i",
    "bitmapcachepersistenable:i",
    "connection type:i",
    "networkautodetect:i",
    "bandwidthautodetect:i",
    "autoreconnection enabled:i",
    "autoreconnect max retries:i",
    "audiomode:i",
    "audioqualitymode:i",
    "videoplaybackmode:i",
    "redirectclipboard:i",
];

/// .rdp properties that hand the VM the person's local resources: a shared file may turn them
/// off (0 or empty), only the person may turn them on.
pub const RDP_REDIRECTIONS: &[&str] = &[
    "drivestoredirect:s",
    "redirectdrives:i",
    "devicestoredirect:s",
    "usbdevicestoredirect:s",
    "camerastoredirect:s",
    "redirectsmartcards:i",
    "redirectwebauthn:i",
    "audiocapturemode:i",
    "redirectprinters:i",
    "redirectcomports:i",
    "redirectposdevices:i",
    "redirectlocation:i",
];

/// An .rdp property name as clients match it: lower case, runs of spaces as one, trimmed.
pub fn rdp_key(key: &str) -> String {
    let lower = key.to_lowercase();
    let (name, ty) = lower.rsplit_once(':').unwrap_or((&lower, ""));
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{name}:{}", ty.trim())
}

/// Whether an .rdp property (as written under `rdp.properties`) may come from a shared file.
pub fn rdp_property(key: &str, value: &RdpValue) -> Result<(), String> {
    let key = rdp_key(key);
    if RDP_SETTINGS.contains(&key.as_str()) {
        return Ok(());
    }
    if RDP_REDIRECTIONS.contains(&key.as_str()) {
        let off = match value {
            RdpValue::Int(i) => *i == 0,
            RdpValue::Text(t) => t.trim().is_empty() || t.trim() == "0",
        };
        return if off {
            Ok(())
        } else {
            Err(format!(
                "`{key}` hands the VM your local devices; a shared file may only turn it off"
            ))
        };
    }
    Err(format!(
        "`{key}` is not a display or session setting (addresses, ports, gateways, programs, credentials and identities never come from shared files without your consent)"
    ))
}

/// The value of an option written `-oV`, `-o V` (ssh) or `--opt=V`, `--opt V` (az): the rest
/// of this token, or the next one. Returns the value and how many tokens it used.
fn option_value<'a>(args: &'a [String], i: usize, rest: &'a str) -> (Option<&'a str>, usize) {
    if !rest.is_empty() {
        (Some(rest), 1)
    } else {
        (args.get(i + 1).map(String::as_str), 2)
    }
}

fn loopback(host: &str) -> bool {
    matches!(
        host.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "[::1]" | "::1"
    )
}

fn port(s: &str) -> bool {
    s.parse::<u16>().is_ok_and(|p| p > 0)
}

/// Splits an ssh forwarding spec at `:`, keeping `[v6]` addresses whole.
pub fn forward_parts(spec: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut depth = 0;
    for (i, c) in spec.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                parts.push(&spec[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&spec[start..]);
    parts
}

/// `-L [bind:]port:host:hostport`: local TCP port on loopback, to a TCP target.
fn local_forward(spec: &str) -> Result<(), String> {
    let parts = forward_parts(spec);
    let (bind, rest) = match parts.len() {
        3 => (None, &parts[..]),
        4 => (Some(parts[0]), &parts[1..]),
        _ => {
            return Err(format!(
                "`-L {spec}` is not `[127.0.0.1:]PORT:HOST:HOSTPORT` (sockets and other forms are not shared)"
            ));
        }
    };
    if let Some(b) = bind
        && !loopback(b)
    {
        return Err(format!(
            "`-L {spec}` binds `{b}`: shared forwards listen on loopback only"
        ));
    }
    if !port(rest[0]) || !port(rest[2]) || rest[1].is_empty() || rest[1].starts_with('/') {
        return Err(format!(
            "`-L {spec}` is not `[127.0.0.1:]PORT:HOST:HOSTPORT` (sockets and other forms are not shared)"
        ));
    }
    Ok(())
}

/// `-D [bind:]port`: a SOCKS port on loopback.
fn dynamic_forward(spec: &str) -> Result<(), String> {
    let parts = forward_parts(spec);
    match parts.as_slice() {
        [p] if port(p) => Ok(()),
        [b, p] if loopback(b) && port(p) => Ok(()),
        _ => Err(format!(
            "`-D {spec}` is not `[127.0.0.1:]PORT` (shared SOCKS ports listen on loopback only)"
        )),
    }
}

/// `-o Name=value`, `-o "Name value"`: a harmless option name with a plain value.
fn ssh_option(opt: &str) -> Result<(), String> {
    let (name, value) = match opt.find(['=', ' ', '\t']) {
        Some(i) => (&opt[..i], opt[i + 1..].trim_start_matches(['=', ' ', '\t'])),
        None => (opt, ""),
    };
    if !SSH_OPTIONS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "ssh option `{name}` is not one a shared file may set (allowed: keep-alives, timeouts, compression, RequestTTY, ExitOnForwardFailure, LogLevel, IPQoS)"
        ));
    }
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !plain {
        return Err(format!(
            "ssh option `{name}` needs a plain value, not `{value}`"
        ));
    }
    Ok(())
}

/// The option letters of ssh(1) that take a value (its getopt string, OpenSSH 9).
const SSH_VALUED: &str = "bceilmopBDEFIJLOPQRSwW";

/// An option of ssh's that takes a value, as ssh reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshOpt<'a> {
    /// `-L SPEC`.
    Local(&'a str),
    /// `-D SPEC`.
    Dynamic(&'a str),
    /// `-o NAME=VALUE` (or `NAME VALUE`).
    Option(&'a str),
    /// Any other letter that takes a value (`-F FILE`, `-J HOST`...).
    Other(char, &'a str),
}

/// One word of ssh's options (`-NTv`, `-vL SPEC`, `-oName=value`...), where it is and whether a
/// shared file may pass it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshArg<'a> {
    pub index: usize,
    /// The letters without a value, in order.
    pub flags: &'a str,
    /// The option that takes a value, which ends the word (its value: the rest of the word, or
    /// the next one).
    pub opt: Option<SshOpt<'a>>,
    pub verdict: Result<(), String>,
}

/// ssh's options in `args` the way its getopt reads them: words that begin with `-` until the
/// first that does not (or `--`), each a run of letters of which one that takes a value ends
/// it. Returns them, each judged, and the index of the first word that is not an option (the
/// remote command: it runs on the VM), `args.len()` when there is none. ssh reads its
/// arguments this way after the host, where both bprof and az put them.
pub fn ssh_parse(args: &[String]) -> (Vec<SshArg<'_>>, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break; // the remote command
        }
        let letters = &a[1..];
        let cut = letters.find(|c| SSH_VALUED.contains(c));
        let flags = cut.map_or(letters, |c| &letters[..c]);
        let mut used = 1;
        let mut verdict: Result<(), String> = match flags.chars().find(|c| !SSH_FLAGS.contains(*c))
        {
            Some(_) => Err(format!(
                "ssh option `{a}` is not one a shared file may pass (allowed: -L and -D on loopback, -N -T -t -v -q -4 -6 -C, and -o with keep-alive, timeout and compression options)"
            )),
            None => Ok(()),
        };
        let opt = cut.map(|c| {
            let letter = letters[c..].chars().next().unwrap_or('o');
            let rest = &letters[c + letter.len_utf8()..];
            let (v, n) = option_value(args, i, rest);
            used = n;
            let v_or = |f: fn(&str) -> Result<(), String>| {
                v.map_or(Err(format!("`-{letter}` needs a value")), f)
            };
            let (opt, check) = match letter {
                'o' => (SshOpt::Option(v.unwrap_or("")), v_or(ssh_option)),
                'L' => (SshOpt::Local(v.unwrap_or("")), v_or(local_forward)),
                'D' => (SshOpt::Dynamic(v.unwrap_or("")), v_or(dynamic_forward)),
                other => (
                    SshOpt::Other(other, v.unwrap_or("")),
                    Err(format!(
                        "ssh option `-{other}` is not one a shared file may pass (allowed: -L and -D on loopback, -N -T -t -v -q -4 -6 -C, and -o with keep-alive, timeout and compression options)"
                    )),
                ),
            };
            if verdict.is_ok() {
                verdict = check;
            }
            opt
        });
        out.push(SshArg {
            index: i,
            flags,
            opt,
            verdict,
        });
        i += used;
    }
    (out, i.min(args.len()))
}

/// ssh's own arguments (after the host, or az's `--`), as ssh parses them: options until the
/// first word that is not one, then the remote command (it runs on the VM).
pub fn ssh_args(args: &[String]) -> Vec<Outside> {
    ssh_parse(args)
        .0
        .into_iter()
        .filter_map(|a| a.verdict.err().map(|reason| outside(a.index, reason)))
        .collect()
}

/// Options appended to `az network bastion ...` (`extra_args`).
pub fn az_extra_args(args: &[String]) -> Vec<Outside> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let output = a
            .strip_prefix("--output")
            .map(|r| r.strip_prefix('=').unwrap_or(r))
            .filter(|r| r.is_empty() || a.contains('='))
            .or_else(|| a.strip_prefix("-o"));
        if AZ_EXTRA_FLAGS.contains(&a) {
            i += 1;
        } else if let Some(rest) = output {
            let (v, used) = option_value(args, i, rest);
            if !v.is_some_and(|v| AZ_OUTPUT_FORMATS.contains(&v)) {
                out.push(outside(
                    i,
                    format!("`{a}` needs one of {}", AZ_OUTPUT_FORMATS.join(", ")),
                ));
            }
            i += used;
        } else {
            let why = match a {
                "--debug" | "--verbose" => "prints access tokens and request details",
                "--subscription" => "would override the bastion's subscription",
                _ => {
                    "is not on the list a shared file may pass (--only-show-errors, --output FORMAT)"
                }
            };
            out.push(outside(i, format!("az option `{a}` {why}")));
            i += 1;
        }
    }
    out
}

/// A tenant's `login` argv (appended to `az login --tenant ID`).
pub fn login_args(args: &[String]) -> Vec<Outside> {
    args.iter()
        .enumerate()
        .filter(|(_, a)| !LOGIN_FLAGS.contains(&a.as_str()))
        .map(|(i, a)| {
            outside(
                i,
                format!(
                    "`az login {a}` is not on the list a shared file may pass ({}): options that choose an identity, a credential or a tenant come only from you",
                    LOGIN_FLAGS.join(", ")
                ),
            )
        })
        .collect()
}

pub use crate::text::{control_char, is_control};

/// Characters `cmd.exe` interprets: on Windows az's ssh extension joins ssh's command line into
/// one string and runs it through `cmd.exe`.
pub const CMD_SPECIAL: &[char] = &['&', '|', '<', '>', '^', '%', '"', '!', '(', ')', '\n', '\r'];

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ssh_args_pass_what_a_team_shares() {
        for ok in [
            &["-L", "8080:localhost:80"][..],
            &["-L127.0.0.1:8080:10.0.0.5:80"],
            &["-L", "[::1]:8080:[fd00::1]:80"],
            &["-D", "1080"],
            &["-NT", "-v", "-C", "-4"],
            &["-o", "ServerAliveInterval=30", "-oTCPKeepAlive=yes"],
            &["-o", "serveralivecountmax 3"],
            &["uptime", "-a", "-oProxyCommand=x"],
            &["--", "-x"],
        ] {
            assert_eq!(ssh_args(&v(ok)), [], "{ok:?}");
        }
    }

    #[test]
    fn ssh_options_are_read_as_getopt_reads_them() {
        let args = v(&[
            "-vL8080:h:80",
            "-NF",
            "c",
            "-o",
            "LogLevel=QUIET",
            "cmd",
            "-A",
        ]);
        let (opts, command) = ssh_parse(&args);
        assert_eq!(command, 5);
        assert_eq!(opts[0].flags, "v");
        assert_eq!(opts[0].opt, Some(SshOpt::Local("8080:h:80")));
        assert!(opts[0].verdict.is_ok());
        assert_eq!(opts[1].opt, Some(SshOpt::Other('F', "c")));
        assert!(opts[1].verdict.is_err());
        assert_eq!(opts[2].index, 3);
        assert_eq!(ssh_parse(&v(&["-v", "--", "-F", "x"])).1, 2);
        assert_eq!(ssh_parse(&v(&["-L"])).1, 1);
    }

    #[test]
    fn ssh_args_refuse_what_runs_or_redirects() {
        for bad in [
            &["-o", "ProxyCommand=sh -c 'x'"][..],
            &["-oProxyCommand=x"],
            &["-o", "proxycommand x"],
            &["-o", "LocalCommand=x"],
            &["-oPermitLocalCommand=yes"],
            &["-o", "PKCS11Provider=/x.so"],
            &["-F", "/tmp/c"],
            &["-E", "/tmp/log"],
            &["-R", "80:localhost:80"],
            &["-A"],
            &["-X"],
            &["-vX"],
            &["-vo", "ProxyCommand=x"],
            &["-vF", "/tmp/c"],
            &["-NE/tmp/log"],
            &["-Ti", "/k"],
            &["-J", "evil"],
            &["-p", "2222"],
            &["-i", "/k"],
            &["-L", "0.0.0.0:8080:h:80"],
            &["-L", "*:8080:h:80"],
            &["-L", "/tmp/s:h:80"],
            &["-L", "8080:/var/run/docker.sock"],
            &["-D", "0.0.0.0:1080"],
            &["-o", "SendEnv=SECRET"],
            &["-o", "ServerAliveInterval=$(x)"],
            &["-o", "ServerAliveInterval=30 -F /tmp/c"],
            &["-oConnectTimeout 5 ProxyCommand x"],
            &["-o"],
        ] {
            assert_ne!(ssh_args(&v(bad)), [], "{bad:?}");
        }
    }

    #[test]
    fn az_extra_args_and_login() {
        assert_eq!(
            az_extra_args(&v(&["--only-show-errors", "-o", "none", "--output=json"])),
            []
        );
        for bad in [
            &["--debug"][..],
            &["--verbose"],
            &["--subscription", "x"],
            &["--output", "evil"],
            &["--ids", "x"],
            &["--only-show-error"],
        ] {
            assert_ne!(az_extra_args(&v(bad)), [], "{bad:?}");
        }
        assert_eq!(login_args(&v(&["--use-device-code"])), []);
        for bad in [
            "--service-principal",
            "--username",
            "-u",
            "--tenant",
            "--identity",
            "-p",
        ] {
            assert_eq!(login_args(&v(&[bad])).len(), 1, "{bad}");
        }
    }

    #[test]
    fn rdp_properties_by_normalised_name() {
        let one = RdpValue::Int(1);
        assert!(rdp_property("smart sizing:i", &one).is_ok());
        assert!(rdp_property("Smart  Sizing:i", &one).is_ok());
        assert!(rdp_property("alternate full address:s", &RdpValue::Text("x".into())).is_err());
        assert!(rdp_property("Alternate  Full Address:s", &RdpValue::Text("x".into())).is_err());
        assert!(rdp_property("gatewayhostname:s", &RdpValue::Text("x".into())).is_err());
        assert!(rdp_property("server port:i", &one).is_err());
        assert!(rdp_property("redirectsmartcards:i", &one).is_err());
        assert!(rdp_property("redirectsmartcards:i", &RdpValue::Int(0)).is_ok());
        assert!(rdp_property("drivestoredirect:s", &RdpValue::Text("*".into())).is_err());
        assert!(rdp_property("drivestoredirect:s", &RdpValue::Text(String::new())).is_ok());
    }

    #[test]
    fn controls() {
        assert_eq!(control_char("a\u{1b}]52;"), Some('\u{1b}'));
        assert_eq!(control_char("a\u{202e}b"), Some('\u{202e}'));
        assert_eq!(control_char("a\u{85}"), Some('\u{85}'));
        assert_eq!(control_char("plain ünïcode"), None);
    }
}
