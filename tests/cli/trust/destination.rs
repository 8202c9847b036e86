//! Consent pins what it allows *and where it goes* (issue 14 §2): a commit that only moves a
//! profile to another tenant, bastion, VM, IP or port makes the consent lapse, and nothing
//! runs. A plan that is not approved is shown marked, and exits 77.

use std::collections::BTreeMap;
use std::path::Path;

use crate::harness::{Run, Test, one_profile};

const SUB: &str = "22222222-2222-2222-2222-222222222222";
const LIN: &str = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/lin";
const EVIL: &str = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/evil";

/// An ssh profile whose shared `ssh_args` hand the VM this machine's agent.
fn agent() -> String {
    one_profile(
        "  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n    ssh_args: [-A]\n",
    ) + "defaults:\n  tunnel_engine: az\n"
}

/// Every file under the test's directory, with a hash of its content.
fn tree(dir: &Path) -> BTreeMap<String, u64> {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(&p).unwrap().hash(&mut h);
                out.insert(p.display().to_string(), h.finish());
            }
        }
    }
    out
}

/// `args` is refused with 77 for lack of consent: no az call, nothing written.
#[track_caller]
fn refused(t: &Test, args: &[&str]) -> Run {
    let _ = t.command(); // writes the fake az
    let before = tree(t.path());
    let r = t.run_with(args);
    r.code(77)
        .stderr_has("you have not approved it")
        .stderr_has("bprof trust show p")
        .stderr_has("nothing was run");
    assert!(r.calls.is_empty(), "az ran: {:?}", r.calls);
    assert_eq!(tree(t.path()), before, "{args:?} wrote or changed a file");
    r
}

/// `run NAME` is refused with 77 for lack of consent: no az call, nothing written.
#[track_caller]
fn refused_named(t: &Test, name: &str) -> Run {
    let _ = t.command();
    let before = tree(t.path());
    let r = t.run_with(&["run", name]);
    r.code(77)
        .stderr_has("you have not approved it")
        .stderr_has(&format!("bprof trust show {name}"))
        .stderr_has("nothing was run");
    assert!(r.calls.is_empty(), "az ran: {:?}", r.calls);
    assert_eq!(tree(t.path()), before, "run {name} wrote or changed a file");
    r
}

/// An approved `agent()` profile; then `change` applied to its file.
fn approved_then(change: impl Fn(String) -> String) -> Test {
    let t = Test::new()
        .file("profiles/p.yaml", agent())
        .signed_in(&[SUB]);
    t.run_with(&["trust", "allow", "p", "--yes"]).code(0);
    let plan = t.run_with(&["plan", "p", "--format", "json"]);
    plan.code(0);
    assert_eq!(plan.json()["approved"], true);
    std::fs::write(t.path().join("profiles/p.yaml"), change(agent())).unwrap();
    t
}

/// The consent lapses when only `field` of the destination changes (from `was` to `now`).
#[track_caller]
fn lapses(change: impl Fn(String) -> String, field: &str, was: &str, now: &str) {
    let t = approved_then(change);
    refused(&t, &["run", "p"])
        .stderr_has("its destination changed since you approved it")
        .stderr_has(&format!("{field} was {was}, is now {now}"));
    refused(&t, &["run", "p", "--dry-run"]);
}

#[test]
fn consent_lapses_when_only_the_vm_resource_id_changes() {
    lapses(|y| y.replace(LIN, EVIL), "target", LIN, EVIL);
}

#[test]
fn consent_lapses_when_only_the_bastion_changes() {
    let bastion = |sub: &str, rg: &str, name: &str| {
        format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/bastionHosts/{name}"
        )
    };
    let old = bastion(SUB, "rg-net", "bas-1");
    lapses(
        |y| y.replace("name: bas-1", "name: bas-evil"),
        "bastion",
        &old,
        &bastion(SUB, "rg-net", "bas-evil"),
    );
    lapses(
        |y| y.replace("resource_group: rg-net", "resource_group: rg-evil"),
        "bastion",
        &old,
        &bastion(SUB, "rg-evil", "bas-1"),
    );
    let other = "33333333-3333-3333-3333-333333333333";
    lapses(
        |y| {
            y.replace(
                "    name: bas-1\n",
                &format!("    name: bas-1\n    subscription: {other}\n"),
            )
        },
        "subscription",
        SUB,
        other,
    );
}

#[test]
fn consent_lapses_when_the_tenant_changes() {
    let (old, new) = (
        "11111111-1111-1111-1111-111111111111",
        "00000000-0000-0000-0000-0000000000ee",
    );
    lapses(|y| y.replace(old, new), "tenant", old, new);
}

#[test]
fn consent_lapses_when_the_resource_port_changes() {
    lapses(
        |y| {
            y.replace(
                "    ssh_args: [-A]\n",
                "    ssh_args: [-A]\n    resource_port: 2222\n",
            )
        },
        "port",
        "22",
        "2222",
    );
}

#[test]
fn consent_lapses_when_the_target_switches_to_an_ip() {
    lapses(
        |y| y.replace(&format!("resource_id: {LIN}"), "ip: 10.0.0.4"),
        "target",
        LIN,
        "10.0.0.4",
    );
}

#[test]
fn trust_show_prints_the_old_and_new_destination_and_the_marked_plan() {
    let t = approved_then(|y| y.replace(LIN, EVIL));
    let _ = t.command();
    let before = tree(t.path());
    let r = t.run_with(&["trust", "show", "p"]);
    r.code(0)
        .stdout_has("(its destination changed since you approved it)")
        .stdout_has(&format!("    - target: {LIN}\n    + target: {EVIL}\n"))
        .stdout_has("      tenant: 11111111-1111-1111-1111-111111111111\n")
        .stdout_has("the plan your consent would allow:")
        .stdout_has("# NOT APPROVED: profile `p`")
        .stdout_has(&format!(
            "# not approved: az network bastion ssh --name bas-1 --resource-group rg-net --subscription {SUB} --target-resource-id {EVIL} --resource-port 22 --auth-type aad -- -A\n"
        ));
    assert!(r.calls.is_empty(), "az ran: {:?}", r.calls);
    assert_eq!(tree(t.path()), before, "trust show wrote a file");
    let j = t.run_with(&["trust", "show", "p", "--format", "json"]);
    j.code(0);
    let req = &j.json()["requests"][0];
    assert_eq!(req["destination"]["target"], EVIL);
    assert_eq!(req["approved"]["destination"]["target"], LIN);
    assert_eq!(j.json()["plan"]["approved"], false);
    // approved, the destination is shown all the same, and the plan is not marked
    t.run_with(&["trust", "allow", "p", "--yes"]).code(0);
    t.run_with(&["trust", "show", "p"])
        .code(0)
        .stdout_has(&format!("  destination:\n      tenant: 11111111-1111-1111-1111-111111111111\n      subscription: {SUB}\n"))
        .stdout_has(&format!("      target: {EVIL}\n      port: 22\n"))
        .stdout_has("the plan (approved):\n# plan for profile `p`")
        .stdout_has("\naz network bastion ssh --name bas-1");
}

#[test]
fn a_dry_run_or_plan_of_an_unapproved_profile_is_a_marked_plan_exit_77() {
    let t = Test::new()
        .file("profiles/p.yaml", agent())
        .signed_in(&[SUB]);
    for args in [&["run", "p", "--dry-run"][..], &["plan", "p"]] {
        let r = refused(&t, args);
        r.stdout_has("# NOT APPROVED: profile `p` uses shared content you have not approved; this plan cannot run\n")
            .stdout_has("#   `profiles.p.ssh_args` at profiles/p.yaml:24 (not approved)\n")
            .stdout_has("# review it with `bprof trust show p`, then approve it with `bprof trust allow p`\n")
            .stdout_has("#   `ssh_args`: profiles/p.yaml:24 (shared, NOT approved)\n")
            .stdout_has("# not approved: az network bastion ssh --name bas-1 ");
        // nothing can be pasted: every line is a shell comment
        assert!(r.stdout.lines().all(|l| l.starts_with('#')), "{}", r.stdout);
        let mut json_args = args.to_vec();
        json_args.splice(0..0, ["--format", "json"]);
        let j = refused(&t, &json_args).json();
        assert_eq!(j["approved"], false);
        assert_eq!(j["profile"], "p");
        assert_eq!(j["steps"][0]["argv"][3], "ssh");
        assert_eq!(
            j["steps"][0]["argv"].as_array().unwrap().last().unwrap(),
            "-A"
        );
        let unmet = &j["not_approved"][0];
        assert_eq!(unmet["what"], "`profiles.p.ssh_args`");
        assert_eq!(unmet["location"], "profiles/p.yaml:24");
        assert!(
            unmet["reasons"][0].as_str().unwrap().contains("`-A`"),
            "{unmet}"
        );
    }
    // several profiles, tunnels only: the same
    let tunnels = "  p:\n    bastion: b\n    vm: lin\n    mode: tunnel\n    resource_port: 5432\n    local_port: 50444\n  q:\n    bastion: b\n    vm: lin\n    mode: tunnel\n    resource_port: 5433\n    local_port: 50445\n";
    let login = format!("    subscription: {SUB}\n    login: [--username, x]\n");
    let t = Test::new().file(
        "profiles/p.yaml",
        one_profile(tunnels).replacen(&format!("    subscription: {SUB}\n"), &login, 1),
    );
    let r = refused(&t, &["run", "p", "q", "--tunnel-only", "--dry-run"]);
    r.stdout_has("# NOT APPROVED: profile `p`")
        .stdout_has("# NOT APPROVED: profile `q`")
        .stdout_has(
            "# not approved: az login --tenant 11111111-1111-1111-1111-111111111111 --username x\n",
        );
    let j = refused(
        &t,
        &[
            "--format",
            "json",
            "run",
            "p",
            "q",
            "--tunnel-only",
            "--dry-run",
        ],
    )
    .json();
    assert_eq!(j[0]["approved"], false);
    assert_eq!(j[1]["approved"], false);
}

#[test]
fn re_approving_restores_the_consent() {
    let t = approved_then(|y| y.replace(LIN, EVIL));
    refused(&t, &["run", "p"]);
    t.run_with(&["trust", "allow", "p", "--yes"])
        .code(0)
        .stderr_has("approved 1 item");
    let plan = t.run_with(&["plan", "p", "--format", "json"]);
    plan.code(0);
    assert_eq!(plan.json()["approved"], true);
    assert!(plan.json().get("not_approved").is_none());
    t.run_with(&["plan", "p"])
        .code(0)
        .stdout_has("(shared, approved by you)");
    let ok = t.run_with(&["run", "p"]);
    ok.code(0);
    assert_eq!(ok.calls.len(), 1);
    assert!(ok.calls[0].contains(&EVIL.to_string()));
    // one consent per profile's destination: the replaced one is gone
    let text = std::fs::read_to_string(t.path().join("config/bprof/trust.json")).unwrap();
    assert_eq!(text.matches("\"destination\"").count(), 1, "{text}");
}

#[test]
fn profiles_sharing_defaults_each_need_their_own_trust() {
    let set = one_profile(
        "  a:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n  b:\n    bastion: b\n    vm: other\n    mode: ssh\n    auth_type: aad\n",
    )
    .replace("vms:\n", &format!("vms:\n  other:\n    resource_id: {EVIL}\n    os: linux\n"))
        + "defaults:\n  ssh_args: [-A]\n  tunnel_engine: az\n";
    let t = Test::new().file("profiles/p.yaml", set).signed_in(&[SUB]);
    t.run_with(&["trust", "allow", "a", "--yes"]).code(0);
    t.run_with(&["plan", "a"]).code(0);
    // approved for a's VM only: b goes elsewhere
    refused_named(&t, "b").stderr_has("`defaults.ssh_args`");
    t.run_with(&["trust", "show", "b"])
        .code(0)
        .stdout_has("(not approved)")
        .stdout_has(&format!("      target: {EVIL}\n"));
    // approving b keeps a's consent
    t.run_with(&["trust", "allow", "b", "--yes"]).code(0);
    t.run_with(&["plan", "a"]).code(0);
    t.run_with(&["plan", "b"]).code(0);
    let listed = t.run_with(&["trust", "list", "--format", "json"]);
    let requests = listed.json()["requests"].as_array().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests.iter().all(|r| r["status"] == "approved"));
    // revoking a leaves b
    t.run_with(&["trust", "revoke", "a"])
        .code(0)
        .stderr_has("revoked 1 consent");
    t.run_with(&["plan", "b"]).code(0);
    t.run_with(&["plan", "a"]).code(77);
}

#[test]
fn an_old_trust_json_entry_without_destination_is_not_approved() {
    use sha2::Digest;
    let t = Test::new()
        .file("profiles/p.yaml", agent())
        .signed_in(&[SUB]);
    let source = std::fs::canonicalize(t.path().join("profiles/p.yaml"))
        .unwrap()
        .display()
        .to_string();
    let (pointer, content) = ("/profiles/p/ssh_args", serde_json::json!(["-A"]));
    // exactly what a bprof before destinations wrote
    let digest = sha2::Sha256::digest(
        serde_json::json!([source, pointer, content])
            .to_string()
            .as_bytes(),
    );
    let sha: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let old = serde_json::json!({"version": 1, "approved": [{"source": source, "pointer": pointer,
        "what": "`profiles.p.ssh_args`", "sha256": sha, "content": content, "approved_at": 1}]});
    std::fs::create_dir_all(t.path().join("config/bprof")).unwrap();
    std::fs::write(t.path().join("config/bprof/trust.json"), old.to_string()).unwrap();
    refused(&t, &["run", "p"])
        .stderr_has("(approved before consents were pinned to a destination)");
    refused(&t, &["plan", "p"])
        .stdout_has("(approved before consents were pinned to a destination)");
    t.run_with(&["trust", "show", "p"])
        .code(0)
        .stdout_has("you approved it before consents were pinned to a destination")
        .stdout_has(&format!("    + target: {LIN}\n"));
    t.run_with(&["trust", "allow", "p", "--yes"]).code(0);
    t.run_with(&["plan", "p"]).code(0);
}
