//! `run` on Windows: az is az.cmd, found on PATH and started through cmd.exe, and gets exactly
//! the plan's argv; cmd.exe's metacharacters reach it literally or are refused; whatever ends
//! bprof ends what it started (a Job Object).

use std::time::{Duration, Instant};

use crate::{WinTest, running};

const JUMPBOX: [&str; 15] = [
    "network",
    "bastion",
    "rdp",
    "--name",
    "bas-hub-weu",
    "--resource-group",
    "rg-hub-network",
    "--subscription",
    "55555555-5555-5555-5555-555555555555",
    "--target-resource-id",
    "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-prod-mgmt/providers/Microsoft.Compute/virtualMachines/vm-jumpbox-01",
    "--resource-port",
    "3389",
    "--enable-mfa",
    "--only-show-errors",
];

/// The examples with az's own rdp (`tunnel_engine: az`): az.cmd gets the plan's argv.
fn az_rdp() -> WinTest {
    WinTest::examples().env("BPROF_TUNNEL_ENGINE", "az")
}

#[test]
fn az_cmd_gets_the_plans_argv_and_metacharacters_literally() {
    let t = az_rdp();
    t.run(&["run", "prod-jumpbox", "--", "--only-show-errors"])
        .code(0);
    assert_eq!(t.calls(), vec![JUMPBOX.to_vec()]);
    // the person's own extra options, with every cmd.exe metacharacter but `%`
    let _ = std::fs::remove_dir_all(t.path().join("calls"));
    std::fs::create_dir(t.path().join("calls")).expect("mkdir");
    let odd = r#"a^b&c|d<e>f"g h(i)!j"#;
    t.run(&["run", "prod-jumpbox", "--", "--tags", odd]).code(0);
    let calls = t.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0][..14], JUMPBOX[..14]);
    assert_eq!(calls[0][14..], ["--tags", odd], "reached az literally");
    // az's exit code is bprof's
    t.run(&["run", "prod-jumpbox"]).code(0);
    let failing = az_rdp().env("FAKE_AZ_EXIT", "3");
    failing.run(&["run", "prod-jumpbox"]).code(3);
}

#[test]
fn a_percent_for_az_cmd_is_refused_before_anything_runs() {
    let t = az_rdp();
    t.run(&["run", "prod-jumpbox", "--", "--tags", "x%PATH%y"])
        .code(65)
        .stderr_has("contains `%`")
        .stderr_has("cmd.exe would expand");
    assert_eq!(t.calls(), Vec::<Vec<String>>::new(), "az never ran");
    // and a line break, which would end cmd.exe's command
    t.run(&["run", "prod-jumpbox", "--", "--tags", "x\ny"])
        .code(65);
    assert_eq!(t.calls(), Vec::<Vec<String>>::new(), "az never ran");
}

/// Waits until `pred`, at most 20 s (Wine is slow to start on a busy machine).
#[track_caller]
pub fn wait_for(what: &str, mut pred: impl FnMut() -> bool) {
    let start = Instant::now();
    while !pred() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill(pid: u32, sig: &str) {
    std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
}

#[test]
fn killing_bprof_ends_az_and_everything_it_started() {
    for (sig, code) in [("-KILL", None), ("-INT", Some(130))] {
        let t = az_rdp().env("FAKE_AZ_SLEEP", "120");
        let mut cmd = t.command(&["run", "prod-jumpbox"]);
        let (_, err) = t.outputs(&mut cmd);
        let mut child = cmd.spawn().expect("start bprof.exe");
        wait_for("az runs", || !running("fake_az.exe", &t).is_empty());
        assert!(!running("cmd.exe", &t).is_empty(), "az.cmd runs in cmd.exe");
        kill(child.id(), sig);
        let status = child.wait().expect("wait");
        if code.is_some() {
            assert_eq!(status.code(), code, "{sig}: {}", crate::read(&err));
        }
        wait_for(&format!("{sig}: az and cmd.exe end"), || {
            running("fake_az.exe", &t).is_empty() && running("cmd.exe", &t).is_empty()
        });
    }
}
