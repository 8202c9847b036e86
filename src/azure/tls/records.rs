//! TLS records sealed and opened in bprof's own buffers, once rustls has made the handshake.
//!
//! rustls's kernel API hands over the traffic keys after the handshake (and computes the next
//! ones at a TLS 1.3 key update); this file is the record layer of RFC 8446 §5 and RFC 5246
//! §6.2 on ring's AEADs, nothing more: a record is sealed where it is built (the websocket's
//! frame written straight into it) and opened where it was read, so no byte of the tunnel is
//! copied between buffers. Every record opened is network input: lengths are checked against
//! what TLS allows before anything is indexed, and nothing here panics on any bytes.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::io;
use std::ops::Range;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use tokio_rustls::rustls::{ConnectionTrafficSecrets, ProtocolVersion};

/// A record's header: type, version, length.
pub const HEADER: usize = 5;
/// The most plaintext a record carries.
pub const MAX_PLAIN: usize = 16 * 1024;
/// The AEAD tag after each record's ciphertext.
const TAG: usize = 16;
/// TLS 1.2's AES-GCM records carry 8 bytes of their nonce before the ciphertext.
const EXPLICIT: usize = 8;
/// AES-GCM keys are changed (TLS 1.3) or the connection ended (TLS 1.2) after this many
/// records: below the 2^24.5 of RFC 8446 §5.5.
const GCM_LIMIT: u64 = 1 << 24;

/// Handshake messages after the handshake (session tickets) are taken up to this size.
pub const MAX_HANDSHAKE: usize = 64 * 1024;

pub const HELLO_REQUEST: u8 = 0;
pub const NEW_SESSION_TICKET: u8 = 4;
pub const KEY_UPDATE: u8 = 24;

pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APPLICATION_DATA: u8 = 23;

/// What is wrong with a record, or with sealing one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("a TLS record of {0} bytes is longer than TLS allows")]
    TooLong(usize),
    #[error("a TLS record failed its integrity check (bad_record_mac)")]
    Integrity,
    #[error("a TLS record of content type {0} where none may be")]
    Type(u8),
    #[error("a TLS record of protocol version {0}.{1}")]
    Version(u8, u8),
    #[error("a TLS 1.3 record without its content type")]
    NoType,
    #[error("the TLS record counter is used up")]
    Exhausted,
    #[error("the negotiated TLS version or cipher is not one bprof's record layer has")]
    Unsupported,
}

impl From<RecordError> for io::Error {
    fn from(e: RecordError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// The protocol version, which decides the records' shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Tls12,
    Tls13,
}

impl Version {
    pub fn of(v: ProtocolVersion) -> Result<Version, RecordError> {
        match v {
            ProtocolVersion::TLSv1_2 => Ok(Version::Tls12),
            ProtocolVersion::TLSv1_3 => Ok(Version::Tls13),
            _ => Err(RecordError::Unsupported),
        }
    }
}

/// One direction's key, its IV and its record counter.
struct Keys {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
    gcm: bool,
}

impl Keys {
    fn new(secrets: &ConnectionTrafficSecrets, seq: u64) -> Result<Keys, RecordError> {
        let (alg, key, iv, gcm) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv, true),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv, true),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv, false)
            }
            _ => return Err(RecordError::Unsupported),
        };
        let iv: [u8; 12] = iv
            .as_ref()
            .try_into()
            .map_err(|_| RecordError::Unsupported)?;
        Keys::raw(alg, key.as_ref(), iv, seq, gcm)
    }

    fn raw(
        alg: &'static aead::Algorithm,
        key: &[u8],
        iv: [u8; 12],
        seq: u64,
        gcm: bool,
    ) -> Result<Keys, RecordError> {
        let key = UnboundKey::new(alg, key).map_err(|_| RecordError::Unsupported)?;
        Ok(Keys {
            key: LessSafeKey::new(key),
            iv,
            seq,
            gcm,
        })
    }

    /// The IV with the counter XORed into its last 8 bytes.
    fn nonce(&self) -> [u8; 12] {
        let mut n = self.iv;
        for (b, s) in n.iter_mut().skip(4).zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        n
    }

    fn advance(&mut self) -> Result<(), RecordError> {
        self.seq = self.seq.checked_add(1).ok_or(RecordError::Exhausted)?;
        Ok(())
    }
}

/// TLS 1.2's additional data: counter, type, version, plaintext length.
fn aad12(seq: u64, typ: u8, len: usize) -> Result<[u8; 13], RecordError> {
    let len = u16::try_from(len).map_err(|_| RecordError::TooLong(len))?;
    let mut a = [0u8; 13];
    let (s, rest) = a.split_at_mut(8);
    s.copy_from_slice(&seq.to_be_bytes());
    let [t, v0, v1, l0, l1] = rest else {
        return Err(RecordError::Unsupported);
    };
    let [hi, lo] = len.to_be_bytes();
    (*t, *v0, *v1, *l0, *l1) = (typ, 3, 3, hi, lo);
    Ok(a)
}

/// Seals the records bprof sends.
pub struct Sealer {
    keys: Keys,
    version: Version,
    /// The records its keys may seal.
    limit: u64,
}

/// The records a key may seal.
fn limit(keys: &Keys) -> u64 {
    if keys.gcm { GCM_LIMIT } else { u64::MAX }
}

impl Sealer {
    pub fn new(
        version: Version,
        (seq, secrets): &(u64, ConnectionTrafficSecrets),
    ) -> Result<Sealer, RecordError> {
        let keys = Keys::new(secrets, *seq)?;
        Ok(Sealer {
            limit: limit(&keys),
            keys,
            version,
        })
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The keys have sealed as many records as is safe: change them (TLS 1.3) or end.
    pub fn worn(&self) -> bool {
        self.keys.seq >= self.limit
    }

    /// New keys after a key update (the counter starts again).
    pub fn rekey(&mut self, secrets: &(u64, ConnectionTrafficSecrets)) -> Result<(), RecordError> {
        self.keys = Keys::new(&secrets.1, secrets.0)?;
        self.limit = limit(&self.keys);
        Ok(())
    }

    /// For tests: as if the keys had sealed all the records they may.
    #[doc(hidden)]
    pub fn wear_out(&mut self) {
        self.limit = self.keys.seq;
    }

    /// Appends one record of content type `typ` to `out`, its plaintext (at most
    /// [`MAX_PLAIN`] bytes) appended by `fill`, then sealed in place. On any error `out` is as
    /// it was.
    pub fn seal(
        &mut self,
        typ: u8,
        out: &mut Vec<u8>,
        fill: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        let start = out.len();
        let sealed = self.seal_at(start, typ, out, fill);
        if sealed.is_err() {
            out.truncate(start);
        }
        sealed
    }

    fn seal_at(
        &mut self,
        start: usize,
        typ: u8,
        out: &mut Vec<u8>,
        fill: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        let nonce = self.keys.nonce();
        out.extend_from_slice(&[0; HEADER]);
        let explicit = self.version == Version::Tls12 && self.keys.gcm;
        if explicit {
            out.extend_from_slice(nonce.get(4..).unwrap_or_default());
        }
        let body = out.len();
        fill(out)?;
        let plain = out.len().saturating_sub(body);
        if plain > MAX_PLAIN {
            return Err(RecordError::TooLong(plain).into());
        }
        let outer = match self.version {
            Version::Tls13 => {
                out.push(typ);
                APPLICATION_DATA
            }
            Version::Tls12 => typ,
        };
        let len = out
            .len()
            .saturating_sub(start)
            .saturating_sub(HEADER)
            .saturating_add(TAG);
        let [hi, lo] = u16::try_from(len)
            .map_err(|_| RecordError::TooLong(len))?
            .to_be_bytes();
        let header = [outer, 3, 3, hi, lo];
        let a12;
        let aad: &[u8] = match self.version {
            Version::Tls13 => &header,
            Version::Tls12 => {
                a12 = aad12(self.keys.seq, typ, plain)?;
                &a12
            }
        };
        let sealing = out.get_mut(body..).unwrap_or_default();
        let tag = self
            .keys
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                sealing,
            )
            .map_err(|_| RecordError::Integrity)?;
        out.extend_from_slice(tag.as_ref());
        if let Some(h) = out.get_mut(start..start.saturating_add(HEADER)) {
            h.copy_from_slice(&header);
        }
        self.keys.advance()?;
        Ok(())
    }
}

/// A sealer and an opener sharing fixed keys of `kind` (0 AES-128-GCM, 1 AES-256-GCM, else
/// ChaCha20-Poly1305): for the tests and the fuzz target, which seal what they then open.
#[doc(hidden)]
pub fn fixed_pair(version: Version, kind: u8) -> Result<(Sealer, Opener), RecordError> {
    let keys = || {
        let (alg, len, gcm) = match kind {
            0 => (&aead::AES_128_GCM, 16, true),
            1 => (&aead::AES_256_GCM, 32, true),
            _ => (&aead::CHACHA20_POLY1305, 32, false),
        };
        Keys::raw(
            alg,
            [7u8; 32].get(..len).unwrap_or_default(),
            [8; 12],
            0,
            gcm,
        )
    };
    let sealing = keys()?;
    Ok((
        Sealer {
            limit: limit(&sealing),
            keys: sealing,
            version,
        },
        Opener {
            keys: keys()?,
            version,
        },
    ))
}

/// A record opened in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Its content type (TLS 1.3: the inner one).
    pub typ: u8,
    /// Where its plaintext is, in the buffer given.
    pub plain: Range<usize>,
    /// The record's length on the wire: where the next one starts.
    pub len: usize,
}

/// Opens the records the service sends.
pub struct Opener {
    keys: Keys,
    version: Version,
}

impl Opener {
    pub fn new(
        version: Version,
        (seq, secrets): &(u64, ConnectionTrafficSecrets),
    ) -> Result<Opener, RecordError> {
        Ok(Opener {
            keys: Keys::new(secrets, *seq)?,
            version,
        })
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// New keys after the service's key update (the counter starts again).
    pub fn rekey(&mut self, secrets: &(u64, ConnectionTrafficSecrets)) -> Result<(), RecordError> {
        self.keys = Keys::new(&secrets.1, secrets.0)?;
        Ok(())
    }

    /// Opens the record at the start of `buf` in place: None while it is not all there.
    pub fn open(&mut self, buf: &mut [u8]) -> Result<Option<Opened>, RecordError> {
        let Some(&[typ, major, minor, hi, lo]) = buf.get(..HEADER) else {
            return Ok(None);
        };
        // after the handshake every record says 3.3 (TLS 1.2, and TLS 1.3's legacy version)
        if (major, minor) != (3, 3) {
            return Err(RecordError::Version(major, minor));
        }
        let allowed = match self.version {
            Version::Tls13 => typ == APPLICATION_DATA,
            Version::Tls12 => matches!(typ, ALERT | HANDSHAKE | APPLICATION_DATA),
        };
        if !allowed {
            return Err(RecordError::Type(typ));
        }
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let most = match self.version {
            Version::Tls13 => MAX_PLAIN.saturating_add(256),
            Version::Tls12 => MAX_PLAIN.saturating_add(2048),
        };
        if len > most {
            return Err(RecordError::TooLong(len));
        }
        let total = HEADER.saturating_add(len);
        let Some(record) = buf.get_mut(..total) else {
            return Ok(None);
        };
        let body = record.get_mut(HEADER..).unwrap_or_default();
        let header: [u8; HEADER] = [typ, major, minor, hi, lo];
        let opened = match self.version {
            Version::Tls13 => self.open13(&header, body)?,
            Version::Tls12 => self.open12(typ, body)?,
        };
        self.keys.advance()?;
        Ok(Some(Opened {
            typ: opened.0,
            plain: opened.1,
            len: total,
        }))
    }

    fn open13(
        &self,
        header: &[u8; HEADER],
        body: &mut [u8],
    ) -> Result<(u8, Range<usize>), RecordError> {
        let nonce = Nonce::assume_unique_for_key(self.keys.nonce());
        let plain = self
            .keys
            .key
            .open_in_place(nonce, Aad::from(header), body)
            .map_err(|_| RecordError::Integrity)?;
        // the inner content type is the last byte that is not padding
        let at = plain
            .iter()
            .rposition(|&b| b != 0)
            .ok_or(RecordError::NoType)?;
        if at > MAX_PLAIN {
            return Err(RecordError::TooLong(at));
        }
        let inner = plain.get(at).copied().ok_or(RecordError::NoType)?;
        Ok((inner, HEADER..HEADER.saturating_add(at)))
    }

    fn open12(&self, typ: u8, body: &mut [u8]) -> Result<(u8, Range<usize>), RecordError> {
        let (nonce, sealed, offset) = if self.keys.gcm {
            if body.len() < EXPLICIT.saturating_add(TAG) {
                return Err(RecordError::Integrity);
            }
            let (explicit, sealed) = body.split_at_mut(EXPLICIT);
            let mut nonce = self.keys.iv;
            for (n, e) in nonce.iter_mut().skip(4).zip(explicit.iter()) {
                *n = *e;
            }
            (nonce, sealed, HEADER.saturating_add(EXPLICIT))
        } else {
            if body.len() < TAG {
                return Err(RecordError::Integrity);
            }
            (self.keys.nonce(), body, HEADER)
        };
        let plain_len = sealed.len().saturating_sub(TAG);
        if plain_len > MAX_PLAIN {
            return Err(RecordError::TooLong(plain_len));
        }
        let aad = aad12(self.keys.seq, typ, plain_len)?;
        let plain = self
            .keys
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), sealed)
            .map_err(|_| RecordError::Integrity)?;
        Ok((typ, offset..offset.saturating_add(plain.len())))
    }
}

/// What a handshake message after the handshake asks of bprof.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    Nothing,
    KeyUpdate { asked: bool },
}

/// The first complete message of `hs` (taken from it), None while there is none; an error for
/// a message that may not come now, or that is too long.
pub fn next_message(hs: &mut Vec<u8>, version: Version) -> io::Result<Option<After>> {
    let Some(&[typ, a, b, c]) = hs.get(..4) else {
        return Ok(None);
    };
    let len = usize::try_from(u32::from_be_bytes([0, a, b, c])).unwrap_or(usize::MAX);
    let whole = len.saturating_add(4);
    if whole > MAX_HANDSHAKE {
        return Err(invalid(
            "a handshake message after the handshake is too long",
        ));
    }
    let Some(body) = hs.get(4..whole) else {
        return Ok(None);
    };
    let after = match (version, typ, body) {
        (Version::Tls13, NEW_SESSION_TICKET, _) | (Version::Tls12, HELLO_REQUEST, []) => {
            After::Nothing
        }
        (Version::Tls13, KEY_UPDATE, [0]) => After::KeyUpdate { asked: false },
        (Version::Tls13, KEY_UPDATE, [1]) => After::KeyUpdate { asked: true },
        (_, t, _) => {
            return Err(invalid(format!(
                "handshake message {t} ({len} bytes) after the handshake"
            )));
        }
    };
    hs.drain(..whole);
    Ok(Some(after))
}

/// An error for bytes from the network that are not what TLS allows.
pub fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn pair(version: Version, kind: u8) -> (Sealer, Opener) {
        fixed_pair(version, kind).unwrap()
    }

    const ALL: [(Version, u8); 6] = [
        (Version::Tls13, 0),
        (Version::Tls13, 1),
        (Version::Tls13, 2),
        (Version::Tls12, 0),
        (Version::Tls12, 1),
        (Version::Tls12, 2),
    ];

    #[test]
    fn records_sealed_open_to_the_same_bytes_in_every_version_and_cipher() {
        for (v, kind) in ALL {
            let (mut s, mut o) = pair(v, kind);
            let mut wire = Vec::new();
            for len in [0usize, 1, 100, MAX_PLAIN] {
                s.seal(APPLICATION_DATA, &mut wire, |out| {
                    out.extend((0..len).map(|i| i as u8));
                    Ok(())
                })
                .unwrap();
            }
            s.seal(ALERT, &mut wire, |out| {
                out.extend_from_slice(&[1, 0]);
                Ok(())
            })
            .unwrap();
            let mut at = 0;
            for len in [0usize, 1, 100, MAX_PLAIN] {
                let r = o.open(&mut wire[at..]).unwrap().unwrap();
                assert_eq!(r.typ, APPLICATION_DATA, "{v:?} {kind}");
                let plain = &wire[at..][r.plain.clone()];
                assert_eq!(plain.len(), len);
                assert!(plain.iter().enumerate().all(|(i, &b)| b == i as u8));
                at += r.len;
            }
            let r = o.open(&mut wire[at..]).unwrap().unwrap();
            assert_eq!(
                (r.typ, &wire[at..][r.plain.clone()]),
                (ALERT, &[1u8, 0][..])
            );
            assert_eq!(at + r.len, wire.len());
        }
    }

    #[test]
    fn a_record_not_all_there_waits_and_a_changed_byte_is_refused() {
        for (v, kind) in ALL {
            let (mut s, mut o) = pair(v, kind);
            let mut wire = Vec::new();
            s.seal(APPLICATION_DATA, &mut wire, |out| {
                out.extend_from_slice(b"hello");
                Ok(())
            })
            .unwrap();
            for cut in 0..wire.len() {
                assert_eq!(o.open(&mut wire.clone()[..cut]), Ok(None));
            }
            for i in 0..wire.len() {
                let mut bad = wire.clone();
                bad[i] ^= 0x40;
                let (_, mut o) = pair(v, kind);
                // a changed length waits for more, or is too long; anything else fails
                assert!(
                    !matches!(o.open(&mut bad), Ok(Some(_))),
                    "{v:?} {kind} byte {i}"
                );
            }
        }
    }

    #[test]
    fn a_record_is_refused_out_of_order_or_too_long() {
        let (mut s, mut o) = pair(Version::Tls13, 0);
        let mut first = Vec::new();
        let mut second = Vec::new();
        s.seal(APPLICATION_DATA, &mut first, |out| {
            out.push(1);
            Ok(())
        })
        .unwrap();
        s.seal(APPLICATION_DATA, &mut second, |out| {
            out.push(2);
            Ok(())
        })
        .unwrap();
        assert_eq!(o.open(&mut second), Err(RecordError::Integrity));
        let mut long = vec![23, 3, 3, 0x41, 0x01];
        long.resize(HEADER + 0x4101, 0);
        assert_eq!(o.open(&mut long), Err(RecordError::TooLong(0x4101)));
        assert_eq!(
            o.open(&mut [22, 3, 3, 0, 20]),
            Err(RecordError::Type(22)),
            "TLS 1.3 has only application data records"
        );
        assert_eq!(
            o.open(&mut [23, 2, 0, 0, 1]),
            Err(RecordError::Version(2, 0))
        );
    }

    #[test]
    fn more_than_a_record_of_plaintext_is_refused_and_out_left_as_it_was() {
        let (mut s, _) = pair(Version::Tls13, 0);
        let mut out = b"before".to_vec();
        let e = s.seal(APPLICATION_DATA, &mut out, |o| {
            o.resize(o.len() + MAX_PLAIN + 1, 0);
            Ok(())
        });
        assert!(e.is_err());
        assert_eq!(out, b"before");
    }

    #[test]
    fn a_tls13_record_of_padding_only_has_no_type() {
        // sealed by hand: the inner plaintext all zeros
        let (s, mut o) = pair(Version::Tls13, 0);
        let mut wire = vec![23, 3, 3, 0, 4 + TAG as u8, 0, 0, 0, 0];
        let header: [u8; 5] = wire[..5].try_into().unwrap();
        let tag = s
            .keys
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(s.keys.nonce()),
                Aad::from(header),
                &mut wire[5..],
            )
            .unwrap();
        wire.extend_from_slice(tag.as_ref());
        assert_eq!(o.open(&mut wire), Err(RecordError::NoType));
    }

    #[test]
    fn aes_gcm_keys_wear_out_and_the_counter_never_wraps() {
        let (mut s, _) = pair(Version::Tls13, 0);
        assert!(!s.worn());
        s.keys.seq = GCM_LIMIT;
        assert!(s.worn());
        s.keys.seq = u64::MAX;
        let mut out = Vec::new();
        assert!(s.seal(APPLICATION_DATA, &mut out, |_| Ok(())).is_err());
        let (mut c, _) = pair(Version::Tls13, 2);
        c.keys.seq = GCM_LIMIT;
        assert!(!c.worn(), "ChaCha20-Poly1305 has no such limit");
    }

    #[test]
    fn handshake_messages_after_the_handshake_are_taken_whole_and_checked() {
        let v13 = Version::Tls13;
        let mut hs = vec![KEY_UPDATE, 0, 0, 1];
        assert_eq!(next_message(&mut hs, v13).unwrap(), None, "not all there");
        hs.push(1);
        hs.extend_from_slice(&[NEW_SESSION_TICKET, 0, 0, 2, 9]);
        assert_eq!(
            next_message(&mut hs, v13).unwrap(),
            Some(After::KeyUpdate { asked: true })
        );
        assert_eq!(next_message(&mut hs, v13).unwrap(), None);
        hs.push(9);
        assert_eq!(next_message(&mut hs, v13).unwrap(), Some(After::Nothing));
        assert!(hs.is_empty());
        for bad in [
            vec![KEY_UPDATE, 0, 0, 1, 2],
            vec![KEY_UPDATE, 0, 0, 2, 0, 0],
            vec![1, 0, 0, 0],
            vec![NEW_SESSION_TICKET, 1, 0, 0],
        ] {
            assert!(next_message(&mut bad.clone(), v13).is_err(), "{bad:?}");
        }
        assert!(next_message(&mut vec![KEY_UPDATE, 0, 0, 1, 0], Version::Tls12).is_err());
        assert_eq!(
            next_message(&mut vec![HELLO_REQUEST, 0, 0, 0], Version::Tls12).unwrap(),
            Some(After::Nothing)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Any bytes, in any pieces: taken or refused, never a panic, never more than the bound.
        #[test]
        fn any_handshake_bytes_are_taken_or_refused(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
            cut in 1usize..300,
            tls13 in proptest::prelude::any::<bool>(),
        ) {
            let v = if tls13 { Version::Tls13 } else { Version::Tls12 };
            let mut hs = Vec::new();
            'pieces: for piece in bytes.chunks(cut) {
                hs.extend_from_slice(piece);
                loop {
                    match next_message(&mut hs, v) {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => break 'pieces,
                    }
                }
                proptest::prop_assert!(hs.len() <= MAX_HANDSHAKE + 300);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Any bytes: opened or refused, never a panic, and a record's plaintext lies inside it.
        #[test]
        fn any_bytes_are_opened_or_refused(
            v in 0usize..6,
            mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20000),
        ) {
            let (version, kind) = ALL[v];
            let (_, mut o) = pair(version, kind);
            if let Ok(Some(r)) = o.open(&mut bytes) {
                proptest::prop_assert!(r.plain.end <= r.len && r.len <= bytes.len());
            }
        }
    }
}
