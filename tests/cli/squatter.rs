//! The local end of the tunnel belongs to az: another process (the test itself here, which is
//! not in the tunnel's process group) that listens on the port while az's tunnel starts gets
//! no client; a port bound on either loopback is busy before anything starts.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::harness::{Run, Test};
use crate::session::{free_port, nothing_left, session};

fn ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// A port free on 127.0.0.1 and on [::1].
fn free_on_both() -> u16 {
    for _ in 0..20 {
        let port = free_port();
        if !ipv6_loopback() || TcpListener::bind(("::1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both loopbacks");
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn wait_for(t: &Test, file: &str) {
    let start = Instant::now();
    while !t.path().join(file).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{file} never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `bprof run p`; once the (fake) tunnel has started, i.e. after bprof found the port
/// free, `squat` binds what it likes; then the tunnel goes on (FAKE_AZ_WAIT_FOR=go).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn run_with_squatter(
    t: &Test,
    squat: impl FnOnce() -> Vec<TcpListener>,
) -> (Run, Vec<TcpListener>) {
    let child = t
        .command()
        .args(["run", "p"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(t, "tunnel-started");
    let held = squat();
    std::fs::write(t.path().join("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let run = t.finish(out.status.code().unwrap_or(-1), out.stdout, out.stderr);
    (run, held)
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn squatter_test(port: u16, mode: &str) -> Test {
    let t = session(port, "")
        .env("FAKE_AZ_TUNNEL", mode)
        .env("FAKE_AZ_WAIT_FOR", "go");
    std::fs::create_dir_all(t.path().join("tmp")).unwrap();
    t
}

fn no_client(t: &Test) {
    assert!(
        !t.path().join("client-argv").exists(),
        "the client was started"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_squatter_on_ipv4_loopback_gets_no_client() {
    let port = free_on_both();
    // az says it is ready (as if its failed bind had gone unnoticed) but listens nowhere
    let t = squatter_test(port, "squatted");
    let (r, held) = run_with_squatter(&t, || vec![TcpListener::bind(("127.0.0.1", port)).unwrap()]);
    r.code(69)
        .stderr_has(&format!("another process listens on 127.0.0.1:{port}"))
        .stderr_has("will not point the client at a listener it does not own")
        .stderr_has("--port N");
    assert!(!r.stderr.contains("tunnel ready"), "{}", r.stderr);
    no_client(&t);
    drop(held);
    nothing_left(&t);
}

#[cfg(target_os = "linux")]
#[test]
fn a_squatter_on_ipv6_loopback_is_refused_while_az_listens_on_ipv4() {
    let port = free_on_both();
    let t = squatter_test(port, "listen");
    let v6 = ipv6_loopback();
    let (r, held) = run_with_squatter(&t, || {
        if v6 {
            vec![TcpListener::bind(("::1", port)).unwrap()]
        } else {
            // no IPv6 loopback here: the IPv4 squatter instead (az's bind then fails)
            vec![TcpListener::bind(("127.0.0.1", port)).unwrap()]
        }
    });
    let at = if v6 {
        format!("[::1]:{port}")
    } else {
        format!("127.0.0.1:{port}")
    };
    r.code(69)
        .stderr_has(&format!("another process listens on {at}"));
    assert!(!r.stderr.contains("tunnel ready"), "{}", r.stderr);
    no_client(&t);
    drop(held);
    nothing_left(&t);
}

#[cfg(target_os = "linux")]
#[test]
fn a_squatter_when_the_tunnel_restarts_ends_the_session() {
    let port = free_on_both();
    let t = session(port, "")
        .env("FAKE_AZ_TUNNEL", "die-after:0.3")
        .env("FAKE_AZ_WAIT_FOR", "go")
        .env("FAKE_AZ_WAIT_ON_RESTART", "1")
        // the restarted az does not notice the squatter: only bprof's check can
        .env("FAKE_AZ_TUNNEL_RESTARTED", "squatted")
        .env("FAKE_CLIENT_SLEEP", "30");
    std::fs::create_dir_all(t.path().join("tmp")).unwrap();
    let start = Instant::now();
    // the first tunnel listens and dies; the squatter binds before the restarted one says it
    // is ready
    let (r, held) = run_with_squatter(&t, || vec![TcpListener::bind(("127.0.0.1", port)).unwrap()]);
    r.code(69)
        .stderr_has("tunnel ready on 127.0.0.1")
        .stderr_has("restarting it (1/3)")
        .stderr_has(&format!("another process listens on 127.0.0.1:{port}"));
    assert!(!r.stderr.contains("is back"), "{}", r.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the client (sleeping 30 s) was stopped"
    );
    drop(held);
    nothing_left(&t);
}

#[test]
fn az_failing_to_bind_is_fatal_and_its_message_is_shown() {
    let t = session(free_on_both(), "").env("FAKE_AZ_TUNNEL", "unavailable");
    std::fs::create_dir_all(t.path().join("tmp")).unwrap();
    t.run_with(&["run", "p"])
        .code(69)
        .stderr_has("ERROR: Defined port is currently unavailable")
        .stderr_has("another process listens on 127.0.0.1:");
    no_client(&t);
    nothing_left(&t);
}

#[test]
fn az_messages_reach_stderr_through_the_watched_pipe() {
    let t = session(free_on_both(), "").env("FAKE_AZ_TUNNEL", "die");
    std::fs::create_dir_all(t.path().join("tmp")).unwrap();
    let r = t.run_with(&["run", "p"]);
    r.code(1)
        .stderr_has("ERROR: fake tunnel failed")
        .stderr_has("before it was ready");
    let az = r.stderr.find("fake tunnel failed").unwrap();
    let bprof = r.stderr.find("before it was ready").unwrap();
    assert!(az < bprof, "az's message comes first:\n{}", r.stderr);
    nothing_left(&t);
}

#[test]
fn a_port_bound_only_on_ipv6_loopback_is_busy() {
    let port = free_on_both();
    // without IPv6 loopback, the IPv4 case: still busy
    let _held = if ipv6_loopback() {
        TcpListener::bind(("::1", port)).unwrap()
    } else {
        TcpListener::bind(("127.0.0.1", port)).unwrap()
    };
    let t = session(port, "");
    t.run_with(&["run", "p"])
        .code(69)
        .stderr_has(&format!("local port {port} is busy"));
    assert!(t.calls().is_empty(), "nothing started");
}
