//! The native tunnel engine against the loopback fake bastion (HTTPS, websocket, ARM read on
//! the same server, trusted through SSL_CERT_FILE) and the fake az's token.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::fake_bastion::{Failure, FakeBastion};
use crate::harness::Test;
use crate::session::free_port;

const SUB: &str = "22222222-2222-2222-2222-222222222222";
const VM_ID: &str = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-vm/providers/Microsoft.Compute/virtualMachines/vm-1";

/// A set with a tunnel profile `db` (VM port 22, local `port`), an rdp profile `desk` and
/// `extra` YAML under `profiles:`, pointed at the fake.
pub(crate) fn set(fake: &FakeBastion, port: u16, bastion_extra: &str, extra: &str) -> Test {
    let yaml = format!(
        "version: 1
tenants:
  t:
    id: 11111111-1111-1111-1111-111111111111
    subscription: {SUB}
bastions:
  b:
    tenant: t
    resource_group: rg-net
    name: bas-1
{bastion_extra}vms:
  v:
    resource_group: rg-vm
    name: vm-1
  byip:
    ip: 10.0.0.4
profiles:
  db:
    bastion: b
    vm: v
    mode: tunnel
    resource_port: 22
    local_port: {port}
{extra}"
    );
    Test::new()
        .file("profiles/p.yaml", yaml)
        .signed_in(&[SUB])
        .env("BPROF_ARM_ENDPOINT", &fake.arm_endpoint())
        .env("SSL_CERT_FILE", &fake.ca_file().display().to_string())
        .env("TMPDIR", "tmp")
        .env("USER", "alice")
        .file("tmp/.keep", "")
}

/// `bprof ARGS` in the background; killed if the test fails first.
pub(crate) struct Running {
    child: Child,
}

impl Running {
    pub(crate) fn start(t: &Test, args: &[&str]) -> Running {
        let child = t
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bprof");
        Running { child }
    }

    /// Ends it with `sig`; its exit code and stderr.
    pub(crate) fn stop(mut self, sig: i32) -> (Option<i32>, String) {
        crate::run::unsafe_kill(self.child.id(), sig);
        let status = self.child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status.code(), err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn wait_listening(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "nothing listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Writes `data` and reads the same number of bytes back.
pub(crate) fn echo(s: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    let mut w = s.try_clone().unwrap();
    let data_owned = data.to_vec();
    let writer = std::thread::spawn(move || w.write_all(&data_owned));
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).expect("echoed bytes");
    writer.join().unwrap().unwrap();
    back
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Every token the fake az handed out (they contain `SECRET-`).
pub(crate) fn tokens_of(fake: &FakeBastion) -> Vec<String> {
    let mut out: Vec<String> = fake
        .requests()
        .iter()
        .filter_map(|r| r.field("aztoken").map(str::to_string))
        .collect();
    out.dedup();
    out
}

/// No file under `dir` holds `needle`.
fn in_no_file(dir: &std::path::Path, needle: &str) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            in_no_file(&p, needle);
        } else if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(needle),
                "the token is in {}",
                p.display()
            );
        }
    }
}

/// No process's argv holds `needle` (Linux: /proc/*/cmdline).
fn in_no_argv(needle: &str) {
    for e in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            assert!(
                !String::from_utf8_lossy(&cmd).contains(needle),
                "the token is in the argv of process {:?}",
                e.file_name()
            );
        }
    }
}

#[test]
fn concurrent_connections_get_their_own_sessions_and_deletes_with_one_az_process() {
    concurrent_connections("1");
}

/// The same with each connection's two directions on two worker threads, as on a machine of
/// four cores or more.
#[test]
fn concurrent_connections_with_the_directions_in_parallel() {
    concurrent_connections("2");
}

fn concurrent_connections(workers: &str) {
    let fake = FakeBastion::start();
    let port = free_port();
    let t = set(&fake, port, "", "").env("BPROF_TUNNEL_WORKERS", workers);
    let run = Running::start(&t, &["run", "db", "--tunnel-only"]);
    wait_listening(port);
    // the probe above was a connection too: it gets (and ends) a session of its own
    fake.wait_until(
        "the probe's session deleted",
        Duration::from_secs(10),
        |f| f.open_sessions() == 0 && f.requests().iter().any(|r| r.method == "DELETE"),
    );
    let before = fake.requests().len();
    let mut conns = Vec::new();
    for _ in 0..3 {
        // one after the other: each overlaps the open ones
        let mut c = connect(port);
        // small and large, both ways
        assert_eq!(echo(&mut c, b"hello"), b"hello");
        conns.push(c);
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let big = pattern(3 * 1024 * 1024 + 17, i as u8);
        assert!(
            echo(c, &big) == big,
            "connection {i}: the bytes came back changed"
        );
    }
    fake.wait_until("three sessions open", Duration::from_secs(10), |f| {
        f.open_sessions() == 3
    });
    // the runtime the setting asked for: two worker threads, or none beside the engine's own
    let threads = std::fs::read_dir(format!("/proc/{}/task", run.child.id()))
        .expect("/proc/PID/task")
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim() == "tunnel-worker")
        })
        .count();
    // (tokio's blocking threads, for the token, carry the name too)
    assert_eq!(
        threads >= 2,
        workers == "2",
        "BPROF_TUNNEL_WORKERS={workers}: {threads}"
    );
    let tokens = tokens_of(&fake);
    assert_eq!(tokens.len(), 1, "one token for the whole run");
    in_no_argv("SECRET-");
    in_no_file(t.path(), &tokens[0]);
    drop(conns);
    fake.wait_until("three DELETEs", Duration::from_secs(10), |f| {
        f.open_sessions() == 0
            && f.requests()[before..]
                .iter()
                .filter(|r| r.method == "DELETE")
                .count()
                == 3
    });
    let (code, stderr) = run.stop(2);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(!stderr.contains("SECRET-"), "the token on stderr: {stderr}");

    // exactly the reference's requests
    let reqs = fake.requests();
    let log = fake.raw_requests_log();
    let arm: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.starts_with("/subscriptions/"))
        .collect();
    assert_eq!(arm.len(), 1, "one ARM read:\n{log}");
    assert_eq!(
        arm[0].path,
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/bastionHosts/bas-1?api-version=2024-05-01"
        )
    );
    assert_eq!(
        arm[0].header("authorization"),
        Some(format!("Bearer {}", tokens[0]).as_str())
    );
    let posts: Vec<_> = reqs.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 4, "the probe and three connections:\n{log}");
    for (i, p) in posts.iter().enumerate() {
        assert_eq!(p.path, "/api/tokens");
        assert_eq!(
            p.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert!(
            p.header("authorization").is_none(),
            "no Authorization header on /api/tokens"
        );
        assert_eq!(p.field("resourceId"), Some(VM_ID));
        assert_eq!(p.field("protocol"), Some("tcptunnel"));
        assert_eq!(p.field("workloadHostPort"), Some("22"));
        assert_eq!(p.field("aztoken"), Some(tokens[0].as_str()));
        assert!(p.field("hostname").is_none());
        if i >= 2 {
            // overlapping sessions name an open one and its node
            assert!(p.field("token").is_some(), "session {i} overlaps:\n{log}");
            assert_eq!(p.header("x-node-id"), Some("node-7f3a"));
        }
    }
    assert!(
        posts[1].field("token").is_none(),
        "the first of the three overlaps nothing"
    );
    let upgrades: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.starts_with("/webtunnelv2/"))
        .collect();
    assert_eq!(upgrades.len(), 4);
    for u in &upgrades {
        assert!(u.path.ends_with("?X-Node-Id=node-7f3a"), "{}", u.path);
        assert!(u.header("authorization").is_none());
    }
    for d in reqs.iter().filter(|r| r.method == "DELETE") {
        assert!(d.path.starts_with("/api/tokens/"));
        assert_eq!(d.header("x-node-id"), Some("node-7f3a"));
    }
    // the token went to this server only: ARM and the data plane ARM named
    for r in &reqs {
        assert_eq!(r.header("host"), Some(fake.host().as_str()), "{}", r.path);
    }
    let calls = t.calls();
    assert_eq!(calls.len(), 1, "one az process: {calls:?}");
    assert_eq!(calls[0][..2], ["account", "get-access-token"]);
    assert_eq!(calls[0][2..4], ["--subscription", SUB]);
}

#[test]
fn refused_sessions_close_their_connection_at_once_and_the_listener_keeps_serving() {
    let fake = FakeBastion::start();
    let port = free_port();
    let t = set(&fake, port, "", "");
    // the readiness probe's session and the two refused ones
    fake.set(|c| {
        c.token_failure = Some(Failure::Json {
            status: 401,
            message: "Unauthorized: the token is not valid".into(),
        });
        c.token_failures_left = Some(2);
    });
    let run = Running::start(&t, &["run", "db", "--tunnel-only"]);
    wait_listening(port);
    fake.wait_until(
        "the probe's session refused",
        Duration::from_secs(10),
        |f| f.requests().iter().any(|r| r.method == "POST"),
    );
    let closed_at_once = |what: &str| {
        let mut c = connect(port);
        let start = Instant::now();
        let mut buf = [0u8; 16];
        let n = c.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "{what}: closed");
        assert!(start.elapsed() < Duration::from_secs(5), "{what}: at once");
    };
    closed_at_once("a 401");
    fake.set(|c| {
        c.token_failure = Some(Failure::Html { status: 502 });
        c.token_failures_left = Some(1);
    });
    closed_at_once("a 502 page");
    // still serving
    let mut c = connect(port);
    assert_eq!(echo(&mut c, b"still here"), b"still here");
    drop(c);
    fake.wait_until("the good session deleted", Duration::from_secs(10), |f| {
        f.open_sessions() == 0
    });
    let (code, stderr) = run.stop(15);
    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        stderr.contains("401 Unauthorized: the token is not valid"),
        "{stderr}"
    );
    assert!(
        stderr.contains("502 an HTML error page (502 Bad Gateway)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: az may be signed in as someone"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("<html"),
        "no HTML on the terminal: {stderr}"
    );
}

#[test]
fn a_bastion_that_cannot_tunnel_is_refused_before_anything_listens() {
    for (sku, tunneling, want) in [
        ("Basic", Some(true), "its SKU is Basic"),
        ("Standard", Some(false), "Native client support"),
        // a missing enableTunneling is false (az crashed on it)
        ("Premium", None, "Native client support"),
    ] {
        let fake = FakeBastion::start();
        fake.set(|c| {
            c.sku = sku.into();
            c.tunneling = tunneling;
        });
        let port = free_port();
        let t = set(&fake, port, "", "");
        let r = t.run_with(&["run", "db", "--tunnel-only"]);
        r.code(69).stderr_has(want).stderr_has("bas-1");
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "nothing listened"
        );
        assert!(
            !fake.requests().iter().any(|r| r.method == "POST"),
            "no session was asked for"
        );
    }
}

#[test]
fn ctrl_c_deletes_the_open_sessions() {
    let fake = FakeBastion::start();
    let port = free_port();
    let t = set(&fake, port, "", "");
    let run = Running::start(&t, &["run", "db", "--tunnel-only"]);
    wait_listening(port);
    fake.wait_until("the probe's session ended", Duration::from_secs(10), |f| {
        f.open_sessions() == 0
    });
    let mut a = connect(port);
    let mut b = connect(port);
    assert_eq!(echo(&mut a, b"a"), b"a");
    assert_eq!(echo(&mut b, b"b"), b"b");
    fake.wait_until("two sessions", Duration::from_secs(10), |f| {
        f.open_sessions() == 2
    });
    let (code, stderr) = run.stop(2);
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(
        fake.open_sessions(),
        0,
        "every open session deleted before exit:\n{}",
        fake.raw_requests_log()
    );
    assert_eq!(fake.open_websockets(), 0);
}

#[test]
fn dns_names_in_profiles_are_azures_bastion_hosts_only() {
    let fake = FakeBastion::start();
    for hostile in [
        "evil.example.com",
        "bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com.evil.com",
        "bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com:8443",
        "user@bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com",
        "BST-0A1B2C3D-0000-4000-8000-0123456789AB.BASTION.AZURE.COM",
        "bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com.",
        "127.0.0.1",
    ] {
        let t = set(
            &fake,
            free_port(),
            &format!("    dns_name: \"{hostile}\"\n"),
            "",
        );
        t.run_with(&["validate"])
            .code(65)
            .stderr_has("not an Azure bastion host name");
        t.run_with(&["run", "db", "--tunnel-only"]).code(65);
    }
    assert!(fake.requests().is_empty(), "nothing was sent anywhere");
    // a valid one skips the ARM read: the token goes to that host only
    let port = free_port();
    let good = "bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com";
    let t = set(&fake, port, &format!("    dns_name: {good}\n"), "");
    t.run_with(&["plan", "db"]).code(0).stdout_has(good);
    let run = Running::start(&t, &["run", "db", "--tunnel-only"]);
    wait_listening(port);
    // that probe's session cannot reach the (unresolvable here) host: closed
    let mut c = connect(port);
    let _ = c.read(&mut [0u8; 1]);
    let (_, stderr) = run.stop(2);
    assert!(
        fake.requests().is_empty(),
        "no ARM read:\n{}",
        fake.raw_requests_log()
    );
    assert!(
        stderr.contains(good),
        "the session went to the profile's host: {stderr}"
    );
}

#[test]
fn az_only_options_are_refused_under_the_native_engine() {
    let fake = FakeBastion::start();
    let t = set(
        &fake,
        free_port(),
        "",
        "  db2:\n    extends: db\n    extra_args: [--only-show-errors]\n",
    );
    t.run_with(&["run", "db2", "--tunnel-only"])
        .code(65)
        .stderr_has("`extra_args` (--only-show-errors)")
        .stderr_has("tunnel_engine: az");
    t.run_with(&["run", "db", "--tunnel-only", "--", "--debug"])
        .code(64)
        .stderr_has("tunnel_engine: az");
    // with az's engine they pass to az
    let t = t.env("BPROF_TUNNEL_ENGINE", "az");
    t.run_with(&["plan", "db2"])
        .code(0)
        .stdout_has("--only-show-errors");
    assert!(fake.requests().is_empty());
}

#[test]
fn rdp_runs_the_client_through_the_native_tunnel_and_ip_targets_use_host_connect() {
    let fake = FakeBastion::start();
    let port = free_port();
    let t = set(
        &fake,
        port,
        "    ip_connect: true\n",
        &format!(
            "  desk:\n    bastion: b\n    vm: byip\n    client: xfreerdp\n    local_port: {port}\n"
        ),
    )
    .fake_client("xfreerdp3");
    fake.set(|c| c.ip_connect = true);
    let r = t.run_with(&["run", "desk"]);
    r.code(0);
    let connected = std::fs::read_to_string(t.path().join("client-connected")).unwrap();
    assert_eq!(connected, format!("127.0.0.1:{port}"));
    fake.wait_until(
        "the client's session deleted",
        Duration::from_secs(10),
        |f| f.open_sessions() == 0,
    );
    let post = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a session");
    assert_eq!(
        post.field("resourceId"),
        Some(format!("/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/bh-hostConnect/10.0.0.4").as_str())
    );
    assert_eq!(post.field("hostname"), Some("10.0.0.4"));
    assert_eq!(post.field("workloadHostPort"), Some("3389"));
    assert_eq!(t.calls().len(), 1, "one az process: the token");
}

#[test]
fn a_taken_derived_port_moves_but_tunnel_only_keeps_its_error() {
    let fake = FakeBastion::start();
    // the derived port of the profile's name is held by this test from here on
    let (name, derived, squat) = crate::session::name_with_held_port("desk");
    let t = set(
        &fake,
        free_port(),
        "",
        &format!("  {name}:\n    bastion: b\n    vm: v\n    client: xfreerdp\n"),
    )
    .fake_client("xfreerdp3");
    let planned = {
        let r = t.run_with(&["plan", &name, "--format", "json"]);
        r.code(0);
        let text = r.stdout.clone();
        let i = text.find("127.0.0.1:").expect("an address") + 10;
        text[i..i + 5].parse::<u16>().expect("port")
    };
    assert_eq!(planned, derived, "the plan shows the derived port");
    let r = t.run_with(&["run", &name]);
    r.code(0).stderr_has(&format!(
        "port {derived} (derived from the profile name) is busy"
    ));
    let connected = std::fs::read_to_string(t.path().join("client-connected")).unwrap();
    assert!(
        connected.starts_with("127.0.0.1:") && !connected.ends_with(&derived.to_string()),
        "{connected}"
    );
    t.run_with(&["run", &name, "--tunnel-only"])
        .code(69)
        .stderr_has("busy");
    drop(squat);
}

#[test]
fn dropped_websockets_end_their_connection_cleanly() {
    for workers in ["1", "2"] {
        dropped_websockets(workers);
    }
}

fn dropped_websockets(workers: &str) {
    let fake = FakeBastion::start();
    let port = free_port();
    let t = set(&fake, port, "", "").env("BPROF_TUNNEL_WORKERS", workers);
    let run = Running::start(&t, &["run", "db", "--tunnel-only"]);
    wait_listening(port);
    fake.set(|c| {
        c.drop_after_bytes = Some(1000);
        c.ping_every = Some(Duration::from_millis(50));
    });
    let mut c = connect(port);
    let _ = c.write_all(&pattern(600, 1));
    let mut buf = vec![0u8; 4096];
    let start = Instant::now();
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the connection was not closed"
        );
    }
    fake.set(|c| c.drop_after_bytes = None);
    let mut c = connect(port);
    std::thread::sleep(Duration::from_millis(200));
    let mut back = [0u8; 5];
    c.write_all(b"again").unwrap();
    let r = c.read_exact(&mut back);
    assert!(
        r.is_ok(),
        "{r:?}\n{}\n{:?}",
        fake.raw_requests_log(),
        fake.errors()
    );
    assert!(fake.pongs() > 0, "server pings are answered");
    drop(c);
    fake.wait_until("every session deleted", Duration::from_secs(10), |f| {
        f.open_sessions() == 0
    });
    let (code, stderr) = run.stop(2);
    assert_eq!(code, Some(130), "{stderr}");
}

#[test]
fn one_bprof_holds_several_tunnels_with_one_token_per_subscription() {
    let fake = FakeBastion::start();
    let (p1, p2) = (free_port(), free_port());
    let t = set(
        &fake,
        p1,
        "",
        &format!(
            "  cache:\n    bastion: b\n    vm: v\n    mode: tunnel\n    resource_port: 6379\n    local_port: {p2}\n"
        ),
    );
    t.run_with(&["run", "db", "cache"])
        .code(64)
        .stderr_has("--tunnel-only");
    t.run_with(&["run", "db", "db", "--tunnel-only"]).code(64);
    let plans = t.run_with(&[
        "--format",
        "json",
        "run",
        "db",
        "cache",
        "--tunnel-only",
        "--dry-run",
    ]);
    plans.code(0);
    assert_eq!(plans.json().as_array().map(Vec::len), Some(2));
    let run = Running::start(&t, &["run", "db", "cache", "--tunnel-only"]);
    wait_listening(p1);
    wait_listening(p2);
    let mut a = connect(p1);
    let mut b = connect(p2);
    assert_eq!(echo(&mut a, b"to db"), b"to db");
    assert_eq!(echo(&mut b, b"to cache"), b"to cache");
    let ports: Vec<String> = fake
        .requests()
        .iter()
        .filter_map(|r| r.field("workloadHostPort").map(str::to_string))
        .collect();
    assert!(
        ports.contains(&"22".into()) && ports.contains(&"6379".into()),
        "{ports:?}"
    );
    let (code, stderr) = run.stop(2);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("db: tunnel open on") && stderr.contains("cache: tunnel open on"),
        "{stderr}"
    );
    assert_eq!(fake.open_sessions(), 0, "every session deleted");
    assert_eq!(
        t.calls().len(),
        1,
        "one token for one subscription: {:?}",
        t.calls()
    );
}

#[test]
fn the_profiles_timeout_closes_the_tunnel_natively() {
    let fake = FakeBastion::start();
    let port = free_port();
    let t = set(
        &fake,
        port,
        "",
        "  short:\n    extends: db\n    timeout: 1\n",
    );
    let start = Instant::now();
    let r = t.run_with(&["run", "short", "--tunnel-only"]);
    r.code(0).stderr_has("closed after its timeout of 1 s");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens after"
    );
}

/// Another user's process connecting to the listener (as `nobody`, through setpriv) gets no
/// session: each session spends the person's token. Needs root (the README's test command).
#[test]
fn connections_from_another_users_process_are_refused() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "run the tests as root, through `bash tests/e2e/with-xrdp.sh cargo test --locked`"
    );
    let fake = FakeBastion::start();
    let port = free_port();
    let t = set(&fake, port, "", "");
    let run = Running::start(&t, &["run", "db", "--tunnel-only"]);
    wait_listening(port);
    fake.wait_until("the probe's session ended", Duration::from_secs(10), |f| {
        f.open_sessions() == 0 && f.requests().iter().any(|r| r.method == "DELETE")
    });
    let posts = |f: &FakeBastion| f.requests().iter().filter(|r| r.method == "POST").count();
    let before = posts(&fake);
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c"])
        .arg(format!(
            "import socket; s = socket.create_connection(('127.0.0.1', {port})); s.settimeout(5); print(repr(s.recv(10)))"
        ))
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "b''",
        "closed at once: {out:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        posts(&fake),
        before,
        "no session for another user's connection"
    );
    let (_, stderr) = run.stop(2);
    assert!(stderr.contains("it is user 65534's"), "{stderr}");
}
