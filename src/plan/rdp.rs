//! .rdp files: the profile's `rdp:` settings as properties, for `127.0.0.1:PORT` (the local end
//! of a bastion tunnel; not `localhost`, which some clients resolve to `::1` first, where
//! another user of the machine may listen). Never a password or token. Written as UTF-16LE
//! with a BOM and CRLF, as mstsc writes them (FreeRDP reads that; a UTF-8 BOM would corrupt
//! FreeRDP's first key).
//! Files are written by [`crate::write::write_atomic`].

use crate::profile::raw::{Audio, RdpValue, Screen};
use crate::profile::resolve::Profile;

/// The properties of a profile's .rdp file, in order, as `name:type:value` lines.
pub fn lines(profile: &Profile, port: u16) -> Vec<String> {
    let r = &profile.rdp;
    let b = |v: bool| if v { 1 } else { 0 };
    let mut out: Vec<(String, String)> =
        vec![("full address:s".into(), crate::plan::local_address(port))];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16le_with_bom_and_crlf() {
        let b = encode(&["full address:s:127.0.0.1:5".into()]);
        assert_eq!(&b[..4], &[0xFF, 0xFE, b'f', 0]);
        assert_eq!(&b[b.len() - 4..], &[b'\r', 0, b'\n', 0]);
    }
}
