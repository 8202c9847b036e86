//! The tunnel's TLS records, which bprof seals and opens itself after rustls's handshake,
//! against rustls's own server (the fake bastion): every TLS version and cipher suite bprof
//! offers, and key updates both ways (the server's, and bprof's answer to its request), with
//! the bytes checked end to end through `bprof run`; and the library's TLS halves against a
//! rustls echo server (bprof's own key update, TLS 1.2's end, close_notify).

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

/// bprof's TLS halves (the library's `Tls::connect_halves`) against a rustls echo server on
/// loopback with the fake's certificate and TLS: what comes back, what ends.
mod halves {

    use bprof::azure::tls::{Incoming, Outgoing, Tls};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use crate::fake_bastion::{FakeTls, make_certificate, tls_acceptor};

    async fn pair(choice: FakeTls) -> (Incoming, Outgoing, tokio::task::JoinHandle<()>) {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = make_certificate(dir.path());
        let acceptor = tls_acceptor(&cert, &key, &choice).unwrap();
        let pem = std::fs::read(&cert).unwrap();
        let tls = Tls::with(vec![("the test's".into(), pem)], false).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut buf = vec![0u8; 4096];
            loop {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => tls.write_all(&buf[..n]).await.unwrap(),
                }
            }
            let _ = tls.shutdown().await;
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (inc, out) = tls.connect_halves("localhost", tcp).await.unwrap();
        (inc, out, served)
    }

    async fn echoed(inc: &mut Incoming, out: &mut Outgoing, data: &[u8]) -> Vec<u8> {
        out.data(data).unwrap();
        out.send().await.unwrap();
        let mut back = Vec::new();
        while back.len() < data.len() {
            assert!(inc.read().await.unwrap(), "the end before the echo");
            back.extend(inc.pieces().flatten());
        }
        back
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn worn_keys_are_changed_by_bprofs_own_key_update_and_close_notify_ends_both_ways() {
        runtime().block_on(async {
            let (mut inc, mut out, served) = pair(FakeTls::default()).await;
            assert_eq!(echoed(&mut inc, &mut out, b"one").await, b"one");
            out.wear_out();
            assert!(out.worn());
            // a key update, then the record under the new keys: rustls takes both
            assert_eq!(echoed(&mut inc, &mut out, b"two").await, b"two");
            assert!(!out.worn(), "new keys");
            let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
            assert_eq!(echoed(&mut inc, &mut out, &big).await, big);
            out.close().await.unwrap();
            // the server's close_notify: the end, not an error
            assert!(!inc.read().await.unwrap());
            served.await.unwrap();
        });
    }

    #[test]
    fn what_a_read_gives_back_is_read_again_without_the_socket() {
        runtime().block_on(async {
            let (mut inc, mut out, _served) = pair(FakeTls::default()).await;
            let msg = b"HTTP/1.1 101 x\r\n\r\nthe tunnel's first bytes";
            out.data(msg).unwrap();
            out.send().await.unwrap();
            let (mut got, mut last) = (0, Vec::new());
            while got < msg.len() {
                assert!(inc.read().await.unwrap());
                last = inc.pieces().flatten().copied().collect::<Vec<u8>>();
                got += last.len();
            }
            // the upgrade takes the first 2 bytes of the last read: the rest comes again, at
            // once (the server sends nothing more), and only once
            inc.give_back(2);
            assert!(inc.read().await.unwrap());
            let again: Vec<u8> = inc.pieces().flatten().copied().collect();
            assert_eq!(again, last[2..]);
            inc.give_back(again.len());
            out.data(b"next").unwrap();
            out.send().await.unwrap();
            assert!(inc.read().await.unwrap());
            assert_eq!(
                inc.pieces().flatten().copied().collect::<Vec<u8>>(),
                b"next"
            );
        });
    }

    #[test]
    fn tls12_keys_cannot_change_so_worn_keys_end_the_connection() {
        runtime().block_on(async {
            let only12 = FakeTls {
                tls12_only: true,
                suite: None,
            };
            let (mut inc, mut out, _served) = pair(only12).await;
            assert_eq!(echoed(&mut inc, &mut out, b"one").await, b"one");
            out.wear_out();
            assert!(out.data(b"two").is_err());
        });
    }
}
