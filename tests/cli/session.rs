//! `bprof run` of rdp profiles through a tunnel (fake az whose tunnel really listens on
//! loopback, fake RDP client), and `bprof rdp`.

use std::time::{Duration, Instant};

use crate::harness::{Test, one_profile};
use crate::run::alive;

const SUB: &str = "22222222-2222-2222-2222-222222222222";

/// A port for a test to give bprof (or a server of its own), reserved for this test: below
/// the OS's ephemeral range (32768 and up on Linux, 49152 and up elsewhere), so no OS-picked
/// port or connection's source port lands on it; never handed out twice in one run of the
/// suite; free when handed out. The start depends on the process, so concurrent runs differ.
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20000;
    const SPAN: u32 = 12000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < SPAN, "no free test port left");
        let port = (FIRST + (start + n) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The port `local_port: auto` derives from a profile name (FNV-1a, 50000..=59999), as the
/// README documents it.
pub(crate) fn derived_port(name: &str) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    50000 + (h % 10000) as u16
}

/// A profile name (`STEM`, `STEM-1`, ...) whose derived port this test holds for as long as it
/// keeps the listener: a test that needs the derived port busy reserves it this way.
pub(crate) fn name_with_held_port(stem: &str) -> (String, u16, std::net::TcpListener) {
    for i in 0..1000 {
        let name = if i == 0 {
            stem.to_string()
        } else {
            format!("{stem}-{i}")
        };
        let port = derived_port(&name);
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return (name, port, l);
        }
    }
    panic!("no derived port of `{stem}-N` could be held");
}

fn rdp_profile(port: u16, extra: &str) -> String {
    one_profile(&format!(
        "  p:\n    bastion: b\n    vm: v\n    client: xfreerdp\n    local_port: {port}\n    username: alice@contoso.com\n    enable_mfa: true\n{extra}"
    ))
}

pub(crate) fn session(port: u16, extra: &str) -> Test {
    Test::new()
        .az_tunnel()
        .file("profiles/p.yaml", rdp_profile(port, extra))
        .signed_in(&[SUB])
        .fake_client("xfreerdp3")
        .env("TMPDIR", "tmp")
        .env("USER", "alice")
        .env("BPROF_TUNNEL_TIMEOUT", "10")
}

fn pids(t: &Test) -> Vec<i32> {
    std::fs::read_to_string(t.path().join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

pub(crate) fn nothing_left(t: &Test) {
    std::thread::sleep(Duration::from_millis(200));
    for pid in pids(t) {
        assert!(!alive(pid), "process {pid} is still running");
    }
    let tmp = t.path().join("tmp/bprof-alice");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|r| r.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn tunnel_ready_client_teardown() {
    let port = free_port();
    let t = session(port, "").env("FAKE_CLIENT_EXIT", "5").cwd(".");
    std::fs::create_dir_all(t.path().join("tmp")).unwrap();
    let r = t.run_with(&["run", "p"]);
    r.code(5)
        .stderr_has(&format!("tunnel ready on 127.0.0.1:{port}"));
    assert_eq!(
        r.calls.len(),
        1,
        "signed in: only the tunnel: {:?}",
        r.calls
    );
    assert_eq!(&r.calls[0][..3], ["network", "bastion", "tunnel"]);
    assert!(
        r.calls[0]
            .windows(2)
            .any(|w| w == ["--port", &port.to_string()])
    );
    let connected = std::fs::read_to_string(t.path().join("client-connected")).unwrap();
    assert_eq!(
        connected,
        format!("127.0.0.1:{port}"),
        "the client reached the tunnel"
    );
    let argv = std::fs::read(t.path().join("client-argv")).unwrap();
    let argv: Vec<String> = argv
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let file = std::path::Path::new(&argv[1]);
    assert!(
        file.parent().unwrap().ends_with("tmp/bprof-alice"),
        "{argv:?}"
    );
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(
        name.starts_with("p-") && name.ends_with(".rdp") && name != "p.rdp",
        "a name of this run's own: {argv:?}"
    );
    assert_eq!(
        &argv[2..],
        ["/sec:aad", "/server-name:vm-1"],
        "FreeRDP 3 gets its Entra mode"
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("client-file-mode")).unwrap(),
        "600"
    );
    let bytes = std::fs::read(t.path().join("client-file.rdp")).unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
    nothing_left(&t);
}

#[test]
fn tunnel_that_never_becomes_ready_times_out_and_is_cleaned_up() {
    let t = session(free_port(), "")
        .env("FAKE_AZ_TUNNEL", "never-ready")
        .env("BPROF_TUNNEL_TIMEOUT", "1");
    std::fs::create_dir_all(t.path().join("tmp")).unwrap();
    let start = Instant::now();
    t.run_with(&["run", "p"])
        .code(69)
        .stderr_has("did not accept connections");
    assert!(start.elapsed() < Duration::from_secs(8));
    assert!(
        !t.path().join("client-argv").exists(),
        "no client without a tunnel"
    );
    nothing_left(&t);
}

#[test]
fn tunnel_that_dies_at_once_passes_az_status() {
    let t = session(free_port(), "").env("FAKE_AZ_TUNNEL", "die");
    std::fs::create_dir_all(t.path().join("tmp")).unwrap();
    t.run_with(&["run", "p"])
        .code(1)
        .stderr_has("before it was ready");
    assert!(!t.path().join("client-argv").exists());
    nothing_left(&t);
}

#[test]
fn a_tunnel_that_dies_is_restarted_on_the_same_port() {
    let port = free_port();
    let t = session(port, "")
        .env("FAKE_AZ_TUNNEL", "die-after:0.5")
        .env("FAKE_CLIENT_SLEEP", "3");
    std::fs::create_dir_all(t.path().join("tmp")).unwrap();
    let r = t.run_with(&["run", "p"]);
    r.code(0)
        .stderr_has("died")
        .stderr_has("restarting it (1/3)")
        .stderr_has("is back");
    assert_eq!(r.calls.len(), 2, "{:?}", r.calls);
    assert_eq!(r.calls[0], r.calls[1], "the same tunnel command, same port");
    nothing_left(&t);
}

#[test]
fn restarts_are_bounded() {
    let t = session(free_port(), "")
        .env("FAKE_AZ_TUNNEL", "die-after:0.3")
        .env("FAKE_AZ_DIE_ALWAYS", "1")
        .env("FAKE_CLIENT_SLEEP", "30");
    std::fs::create_dir_all(t.path().join("tmp")).unwrap();
    let start = Instant::now();
    let r = t.run_with(&["run", "p"]);
    r.code(1).stderr_has("after 3 restarts");
    assert_eq!(r.calls.len(), 4);
    assert!(start.elapsed() < Duration::from_secs(20));
    nothing_left(&t);
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_client_and_tunnel_and_removes_the_file() {
    let t = session(free_port(), "").env("FAKE_CLIENT_SLEEP", "30");
    std::fs::create_dir_all(t.path().join("tmp")).unwrap();
    let mut child = t
        .command()
        .arg("run")
        .arg("p")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !t.path().join("client-connected").exists() && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        t.path().join("client-connected").exists(),
        "the client never started"
    );
    crate::run::unsafe_kill(child.id(), 2);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(start.elapsed() < Duration::from_secs(15));
    nothing_left(&t);
}

#[test]
fn auto_port_avoids_a_busy_one_but_tunnel_only_keeps_it() {
    // busy from here on: this test holds it
    let (name, derived, _busy) = name_with_held_port("p");
    let yaml = one_profile(&format!(
        "  {name}:\n    bastion: b\n    vm: v\n    client: none\n"
    ));
    let plan = Test::new()
        .az_tunnel()
        .file("profiles/p.yaml", &yaml)
        .signed_in(&[SUB])
        .run_with(&["plan", &name, "--os", "linux", "--format", "json"]);
    let tunnel = plan.json()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "tunnel")
        .unwrap()["argv"]
        .clone();
    let list: Vec<&str> = tunnel
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let planned: u16 = list[list.iter().position(|a| *a == "--port").unwrap() + 1]
        .parse()
        .unwrap();
    assert_eq!(planned, derived, "the plan shows the derived port");
    let t = Test::new()
        .az_tunnel()
        .file("profiles/p.yaml", &yaml)
        .signed_in(&[SUB])
        .env("FAKE_AZ_TUNNEL", "die");
    let r = t.run_with(&["run", &name]);
    r.stderr_has(&format!(
        "port {derived} (derived from the profile name) is busy"
    ));
    let port_arg = r.calls[0]
        .windows(2)
        .find(|w| w[0] == "--port")
        .map(|w| w[1].clone())
        .unwrap();
    assert_ne!(port_arg, derived.to_string());
    let t = Test::new()
        .az_tunnel()
        .file("profiles/p.yaml", &yaml)
        .signed_in(&[SUB]);
    t.run_with(&["run", &name, "--tunnel-only"])
        .code(69)
        .stderr_has(&format!("local port {derived} is busy"))
        .stderr_has("derived from the profile name");
    assert!(t.calls().is_empty(), "nothing started");
}

#[test]
fn low_ports_are_refused_before_anything_starts() {
    let t = session(80, "");
    t.run_with(&["run", "p"]).code(64).stderr_has("needs root");
    assert!(t.calls().is_empty());
}

#[test]
fn a_missing_client_is_69_before_the_tunnel() {
    let t = Test::new()
        .az_tunnel()
        .file(
            "profiles/p.yaml",
            rdp_profile(free_port(), "").replace("client: xfreerdp", "client: remmina"),
        )
        .signed_in(&[SUB]);
    t.run_with(&["run", "p"])
        .code(69)
        .stderr_has("`remmina` was not found")
        .stderr_has("FreeRDP");
    assert!(t.calls().is_empty());
}

#[test]
fn tunnel_only_holds_until_ctrl_c() {
    let port = free_port();
    let yaml = one_profile(&format!(
        "  db:\n    bastion: b\n    vm: v\n    mode: tunnel\n    resource_port: 5432\n    local_port: {port}\n"
    ));
    let t = Test::new()
        .az_tunnel()
        .file("profiles/p.yaml", yaml)
        .signed_in(&[SUB]);
    let mut child = t
        .command()
        .args(["run", "db"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the tunnel is held open"
    );
    crate::run::unsafe_kill(child.id(), 2);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    nothing_left(&t);
}

#[test]
fn rdp_file_bytes() {
    let t = Test::examples().az_tunnel();
    t.run_with(&["rdp", "prod-jumpbox"])
        .code(0)
        .stderr_has("bprof run prod-jumpbox --tunnel-only")
        .stderr_has("az network bastion tunnel");
    let bytes = std::fs::read(t.path().join("prod-jumpbox.rdp")).unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xFE], "UTF-16LE BOM");
    let units: Vec<u16> = bytes[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let text = String::from_utf16(&units).unwrap();
    assert!(
        text.contains("\r\n") && !text.replace("\r\n", "").contains('\n'),
        "CRLF only"
    );
    insta::assert_snapshot!("rdp_prod_jumpbox", text.replace("\r\n", "\n"));
    for secret in ["password", "gatewayaccesstoken", "token"] {
        assert!(!text.to_lowercase().contains(secret), "{secret}");
    }
    // stdout, and the same bytes
    let out = t
        .command()
        .args(["rdp", "prod-jumpbox", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, bytes);
}

#[test]
fn rdp_never_overwrites_without_force() {
    let t = Test::examples().az_tunnel().file("mine.rdp", "keep");
    t.run_with(&["rdp", "prod-jumpbox", "-o", "mine.rdp"])
        .code(73)
        .stderr_has("--force");
    assert_eq!(std::fs::read(t.path().join("mine.rdp")).unwrap(), b"keep");
    t.run_with(&["rdp", "prod-jumpbox", "-o", "mine.rdp", "--force"])
        .code(0);
    assert_eq!(
        &std::fs::read(t.path().join("mine.rdp")).unwrap()[..2],
        &[0xFF, 0xFE]
    );
}

#[test]
fn rdp_auto_port_is_the_derived_one_everywhere() {
    let a = Test::examples().az_tunnel();
    a.run_with(&["rdp", "prod-jumpbox", "-o", "-"]);
    let r = Test::examples().az_tunnel().run_with(&[
        "plan",
        "prod-jumpbox",
        "--os",
        "linux",
        "--format",
        "json",
        "--tunnel-only",
    ]);
    let argv: Vec<String> = r.json()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "tunnel")
        .unwrap()["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let port = argv.windows(2).find(|w| w[0] == "--port").unwrap()[1].clone();
    let out = a
        .command()
        .args(["rdp", "prod-jumpbox", "-o", "-"])
        .output()
        .unwrap();
    let units: Vec<u16> = out.stdout[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert!(
        String::from_utf16(&units)
            .unwrap()
            .starts_with(&format!("full address:s:127.0.0.1:{port}\r\n"))
    );
}

#[test]
fn rdp_all_writes_one_file_per_rdp_profile_and_survives_one_failure() {
    let t = Test::examples()
        .az_tunnel()
        .file("out/prod-jumpbox.rdp", "keep");
    let r = t.run_with(&["rdp", "--all", "-o", "out"]);
    r.code(73).stderr_has("out/prod-jumpbox.rdp exists");
    let mut written: Vec<String> = std::fs::read_dir(t.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "fabrikam-build.rdp",
            "prod-jumpbox-switch-user.rdp",
            "prod-jumpbox.rdp"
        ]
    );
    assert_eq!(
        std::fs::read(t.path().join("out/prod-jumpbox.rdp")).unwrap(),
        b"keep"
    );
    t.run_with(&["rdp", "--all", "-o", "out", "--force"])
        .code(0)
        .stderr_has("3 .rdp files written");
}

#[test]
fn rdp_all_creates_its_directory_and_an_unwritable_one_is_73() {
    let t = Test::examples()
        .az_tunnel()
        .file("blocker", "a file, not a directory");
    t.run_with(&["rdp", "--all", "-o", "new/dir"]).code(0);
    assert!(t.path().join("new/dir/prod-jumpbox.rdp").exists());
    t.run_with(&["rdp", "--all", "-o", "blocker/sub"])
        .code(73)
        .stderr_has("cannot write");
}
