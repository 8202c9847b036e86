//! However bprof ends, nothing is left behind: signals (each stops the tunnel and the client,
//! and is the run's result), closed stdout and stderr, children killed by a signal, clients'
//! statuses, temp .rdp files of concurrent runs, output paths that are not regular files.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{Test, one_profile};
use crate::run::unsafe_kill;
use crate::session::{free_port, nothing_left, session};

const SUB: &str = "22222222-2222-2222-2222-222222222222";

/// An executable script at `rel` in the test's directory.
fn script(t: Test, rel: &str, body: &str) -> Test {
    let t = t.file(rel, body);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.path().join(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
    t
}

fn ssh(t: Test) -> Test {
    t.file(
        "profiles/p.yaml",
        one_profile("  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n"),
    )
    .signed_in(&[SUB])
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(path.exists(), "{} never appeared", path.display());
}

/// As at a terminal, where Ctrl-C reaches bprof and az at once, and az (on
/// KeyboardInterrupt) exits 1: the run is interrupted, 130, not "step failed".
#[test]
fn ctrl_c_is_130_whatever_the_child_then_returns() {
    let t = script(
        ssh(Test::new().az_tunnel()),
        "bin/az-int",
        "#!/bin/sh\nsleep 0.3\nkill -INT $PPID\nexit 1\n",
    );
    let az = t.path().join("bin/az-int");
    let r = t
        .env("BPROF_AZ", &az.display().to_string())
        .args(&["run", "p"])
        .run();
    r.code(130);
    assert!(!r.stderr.contains("failed"), "{}", r.stderr);
}

#[test]
fn sighup_sigquit_and_sigterm_stop_client_and_tunnel_and_exit_128_plus_n() {
    for sig in [1, 3, 15] {
        let t = session(free_port(), "").env("FAKE_CLIENT_SLEEP", "30");
        std::fs::create_dir_all(t.path().join("tmp")).unwrap();
        let mut child = t
            .command()
            .args(["run", "p"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(&t.path().join("client-connected"));
        let start = Instant::now();
        unsafe_kill(child.id(), sig);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + sig), "signal {sig}: {status:?}");
        assert!(start.elapsed() < Duration::from_secs(10), "signal {sig}");
        nothing_left(&t);
    }
}

#[test]
fn a_closed_stdout_or_stderr_never_aborts_bprof() {
    // stdout: the reader went away (`bprof list | head -1`)
    let t = Test::examples().az_tunnel();
    for args in [
        &["list"][..],
        &["run", "prod-jumpbox", "--dry-run"],
        &["schema"],
    ] {
        let mut child = t
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // stderr: a whole session (`bprof run X 2>&1 | head -1`), az's and bprof's notes lost
    let t = session(free_port(), "");
    std::fs::create_dir_all(t.path().join("tmp")).unwrap();
    let mut child = t
        .command()
        .args(["run", "p"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(t.path().join("client-connected").exists());
    nothing_left(&t);
}

#[test]
fn a_child_killed_by_a_signal_is_said_so_and_exits_1() {
    let t = script(
        ssh(Test::new().az_tunnel()),
        "bin/az-kill",
        "#!/bin/sh\nkill -9 $$\n",
    );
    let az = t.path().join("bin/az-kill");
    t.env("BPROF_AZ", &az.display().to_string())
        .args(&["run", "p"])
        .run()
        .code(1)
        .stderr_has("was killed by signal 9 (SIGKILL)")
        .stderr_has("bprof exits 1 for it");
}

#[test]
fn a_clients_status_maps_like_azs() {
    let run = |exit: &str| {
        let t = session(free_port(), "").env("FAKE_CLIENT_EXIT", exit);
        std::fs::create_dir_all(t.path().join("tmp")).unwrap();
        let r = t.run_with(&["run", "p"]);
        nothing_left(&t);
        r
    };
    run("5").code(5).stderr_has("exited with status 5");
    run("70")
        .code(1)
        .stderr_has("exited with status 70")
        .stderr_has("70 is one of bprof's own exit codes");
}

/// A client that notes the .rdp file it was given, then checks it is still there when it ends.
const CHECKING_CLIENT: &str = "#!/bin/sh
for a in \"$@\"; do case $a in *.rdp) f=$a;; esac; done
echo \"$f\" >> \"$FAKE_AZ_DIR/rdp-paths\"
sleep \"${FAKE_CLIENT_SLEEP:-0}\"
test -f \"$f\" || exit 9
";

fn rdp_paths(t: &Test) -> Vec<String> {
    std::fs::read_to_string(t.path().join("rdp-paths"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn two_runs_of_one_profile_have_their_own_temp_files() {
    let t = script(session(free_port(), ""), "bin/xfreerdp3", CHECKING_CLIENT);
    std::fs::create_dir_all(t.path().join("tmp")).unwrap();
    let (a_port, b_port) = (free_port().to_string(), free_port().to_string());
    let a = t
        .command()
        .args(["run", "p", "--port", &a_port])
        .env("FAKE_CLIENT_SLEEP", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&t.path().join("rdp-paths"));
    let b = t
        .command()
        .args(["run", "p", "--port", &b_port])
        .output()
        .unwrap();
    assert_eq!(
        b.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&b.stderr)
    );
    let a = a.wait_with_output().unwrap();
    assert_eq!(
        a.status.code(),
        Some(0),
        "the other run's end left this run's file alone: {}",
        String::from_utf8_lossy(&a.stderr)
    );
    let paths = rdp_paths(&t);
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert_ne!(paths[0], paths[1], "two runs, two files");
    nothing_left(&t);
}

#[test]
fn rdp_output_that_is_not_a_regular_file_is_refused_even_with_force() {
    let t = Test::examples().az_tunnel();
    let d = t.path();
    std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling.rdp")).unwrap();
    std::fs::write(d.join("target.rdp"), b"keep").unwrap();
    std::os::unix::fs::symlink(d.join("target.rdp"), d.join("link.rdp")).unwrap();
    std::fs::create_dir(d.join("dir.rdp")).unwrap();
    let mkfifo = std::process::Command::new("mkfifo")
        .arg(d.join("fifo.rdp"))
        .status()
        .unwrap();
    assert!(mkfifo.success());
    let mut cases = vec![
        ("dangling.rdp", "a symlink"),
        ("link.rdp", "a symlink"),
        ("dir.rdp", "a directory"),
        ("fifo.rdp", "a FIFO"),
    ];
    // a device node (like /dev/null) needs root to make: the tests run as root in CI
    let mknod = std::process::Command::new("mknod")
        .arg(d.join("null.rdp"))
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status();
    if mknod.is_ok_and(|s| s.success()) {
        cases.push(("null.rdp", "a character device"));
    }
    for (name, what) in &cases {
        for force in [false, true] {
            let mut args = vec!["rdp", "prod-jumpbox", "-o", name];
            if force {
                args.push("--force");
            }
            t.run_with(&args)
                .code(73)
                .stderr_has(&format!("{name} is {what}"));
        }
    }
    use std::os::unix::fs::FileTypeExt;
    let ft = |n: &str| std::fs::symlink_metadata(d.join(n)).unwrap().file_type();
    assert!(ft("dangling.rdp").is_symlink() && ft("link.rdp").is_symlink());
    assert!(
        !d.join("nowhere").exists(),
        "nothing written through the link"
    );
    assert_eq!(std::fs::read(d.join("target.rdp")).unwrap(), b"keep");
    assert!(ft("dir.rdp").is_dir() && ft("fifo.rdp").is_fifo());
    if cases.len() == 5 {
        assert!(ft("null.rdp").is_char_device(), "--force kept the device");
    }
    let temps: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temp files left: {temps:?}");
}
