//! Writing output files: atomically (a temp file in the same directory, then a rename), so an
//! interrupted write never leaves half a file, and never over an existing file without force.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors of this layer.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path} exists")]
    Exists { path: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An existing file bprof would change is a link or not a regular file: not written through.
    #[error("{path} is {what}: bprof does not write through it")]
    NotRegular { path: String, what: &'static str },
    #[error("{path} is larger than bprof reads ({limit} bytes): left as it is")]
    TooLarge { path: String, limit: u64 },
}

impl WriteError {
    /// bprof's exit code for it: 73, a file could not be created.
    pub fn exit_code(&self) -> i32 {
        crate::exit::CANT_CREATE
    }

    pub fn hint(&self) -> &'static str {
        match self {
            WriteError::Exists { .. } => "bprof never overwrites a file without --force",
            WriteError::Write { .. } => "check the directory exists and that you may write to it",
            WriteError::NotRegular { .. } => {
                "bprof replaces only regular files, even with --force: remove it or choose another path (for .gitignore: add the lines yourself)"
            }
            WriteError::TooLarge { .. } => {
                "replace it with a regular file, or add the lines yourself"
            }
        }
    }
}

/// What a path that is not a regular file is, as people say it (None: a regular file).
fn special(ft: &std::fs::FileType) -> Option<&'static str> {
    crate::files::Special::of(ft).map(crate::files::Special::describe)
}

/// What is at `path` now: nothing (Ok), a regular file (Exists without `force`), or something
/// else (a symlink, dangling or not, a directory, a device, a FIFO: refused, `force` or not).
fn check_target(path: &Path, force: bool) -> Result<(), WriteError> {
    let shown = || path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(WriteError::Write {
            path: shown(),
            source,
        }),
        Ok(meta) => match special(&meta.file_type()) {
            Some(what) => Err(WriteError::NotRegular {
                path: shown(),
                what,
            }),
            None if force => Ok(()),
            None => Err(WriteError::Exists { path: shown() }),
        },
    }
}

/// How many temp names one write tries before it gives up.
const TEMP_ATTEMPTS: u32 = 100;

/// Creates a temp file of our own beside the target: `.NAME.PID.N.tmp`, new (a file left by a
/// crashed run under a name is passed by, never written through).
fn create_temp(dir: &Path, name: &str, private: bool) -> std::io::Result<(PathBuf, std::fs::File)> {
    let pid = std::process::id();
    let mut attempt = 0;
    loop {
        let tmp = dir.join(format!(".{name}.{pid}.{attempt}.tmp"));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if private { 0o600 } else { 0o644 });
        }
        #[cfg(not(any(unix, windows)))]
        let _ = private;
        match opts.open(&tmp) {
            // Windows: an access list of the person alone, before anything is written into it
            #[cfg(windows)]
            Ok(f) if private => {
                if let Err(e) = crate::owner::make_private(&tmp) {
                    drop(f);
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
                return Ok((tmp, f));
            }
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < TEMP_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, then rename).
/// Refuses to replace an existing file unless `force`, and anything that is not a regular file
/// (a symlink, a directory, a device, a FIFO) always. `private`: readable by the user only.
/// The temp file is removed on every failure.
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    force: bool,
    private: bool,
) -> Result<(), WriteError> {
    let shown = path.display().to_string();
    check_target(path, force)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tmp, mut f) = create_temp(&dir, &name, private).map_err(|source| WriteError::Write {
        path: shown.clone(),
        source,
    })?;
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        // what may have appeared meanwhile is checked again just before the rename
        check_target(path, force).map_err(Refused)?;
        if force {
            return std::fs::rename(&tmp, path).map_err(Refused::io);
        }
        // no overwrite, atomically: a hard link fails when the name exists
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {
                let _ = std::fs::remove_file(&tmp);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Refused(check_target(path, false).err().unwrap_or(
                    WriteError::Exists {
                        path: shown.clone(),
                    },
                )))
            }
            // a file system without hard links: the check above, then rename
            Err(_) => std::fs::rename(&tmp, path).map_err(Refused::io),
        }
    })();
    if let Err(Refused(e)) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(match e {
            WriteError::Write { source, .. } => WriteError::Write {
                path: shown,
                source,
            },
            other => other,
        });
    }
    Ok(())
}

/// Why a write did not happen, inside [`write_atomic`].
struct Refused(WriteError);

impl Refused {
    fn io(source: std::io::Error) -> Refused {
        Refused(WriteError::Write {
            path: String::new(),
            source,
        })
    }
}

impl From<std::io::Error> for Refused {
    fn from(source: std::io::Error) -> Refused {
        Refused::io(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_overwrite_without_force() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.rdp");
        std::fs::write(&p, b"keep").unwrap();
        assert!(matches!(
            write_atomic(&p, b"new", false, false),
            Err(WriteError::Exists { .. })
        ));
        assert_eq!(std::fs::read(&p).unwrap(), b"keep");
        write_atomic(&p, b"new", true, false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}

#[cfg(all(test, unix))]
mod special_tests {
    use super::*;

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn links_directories_and_fifos_are_refused_even_with_force() {
        let d = tempfile::tempdir().unwrap();
        let dangling = d.path().join("dangling.rdp");
        std::os::unix::fs::symlink(d.path().join("nowhere"), &dangling).unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = d.path().join("link.rdp");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dir = d.path().join("dir.rdp");
        std::fs::create_dir(&dir).unwrap();
        let fifo = d.path().join("fifo.rdp");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for (p, what) in [
            (&dangling, "a symlink"),
            (&link, "a symlink"),
            (&dir, "a directory"),
            (&fifo, "a FIFO (named pipe)"),
        ] {
            for force in [false, true] {
                match write_atomic(p, b"new", force, false) {
                    Err(WriteError::NotRegular { what: w, .. }) => assert_eq!(w, what, "{p:?}"),
                    other => panic!("{p:?} force={force}: {other:?}"),
                }
            }
        }
        assert!(
            std::fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            !d.path().join("nowhere").exists(),
            "nothing written through the link"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert_eq!(
            entries(d.path()),
            ["dangling.rdp", "dir.rdp", "fifo.rdp", "link.rdp", "target"],
            "no temp file left"
        );
    }

    #[test]
    fn a_stale_temp_file_is_passed_by() {
        let d = tempfile::tempdir().unwrap();
        let pid = std::process::id();
        // what a crashed run with this pid left, in the old and in the current form
        for stale in [format!(".a.rdp.{pid}.tmp"), format!(".a.rdp.{pid}.0.tmp")] {
            std::fs::write(d.path().join(stale), b"stale").unwrap();
        }
        let p = d.path().join("a.rdp");
        write_atomic(&p, b"new", false, false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(
            std::fs::read(d.path().join(format!(".a.rdp.{pid}.0.tmp"))).unwrap(),
            b"stale"
        );
        assert_eq!(entries(d.path()).len(), 3, "only the stale files beside it");
    }
}
