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
    let mut out = vec![format!(
        "full address:s:{}",
        crate::plan::local_address(port)
    )];
    out.extend(settings(profile));
    out
}

/// The profile's own properties: every line of [`lines`] but the address.
pub fn settings(profile: &Profile) -> Vec<String> {
    let r = &profile.rdp;
    let b = |v: bool| if v { 1 } else { 0 };
    let mut out: Vec<(String, String)> = Vec::new();
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
        // names compared as clients match them: any case, runs of spaces as one
        let normal = crate::profile::allow::rdp_key(key);
        if normal == "full address:s" {
            continue;
        }
        match out
            .iter_mut()
            .find(|(k, _)| crate::profile::allow::rdp_key(k) == normal)
        {
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

    /// The .rdp grammar (one `name:type:value` per line, split at the first two colons): every
    /// line reads back as the property bprof meant, and the address is the tunnel's alone.
    #[test]
    fn lines_read_back_as_meant_and_the_address_stays_the_tunnels() {
        let yaml = r#"version: 1
tenants: {t: {id: 11111111-1111-1111-1111-111111111111, subscription: 22222222-2222-2222-2222-222222222222}}
bastions: {b: {tenant: t, resource_group: rg, name: bas}}
vms: {v: {resource_group: rg, name: vm}}
profiles:
  p:
    bastion: b
    vm: v
    username: "alice:s:x full address:s:evil"
    rdp:
      properties:
        "Full  Address:s": "evil.example.com:3389"
        "FULL ADDRESS:s": "evil.example.com"
        "winposstr:s": "0,1,2:3"
"#;
        let set = crate::profile::load::load_text(
            std::path::Path::new("p.yaml"),
            "p.yaml".into(),
            yaml.into(),
        );
        let profile = crate::profile::resolve::resolve(&set, "p").unwrap();
        let lines = lines(&profile, 50123);
        let read: Vec<(String, String, String)> = lines
            .iter()
            .map(|l| {
                let mut parts = l.splitn(3, ':');
                let name = parts.next().unwrap_or("").to_string();
                let ty = parts.next().unwrap_or("").to_string();
                let value = parts.next().unwrap_or("").to_string();
                (name, ty, value)
            })
            .collect();
        let addresses: Vec<&(String, String, String)> = read
            .iter()
            .filter(|(n, _, _)| {
                crate::profile::allow::rdp_key(&format!("{n}:s")) == "full address:s"
            })
            .collect();
        assert_eq!(addresses.len(), 1, "{lines:?}");
        assert_eq!(addresses[0].2, "127.0.0.1:50123");
        assert!(read.contains(&(
            "username".into(),
            "s".into(),
            "alice:s:x full address:s:evil".into()
        )));
        assert!(read.contains(&("winposstr".into(), "s".into(), "0,1,2:3".into())));
    }

    #[test]
    fn utf16le_with_bom_and_crlf() {
        let b = encode(&["full address:s:127.0.0.1:5".into()]);
        assert_eq!(&b[..4], &[0xFF, 0xFE, b'f', 0]);
        assert_eq!(&b[b.len() - 4..], &[b'\r', 0, b'\n', 0]);
    }
}
