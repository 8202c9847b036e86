//! `bprof rdp`: .rdp files for teammates.

use std::io::Write;
use std::path::PathBuf;

use super::{Error, Out, exit};
use crate::plan::PlanError;
use crate::plan::{self, Os, PlanOptions};
use crate::profile::load::{FileKind, ProfileSet, Section};
use crate::profile::resolve::{self, Profile};
use crate::profile::trust::Consent;
/// Which files `bprof rdp` writes.
pub(super) struct Which<'a> {
    pub profile: Option<&'a str>,
    pub all: bool,
    /// With the person's own values (else the shared files' alone).
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
pub(super) fn rdp_files(
    engine: Option<crate::profile::raw::TunnelEngine>,
    full: ProfileSet,
    which: Which,
    output: Option<&PathBuf>,
    force: bool,
    out: &Out,
) -> Result<i32, Error> {
    let Which {
        profile,
        all,
        personal,
    } = which;
    if let (Some(name), false) = (profile, personal) {
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
    if all && !personal && full.files.iter().any(|f| f.kind != FileKind::Shared) {
        out.note("bprof: the files hold what the shared files say; your *.local.yaml and user config values are left out (--personal includes them)");
    }
    let set = if personal { full } else { full.shared_only() };
    let set = &set;
    let render = |p: &Profile| {
        let port = plan::local_port(p, None);
        crate::plan::rdp::encode(&crate::plan::rdp::lines(p, port))
    };
    let tunnel_hint = |set: &ProfileSet, p: &Profile| {
        let opts = PlanOptions {
            tunnel_only: true,
            engine,
            ..PlanOptions::for_os(Os::current())
        };
        let raw = plan::build(set, p, &opts)
            .ok()
            .and_then(|pl| {
                pl.steps
                    .into_iter()
                    .find(|s| matches!(s.kind, plan::StepKind::Tunnel { .. }))
            })
            .map(|s| crate::plan::shell::join(&s.argv, Os::current() == Os::Windows))
            .unwrap_or_default();
        format!(
            "  open its tunnel first: bprof run {} --tunnel-only
  (or, without bprof: {raw})",
            p.name
        )
    };
    if all {
        let Some(dir) = output else {
            return Err(Error::Usage("rdp --all needs -o DIR".into()));
        };
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
                    crate::terminal::eprintln(&format!(
                        "error: {name}: {e} (see `bprof validate`)"
                    ));
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
        return Ok(failed.unwrap_or(exit::OK));
    }
    let Some(name) = profile else {
        return Err(Error::Usage("name a profile, or use --all -o DIR".into()));
    };
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
    out.note(&tunnel_hint(set, &p));
    Ok(exit::OK)
}
