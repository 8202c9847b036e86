//! az's known failures, recognised in its relayed output and answered with one bprof hint.

use crate::harness::{Test, one_profile};

const SUB: &str = "22222222-2222-2222-2222-222222222222";
const TENANT: &str = "11111111-1111-1111-1111-111111111111";

fn tunnel_set() -> Test {
    Test::new()
        .az_tunnel()
        .file(
            "profiles/p.yaml",
            one_profile(&format!("  db:\n    bastion: b\n    vm: v\n    mode: tunnel\n    resource_port: 5432\n    local_port: {}\n", crate::session::free_port())),
        )
        .env("BPROF_TUNNEL_TIMEOUT", "10")
}

#[test]
fn a_failed_login_with_an_aadsts_code_gets_the_sign_in_hint() {
    let r = tunnel_set()
        .env("FAKE_AZ_LOGIN_EXIT", "1")
        .env("FAKE_AZ_LOGIN_STDERR", "ERROR: AADSTS50076: Due to a configuration change made by your administrator, you must use multi-factor authentication")
        .run_with(&["run", "db", "--tunnel-only"]);
    r.code(1)
        .stderr_has("AADSTS50076: Due to a configuration change")
        .stderr_has(&format!(
            "help: the tenant wants multi-factor sign-in: `az login --tenant {TENANT}`"
        ));
}

#[test]
fn azs_tunnel_refused_for_the_sku_gets_the_portal_setting() {
    let r = tunnel_set()
        .signed_in(&[SUB])
        .env("FAKE_AZ_TUNNEL", "die")
        .env("FAKE_AZ_STDERR", "ERROR: Bastion Host SKU must be Standard or Premium and Native Client must be enabled.")
        .run_with(&["run", "db", "--tunnel-only"]);
    r.code(1)
        .stderr_has("Bastion Host SKU must be Standard or Premium")
        .stderr_has("help: the bastion cannot carry native-client connections")
        .stderr_has("bprof doctor db");
}

#[test]
fn an_unknown_failure_gets_no_invented_hint() {
    let r = tunnel_set()
        .signed_in(&[SUB])
        .env("FAKE_AZ_TUNNEL", "die")
        .env("FAKE_AZ_STDERR", "ERROR: something new")
        .run_with(&["run", "db", "--tunnel-only"]);
    r.code(1)
        .stderr_has("something new")
        .stderr_has("az's own message is above");
}

/// az writes far more than a pipe holds while bprof's own stderr is closed: the relay reads on,
/// so az is never blocked and its status passes through.
#[cfg(unix)]
#[test]
fn the_relay_drains_even_when_bprofs_stderr_is_closed() {
    use std::process::Stdio;
    let t = Test::new()
        .file(
            "profiles/p.yaml",
            one_profile("  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n"),
        )
        .env("FAKE_AZ_LOGIN_EXIT", "3")
        .env("FAKE_AZ_STDERR_KB", "512");
    // the login step (not signed in) is relayed; it prints 512 KiB and exits 3
    let start = std::time::Instant::now();
    let status = t
        .command()
        .args(["run", "p"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    // a closed stderr (not /dev/null): the same
    let mut child = t
        .command()
        .args(["run", "p"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(3));
}
