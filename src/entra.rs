//! Entra ID ssh certificates (`auth_type: aad` on the native engine; issue 20, in progress):
//! a key pair per profile under the person's state directory, and an OpenSSH user certificate
//! for it from `az ssh cert` (the ssh extension's one command bprof needs), renewed when it is
//! missing or within [`RENEW_BEFORE`] of its end. OpenSSH then logs in with the key and the
//! certificate, as the principal the certificate names, through `bprof proxy`. This module is
//! the ground of it (paths, the certificate parser, the argv); `run` does not use it yet.
//!
//! The certificate is read by bprof only to know when it ends and whom it names: the fields
//! are parsed with every length checked against what is left (a file on disk is input).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A certificate this close to its end is renewed (an ssh login must not race its expiry).
pub const RENEW_BEFORE: u64 = 5 * 60;
/// A certificate file is read up to this size.
const MAX_CERT: u64 = 64 * 1024;

/// Where one profile's key and certificate live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The private key (0600); `.pub` beside it, and `-cert.pub` the certificate.
    pub key: PathBuf,
}

impl Paths {
    /// `<state>/entra/<profile>/id_rsa`.
    pub fn of(state: &Path, profile: &str) -> Paths {
        Paths {
            key: state.join("entra").join(profile).join("id_rsa"),
        }
    }

    pub fn public(&self) -> PathBuf {
        with_suffix(&self.key, ".pub")
    }

    pub fn cert(&self) -> PathBuf {
        with_suffix(&self.key, "-cert.pub")
    }
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// What a certificate says that bprof uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    /// The principals it is valid for (the Entra user's name).
    pub principals: Vec<String>,
    /// Seconds since the epoch; `u64::MAX` for "forever".
    pub valid_before: u64,
}

/// Where a profile's certificate stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// None, unreadable, or not a certificate.
    Missing,
    /// It ends within [`RENEW_BEFORE`] (or has ended).
    Expiring(Cert),
    Valid(Cert),
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The certificate of `paths`, judged at `now`.
pub fn status(paths: &Paths, now: u64) -> Status {
    let Ok(bytes) = crate::files::read_regular(&paths.cert(), MAX_CERT) else {
        return Status::Missing;
    };
    match parse(&String::from_utf8_lossy(&bytes)) {
        Ok(c) if c.valid_before > now.saturating_add(RENEW_BEFORE) => Status::Valid(c),
        Ok(c) => Status::Expiring(c),
        Err(_) => Status::Missing,
    }
}

/// Reads an OpenSSH certificate file (`TYPE BASE64 [comment]`): its principals and end.
pub fn parse(text: &str) -> Result<Cert, String> {
    let mut words = text.split_whitespace();
    let kind = words.next().ok_or("the file is empty")?;
    if !kind.ends_with("-cert-v01@openssh.com") {
        return Err("not a certificate type".into());
    }
    let blob = words.next().ok_or("no certificate after the type")?;
    let bytes = data_encoding::BASE64
        .decode(blob.as_bytes())
        .map_err(|_| "the certificate is not base64".to_string())?;
    let mut r = Reader(&bytes);
    let inner = r.string()?;
    if inner != kind.as_bytes() {
        return Err("the certificate's type differs from the file's".into());
    }
    r.string()?; // nonce
    // the public key's fields, by type
    let fields = match kind {
        "ssh-rsa-cert-v01@openssh.com" => 2,            // e, n
        "ssh-ed25519-cert-v01@openssh.com" => 1,        // pk
        k if k.starts_with("ecdsa-sha2-nistp") => 2,    // curve, point
        k if k.starts_with("sk-ssh-ed25519") => 2,      // pk, application
        k if k.starts_with("sk-ecdsa-sha2-nistp") => 3, // curve, point, application
        _ => return Err("an unknown certificate key type".into()),
    };
    for _ in 0..fields {
        r.string()?;
    }
    r.u64()?; // serial
    r.u32()?; // type
    r.string()?; // key id
    let mut list = Reader(r.string()?);
    let mut principals = Vec::new();
    while !list.0.is_empty() {
        let p = list.string()?;
        principals.push(String::from_utf8_lossy(p).into_owned());
    }
    r.u64()?; // valid after
    let valid_before = r.u64()?;
    Ok(Cert {
        principals,
        valid_before,
    })
}

/// SSH wire format: big-endian integers and length-prefixed strings, every length checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err("the certificate is cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn string(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// The argv that makes the key pair (RSA: what Entra signs), no passphrase, no prompt.
pub fn keygen_argv(paths: &Paths) -> Vec<String> {
    vec![
        "ssh-keygen".into(),
        "-q".into(),
        "-t".into(),
        "rsa".into(),
        "-b".into(),
        "3072".into(),
        "-N".into(),
        String::new(),
        "-C".into(),
        "bprof-entra".into(),
        "-f".into(),
        paths.key.display().to_string(),
    ]
}

/// The argv that asks Entra (through az's ssh extension) for the certificate.
pub fn cert_argv(paths: &Paths) -> Vec<String> {
    vec![
        "az".into(),
        "ssh".into(),
        "cert".into(),
        "--public-key-file".into(),
        paths.public().display().to_string(),
        "--file".into(),
        paths.cert().display().to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(parts: &[&[u8]]) -> String {
        let mut b = Vec::new();
        for p in parts {
            b.extend_from_slice(p);
        }
        data_encoding::BASE64.encode(&b)
    }

    fn s(x: &[u8]) -> Vec<u8> {
        let mut v = (x.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(x);
        v
    }

    #[test]
    fn principals_and_the_end_are_read_and_a_cut_file_is_an_error() {
        let kind = b"ssh-ed25519-cert-v01@openssh.com";
        let principals = [s(b"alice@contoso.com"), s(b"root")].concat();
        let parts: Vec<Vec<u8>> = vec![
            s(kind),
            s(b"nonce"),
            s(b"pk"),
            7u64.to_be_bytes().to_vec(),
            1u32.to_be_bytes().to_vec(),
            s(b"id"),
            s(&principals),
            10u64.to_be_bytes().to_vec(),
            2_000u64.to_be_bytes().to_vec(),
            s(b"rest"),
        ];
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let text = format!("ssh-ed25519-cert-v01@openssh.com {} c\n", blob(&refs));
        let c = parse(&text).unwrap();
        assert_eq!(c.principals, ["alice@contoso.com", "root"]);
        assert_eq!(c.valid_before, 2_000);
        for cut in 0..refs.len() - 1 {
            let t = format!("ssh-ed25519-cert-v01@openssh.com {}", blob(&refs[..cut]));
            assert!(parse(&t).is_err(), "{cut}");
        }
        assert!(parse("ssh-rsa AAAA").is_err());
        assert!(parse("").is_err());
        // a length past the end never panics
        let huge = [0xffu8, 0xff, 0xff, 0xff];
        let t = format!("ssh-ed25519-cert-v01@openssh.com {}", blob(&[&huge]));
        assert!(parse(&t).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_as_a_certificate_are_an_answer_never_a_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            kind in proptest::sample::select(vec![
                "ssh-rsa-cert-v01@openssh.com",
                "ssh-ed25519-cert-v01@openssh.com",
                "ecdsa-sha2-nistp256-cert-v01@openssh.com",
            ]),
        ) {
            let text = format!("{kind} {}", data_encoding::BASE64.encode(&bytes));
            let _ = parse(&text);
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn the_files_sit_beside_the_key() {
        let p = Paths::of(Path::new("/s"), "web");
        assert_eq!(p.key, Path::new("/s/entra/web/id_rsa"));
        assert_eq!(p.cert(), Path::new("/s/entra/web/id_rsa-cert.pub"));
        assert_eq!(p.public(), Path::new("/s/entra/web/id_rsa.pub"));
    }
}
