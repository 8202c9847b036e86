//! The tunnel's TLS records, which bprof seals and opens itself after rustls's handshake,
//! against rustls's own server (the fake bastion): every TLS version and cipher suite bprof
//! offers, and key updates both ways (the server's, and bprof's answer to its request), with
//! the bytes checked end to end through `bprof run`.

use std::time::Duration;

use tokio_rustls::rustls::CipherSuite;

use crate::fake_bastion::{FakeBastion, FakeTls};
use crate::native::{Running, connect, echo, set, wait_listening};
use crate::session::free_port;

/// 3 MiB and a bit, each byte depending on its place.
fn pattern(seed: u8) -> Vec<u8> {
    (0..3 * 1024 * 1024 + 4099)
        .map(|i: usize| (i.wrapping_mul(31) as u8) ^ seed)
        .collect()
}

/// Two connections echo small and large data through a fake speaking `tls`; the fake updates
/// its keys every `rekey` bytes if given.
fn echoes_through(tls: FakeTls, rekey: Option<usize>) -> FakeBastion {
    let tls13 = !tls.tls12_only;
    let what = format!("{tls:?}, key updates every {rekey:?} bytes");
    let fake = FakeBastion::start_with(tls);
    fake.set(|c| c.rekey_every = rekey);
    let port = free_port();
    let t = set(&fake, port, "", "");
    let run = Running::start(&t, &["run", "db", "--tunnel-only"]);
    wait_listening(port);
    for seed in 0..2u8 {
        let mut c = connect(port);
        assert_eq!(echo(&mut c, b"hello"), b"hello", "{what}");
        let big = pattern(seed);
        assert!(
            echo(&mut c, &big) == big,
            "{what}: the bytes came back changed"
        );
        // in lock-step: bprof sends again after each of the server's key updates
        for (i, piece) in big.chunks(64 * 1024).take(32).enumerate() {
            assert!(
                echo(&mut c, piece) == piece,
                "{what}: piece {i} came back changed"
            );
        }
        assert_eq!(echo(&mut c, b"bye"), b"bye", "{what}");
    }
    let (code, stderr) = run.stop(2);
    assert_eq!(code, Some(130), "{what}: {stderr}");
    if rekey.is_none() && tls13 {
        assert_eq!(fake.key_updates(), (0, 0), "{what}: no key updates unasked");
    }
    assert!(!stderr.contains("closed:"), "{what}: {stderr}");
    fake
}

#[test]
fn every_tls13_cipher_suite_carries_the_tunnel() {
    for suite in [
        CipherSuite::TLS13_AES_128_GCM_SHA256,
        CipherSuite::TLS13_AES_256_GCM_SHA384,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ] {
        echoes_through(
            FakeTls {
                tls12_only: false,
                suite: Some(suite),
            },
            None,
        );
    }
}

#[test]
fn every_tls12_cipher_suite_carries_the_tunnel() {
    for suite in [
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ] {
        echoes_through(
            FakeTls {
                tls12_only: true,
                suite: Some(suite),
            },
            None,
        );
    }
}

#[test]
fn the_servers_key_updates_are_followed_and_answered() {
    for suite in [
        CipherSuite::TLS13_AES_128_GCM_SHA256,
        CipherSuite::TLS13_AES_256_GCM_SHA384,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ] {
        let fake = echoes_through(
            FakeTls {
                tls12_only: false,
                suite: Some(suite),
            },
            Some(256 * 1024),
        );
        // the server asked each time; bprof answers before its next record (rustls refuses
        // that record unless bprof's keys changed exactly there), once for requests that came
        // while it had nothing to send (RFC 8446 §4.6.3), and never unasked
        let (server, client) = fake.key_updates();
        assert!(server >= 20, "{suite:?}: {server} key updates");
        assert!(
            client <= server && client >= 8,
            "{suite:?}: {client} answers to {server} key updates"
        );
        fake.wait_until("the sessions deleted", Duration::from_secs(10), |f| {
            f.open_sessions() == 0
        });
    }
}
