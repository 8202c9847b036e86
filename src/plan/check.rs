//! The final argv of every step against what may run: az's bastion commands and login, their
//! own options, the allow-listed extra options and ssh arguments. Whatever a token came from
//! (a template's text, a field, an override), the step as it would run is what is checked.
//! Findings are the template's (its text asks for more: consent) or the data's (a value that
//! would be read as an option, or that cmd.exe would interpret: refused).

use crate::plan::Os;
use crate::plan::template::{Arg, ArgKind};
use crate::profile::allow;

/// What is wrong with a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The template's own text asks for something outside the lists.
    Template(String),
    /// A value from a file, at this element, is refused whoever wrote the template.
    Data { index: usize, reason: String },
}

/// Whether `name` is an option of `az network bastion SUB` that takes a value.
fn value_option(sub: &str, name: &str) -> bool {
    const COMMON: [&str; 8] = [
        "--name",
        "-n",
        "--resource-group",
        "-g",
        "--subscription",
        "--target-resource-id",
        "--target-ip-address",
        "--resource-port",
    ];
    let own: &[&str] = match sub {
        "ssh" => &["--auth-type", "--username", "--ssh-key"],
        "tunnel" => &["--port", "--timeout"],
        _ => &["--auth-type"],
    };
    COMMON.contains(&name) || own.contains(&name)
}

/// Flags of `az network bastion rdp` (three-state ones may take `true`/`false`).
const RDP_FLAGS: [&str; 3] = ["--enable-mfa", "--disable-gateway", "--configure"];

fn is_splice_of(a: &Arg, field: &str) -> bool {
    matches!(&a.kind, ArgKind::Splice { path } if path == field || path.ends_with(&format!(".{field}")))
}

fn cmd_special(args: &[Arg], i: usize, out: &mut Vec<Finding>) {
    if let Some(a) = args.get(i)
        && let Some(c) = a.value.chars().find(|c| allow::CMD_SPECIAL.contains(c))
    {
        out.push(Finding::Data {
            index: i,
            reason: format!(
                "\"{}\" contains `{c}`: on Windows az starts ssh through cmd.exe, which would interpret it",
                a.value
            ),
        });
    }
}

/// Checks one rendered step of a template for `os`. `programs`: what else the template may
/// run (the person's own `allow_programs`, for the person's own templates); `tenant`: the
/// profile's tenant id, the only one `az login` may sign in to.
pub fn step(args: &[Arg], os: Os, programs: &[String], tenant: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(program) = args.first() else {
        return out;
    };
    if program.kind != ArgKind::Literal {
        // consent covers a template's text: the data spliced into it must not pick the program
        out.push(Finding::Data {
            index: 0,
            reason: format!(
                "the program to run (\"{}\") comes from a value in a file; a template names its program in its own text",
                program.value
            ),
        });
        return out;
    }
    // a value from a file never becomes an option, wherever the template puts it
    for (i, a) in args.iter().enumerate() {
        if a.value.starts_with('-') && a.kind == (ArgKind::Data { dash: false }) {
            out.push(Finding::Data {
                index: i,
                reason: format!(
                    "the value \"{}\" begins with `-`: the program would read it as an option",
                    a.value
                ),
            });
        }
    }
    if program.value == "az" {
        az_file_reads(args, &mut out);
    }
    if program.value != "az" {
        if !programs.contains(&program.value) {
            out.push(Finding::Template(format!(
                "runs `{}`, not az",
                program.value
            )));
        }
        return out;
    }
    let words: Vec<&str> = args.iter().map(|a| a.value.as_str()).collect();
    match words.get(1..4) {
        Some(["network", "bastion", sub @ ("rdp" | "ssh" | "tunnel")]) => {
            bastion(args, 4, sub, os, &mut out)
        }
        _ if words.get(1) == Some(&"login") => login(args, tenant, &mut out),
        _ => {
            let sub: Vec<&str> = words
                .iter()
                .skip(1)
                .take_while(|w| !w.starts_with('-'))
                .copied()
                .collect();
            out.push(Finding::Template(format!(
                "runs `az {}`: only `az network bastion rdp|ssh|tunnel` and `az login` run from shared files",
                sub.join(" ")
            )));
        }
    }
    if os == Os::Windows {
        batch_expansions(args, &mut out);
    }
    out
}

/// Whether az reads `arg` as a file: before parsing, az replaces every argument that begins
/// with `@` (or whose part after the first `=` does), `@-` included, by the content of that file
/// or of its standard input (`~` expanded), wherever the argument stands, after ssh's `--` too.
pub fn az_reads_file(arg: &str) -> bool {
    let value = arg.split_once('=').map_or(arg, |(_, v)| v);
    value.len() > 1 && value.starts_with('@')
}

/// On Windows az is `az.cmd`, a batch file: cmd.exe reads its command line first and expands
/// `%NAME%` there, quoted or not (std's escape for `%` relies on a cmd.exe feature other command
/// processors lack). No az argument needs a `%` (Azure names cannot hold one), so any is refused.
/// (cmd.exe's other metacharacters reach az literally: std quotes them for batch files.)
fn batch_expansions(args: &[Arg], out: &mut Vec<Finding>) {
    for (i, a) in args.iter().enumerate().skip(1) {
        let told = out
            .iter()
            .any(|f| matches!(f, Finding::Data { index, .. } if *index == i));
        if a.value.contains('%') && !told {
            out.push(Finding::Data {
                index: i,
                reason: format!(
                    "\"{}\" contains `%`: on Windows az is az.cmd, and cmd.exe would expand `%NAME%` in it",
                    a.value
                ),
            });
        }
    }
}

/// Arguments az would replace by a local file's content (a private key as the user name sent to
/// the VM): from a value in a file, refused; in a template's own text, consent.
fn az_file_reads(args: &[Arg], out: &mut Vec<Finding>) {
    for (i, a) in args.iter().enumerate().skip(1) {
        if !az_reads_file(&a.value) {
            continue;
        }
        let why = format!(
            "az replaces the argument \"{}\" by the content of a local file (az reads every argument that begins with `@`, or whose value after `=` does, as a file)",
            a.value
        );
        out.push(match a.kind {
            ArgKind::Literal => Finding::Template(why),
            _ => Finding::Data {
                index: i,
                reason: why,
            },
        });
    }
}

fn bastion(args: &[Arg], start: usize, sub: &str, os: Os, out: &mut Vec<Finding>) {
    let mut i = start;
    while i < args.len() {
        let a = &args[i];
        if a.value == "--" && sub == "ssh" {
            ssh_tail(args, i + 1, os, out);
            return;
        }
        if is_splice_of(a, "extra_args") {
            i += 1; // judged as a field (`extra_args`), where it is written
            continue;
        }
        if is_splice_of(a, "ssh_args") {
            out.push(Finding::Template(format!(
                "splices `ssh_args` among az's options (`{}`): ssh arguments go after `--`",
                a.value
            )));
            i += 1;
            continue;
        }
        let (name, inline) = match a.value.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (a.value.as_str(), None),
        };
        if value_option(sub, name) {
            if inline.is_none()
                && os == Os::Windows
                && sub == "ssh"
                && matches!(name, "--username" | "--ssh-key")
            {
                cmd_special(args, i + 1, out);
            }
            i += if inline.is_some() { 1 } else { 2 };
            continue;
        }
        if sub == "rdp" && RDP_FLAGS.contains(&name) {
            i += 1;
            if name != "--configure"
                && args.get(i).is_some_and(|v| {
                    matches!(v.value.to_ascii_lowercase().as_str(), "true" | "false")
                })
            {
                i += 1;
            }
            continue;
        }
        let pair: Vec<String> = args[i..args.len().min(i + 2)]
            .iter()
            .map(|a| a.value.clone())
            .collect();
        if allow::az_extra_args(&pair[..1]).is_empty() {
            i += 1;
        } else if pair.len() == 2 && allow::az_extra_args(&pair).is_empty() {
            i += 2;
        } else if a.value.starts_with('-') {
            out.push(Finding::Template(format!(
                "passes `{}` to `az network bastion {sub}`, which is not one of its connection options or the allow-listed extra options",
                a.value
            )));
            i += 1;
        } else {
            out.push(Finding::Template(format!(
                "passes the argument `{}` to `az network bastion {sub}`, which takes none",
                a.value
            )));
            i += 1;
        }
    }
}

/// ssh's arguments after `--`: spliced `ssh_args` are judged as a field; whatever else the
/// template adds there is checked against the same list. On Windows nothing there may hold a
/// character cmd.exe interprets.
fn ssh_tail(args: &[Arg], start: usize, os: Os, out: &mut Vec<Finding>) {
    if os == Os::Windows {
        for i in start..args.len() {
            cmd_special(args, i, out);
        }
    }
    if args[start..].iter().all(|a| is_splice_of(a, "ssh_args")) {
        return;
    }
    let values: Vec<String> = args[start..].iter().map(|a| a.value.clone()).collect();
    for o in allow::ssh_args(&values) {
        if !is_splice_of(&args[start + o.index], "ssh_args") {
            out.push(Finding::Template(o.reason));
        }
    }
}

fn login(args: &[Arg], tenant: &str, out: &mut Vec<Finding>) {
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if a.value == "--tenant" {
            match args.get(i + 1) {
                Some(t) if t.value.eq_ignore_ascii_case(tenant) => {}
                other => out.push(Finding::Template(format!(
                    "signs in to tenant `{}`, not the profile's tenant {tenant}",
                    other.map(|t| t.value.as_str()).unwrap_or("")
                ))),
            }
            i += 2;
        } else if allow::LOGIN_FLAGS.contains(&a.value.as_str()) || is_splice_of(a, "login") {
            i += 1;
        } else {
            out.push(Finding::Template(format!(
                "passes `{}` to `az login`: options that choose an identity, a credential or a tenant come only from you",
                a.value
            )));
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: &[&str]) -> Vec<Arg> {
        v.iter()
            .enumerate()
            .map(|(i, s)| Arg {
                value: s.to_string(),
                kind: ArgKind::Literal,
                step: 0,
                token: i,
            })
            .collect()
    }

    #[test]
    fn a_percent_for_az_is_refused_on_windows_only_and_once() {
        let tenant = "11111111-1111-1111-1111-111111111111";
        let step = lit(&["az", "login", "--tenant", tenant, "--x", "a%PATH%b"]);
        let on = |os| super::step(&step, os, &[], tenant);
        assert!(
            on(Os::Windows)
                .iter()
                .any(|f| matches!(f, Finding::Data { index: 5, reason } if reason.contains("cmd.exe would expand"))),
            "{:?}",
            on(Os::Windows)
        );
        assert!(
            !on(Os::Linux)
                .iter()
                .any(|f| matches!(f, Finding::Data { .. }))
        );
        // an ssh value already refused for cmd.exe is told once
        let mut ssh = lit(&["az", "network", "bastion", "ssh", "--username", "u"]);
        ssh[5] = Arg {
            value: "a%b".into(),
            kind: ArgKind::Data { dash: false },
            step: 0,
            token: 5,
        };
        let found = super::step(&ssh, Os::Windows, &[], tenant);
        assert_eq!(
            found
                .iter()
                .filter(|f| matches!(f, Finding::Data { index: 5, .. }))
                .count(),
            1,
            "{found:?}"
        );
    }

    #[test]
    fn arguments_az_reads_as_files() {
        for yes in [
            "@x",
            "@~/.ssh/id_ed25519",
            "@-",
            "--username=@/etc/passwd",
            "a=@b",
        ] {
            assert!(az_reads_file(yes), "{yes}");
        }
        for no in ["@", "x@y", "a=b=@c", "--name=@", "user@host", "8080:@h:80"] {
            assert!(!az_reads_file(no), "{no}");
        }
        let mut step = lit(&[
            "az",
            "network",
            "bastion",
            "ssh",
            "--username",
            "u",
            "--",
            "x",
        ]);
        step[5] = Arg {
            value: "@~/.ssh/id_ed25519".into(),
            kind: ArgKind::Data { dash: false },
            step: 0,
            token: 5,
        };
        let found = super::step(&step, Os::Linux, &[], "t");
        assert!(
            found
                .iter()
                .any(|f| matches!(f, Finding::Data { index: 5, .. })),
            "{found:?}"
        );
        let own = lit(&["az", "network", "bastion", "ssh", "--username=@/etc/passwd"]);
        assert!(
            super::step(&own, Os::Linux, &[], "t")
                .iter()
                .any(|f| matches!(f, Finding::Template(w) if w.contains("local file"))),
        );
    }

    #[test]
    fn bastion_commands_and_login_pass() {
        let rdp = lit(&[
            "az",
            "network",
            "bastion",
            "rdp",
            "--name",
            "b",
            "-g",
            "rg",
            "--enable-mfa",
            "--configure",
            "--only-show-errors",
        ]);
        assert_eq!(step(&rdp, Os::Windows, &[], "t"), []);
        let ssh = lit(&[
            "az",
            "network",
            "bastion",
            "ssh",
            "--name",
            "b",
            "--auth-type",
            "aad",
            "--",
            "-L",
            "8080:localhost:80",
            "uptime",
        ]);
        assert_eq!(step(&ssh, Os::Linux, &[], "t"), []);
    }

    #[test]
    fn data_never_picks_the_program_nor_becomes_an_option() {
        let mut prog = lit(&["touch", "x"]);
        prog[0].kind = ArgKind::Data { dash: false };
        assert!(matches!(
            step(&prog, Os::Linux, &["touch".into()], "t")[..],
            [Finding::Data { index: 0, .. }]
        ));
        let mut opt = lit(&["az", "network", "bastion", "rdp", "--debug"]);
        opt[4].kind = ArgKind::Data { dash: false };
        let f = step(&opt, Os::Linux, &[], "t");
        assert!(
            f.contains(&Finding::Data {
                index: 4,
                reason:
                    "the value \"--debug\" begins with `-`: the program would read it as an option"
                        .into()
            }),
            "{f:?}"
        );
    }

    #[test]
    fn login_signs_in_to_the_profiles_tenant_only() {
        let ok = lit(&["az", "login", "--tenant", "T", "--use-device-code"]);
        assert_eq!(step(&ok, Os::Linux, &[], "t"), []);
        let other = step(
            &lit(&["az", "login", "--tenant", "evil"]),
            Os::Linux,
            &[],
            "t",
        );
        assert!(matches!(other[..], [Finding::Template(_)]), "{other:?}");
    }

    #[test]
    fn other_programs_commands_and_options_are_the_templates() {
        for bad in [
            &["pwsh", "-c", "x"][..],
            &["az", "extension", "add", "--source", "https://x"],
            &["az", "rest", "--url", "https://x"],
            &["az", "network", "bastion", "tunnel", "--debug"],
            &["az", "network", "bastion", "ssh", "--", "-oProxyCommand=x"],
            &["az", "login", "--service-principal", "-u", "x"],
            &["az", "--debug", "network", "bastion", "rdp"],
        ] {
            let f = step(&lit(bad), Os::Linux, &[], "t");
            assert!(
                matches!(f.first(), Some(Finding::Template(_))),
                "{bad:?}: {f:?}"
            );
        }
        assert_eq!(
            step(&lit(&["pwsh", "-c", "x"]), Os::Linux, &["pwsh".into()], "t"),
            []
        );
    }

    #[test]
    fn data_that_reads_as_an_option_or_cmd_syntax_is_refused() {
        let mut ssh = lit(&[
            "az",
            "network",
            "bastion",
            "ssh",
            "--username",
            "-oProxyCommand=x",
        ]);
        ssh[5].kind = ArgKind::Data { dash: false };
        assert!(matches!(
            step(&ssh, Os::Linux, &[], "t")[..],
            [Finding::Data { index: 5, .. }]
        ));
        let mut win = lit(&["az", "network", "bastion", "ssh", "--username", "a&calc"]);
        win[5].kind = ArgKind::Data { dash: false };
        assert_eq!(step(&win, Os::Linux, &[], "t"), []);
        assert!(matches!(
            step(&win, Os::Windows, &[], "t")[..],
            [Finding::Data { index: 5, .. }]
        ));
    }
}
