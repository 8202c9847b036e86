use std::time::{Duration, Instant};

use crate::harness::{Test, one_profile};

const SUB: &str = "22222222-2222-2222-2222-222222222222";

fn ssh_profile(extra: &str) -> String {
    one_profile(&format!(
        "  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n{extra}"
    )) + "defaults:\n  tunnel_engine: az\n" // az's ssh (Entra on the native engine: proxy.rs)
}

#[test]
fn run_executes_exactly_the_plan_with_one_az_process() {
    for name in ["prod-app-ssh", "prod-db-tunnel", "fabrikam-web-ssh"] {
        // az's engine: its tunnel and ssh (the native engine's runs are in native.rs)
        let t = Test::examples()
            .az_tunnel()
            .signed_in_all()
            .env("FAKE_AZ_TUNNEL", "die");
        let plan = t.run_with(&["plan", name, "--format", "json"]);
        let want: Vec<String> = plan.json()["steps"][0]["argv"].as_array().unwrap()[1..]
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let r = t.run_with(&["run", name]);
        assert_eq!(
            r.calls.len(),
            1,
            "{name}: one az process when signed in: {:?}",
            r.calls
        );
        assert_eq!(r.calls[0], want, "{name}: run = plan, element by element");
    }
}

#[test]
fn login_runs_first_when_not_signed_in() {
    let r = Test::new()
        .file("profiles/p.yaml", ssh_profile(""))
        .args(&["run", "p"])
        .run();
    r.code(0);
    assert_eq!(r.calls.len(), 2);
    assert_eq!(
        r.calls[0],
        ["login", "--tenant", "11111111-1111-1111-1111-111111111111"]
    );
    assert_eq!(&r.calls[1][..3], ["network", "bastion", "ssh"]);
}

#[test]
fn a_failed_login_stops_the_run() {
    let r = Test::new()
        .file("profiles/p.yaml", ssh_profile(""))
        .env("FAKE_AZ_LOGIN_EXIT", "7")
        .args(&["run", "p"])
        .run();
    r.code(7).stderr_has("`login` failed");
    assert_eq!(
        r.calls.len(),
        1,
        "nothing after a failed login: {:?}",
        r.calls
    );
}

#[test]
fn exit_status_is_passed_through() {
    let t = || {
        Test::new()
            .file("profiles/p.yaml", ssh_profile(""))
            .signed_in(&[SUB])
    };
    t().env("FAKE_AZ_EXIT", "3")
        .args(&["run", "p"])
        .run()
        .code(3);
    t().env("FAKE_AZ_EXIT", "0")
        .args(&["run", "p"])
        .run()
        .code(0);
    // a status that would read as one of bprof's own codes becomes 1, and is said
    t().env("FAKE_AZ_EXIT", "69")
        .args(&["run", "p"])
        .run()
        .code(1)
        .stderr_has("69");
}

#[test]
fn missing_az_is_69_with_the_install_link() {
    Test::new()
        .file("profiles/p.yaml", ssh_profile(""))
        .signed_in(&[SUB])
        .no_az()
        .args(&["run", "p"])
        .run()
        .code(69)
        .stderr_has("https://learn.microsoft.com/cli/azure/install-azure-cli");
    Test::new()
        .file("profiles/p.yaml", ssh_profile(""))
        .signed_in(&[SUB])
        .env("BPROF_AZ", "/nonexistent/az")
        .args(&["run", "p"])
        .run()
        .code(69)
        .stderr_has("BPROF_AZ");
}

#[test]
fn hostile_values_stay_one_argument() {
    let hostile = [
        "a; touch pwned1",
        "$(touch pwned2)",
        "`touch pwned3`",
        "it's \"quoted\"",
        "two words",
        "&& touch pwned4 |",
    ];
    let yaml_list: Vec<String> = hostile
        .iter()
        .map(|h| serde_json::to_string(h).unwrap())
        .collect();
    // the person's own values (from a shared file these lists pass only their allow-lists)
    let own = format!(
        "version: 1\nprofiles:\n  p:\n    extra_args: [{}]\n    ssh_args: [{}]\n",
        yaml_list.join(", "),
        yaml_list.join(", ")
    );
    let t = Test::new()
        .file("profiles/p.yaml", ssh_profile(""))
        .file("config/bprof/local.yaml", own)
        .signed_in(&[SUB]);
    let dir = t.path().to_path_buf();
    let r = t
        .args(&["run", "p", "--", "--extra", "$(touch pwned5)"])
        .run();
    r.code(0);
    let argv = &r.calls[0];
    let dd = argv.iter().position(|a| a == "--").expect("--");
    for h in hostile {
        assert!(
            argv[..dd].contains(&h.to_string()),
            "{h:?} not one az argument: {argv:?}"
        );
        assert!(
            argv[dd..].contains(&h.to_string()),
            "{h:?} not one ssh argument: {argv:?}"
        );
    }
    assert_eq!(
        &argv[dd - 2..dd],
        ["--extra", "$(touch pwned5)"],
        "EXTRA goes before ssh's --"
    );
    for i in 1..=5 {
        assert!(
            !dir.join(format!("pwned{i}")).exists(),
            "a value was executed"
        );
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_reaches_the_child_and_exits_130() {
    let t = Test::new()
        .file("profiles/p.yaml", ssh_profile(""))
        .signed_in(&[SUB])
        .env("FAKE_AZ_SLEEP", "30")
        .args(&["run", "p"]);
    let mut child = t
        .command()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pids = t.path().join("pids");
    let start = Instant::now();
    while !pids.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    unsafe_kill(child.id(), 2);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "bprof waited for the child, not for its sleep"
    );
    let az_pid: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(az_pid), "the az child is still running");
}

#[cfg(unix)]
pub fn unsafe_kill(pid: u32, sig: i32) {
    std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
}

#[cfg(unix)]
pub fn alive(pid: i32) -> bool {
    // a zombie is gone for our purposes: check /proc state when there is one
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')),
        Err(_) => std::process::Command::new("kill")
            .arg("-0")
            .arg(pid.to_string())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}
