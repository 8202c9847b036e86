//! `bprof rdp`: .rdp files for teammates.

use std::io::Write;
use std::path::PathBuf;

use super::{Error, Out, exit};
use crate::plan::{self, Os, PlanOptions};
use crate::profile::load::{ProfileSet, Section};
use crate::profile::resolve::{self, Profile};
/// `bprof rdp`: one .rdp file (or stdout), or one per rdp profile with --all.
pub(super) fn rdp_files(
    set: &ProfileSet,
    profile: Option<&str>,
    all: bool,
    output: Option<&PathBuf>,
    force: bool,
    out: &Out,
) -> Result<i32, Error> {
    let render = |p: &Profile| {
        let port = plan::local_port(p, None);
        crate::plan::rdp::encode(&crate::plan::rdp::lines(p, port))
    };
    let tunnel_hint = |set: &ProfileSet, p: &Profile| {
        let opts = PlanOptions {
            os: Os::current(),
            configure: false,
            port: None,
            extra: Vec::new(),
            tunnel_only: true,
            signed_in: true,
            default_subscription: None,
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
