//! `bprof rdp`: .rdp files for teammates.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap_complete::engine::ArgValueCandidates;

use super::{Cli, Error, Out, completions, exit, load_set};
use crate::plan::PlanError;
use crate::plan::{self, Os, PlanOptions};
use crate::profile::load::{FileKind, ProfileSet, Section};
use crate::profile::resolve::{self, Profile};
use crate::profile::trust::Consent;
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (not with --all).
    #[arg(required_unless_present = "all", conflicts_with = "all", add = ArgValueCandidates::new(completions::rdp_profiles))]
    pub profile: Option<String>,
    /// One file per rdp profile, into the directory given by -o.
    #[arg(long, requires = "output")]
    pub all: bool,
    /// The file (default ./PROFILE.rdp; - for stdout), or the directory with --all.
    #[arg(short, long, value_name = "FILE|DIR")]
    pub output: Option<PathBuf>,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
    /// Include your personal values (user name, port) from `*.local.yaml` and your config.
    ///
    /// By default the file holds only what the shared files say, as for every teammate.
    #[arg(long)]
    pub personal: bool,
}

/// The fields of a profile set by personal files (`*.local.yaml`, user config), with where.
fn personal_fields(set: &ProfileSet, name: &str) -> Vec<String> {
    let Ok(p) = resolve::resolve(set, name) else {
        return Vec::new();
    };
    let mut fields: Vec<String> = p
        .origins
        .iter()
        .filter(|(_, d)| set.file(d).kind != FileKind::Shared)
        .filter(|(k, _)| !k.starts_with("rdp.") || k.matches('.').count() == 1)
        .map(|(k, d)| format!("{k} ({})", set.file(d).location(&d.pointer)))
        .collect();
    fields.dedup();
    fields
}

/// Refuses a profile whose .rdp content asks for what the person has not approved.
fn gate(set: &ProfileSet, p: &Profile) -> Result<(), Error> {
    let unmet: Vec<_> = p
        .requests
        .iter()
        .map(|r| (r.clone(), set.consents.status(r)))
        .filter(|(_, s)| *s != Consent::Approved)
        .collect();
    if unmet.is_empty() {
        return Ok(());
    }
    Err(PlanError::Consent {
        profile: p.name.clone(),
        requests: unmet,
    }
    .into())
}

/// `bprof rdp`: one .rdp file (or stdout), or one per rdp profile with --all.
pub(super) fn run(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    let full = load_set(cli, out)?;
    if let (Some(name), false) = (&args.profile, args.personal) {
        let left_out = personal_fields(&full, name);
        if !left_out.is_empty() {
            out.note(&format!(
                "bprof: left out your personal values (the file holds what the shared files say; --personal includes them): {}",
                left_out.join(", ")
            ));
        }
        let shared_def = full
            .entry(Section::Profiles, name)
            .map(|e| e.defs.iter().any(|d| full.file(d).kind == FileKind::Shared));
        if shared_def == Some(false) {
            return Err(Error::Usage(format!(
                "profile `{name}` is defined only in your personal files; pass --personal to write it"
            )));
        }
    }
    if args.all && !args.personal && full.files.iter().any(|f| f.kind != FileKind::Shared) {
        out.note("bprof: the files hold what the shared files say; your *.local.yaml and user config values are left out (--personal includes them)");
    }
    let set = if args.personal {
        full
    } else {
        full.shared_only()
    };
    if args.all {
        let Some(dir) = &args.output else {
            return Err(Error::Usage("rdp --all needs -o DIR".into()));
        };
        return write_all(&set, dir, args.force, out);
    }
    let Some(name) = &args.profile else {
        return Err(Error::Usage("name a profile, or use --all -o DIR".into()));
    };
    let p = write_one(&set, name, args.output.as_ref(), args.force, out)?;
    out.note(&tunnel_hint(&set, &p));
    Ok(exit::OK)
}

/// A profile's .rdp content: the local end of its tunnel.
fn render(p: &Profile) -> Vec<u8> {
    let port = plan::local_port(p, None);
    crate::plan::rdp::encode(&crate::plan::rdp::lines(p, port))
}

/// What opens the file's tunnel: bprof, or (for teammates without bprof) az's own tunnel
/// command, whichever engine this bprof uses.
fn tunnel_hint(set: &ProfileSet, p: &Profile) -> String {
    let opts = PlanOptions {
        tunnel_only: true,
        engine: Some(crate::profile::raw::TunnelEngine::Az),
        ..PlanOptions::for_os(Os::current())
    };
    let az_line = plan::build(set, p, &opts)
        .ok()
        .and_then(|pl| {
            pl.steps
                .into_iter()
                .find(|s| matches!(s.kind, plan::StepKind::Tunnel { .. }))
        })
        .map(|s| crate::plan::shell::join(&s.argv, Os::current() == Os::Windows));
    let mut hint = format!(
        "  open its tunnel first: bprof run {} --tunnel-only",
        p.name
    );
    if let Some(line) = az_line {
        hint.push_str(&format!("\n  (or, without bprof: {line})"));
    }
    hint
}

/// `--all -o DIR`: one file per rdp profile; a profile that fails is said and the rest go on
/// (the exit code is the first failure's).
fn write_all(set: &ProfileSet, dir: &Path, force: bool, out: &Out) -> Result<i32, Error> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{}: not a directory (rdp --all -o DIR writes one file per rdp profile into DIR)",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|source| crate::write::WriteError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let mut failed = None;
    let mut count = 0;
    for name in set.names(Section::Profiles) {
        let p = match resolve::resolve(set, name) {
            Ok(p) if p.mode == crate::profile::raw::Mode::Rdp => p,
            Ok(_) => continue,
            Err(e) => {
                crate::terminal::eprintln(&format!("error: {name}: {e} (see `bprof validate`)"));
                failed.get_or_insert(exit::DATA);
                continue;
            }
        };
        if let Err(e) = gate(set, &p) {
            crate::terminal::eprintln(&format!(
                "error: {name}: {e} (see `bprof trust show {name}`)"
            ));
            failed.get_or_insert(exit::NO_PERMISSION);
            continue;
        }
        let path = dir.join(format!("{name}.rdp"));
        match crate::write::write_atomic(&path, &render(&p), force, false) {
            Ok(()) => {
                count += 1;
                out.note(&format!("wrote {}", path.display()));
            }
            Err(e) => {
                crate::terminal::eprintln(&format!("error: {e}: {}", e.hint()));
                failed.get_or_insert(exit::CANT_CREATE);
            }
        }
    }
    out.note(&format!("{count} .rdp file{} written; each needs its profile's tunnel: bprof run PROFILE --tunnel-only", if count == 1 { "" } else { "s" }));
    Ok(failed.unwrap_or(exit::OK))
}

/// One profile's file, to `output` (`-`: stdout) or `./PROFILE.rdp`; returns the profile.
fn write_one(
    set: &ProfileSet,
    name: &str,
    output: Option<&PathBuf>,
    force: bool,
    out: &Out,
) -> Result<Profile, Error> {
    let p = resolve::resolve(set, name)?;
    out.elsewhere(set);
    gate(set, &p)?;
    if p.mode != crate::profile::raw::Mode::Rdp {
        return Err(Error::Usage(format!(
            "profile `{name}` has mode {}: .rdp files are for rdp profiles",
            resolve::mode_name(p.mode)
        )));
    }
    let bytes = render(&p);
    match output.map(|o| o.as_os_str().to_string_lossy().into_owned()) {
        Some(ref dash) if dash == "-" => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes)?;
            stdout.flush()?;
        }
        other => {
            let path = other
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(format!("{name}.rdp")));
            crate::write::write_atomic(&path, &bytes, force, false)?;
            out.note(&format!("wrote {}", path.display()));
        }
    }
    Ok(p)
}
