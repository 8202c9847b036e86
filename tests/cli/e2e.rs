//! End to end with real parts: the fake az's tunnel forwards its port to a real xrdp server on
//! loopback, and `bprof run` starts the real FreeRDP client (Debian 12's FreeRDP 2 `xfreerdp`,
//! under Xvfb, through a wrapper that adds `/cert:ignore +auth-only` and the test user's
//! password) with the .rdp file bprof wrote. The README's test command,
//! `bash tests/e2e/with-xrdp.sh cargo test --locked`, prepares the machine for this one run
//! (`setup-rdp.sh`: xrdp, a nologin user with a random password in `$BPROF_E2E_DIR/password`,
//! readable by root only) and removes it all afterwards (`teardown-rdp.sh`).

use crate::harness::{Test, one_profile};

#[test]
fn real_freerdp_reads_bprofs_rdp_file_and_connects_through_the_tunnel_to_xrdp() {
    through(false);
}

/// The same through the native engine: the fake bastion forwards the websocket's bytes to xrdp.
#[cfg(target_os = "linux")]
#[test]
fn real_freerdp_connects_to_xrdp_through_the_native_engine_and_the_fake_bastion() {
    through(true);
}

fn through(native: bool) {
    let xrdp_port: u16 = std::env::var("BPROF_E2E_XRDP_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(33890);
    let how = "run the tests through `bash tests/e2e/with-xrdp.sh cargo test --locked` (the README's test command)";
    let dir = std::env::var_os("BPROF_E2E_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("BPROF_E2E_DIR is not set: {how}"));
    let pw_file = dir.join("password");
    let password = std::fs::read_to_string(&pw_file)
        .unwrap_or_else(|e| panic!("{}: {e}: {how}", pw_file.display()));
    assert!(
        password.len() >= 16 && password.bytes().all(|b| b.is_ascii_alphanumeric()),
        "a random password of this run"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", xrdp_port)).is_ok(),
        "no xrdp on 127.0.0.1:{xrdp_port}: {how}"
    );
    let freerdp = ["/usr/bin/xfreerdp", "/usr/local/bin/xfreerdp"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("xfreerdp (freerdp2-x11): run tests/e2e/with-xrdp.sh");
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = one_profile(&format!(
        "  e2e:\n    bastion: b\n    vm: v\n    client: xfreerdp\n    local_port: {port}\n    username: bprof-e2e\n    rdp:\n      screen: window\n      width: 1280\n      height: 720\n      multimon: false\n      clipboard: true\n      drives: false\n      audio: none\n"
    ));
    // the password is read from the root-only file when the client starts (no copy of it
    // in the test's files)
    let wrapper = format!(
        "#!/bin/sh\necho \"$@\" > \"$FAKE_AZ_DIR/xfreerdp-args\"\nexec xvfb-run -a {freerdp} \"$@\" /cert:ignore +auth-only \"/p:$(cat '{}')\"\n",
        pw_file.display()
    );
    #[cfg(target_os = "linux")]
    let fake = native.then(|| {
        let f = crate::fake_bastion::FakeBastion::start();
        f.set(|c| {
            c.backend = crate::fake_bastion::Backend::Tcp(([127, 0, 0, 1], xrdp_port).into())
        });
        f
    });
    let t = Test::new();
    let t = if native { t } else { t.az_tunnel() };
    #[cfg(target_os = "linux")]
    let t = match &fake {
        Some(f) => t
            .env("BPROF_ARM_ENDPOINT", &f.arm_endpoint())
            .env("SSL_CERT_FILE", &f.ca_file().display().to_string()),
        None => t,
    };
    let t = t
        .file("profiles/p.yaml", yaml)
        .program("xfreerdp", &wrapper)
        .signed_in(&["22222222-2222-2222-2222-222222222222"])
        .env("FAKE_AZ_FORWARD", &xrdp_port.to_string())
        .env("BPROF_TUNNEL_TIMEOUT", "20");
    let out = t.command().args(["run", "e2e"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "FreeRDP did not connect through the whole path:\n{stderr}"
    );
    let args = std::fs::read_to_string(t.path().join("xfreerdp-args")).unwrap();
    assert!(
        args.contains("/e2e-") && args.contains(".rdp"),
        "the client got bprof's .rdp file: {args}"
    );
    assert!(
        !args.contains("/sec:aad"),
        "FreeRDP 2 has no Entra mode: {args}"
    );
    let calls = t.calls();
    assert_eq!(calls.len(), 1, "one az process: {calls:?}");
    let want = if native { "get-access-token" } else { "tunnel" };
    assert!(calls[0].iter().any(|a| a == want), "{calls:?}");
    #[cfg(target_os = "linux")]
    if let Some(f) = &fake {
        f.wait_until(
            "FreeRDP's sessions deleted",
            std::time::Duration::from_secs(10),
            |f| f.open_sessions() == 0,
        );
        assert!(
            f.requests()
                .iter()
                .any(|r| r.path.starts_with("/webtunnelv2/"))
        );
    }
}
