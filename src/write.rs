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
    pub fn hint(&self) -> &'static str {
        match self {
            WriteError::Exists { .. } => "bprof never overwrites a file without --force",
            WriteError::Write { .. } => "check the directory exists and that you may write to it",
            WriteError::NotRegular { .. } | WriteError::TooLarge { .. } => {
                "replace it with a regular file, or add the lines yourself"
            }
        }
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, then rename).
/// Refuses to replace an existing file unless `force`. `private`: readable by the user only.
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    force: bool,
    private: bool,
) -> Result<(), WriteError> {
    let shown = path.display().to_string();
    if !force && path.exists() {
        return Err(WriteError::Exists { path: shown });
    }
    let err = |source| WriteError::Write {
        path: shown.clone(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if private { 0o600 } else { 0o644 });
        }
        let _ = private;
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        if !force && path.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "appeared while writing",
            ));
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        if e.kind() == std::io::ErrorKind::AlreadyExists && path.exists() {
            return Err(WriteError::Exists { path: shown });
        }
        return Err(err(e));
    }
    Ok(())
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
