//! .rdp files: the profile's `rdp:` settings as properties, for `localhost:PORT` (the local end
//! of a bastion tunnel). Never a password or token. Written as UTF-16LE with a BOM and CRLF, as
//! mstsc writes them (FreeRDP reads that; a UTF-8 BOM would corrupt FreeRDP's first key), and
//! atomically: a temp file in the same directory, then a rename.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::raw::{Audio, RdpValue, Screen};
use crate::resolve::Profile;

/// Errors of this layer.
#[derive(Debug, thiserror::Error)]
pub enum RdpError {
    #[error("{path} exists")]
    Exists { path: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl RdpError {
    pub fn hint(&self) -> &'static str {
        match self {
            RdpError::Exists { .. } => "bprof never overwrites a file without --force",
            RdpError::Write { .. } => "check the directory exists and that you may write to it",
        }
    }
}

/// The properties of a profile's .rdp file, in order, as `name:type:value` lines.
pub fn lines(profile: &Profile, port: u16) -> Vec<String> {
    let r = &profile.rdp;
    let b = |v: bool| if v { 1 } else { 0 };
    let mut out: Vec<(String, String)> =
        vec![("full address:s".into(), format!("localhost:{port}"))];
    if let Some(u) = &profile.username {
        out.push(("username:s".into(), u.clone()));
    }
    if let Some(s) = r.screen {
        out.push((
            "screen mode id:i".into(),
            (if s == Screen::Fullscreen { 2 } else { 1 }).to_string(),
        ));
    }
    if let Some(w) = r.width {
        out.push(("desktopwidth:i".into(), w.to_string()));
    }
    if let Some(h) = r.height {
        out.push(("desktopheight:i".into(), h.to_string()));
    }
    if let Some(m) = r.multimon {
        out.push(("use multimon:i".into(), b(m).to_string()));
    }
    if let Some(c) = r.clipboard {
        out.push(("redirectclipboard:i".into(), b(c).to_string()));
    }
    if let Some(d) = r.drives {
        out.push((
            "drivestoredirect:s".into(),
            if d { "*".into() } else { String::new() },
        ));
    }
    if let Some(a) = r.audio {
        let n = match a {
            Audio::Local => 0,
            Audio::Remote => 1,
            Audio::None => 2,
        };
        out.push(("audiomode:i".into(), n.to_string()));
    }
    if profile.enable_mfa {
        out.push(("enablerdsaadauth:i".into(), "1".into()));
    }
    for (key, value) in &r.properties {
        let v = match value {
            RdpValue::Int(i) => i.to_string(),
            RdpValue::Text(t) => t.clone(),
        };
        // a property given explicitly replaces bprof's own line of the same name, except the
        // address, which is always the tunnel's
        if key.eq_ignore_ascii_case("full address:s") {
            continue;
        }
        match out.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some(existing) => existing.1 = v,
            None => out.push((key.clone(), v)),
        }
    }
    out.into_iter().map(|(k, v)| format!("{k}:{v}")).collect()
}

/// The file's bytes: UTF-16LE, byte-order mark, CRLF line ends.
pub fn encode(lines: &[String]) -> Vec<u8> {
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    let mut out = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, then rename).
/// Refuses to replace an existing file unless `force`. `private`: readable by the user only.
pub fn write_atomic(path: &Path, bytes: &[u8], force: bool, private: bool) -> Result<(), RdpError> {
    let shown = path.display().to_string();
    if !force && path.exists() {
        return Err(RdpError::Exists { path: shown });
    }
    let err = |source| RdpError::Write {
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
            return Err(RdpError::Exists { path: shown });
        }
        return Err(err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16le_with_bom_and_crlf() {
        let b = encode(&["full address:s:localhost:5".into()]);
        assert_eq!(&b[..4], &[0xFF, 0xFE, b'f', 0]);
        assert_eq!(&b[b.len() - 4..], &[b'\r', 0, b'\n', 0]);
    }

    #[test]
    fn no_overwrite_without_force() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.rdp");
        std::fs::write(&p, b"keep").unwrap();
        assert!(matches!(
            write_atomic(&p, b"new", false, false),
            Err(RdpError::Exists { .. })
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
