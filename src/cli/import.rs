//! `bprof import`: a profile file from what exists in Azure (Resource Graph). The file is the
//! command's own: marked on its first line, never replacing a file without the mark unless
//! `--force`, checked like any profile file before it is written (atomically).

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};

use super::{Cli, Error, Out, exit};
use crate::azure::signin::AzProfile;
use crate::files;
use crate::import::{self, Inventory, Model, Options, Page, Request, Scope};
use crate::process::Signals;
use crate::profile::load::{self, Section};

/// The file name import writes into the profile directory by default.
pub const DEFAULT_FILE: &str = "imported.yaml";

/// An existing file is read up to this size.
const MAX_EXISTING: u64 = 16 * 1024 * 1024;

/// The flags of `bprof import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A subscription to read (repeatable; default: every subscription of the tenant).
    #[arg(long = "subscription", value_name = "S")]
    pub subscriptions: Vec<String>,
    /// The tenant to read, its id or domain (default: the tenant of az's default
    /// subscription).
    #[arg(long, value_name = "T")]
    pub tenant: Option<String>,
    /// Only the VMs of this resource group (bastions and networks are read from the whole
    /// scope).
    #[arg(long, value_name = "RG")]
    pub resource_group: Option<String>,
    /// This bastion for every VM, whatever the networks say (its Azure name or resource id).
    #[arg(long, value_name = "NAME")]
    pub bastion: Option<String>,
    /// The file (default: imported.yaml in the profile directory; - for stdout).
    #[arg(short, long, value_name = "FILE|-")]
    pub output: Option<PathBuf>,
    /// Print the file that would be written; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the existing file's VMs that this run's scope (--subscription, --tenant,
    /// --resource-group) did not read.
    #[arg(long)]
    pub merge: bool,
    /// Replace a file that bprof import did not write.
    #[arg(long)]
    pub force: bool,
}

/// `imported.yaml` in the profile directory: the one `--profiles DIR` names, else the nearest
/// `profiles/` upwards (as discovery finds it), else `./profiles` (created when written).
fn default_path(cli: &Cli) -> Result<PathBuf, Error> {
    if let [one] = cli.profiles.as_slice()
        && one.is_dir()
    {
        return Ok(one.join(DEFAULT_FILE));
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    match load::nearest_profiles_dir(&cwd, None)? {
        Some(dir) => Ok(PathBuf::from(load::display_path(&dir, &cwd, None)).join(DEFAULT_FILE)),
        None => Ok(PathBuf::from("profiles").join(DEFAULT_FILE)),
    }
}

/// What is at the output path: nothing (false), or a file to replace (true) with its entries
/// when import wrote it (for the names). A file without the mark is refused unless `force`;
/// anything but a regular file always.
fn existing(path: &Path, force: bool, out: &Out) -> Result<(Model, bool), Error> {
    let shown = path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Model::default(), false)),
        Err(source) => {
            return Err(crate::write::WriteError::Write {
                path: shown,
                source,
            }
            .into());
        }
        Ok(m) if !m.file_type().is_file() => {
            let what =
                files::Special::of(&m.file_type()).map_or("not a regular file", |s| s.describe());
            return Err(crate::write::WriteError::NotRegular { path: shown, what }.into());
        }
        Ok(_) => {}
    }
    let text = match files::read_regular(path, MAX_EXISTING) {
        Ok(bytes) => String::from_utf8(bytes).ok(),
        Err(_) => None,
    };
    let generated = text.as_deref().is_some_and(import::is_generated);
    if !generated {
        if !force {
            return Err(Error::NotImported { path: shown });
        }
        out.note(&format!(
            "bprof: replacing {shown}, which bprof import did not write (--force)"
        ));
        return Ok((Model::default(), true));
    }
    match Model::parse(text.as_deref().unwrap_or_default()) {
        Ok(m) => Ok((m, true)),
        Err(_) if force => {
            out.note(&format!(
                "bprof: warning: {shown} cannot be read as YAML: replaced (--force), its names are not kept"
            ));
            Ok((Model::default(), true))
        }
        Err(why) => Err(Error::ImportedUnreadable {
            path: shown,
            why: crate::terminal::value(&why).into_owned(),
        }),
    }
}

/// The names the other shared files beside `path` define (read tolerantly, as keys): new
/// names avoid them, so the directory's set stays valid.
fn reserved_names(path: &Path) -> BTreeSet<(Section, String)> {
    let mut out = BTreeSet::new();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (Ok(canonical), Ok(rd)) = (std::fs::canonicalize(&dir), std::fs::read_dir(&dir)) else {
        return out;
    };
    let me = path.file_name();
    for entry in rd.filter_map(Result::ok) {
        let p = entry.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        let local = name.ends_with(".local.yaml") || name.ends_with(".local.yml");
        if !yaml || local || name.starts_with('.') || p.file_name() == me {
            continue;
        }
        let Ok(open) = files::dir_entry(&p, &canonical) else {
            continue;
        };
        let Ok(bytes) = files::read_regular(&open, MAX_EXISTING) else {
            continue;
        };
        for part in load::seems_to_define(&String::from_utf8_lossy(&bytes)) {
            if let load::Part::Entry(section, n) = part {
                out.insert((section, n));
            }
        }
    }
    out
}

/// The progress line, on a terminal only: rewritten in place, cleared at the end.
struct Progress {
    on: bool,
    shown: bool,
}

impl Progress {
    fn page(&mut self, p: Page) {
        if !self.on {
            return;
        }
        let total = p.total.map_or(String::new(), |t| format!(" of {t}"));
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[Kbprof: reading Azure Resource Graph: {}{total} resources (page {})",
            p.rows, p.number
        );
        let _ = err.flush();
        self.shown = true;
    }

    fn done(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.shown = false;
        }
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// `bprof import`: read Azure, build the model (keeping the existing file's names), check the
/// file, then write it (or print it).
pub(super) fn run(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    let req = Request::new(
        &args.subscriptions,
        args.tenant.as_deref(),
        args.resource_group.as_deref(),
    )?;
    let to_stdout = args.output.as_ref().is_some_and(|o| o.as_os_str() == "-");
    if to_stdout && args.merge {
        return Err(Error::Usage(
            "--merge keeps entries of the file it writes: give -o FILE, not -o -".into(),
        ));
    }
    let target = match (to_stdout, &args.output) {
        (true, _) => None,
        (false, Some(p)) => Some(p.clone()),
        (false, None) => Some(default_path(cli)?),
    };
    // the existing file is looked at before anything is read from Azure
    let (old, replaces) = match &target {
        Some(p) => existing(p, args.force, out)?,
        None => (Model::default(), false),
    };
    let read = read_azure(cli, &req, out)?;
    let inv = Inventory::from_rows(&read.rows);
    let scope = Scope::of(&req, &read, &inv);
    let outcome = import::build(
        &inv,
        &old,
        &Options {
            bastion: args.bastion.clone(),
            merge: args.merge,
            scope,
            reserved: target.as_deref().map(reserved_names).unwrap_or_default(),
        },
    )?;
    let dir = target
        .as_deref()
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let schema = (target.is_some() && dir.join("bprof.schema.json").is_file())
        .then_some("./bprof.schema.json");
    let text = import::emit(&outcome.model, schema);
    let display = target
        .as_ref()
        .map_or_else(|| "<stdout>".to_string(), |p| p.display().to_string());
    let check_path = target
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FILE));
    let problems = import::check(&check_path, &display, &text);
    if problems.iter().any(|p| p.is_error()) {
        return Err(Error::ImportInvalid { problems });
    }
    if !out.quiet {
        out.problems(&problems);
    }
    left_out(&outcome, &display, out);
    let summary = summary(&old, &outcome, target.is_some());
    match &target {
        Some(path) if !args.dry_run => {
            if !dir.exists() && args.output.is_none() {
                std::fs::create_dir_all(dir).map_err(|source| crate::write::WriteError::Write {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            // a file import wrote is its own to replace, any other only with --force (both
            // checked above); a file that appeared since is not replaced
            crate::write::write_atomic(path, text.as_bytes(), replaces, false)?;
            out.note(&format!("wrote {}: {summary}", path.display()));
        }
        Some(path) => {
            super::output::print(&text)?;
            out.note(&format!(
                "dry run: nothing written to {}: {summary}",
                path.display()
            ));
        }
        None => {
            super::output::print(&text)?;
            out.note(&format!("bprof import: {summary}"));
        }
    }
    Ok(exit::OK)
}

/// Resource Graph's rows for the request, with the progress line while they arrive.
fn read_azure(cli: &Cli, req: &Request, out: &Out) -> Result<import::Read, Error> {
    let signals = Signals::install();
    let az = AzProfile::read(cli.settings.azure());
    let mut progress = Progress {
        on: std::io::stderr().is_terminal() && !out.quiet,
        shown: false,
    };
    let read = import::read(req, &az, cli.settings.azure(), &signals, &mut |p| {
        progress.page(p)
    });
    progress.done();
    Ok(read?)
}

/// What was left out of the file, and why; names that clash; VMs dropped outside the scope.
fn left_out(outcome: &import::Outcome, display: &str, out: &Out) {
    if !outcome.skipped.is_empty() {
        out.note(&format!(
            "bprof: left out, as read from Azure ({}):",
            outcome.skipped.len()
        ));
        for s in &outcome.skipped {
            out.note(&format!("  {s}"));
        }
    }
    if !outcome.unreachable.is_empty() {
        out.note(&format!(
            "bprof: {} no bastion bprof can connect through, left out (--bastion NAME assigns one to every VM):",
            if outcome.unreachable.len() == 1 {
                "1 VM has".to_string()
            } else {
                format!("{} VMs have", outcome.unreachable.len())
            }
        ));
        for u in &outcome.unreachable {
            out.note(&format!("  {u}"));
        }
    }
    for c in &outcome.clashes {
        out.note(&format!(
            "bprof: warning: {c} (its name from the last import) is also defined in another file beside {display}: rename that one (`bprof validate` shows both)"
        ));
    }
    if outcome.dropped_outside > 0 {
        out.note(&format!(
            "bprof: {} of {display} outside this run's scope {} removed (--merge keeps them)",
            plural(outcome.dropped_outside, "VM"),
            if outcome.dropped_outside == 1 {
                "was"
            } else {
                "were"
            }
        ));
    }
}

/// The one-line summary: counts, and (for a file) what is new and what was removed.
fn summary(old: &Model, outcome: &import::Outcome, to_file: bool) -> String {
    let (added, removed) = import::changes(old, &outcome.model);
    let m = &outcome.model;
    let mut summary = format!(
        "{}, {}, {}, {}",
        plural(m.profiles.len(), "profile"),
        plural(m.vms.len(), "vm"),
        plural(m.bastions.len(), "bastion"),
        plural(m.tenants.len(), "tenant")
    );
    if to_file {
        summary.push_str(&format!(" ({} new, {} removed", added.len(), removed.len()));
        if outcome.kept_outside > 0 {
            summary.push_str(&format!(
                ", {} kept from outside the scope",
                outcome.kept_outside
            ));
        }
        summary.push(')');
    }
    if outcome.stopped > 0 {
        summary.push_str(&format!("; {} not running", plural(outcome.stopped, "VM")));
    }
    summary
}
