//! The temporary .rdp file of a run: in a directory of the person's own, a new name per run,
//! readable by the person only (mode 0600; on Windows an access list of the person alone),
//! removed when dropped (every way a run ends). A file a killed run left behind (its process
//! is gone) is removed by the next run.

use super::*;

/// The temporary .rdp file of one run: a name no other run uses (`PROFILE-PID-N.rdp`, created
/// new, so nothing can be placed there first) in the private directory. Owned: dropping it
/// removes the file (and the directory, when no other run has a file in it).
pub struct TempRdp {
    path: PathBuf,
}

impl TempRdp {
    /// Writes `bytes` (0600) under a fresh name beside `planned` (the plan's representative
    /// path, `DIR/PROFILE.rdp`), in `DIR` created private (0700).
    pub fn create(planned: &Path, bytes: &[u8]) -> Result<TempRdp, crate::write::WriteError> {
        use std::io::Write;
        let dir = planned.parent().unwrap_or(Path::new("."));
        let err = |path: &Path, source| crate::write::WriteError::Write {
            path: path.display().to_string(),
            source,
        };
        prepare_dir(dir).map_err(|e| err(dir, e))?;
        sweep(dir);
        let stem = planned
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bprof".into());
        let pid = std::process::id();
        let mut attempt = 0u32;
        loop {
            let path = dir.join(format!("{stem}-{pid}-{attempt}.rdp"));
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(&path) {
                Ok(mut f) => {
                    // owned from here: a failed write removes it
                    let guard = TempRdp { path };
                    // Windows: the person's alone before anything is written into it
                    #[cfg(windows)]
                    crate::owner::make_private(&guard.path).map_err(|e| err(&guard.path, e))?;
                    f.write_all(bytes)
                        .and_then(|()| f.sync_all())
                        .map_err(|e| err(&guard.path, e))?;
                    return Ok(guard);
                }
                // a file of a crashed run with this pid, or another run of ours: the next name
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 1000 => {
                    attempt += 1;
                }
                // another run that ended removed the (then empty) directory meanwhile
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 1000 => {
                    prepare_dir(dir).map_err(|e| err(dir, e))?;
                    attempt += 1;
                }
                Err(e) => return Err(err(&path, e)),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempRdp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            // only when empty: another run's file keeps it
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// [`create_private_dir`], again when another run that ended removed the (then empty)
/// directory while it was being made private.
fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match create_private_dir(dir) {
            Ok(()) => return Ok(()),
            Err(_) if !dir.exists() && tries < 100 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The run (process id) whose file `name` is: `STEM-PID-N.rdp`.
fn run_of(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".rdp")?;
    let mut parts = stem.rsplitn(3, '-');
    let n = parts.next()?;
    let pid = parts.next()?;
    parts.next()?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// A file is swept only once it is this old: a run whose process merely looks gone (a pid
/// check that failed) keeps its file while its client starts.
pub const SWEEP_AGE: Duration = Duration::from_secs(60);

/// Removes the files of runs that are gone (killed before their guard ran) once they are
/// [`SWEEP_AGE`] old: their gateway tokens end with them. Best effort; bounded.
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten().take(1000) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= SWEEP_AGE);
        if let Some(pid) = run_of(&name)
            && is_file
            && old
            && pid != me
            && !crate::process::alive(pid)
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Creates `dir` readable by the user only (0700 on Unix).
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let meta = std::fs::symlink_metadata(dir)?;
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        if !meta.is_dir() || meta.uid() != uid {
            return Err(std::io::Error::other(format!(
                "{} is not a directory of yours",
                dir.display()
            )));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(windows)]
    {
        std::fs::create_dir_all(dir)?;
        crate::owner::check(dir, crate::owner::Rule::Owner).map_err(std::io::Error::other)?;
        crate::owner::make_private(dir)
    }
    #[cfg(not(any(unix, windows)))]
    {
        std::fs::create_dir_all(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_rdp_files_are_unique_per_run_and_removed_when_dropped() {
        let d = tempfile::tempdir().unwrap();
        let planned = d.path().join("bprof-alice/p.rdp");
        // a file left by a crashed run with this pid, under the first name
        let a = TempRdp::create(&planned, b"a").unwrap();
        let b = TempRdp::create(&planned, b"b").unwrap();
        assert_ne!(a.path(), b.path(), "two runs, two files");
        assert_eq!(std::fs::read(a.path()).unwrap(), b"a");
        assert_eq!(std::fs::read(b.path()).unwrap(), b"b");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(a.path()), 0o600);
            assert_eq!(mode(planned.parent().unwrap()), 0o700);
        }
        let (pa, pb) = (a.path().to_path_buf(), b.path().to_path_buf());
        drop(a);
        assert!(
            !pa.exists() && pb.exists(),
            "one run's end leaves the other's file"
        );
        // a panic is an end too
        let r = std::panic::catch_unwind(move || {
            let _b = b;
            panic!("a bug");
        });
        assert!(r.is_err());
        assert!(
            !pb.exists() && !planned.parent().unwrap().exists(),
            "nothing left"
        );
    }

    #[cfg(unix)]
    #[test]
    // a process that has ended is needed: the test starts one itself
    #[allow(clippy::disallowed_methods)]
    fn files_of_runs_that_are_gone_are_swept() {
        assert_eq!(run_of("prod-jumpbox-1234-0.rdp"), Some(1234));
        assert_eq!(run_of("p-9-12.rdp"), Some(9));
        for not in ["p.rdp", "1234-0.rdp", "p-x-0.rdp", "p-1-.rdp", "p-1-0.txt"] {
            assert_eq!(run_of(not), None, "{not}");
        }
        let d = tempfile::tempdir().unwrap();
        let planned = d.path().join("bprof-alice/p.rdp");
        create_private_dir(planned.parent().unwrap()).unwrap();
        // a process that has ended: a child waited for
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let dead = planned.with_file_name(format!("p-{gone}-0.rdp"));
        let living = planned.with_file_name(format!("q-{}-7.rdp", std::process::id()));
        let other = planned.with_file_name("notes.txt");
        let young = planned.with_file_name(format!("y-{gone}-0.rdp"));
        let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        for f in [&dead, &living, &other, &young] {
            std::fs::write(f, b"x").unwrap();
            if f != &young {
                let file = std::fs::File::options().write(true).open(f).unwrap();
                file.set_modified(an_hour_ago).unwrap();
            }
        }
        // the run's own file is never swept, nor a name of another shape
        let parent_alive =
            planned.with_file_name(format!("r-{}-0.rdp", std::os::unix::process::parent_id()));
        std::fs::write(&parent_alive, b"x").unwrap();
        let f = TempRdp::create(&planned, b"new").unwrap();
        assert!(!dead.exists(), "a gone run's file is removed");
        assert!(young.exists(), "a file younger than a minute is kept");
        assert!(living.exists() && other.exists() && parent_alive.exists() && f.path().exists());
    }

    #[test]
    fn a_stale_file_under_the_first_name_is_passed_by() {
        let d = tempfile::tempdir().unwrap();
        let planned = d.path().join("bprof-alice/p.rdp");
        create_private_dir(planned.parent().unwrap()).unwrap();
        let stale = planned.with_file_name(format!("p-{}-0.rdp", std::process::id()));
        std::fs::write(&stale, b"stale").unwrap();
        let f = TempRdp::create(&planned, b"new").unwrap();
        assert_ne!(f.path(), stale);
        assert_eq!(
            std::fs::read(&stale).unwrap(),
            b"stale",
            "not written through"
        );
    }
}
