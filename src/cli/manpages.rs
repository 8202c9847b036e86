//! `bprof manpages DIR`: man pages generated from the clap definitions, one per command
//! (`bprof.1`, `bprof-run.1`, `bprof-trust-allow.1`, ...), so they say what `--help` says.

use std::path::{Path, PathBuf};

use super::{Error, Out};
use crate::write::{WriteError, write_atomic};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory (created if needed); existing pages are replaced.
    pub dir: PathBuf,
}

/// `bprof manpages DIR`.
pub(super) fn run(args: &Args, out: &Out) -> Result<i32, Error> {
    for page in write(&args.dir)? {
        out.note(&format!("wrote {}", page.display()));
    }
    Ok(super::exit::OK)
}

/// The variables bprof reads, one line each (the man pages' ENVIRONMENT, `bprof --help`).
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "BPROF_PROFILES",
        "profile paths when no --profiles is given (':'-separated; ';' on Windows)",
    ),
    ("BPROF_AZ", "the az program to run (default: az from PATH)"),
    (
        "BPROF_TUNNEL_ENGINE",
        "native (default) or az: which tunnel runs, unless a profile says",
    ),
    (
        "BPROF_TUNNEL_TIMEOUT",
        "seconds run waits for az's tunnel to accept connections (default 30)",
    ),
    (
        "BPROF_ARM_ENDPOINT",
        "Azure Resource Manager's https:// base URL (other clouds)",
    ),
    (
        "AZURE_CONFIG_DIR",
        "where az keeps azureProfile.json (default ~/.azure)",
    ),
    (
        "XDG_STATE_HOME",
        "where Entra ssh keys and certificates are kept (default ~/.local/state; %LOCALAPPDATA% on Windows)",
    ),
    (
        "XDG_CONFIG_HOME",
        "where bprof/local.yaml and trust.json are (default ~/.config; %APPDATA% on Windows)",
    ),
    (
        "SSL_CERT_FILE, REQUESTS_CA_BUNDLE",
        "PEM bundles trusted besides the system's, for bprof's own HTTPS",
    ),
    (
        "HTTPS_PROXY, NO_PROXY",
        "an http:// CONNECT proxy for bprof's own HTTPS, and the hosts that bypass it",
    ),
    (
        "NO_COLOR, CLICOLOR, CLICOLOR_FORCE, TERM",
        "colour with --color auto: NO_COLOR or CLICOLOR=0 or TERM=dumb off, CLICOLOR_FORCE on",
    ),
];

/// bprof's exit codes, one line each (the man pages' EXIT STATUS, `bprof --help`).
const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "success"),
    (
        "1-63",
        "doctor: a check failed; run: the failing az step's or RDP client's own status",
    ),
    ("64", "usage error"),
    ("65", "invalid profile data"),
    (
        "66",
        "a profile, template, file or directory that does not exist",
    ),
    ("69", "a program or service that is needed is unavailable"),
    ("70", "internal error (a bug: please report it)"),
    ("73", "an output file cannot be written"),
    ("77", "refused for lack of your consent (bprof trust)"),
    ("130", "interrupted (Ctrl-C); 128+N for other signals"),
];

/// The environment and the exit codes as text, for `bprof --help`.
pub(super) fn reference_text() -> String {
    let table = |rows: &[(&str, &str)]| {
        let wide = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("  {k:wide$}  {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "Environment:\n{}\n\nExit status:\n{}",
        table(ENVIRONMENT),
        table(EXIT_STATUS)
    )
}

/// Writes every page into `dir`; returns the paths written.
fn write(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let mut cmd = super::command();
    cmd.build();
    let mut written = Vec::new();
    page(&cmd, "bprof", dir, &mut written)?;
    Ok(written)
}

/// Text for roff: a backslash as `\e`, a hyphen as `\-`, a line that would start with a
/// control character (`.` or `'`) guarded.
fn roff(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e").replace('-', "\\-");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A section of `rows`: each a bold term and its text.
fn table_section(title: &str, rows: &[(&str, &str)]) -> String {
    let mut out = format!(".SH {title}\n");
    for (k, v) in rows {
        out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(k), roff(v)));
    }
    out
}

/// One command's page: clap_mangen's NAME, DESCRIPTION, OPTIONS and COMMANDS, with a synopsis
/// that shows every option's value, EXAMPLES (the help's), ENVIRONMENT and EXIT STATUS.
fn render(cmd: &clap::Command, name: &str) -> Result<Vec<u8>, Error> {
    let man = clap_mangen::Man::new(cmd.clone().bin_name(name.replace('-', " "))).title(name);
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    let mut usage = cmd.clone().bin_name(name.replace('-', " "));
    let usage = usage.render_usage().to_string();
    let usage = usage.trim_start_matches("Usage: ");
    let synopsis = if name == "bprof" {
        format!(
            "{usage}\nGlobal options: [--profiles PATH]... [--format FORMAT] [--color WHEN] [-v | -q]"
        )
    } else {
        usage.to_string()
    };
    buf.extend_from_slice(format!(".SH SYNOPSIS\n.nf\n{}\n.fi\n", roff(&synopsis)).as_bytes());
    man.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut buf)?;
    }
    let examples: Vec<String> = cmd
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("Global options:") && !l.starts_with("Examples:"))
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    if !examples.is_empty() {
        let text = format!(".SH EXAMPLES\n.nf\n{}\n.fi\n", roff(&examples.join("\n")));
        buf.extend_from_slice(text.as_bytes());
    }
    buf.extend_from_slice(table_section("ENVIRONMENT", ENVIRONMENT).as_bytes());
    buf.extend_from_slice(table_section("EXIT STATUS", EXIT_STATUS).as_bytes());
    if name != "bprof" {
        buf.extend_from_slice(
            b".SH SEE ALSO\n\\fBbprof\\fR(1): the global options (\\-\\-profiles, \\-\\-format, \\-\\-color, \\-v, \\-q)\n",
        );
    }
    Ok(buf)
}

fn page(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    let buf = render(cmd, name)?;
    let path = dir.join(format!("{name}.1"));
    write_atomic(&path, &buf, true, false)?;
    written.push(path);
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        page(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
