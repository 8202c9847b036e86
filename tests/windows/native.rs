//! The native tunnel engine of the Windows build: rustls with the test CA from SSL_CERT_FILE,
//! against the loopback fake bastion; the token from az.cmd.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::fake_bastion::FakeBastion;
use crate::run::wait_for;
use crate::{WinTest, win};

/// A port nothing listens on now (the OS picks it; bprof binds it a moment later).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn set(fake: &FakeBastion, port: u16) -> WinTest {
    let yaml = crate::harness::one_profile(&format!(
        "  db:\n    bastion: b\n    vm: v\n    mode: tunnel\n    resource_port: 22\n    local_port: {port}\n"
    ));
    WinTest::empty()
        .file("profiles/p.yaml", yaml)
        .env("BPROF_ARM_ENDPOINT", &fake.arm_endpoint())
        .env("SSL_CERT_FILE", &win(fake.ca_file()))
        // the two directions of a connection on two threads (the Linux suite runs one and two)
        .env("BPROF_TUNNEL_WORKERS", "2")
}

fn echo(s: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    let mut w = s.try_clone().expect("clone");
    let owned = data.to_vec();
    let writer = std::thread::spawn(move || w.write_all(&owned));
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).expect("echoed bytes");
    writer.join().expect("writer").expect("write");
    back
}

#[test]
fn the_tunnel_moves_bytes_both_ways_through_rustls_and_deletes_its_sessions() {
    let fake = FakeBastion::start();
    let port = free_port();
    let t = set(&fake, port);
    let mut cmd = t.command(&["run", "db", "--tunnel-only"]);
    let (_, err) = t.outputs(&mut cmd);
    let mut bprof = cmd.spawn().expect("start bprof.exe");
    wait_for("bprof.exe listens", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    fake.wait_until("the probe's session ended", Duration::from_secs(20), |f| {
        f.open_sessions() == 0
    });
    let mut conns = Vec::new();
    for i in 0..2u8 {
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let data: Vec<u8> = (0..1024 * 1024 + 7).map(|n| (n % 251) as u8 ^ i).collect();
        assert!(echo(&mut c, &data) == data, "connection {i}: bytes changed");
        conns.push(c);
    }
    fake.wait_until("one session per connection", Duration::from_secs(20), |f| {
        f.open_sessions() == 2
    });
    // a second listener on the same port is refused (SO_EXCLUSIVEADDRUSE), and says so
    let second = t.run(&["run", "db", "--tunnel-only"]);
    assert_ne!(second.code, 0, "a second bind succeeded");
    assert!(
        second.stderr.contains(&port.to_string()),
        "{}",
        second.stderr
    );
    // Ctrl-C: every open session deleted before bprof exits
    std::process::Command::new("kill")
        .args(["-INT", &bprof.id().to_string()])
        .status()
        .expect("kill");
    let status = bprof.wait().expect("wait");
    let err = crate::read(&err);
    assert_eq!(status.code(), Some(130), "{err}");
    assert_eq!(fake.open_sessions(), 0, "{}", fake.raw_requests_log());
    let deletes = fake
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(
        deletes,
        3,
        "the probe's and two: {}",
        fake.raw_requests_log()
    );
    assert!(!err.contains("SECRET-"), "the token on stderr: {err}");
    let calls = t.calls();
    assert_eq!(calls.len(), 1, "one az process for the token: {calls:?}");
    assert_eq!(calls[0][..2], ["account", "get-access-token"]);
    drop(conns);
}
