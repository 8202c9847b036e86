//! Reading files other people wrote: only regular files are opened for reading (a FIFO or a
//! device never blocks bprof: on Unix the open is non-blocking and the opened handle is checked),
//! reads are bounded by the bytes actually read (procfs reports size 0 for files of any
//! length), and an entry of a directory may be a symlink only to a regular file inside that
//! directory. Used by the profile loader, az's profile file and `bprof init`'s `.gitignore`.

use std::fs::{File, FileType, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a path is when it is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Other,
}

impl Special {
    /// None for a regular file.
    pub fn of(ft: &FileType) -> Option<Special> {
        if ft.is_file() {
            return None;
        }
        if ft.is_dir() {
            return Some(Special::Directory);
        }
        if ft.is_symlink() {
            return Some(Special::Symlink);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_fifo() {
                return Some(Special::Fifo);
            }
            if ft.is_socket() {
                return Some(Special::Socket);
            }
            if ft.is_char_device() {
                return Some(Special::CharDevice);
            }
            if ft.is_block_device() {
                return Some(Special::BlockDevice);
            }
        }
        Some(Special::Other)
    }

    /// With an article, for messages: "a FIFO (named pipe)".
    pub fn describe(self) -> &'static str {
        match self {
            Special::Directory => "a directory",
            Special::Symlink => "a symlink",
            Special::Fifo => "a FIFO (named pipe)",
            Special::Socket => "a socket",
            Special::CharDevice => "a character device",
            Special::BlockDevice => "a block device",
            Special::Other => "a special file",
        }
    }
}

impl std::fmt::Display for Special {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("it is {0}, not a regular file")]
    NotRegular(Special),
    #[error("it is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Opens `path` with `opts` (plus, on Unix, `O_NONBLOCK` and `O_NOCTTY`: opening a FIFO or a
/// terminal never blocks or adopts it) and refuses anything but a regular file, by the opened
/// handle's own metadata (so a path swapped after an earlier check is still caught). Without
/// `follow_links` a symlink at `path` itself is refused (`O_NOFOLLOW` on Unix).
pub fn open_regular(
    path: &Path,
    opts: &mut OpenOptions,
    follow_links: bool,
) -> Result<File, ReadError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let no_follow = if follow_links { 0 } else { libc::O_NOFOLLOW };
        opts.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | no_follow);
    }
    #[cfg(not(unix))]
    if !follow_links && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(ReadError::NotRegular(Special::Symlink));
    }
    let file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if !follow_links && is_loop(&e) => {
            return Err(ReadError::NotRegular(Special::Symlink));
        }
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    if let Some(special) = Special::of(&meta.file_type()) {
        return Err(ReadError::NotRegular(special));
    }
    Ok(file)
}

/// Reads the regular file at `path`, at most `limit` bytes; more is [`ReadError::TooLarge`].
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_regular(path, OpenOptions::new().read(true), true)?;
    let hint = file.metadata().map(|m| m.len()).unwrap_or(0);
    read_limited(file, limit, hint)
}

/// Reads at most `limit + 1` bytes of `from`; more than `limit` is [`ReadError::TooLarge`].
/// `size_hint` (the file's reported length, which may be 0 or wrong) only sizes the buffer.
pub fn read_limited(from: impl Read, limit: u64, size_hint: u64) -> Result<Vec<u8>, ReadError> {
    let cap = usize::try_from(size_hint.min(limit.saturating_add(1))).unwrap_or(0);
    let mut buf = Vec::with_capacity(cap);
    let result = from.take(limit.saturating_add(1)).read_to_end(&mut buf);
    let read = buf.len() as u64;
    match result {
        Ok(_) if read > limit => Err(ReadError::TooLarge { limit }),
        Ok(_) => Ok(buf),
        // some procfs files (/proc/self/pagemap) refuse reads of a length that is not a
        // multiple of 8: the probe for byte `limit + 1` fails once `limit` bytes were read
        Err(_) if read >= limit => Err(ReadError::TooLarge { limit }),
        Err(e) => Err(ReadError::Io(e)),
    }
}

/// Why an entry of a directory is not read.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("it is a symlink that leaves the directory (to {})", .target.display())]
    LeavesDir { target: PathBuf },
    #[error("it is a symlink loop")]
    Loop,
    #[error("it is a symlink to nothing (its target does not exist)")]
    Dangling,
    #[error("it is {0}, not a regular file")]
    NotRegular(Special),
    #[error("it is a symlink to {0}, not to a regular file")]
    LinkToNotRegular(Special),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The path to read for `entry`, a name listed in the directory `dir` (which must be
/// canonical): the entry itself when it is a regular file, the link's canonical target when it
/// is a symlink to a regular file inside `dir`. Everything else is refused.
pub fn dir_entry(entry: &Path, dir: &Path) -> Result<PathBuf, EntryError> {
    let meta = std::fs::symlink_metadata(entry)?;
    if !meta.file_type().is_symlink() {
        return match Special::of(&meta.file_type()) {
            None => Ok(entry.to_path_buf()),
            Some(s) => Err(EntryError::NotRegular(s)),
        };
    }
    let target = match std::fs::canonicalize(entry) {
        Ok(t) => t,
        Err(e) if is_loop(&e) => return Err(EntryError::Loop),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(EntryError::Dangling),
        Err(e) => return Err(EntryError::Io(e)),
    };
    if !target.starts_with(dir) {
        return Err(EntryError::LeavesDir { target });
    }
    // the canonical target has no links left in it: this is what will be opened
    let meta = std::fs::symlink_metadata(&target)?;
    match Special::of(&meta.file_type()) {
        None => Ok(target),
        Some(s) => Err(EntryError::LinkToNotRegular(s)),
    }
}

/// Whether an error from resolving a path means a symlink loop (too many levels of links).
fn is_loop(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(windows)]
    {
        // ERROR_CANT_RESOLVE_FILENAME
        e.raw_os_error() == Some(1921)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = e;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_one_byte_more() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_regular(&p, 5).unwrap(), b"12345");
        assert!(matches!(
            read_regular(&p, 4),
            Err(ReadError::TooLarge { limit: 4 })
        ));
        // the reported size does not matter, only the bytes read
        assert!(matches!(
            read_limited(&b"123456"[..], 5, 0),
            Err(ReadError::TooLarge { .. })
        ));
        assert!(matches!(
            read_regular(d.path(), 5),
            Err(ReadError::NotRegular(Special::Directory)) | Err(ReadError::Io(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_fifos_are_refused_without_blocking() {
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 16),
            Err(ReadError::NotRegular(Special::CharDevice))
        ));
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("x.yaml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_regular(&fifo, 16),
            Err(ReadError::NotRegular(Special::Fifo))
        ));
        assert!(matches!(
            dir_entry(&fifo, &std::fs::canonicalize(d.path()).unwrap()),
            Err(EntryError::NotRegular(Special::Fifo))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn no_follow_refuses_a_link() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "x").unwrap();
        std::os::unix::fs::symlink("f", d.path().join("l")).unwrap();
        let mut opts = OpenOptions::new();
        assert!(matches!(
            open_regular(&d.path().join("l"), opts.read(true), false),
            Err(ReadError::NotRegular(Special::Symlink))
        ));
        assert!(open_regular(&d.path().join("l"), opts.read(true), true).is_ok());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn procfs_files_of_size_zero_are_bounded() {
        let p = Path::new("/proc/self/pagemap");
        if std::fs::File::open(p).is_ok() {
            assert!(matches!(
                read_regular(p, 1 << 20),
                Err(ReadError::TooLarge { .. })
            ));
        }
    }

    #[cfg(unix)]
    #[test]
    fn links_in_a_directory() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let dir = root.join("profiles");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("a.yaml"), "version: 1\n").unwrap();
        std::fs::write(root.join("secret"), "s").unwrap();
        symlink("a.yaml", dir.join("in.yaml")).unwrap();
        symlink("../secret", dir.join("out.yaml")).unwrap();
        symlink("loop2.yaml", dir.join("loop1.yaml")).unwrap();
        symlink("loop1.yaml", dir.join("loop2.yaml")).unwrap();
        symlink("nothing", dir.join("dangling.yaml")).unwrap();
        symlink(".", dir.join("self.yaml")).unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        symlink("sub", dir.join("sub.yaml")).unwrap();
        assert_eq!(
            dir_entry(&dir.join("a.yaml"), &dir).unwrap(),
            dir.join("a.yaml")
        );
        assert_eq!(
            dir_entry(&dir.join("in.yaml"), &dir).unwrap(),
            dir.join("a.yaml")
        );
        assert!(matches!(
            dir_entry(&dir.join("out.yaml"), &dir),
            Err(EntryError::LeavesDir { .. })
        ));
        assert!(matches!(
            dir_entry(&dir.join("loop1.yaml"), &dir),
            Err(EntryError::Loop)
        ));
        assert!(matches!(
            dir_entry(&dir.join("dangling.yaml"), &dir),
            Err(EntryError::Dangling)
        ));
        assert!(matches!(
            dir_entry(&dir.join("self.yaml"), &dir),
            Err(EntryError::LinkToNotRegular(Special::Directory))
        ));
        assert!(matches!(
            dir_entry(&dir.join("sub.yaml"), &dir),
            Err(EntryError::LinkToNotRegular(Special::Directory))
        ));
        assert!(matches!(
            dir_entry(&dir.join("sub"), &dir),
            Err(EntryError::NotRegular(Special::Directory))
        ));
    }
}
