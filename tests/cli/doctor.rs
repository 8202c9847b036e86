//! `bprof doctor` against the fake ARM (the fake bastion's server, with this file's own routes
//! for the bastion, the VM, its extensions, role assignments, NIC and virtual networks) and the
//! fake az: a healthy setup, then each broken variant with its status and fix.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fake_azure::*;
use crate::fake_bastion::{Answer, FakeBastion};
use crate::harness::{Run, Test};

/// The profile set: `prod-jumpbox` (Entra rdp to vm-1 through bas-1) and `second` (the same VM,
/// another profile), signed in to the tenant, pointed at the fake, with FreeRDP 3 on PATH.
fn setup(fake: &FakeBastion, azure: &Azure) -> Test {
    bare(fake, azure).fake_client("xfreerdp3")
}

/// The same without an RDP client (whose directory would also put the fake az on PATH).
fn bare(fake: &FakeBastion, azure: &Azure) -> Test {
    fake.set(|c| c.routes = azure.routes(fake.host()));
    let yaml = profiles_yaml();
    Test::new()
        .file("profiles/p.yaml", yaml)
        .file(
            "azure/azureProfile.json",
            format!("\u{feff}{{\"subscriptions\": [{{\"id\": \"{SUB}\", \"tenantId\": \"{TENANT}\", \"name\": \"n\", \"state\": \"Enabled\", \"isDefault\": true}}]}}"),
        )
        .env("BPROF_ARM_ENDPOINT", &fake.arm_endpoint())
        .env("SSL_CERT_FILE", &fake.ca_file().display().to_string())
}

fn doctor(t: &Test, args: &[&str]) -> Run {
    let mut all = vec!["--format", "json", "doctor"];
    all.extend_from_slice(args);
    t.run_with(&all)
}

/// The check `name` (of `profile`, when several were checked).
fn check<'a>(r: &'a Value, profile: Option<&str>, name: &str) -> &'a Value {
    r["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name && profile.is_none_or(|p| c["profile"] == p))
        .unwrap_or_else(|| panic!("no check {name}: {r:#}"))
}

#[track_caller]
fn status(r: &Value, name: &str, want: &str) {
    let c = check(r, None, name);
    assert_eq!(c["status"], want, "check {name}: {c:#}\n{r:#}");
}

#[track_caller]
fn fix_has(r: &Value, name: &str, needle: &str) {
    let c = check(r, None, name);
    let fix = c["fix"].as_str().unwrap_or_default();
    assert!(
        fix.contains(needle),
        "check {name}'s fix lacks {needle:?}: {c:#}"
    );
}

/// The calls of az that ran `account get-access-token`.
fn token_calls(t: &Test) -> usize {
    t.calls()
        .iter()
        .filter(|c| c.starts_with(&["account".into(), "get-access-token".into()]))
        .count()
}

const PROFILE_CHECKS: [&str; 13] = [
    "signed-in",
    "token",
    "bastion",
    "bastion-sku",
    "tunneling",
    "ip-connect",
    "tls-bastion",
    "vm",
    "computer-name",
    "entra-extension",
    "entra-role",
    "network",
    "settings",
];

#[test]
fn a_healthy_setup_is_all_ok_with_one_az_process_for_the_token() {
    let fake = FakeBastion::start();
    let t = setup(&fake, &Azure::healthy());
    let r = doctor(&t, &["prod-jumpbox"]);
    r.code(0);
    let j = r.json();
    for name in ["az", "tenants", "rdp-client", "tls-arm"] {
        status(&j, name, "ok");
    }
    // Linux, native engine: no az extension is needed
    status(&j, "bastion-extension", "skip");
    status(&j, "ssh-extension", "skip");
    for name in PROFILE_CHECKS {
        let want = if name == "ip-connect" { "skip" } else { "ok" };
        status(&j, name, want);
    }
    // one profile: no `profile` field
    assert!(j["checks"][0].get("profile").is_none(), "{j:#}");
    for c in j["checks"].as_array().unwrap() {
        for k in ["name", "status", "detail", "fix"] {
            assert!(c.get(k).is_some(), "{k} missing in {c}");
        }
    }
    assert!(
        check(&j, None, "entra-role")["detail"]
            .as_str()
            .unwrap()
            .contains("Virtual Machine User Login")
    );
    assert!(
        check(&j, None, "az")["detail"]
            .as_str()
            .unwrap()
            .contains("2.67.0")
    );
    assert_eq!(token_calls(&t), 1, "{:?}", t.calls());
    assert_eq!(
        t.calls()
            .iter()
            .filter(|c| c.first().is_some_and(|a| a == "version"))
            .count(),
        1
    );
    // az's stderr note from `az version` is not passed on
    assert!(!r.stderr.contains("newer version"), "{}", r.stderr);
    // every read once, each with the bearer token
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 6, "{}", fake.raw_requests_log());
    for r in &reqs {
        assert!(
            r.header("authorization")
                .is_some_and(|a| a.starts_with("Bearer "))
        );
    }
    // the text form says the same
    let text = t.run_with(&["doctor", "prod-jumpbox"]);
    text.code(0);
    text.stdout_has("profile prod-jumpbox\n")
        .stdout_has("  ok    entra-role")
        .stdout_has("0 fail");
}

fn broken(f: impl FnOnce(&mut Azure)) -> (FakeBastion, Test, Run) {
    let fake = FakeBastion::start();
    let mut azure = Azure::healthy();
    f(&mut azure);
    let t = setup(&fake, &azure);
    let r = doctor(&t, &["prod-jumpbox"]);
    (fake, t, r)
}

#[test]
fn sku_basic_fails_with_the_upgrade() {
    let (_f, _t, r) = broken(|a| a.sku = "Basic");
    r.code(1);
    let j = r.json();
    status(&j, "bastion-sku", "fail");
    fix_has(
        &j,
        "bastion-sku",
        "az network bastion update --sku Standard",
    );
    assert!(
        check(&j, None, "bastion-sku")["detail"]
            .as_str()
            .unwrap()
            .contains("Basic")
    );
    // and the setting is compared with nothing the profile says: no sku declared
    status(&j, "tunneling", "ok");
}

#[test]
fn a_developer_bastion_is_known_with_what_it_serves() {
    let (_f, _t, r) = broken(|a| {
        a.sku = "Developer";
        a.tunneling = false;
    });
    let j = r.json();
    status(&j, "bastion-sku", "ok");
    let detail = check(&j, None, "bastion-sku")["detail"]
        .as_str()
        .unwrap_or_default();
    for needle in [
        "Developer",
        "no peering",
        "no IP-based connection",
        "az's tunnel and rdp do not",
    ] {
        assert!(detail.contains(needle), "{needle}: {detail}");
    }
    status(&j, "tunneling", "skip");
}

#[test]
fn tunneling_off_fails_with_the_setting() {
    let (_f, _t, r) = broken(|a| a.tunneling = false);
    r.code(1);
    let j = r.json();
    status(&j, "tunneling", "fail");
    fix_has(&j, "tunneling", "Native client support");
    fix_has(&j, "tunneling", "--enable-tunneling true");
    status(&j, "bastion-sku", "ok");
}

#[test]
fn a_deallocated_vm_fails_with_the_start_command() {
    let (_f, _t, r) = broken(|a| a.power = "deallocated");
    r.code(1);
    let j = r.json();
    status(&j, "vm", "fail");
    assert_eq!(
        check(&j, None, "vm")["fix"],
        format!("start it: `az vm start --ids {}`", vm_id())
    );
}

#[test]
fn a_computer_name_that_differs_fails_with_the_field_and_aadsts293004() {
    let (_f, _t, r) = broken(|a| a.computer_name = "WIN-7Q2LKJ".into());
    r.code(1);
    let j = r.json();
    status(&j, "computer-name", "fail");
    fix_has(
        &j,
        "computer-name",
        "set `computer_name: WIN-7Q2LKJ` on vm `jump`",
    );
    fix_has(&j, "computer-name", "AADSTS293004");
    assert!(
        check(&j, None, "computer-name")["detail"]
            .as_str()
            .unwrap()
            .contains("JUMP01")
    );
}

#[test]
fn no_entra_extension_fails_with_the_install_command() {
    let (_f, _t, r) = broken(|a| a.extensions.truncate(1));
    r.code(1);
    let j = r.json();
    status(&j, "entra-extension", "fail");
    fix_has(
        &j,
        "entra-extension",
        "az vm extension set --publisher Microsoft.Azure.ActiveDirectory --name AADLoginForWindows --resource-group rg-vm --vm-name vm-1",
    );
}

#[test]
fn a_linux_vm_behind_a_windows_profile_is_a_settings_warning_and_wants_the_ssh_login_extension() {
    let (_f, _t, r) = broken(|a| a.os_type = "Linux");
    let j = r.json();
    status(&j, "settings", "warn");
    fix_has(&j, "settings", "set `os: linux` on vm `jump`");
    // Azure's OS decides which extension Entra needs: the Windows one installed does not count
    status(&j, "entra-extension", "fail");
    fix_has(&j, "entra-extension", "--name AADSSHLoginForLinux");
    r.code(1);
}

#[test]
fn no_login_role_fails_with_the_role_to_ask_for() {
    let (_f, _t, r) = broken(|a| {
        a.roles = Answer::Json(
            200,
            json!({"value": [role(READER, &format!("/subscriptions/{SUB}"))]}),
        )
    });
    r.code(1);
    let j = r.json();
    status(&j, "entra-role", "fail");
    fix_has(
        &j,
        "entra-role",
        &format!(
            "az role assignment create --role \"Virtual Machine User Login\" --assignee {OID} --scope {}",
            vm_id()
        ),
    );
}

#[test]
fn a_403_on_role_assignments_is_a_skip_with_the_reason() {
    let (_f, _t, r) = broken(|a| {
        a.roles = Answer::Json(
            403,
            json!({"error": {"code": "AuthorizationFailed", "message": "The client '0000-oid' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/read'"}}),
        )
    });
    // a skip is not a failure
    r.code(0);
    let j = r.json();
    status(&j, "entra-role", "skip");
    let detail = check(&j, None, "entra-role")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("403 AuthorizationFailed"), "{detail}");
    fix_has(&j, "entra-role", "Check access");
}

#[test]
fn a_hanging_call_is_a_skip_after_doctors_timeout() {
    let start = Instant::now();
    let (_f, _t, r) = broken(|a| a.roles = Answer::Hang);
    let took = start.elapsed();
    r.code(0);
    let j = r.json();
    status(&j, "entra-role", "skip");
    let detail = check(&j, None, "entra-role")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("no answer within 10 s"), "{detail}");
    // the other checks were not held up beyond the one timeout
    status(&j, "vm", "ok");
    status(&j, "network", "ok");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn without_az_doctor_still_reports_everything_and_exits_1() {
    let fake = FakeBastion::start();
    let t = bare(&fake, &Azure::healthy()).no_az();
    let r = doctor(&t, &["prod-jumpbox"]);
    r.code(1);
    let j = r.json();
    status(&j, "az", "fail");
    fix_has(&j, "az", "install the Azure CLI");
    status(&j, "tls-arm", "ok");
    status(&j, "token", "skip");
    for name in PROFILE_CHECKS {
        check(&j, None, name);
    }
    assert!(fake.requests().is_empty(), "{}", fake.raw_requests_log());
}

#[test]
fn not_signed_in_is_a_warning_and_no_token_is_asked_for() {
    let fake = FakeBastion::start();
    let t =
        setup(&fake, &Azure::healthy()).file("azure/azureProfile.json", "{\"subscriptions\": []}");
    let r = doctor(&t, &["prod-jumpbox"]);
    let j = r.json();
    status(&j, "signed-in", "warn");
    fix_has(&j, "signed-in", &format!("az login --tenant {TENANT}"));
    status(&j, "tenants", "warn");
    status(&j, "token", "skip");
    status(&j, "vm", "skip");
    assert_eq!(token_calls(&t), 0);
    r.code(0);
}

#[test]
fn azs_own_message_is_in_the_check_not_above_the_report() {
    let fake = FakeBastion::start();
    let t = setup(&fake, &Azure::healthy())
        .env("FAKE_AZ_TOKEN_EXIT", "1")
        .env(
            "FAKE_AZ_TOKEN_STDERR",
            "ERROR: AADSTS70043: The refresh token has expired \u{1b}[2K",
        );
    let r = doctor(&t, &["prod-jumpbox"]);
    r.code(1);
    let j = r.json();
    status(&j, "token", "fail");
    let detail = check(&j, None, "token")["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.contains("AADSTS70043"), "{detail}");
    assert!(!r.stderr.contains("AADSTS70043"), "{}", r.stderr);
    // the text report says it too, escaped
    let text = t.run_with(&["doctor", "prod-jumpbox"]);
    text.stdout_has("AADSTS70043: The refresh token has expired \\e[2K");
    assert!(!text.stdout.contains("message is above"), "{}", text.stdout);
}

#[test]
fn no_azure_profile_file_is_said_as_never_signed_in() {
    let fake = FakeBastion::start();
    let t = setup(&fake, &Azure::healthy());
    std::fs::remove_file(t.path().join("azure/azureProfile.json")).unwrap();
    let j = doctor(&t, &[]).json();
    status(&j, "tenants", "warn");
    let detail = check(&j, None, "tenants")["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(
        detail.contains("az has not signed in on this machine"),
        "{detail}"
    );
    assert!(detail.contains("does not exist"), "{detail}");
}

#[test]
fn ssh_profiles_need_openssh_and_their_key_files() {
    let fake = FakeBastion::start();
    let ssh = "  s:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: ssh-key\n    username: u\n    ssh_key: ~/.ssh/id_bprof\n";
    let t = Test::new()
        .file("profiles/p.yaml", crate::harness::one_profile(ssh))
        .env("BPROF_ARM_ENDPOINT", &fake.arm_endpoint());
    let j = doctor(&t, &[]).json();
    status(&j, "ssh", "fail");
    let detail = check(&j, None, "ssh")["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(
        detail.contains("`s` names ") && detail.contains("home/.ssh/id_bprof"),
        "{detail}"
    );
    std::fs::create_dir_all(t.path().join("home/.ssh")).unwrap();
    std::fs::write(t.path().join("home/.ssh/id_bprof"), "key").unwrap();
    let j = doctor(&t, &[]).json();
    status(&j, "ssh", "ok");
    // no OpenSSH on PATH
    let home = t.path().join("home").to_str().unwrap().to_string();
    let j = doctor(&t.env("PATH", &home), &[]).json();
    status(&j, "ssh", "fail");
    fix_has(&j, "ssh", "openssh-client");
}

#[test]
fn an_unpeered_network_fails_and_a_connected_peering_is_ok() {
    let (_f, _t, r) = broken(|a| a.vm_vnet = "spoke");
    r.code(1);
    let j = r.json();
    status(&j, "network", "fail");
    assert!(
        check(&j, None, "network")["detail"]
            .as_str()
            .unwrap()
            .contains("spoke")
    );
    fix_has(&j, "network", "Peerings");
    let (_f, _t, r) = broken(|a| {
        a.vm_vnet = "spoke";
        a.peerings = vec![json!({"name": "hub-to-spoke", "properties": {
            "remoteVirtualNetwork": {"id": vnet_id("spoke")}, "peeringState": "Connected"}})];
    });
    r.code(0);
    status(&r.json(), "network", "ok");
}

#[test]
fn several_profiles_share_the_token_and_each_read() {
    let fake = FakeBastion::start();
    let t = setup(&fake, &Azure::healthy());
    let r = doctor(&t, &["prod-jumpbox", "second"]);
    r.code(0);
    let j = r.json();
    assert_eq!(token_calls(&t), 1);
    // the same six reads, once, for both profiles
    assert_eq!(fake.requests().len(), 6, "{}", fake.raw_requests_log());
    for c in j["checks"].as_array().unwrap() {
        assert!(c.get("profile").is_some(), "{c}");
    }
    assert_eq!(check(&j, None, "az")["profile"], Value::Null);
    assert_eq!(check(&j, Some("second"), "vm")["status"], "ok");
    assert_eq!(check(&j, Some("prod-jumpbox"), "vm")["status"], "ok");
    assert!(
        check(&j, Some("second"), "token")["detail"]
            .as_str()
            .unwrap()
            .contains("shared by 2 profiles")
    );
}

#[test]
fn hostile_text_from_azure_is_escaped_and_bounded() {
    let evil = format!(
        "EVIL\u{1b}]52;c;aGk=\u{7}\n  ok    vm  forged{}",
        "x".repeat(5000)
    );
    let (_f, t, r) = broken(|a| a.computer_name = evil.clone());
    let j = r.json();
    let detail = check(&j, None, "computer-name")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.chars().count() < 300,
        "{} characters",
        detail.chars().count()
    );
    // the fix does not suggest writing that into a profile
    fix_has(
        &j,
        "computer-name",
        "set `computer_name:` to the VM's computer name",
    );
    let text = t.run_with(&["doctor", "prod-jumpbox"]);
    assert!(
        !text.stdout.contains('\u{1b}') && !text.stdout.contains('\u{7}'),
        "{:?}",
        text.stdout
    );
    text.stdout_has("EVIL\\e]52;c;aGk=\\x07\\x0a");
    assert!(
        !text
            .stdout
            .lines()
            .any(|l| l.starts_with("  ok    vm  forged")),
        "{}",
        text.stdout
    );
    assert!(text.stdout.lines().all(|l| l.chars().count() < 400));
    // an HTML error page from a proxy on the way: said as such, never shown
    let (_f, t, r) = broken(|a| {
        a.vm = Some(Answer::Raw(
            403,
            "text/html",
            "<html><body><script>alert(1)</script>Blocked by policy</body></html>".into(),
        ))
    });
    let j = r.json();
    status(&j, "vm", "warn");
    let detail = check(&j, None, "vm")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("an HTML error page") && !detail.contains("<script"),
        "{detail}"
    );
    fix_has(&j, "vm", "Reader");
    let text = t.run_with(&["doctor", "prod-jumpbox"]);
    assert!(!text.stdout.contains("<script"), "{}", text.stdout);
}

#[test]
fn tls_without_the_proxys_ca_names_the_bundle_variables() {
    let fake = FakeBastion::start();
    let t = setup(&fake, &Azure::healthy()).env("SSL_CERT_FILE", "");
    let r = doctor(&t, &["prod-jumpbox"]);
    r.code(1);
    let j = r.json();
    status(&j, "tls-arm", "fail");
    fix_has(&j, "tls-arm", "REQUESTS_CA_BUNDLE");
    fix_has(&j, "tls-arm", "SSL_CERT_FILE");
    // the reads could not run: skip, with the reason
    status(&j, "bastion", "skip");
}

#[test]
fn extensions_are_checked_where_a_profile_runs_azs_commands() {
    let fake = FakeBastion::start();
    let t = setup(&fake, &Azure::healthy()).env("BPROF_TUNNEL_ENGINE", "az");
    let r = doctor(&t, &["prod-jumpbox"]);
    let j = r.json();
    status(&j, "bastion-extension", "warn");
    fix_has(&j, "bastion-extension", "az extension add --name bastion");
    status(&j, "ssh-extension", "skip");
    // az's own tunnel: bprof's TLS to the bastion host is not on the path
    status(&j, "tls-bastion", "skip");
    let t = t.env("FAKE_AZ_EXTENSIONS", "bastion=1.4.4,ssh=2.0.6");
    let j = doctor(&t, &["prod-jumpbox"]).json();
    status(&j, "bastion-extension", "ok");
    assert!(
        check(&j, None, "bastion-extension")["detail"]
            .as_str()
            .unwrap()
            .contains("1.4.4")
    );
}

/// The reads, grouped into rounds by when they arrived: doctor makes two rounds after the
/// token, whatever the latency.
#[test]
fn reads_come_in_two_concurrent_rounds() {
    let fake = FakeBastion::start();
    let mut azure = Azure::healthy();
    azure.delay = Duration::from_millis(300);
    let t = setup(&fake, &azure);
    let start = Instant::now();
    let r = doctor(&t, &["prod-jumpbox"]);
    let took = start.elapsed();
    r.code(0);
    let mut arrivals = azure.arrivals.lock().unwrap().clone();
    arrivals.sort_by_key(|(_, at)| *at);
    let mut rounds: Vec<Vec<String>> = Vec::new();
    let mut first_of_round = None;
    for (path, at) in arrivals {
        match first_of_round {
            Some(f) if at.duration_since(f) < Duration::from_millis(150) => {
                rounds.last_mut().unwrap().push(path)
            }
            _ => {
                first_of_round = Some(at);
                rounds.push(vec![path]);
            }
        }
    }
    let sizes: Vec<usize> = rounds.iter().map(Vec::len).collect();
    assert_eq!(sizes, [4, 2], "{rounds:#?}");
    assert!(
        rounds[1].iter().any(|p| p.ends_with("vm-1-nic")),
        "{rounds:#?}"
    );
    eprintln!("doctor with 300 ms per ARM answer: {took:?}");
}

/// bprof in the background, killed if the test fails first.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ctrl_c_during_a_hanging_read_ends_doctor_at_once_with_130() {
    let fake = FakeBastion::start();
    let mut azure = Azure::healthy();
    azure.roles = Answer::Hang;
    let t = setup(&fake, &azure);
    let mut bprof = Background(
        t.command()
            .args(["doctor", "prod-jumpbox"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn bprof"),
    );
    fake.wait_until(
        "the role assignments asked for",
        Duration::from_secs(10),
        |f| {
            f.requests()
                .iter()
                .any(|r| r.path.contains("roleAssignments"))
        },
    );
    let start = Instant::now();
    crate::run::unsafe_kill(bprof.0.id(), 2);
    let status = bprof.0.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    // not after doctor's 10 s timeout of the hanging read
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}
