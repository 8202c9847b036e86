//! One teammate's mistake never stops the team: a broken file or entry refuses only what
//! depends on it; `validate` reports every problem of every layer at once; messages for the
//! mistakes people make; bounded work; strict environment variables.

use crate::harness::{Test, one_profile};

const SUB: &str = "22222222-2222-2222-2222-222222222222";

/// The shared base set (tenant t, bastion b, vms v and lin) with profile `p`.
fn base() -> String {
    one_profile("  p:\n    bastion: b\n    vm: v\n")
}

fn set(files: &[(&str, &str)]) -> Test {
    let mut t = Test::new().signed_in(&[SUB]).fake_client("xfreerdp3");
    for (rel, content) in files {
        t = t.file(rel, content);
    }
    t
}

#[test]
fn a_broken_file_elsewhere_does_not_stop_a_profile_that_does_not_need_it() {
    let t = set(&[
        ("profiles/a.yaml", &base()),
        (
            "profiles/b.yaml",
            "version: 1\nprofiles:\n  other:\n    bastion: b\n     vm: v\n",
        ),
    ]);
    let t = t.az_tunnel();
    let plan = t.run_with(&["plan", "p", "--os", "windows"]);
    plan.code(0)
        .stderr_has("1 problem elsewhere in the profile set")
        .stdout_has("az network bastion rdp");
    // and it runs: the tunnel, then the (fake) RDP client, which exits 0
    t.run_with(&["run", "p"])
        .code(0)
        .stderr_has("1 problem elsewhere in the profile set");
    // the broken file's own profile is refused with the file's reason, not "no such profile"
    t.run_with(&["plan", "other"])
        .code(65)
        .stderr_has("profiles/b.yaml:5:")
        .stderr_has("check the indentation of this line and the one above");
    // list shows the usable profiles and marks the others; validate still fails
    let list = t.run_with(&["list", "--format", "json"]);
    list.code(0);
    let rows = list.json();
    let row = |n: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} is not listed: {rows}"))
    };
    assert_eq!(row("p")["usable"], true);
    assert_eq!(row("other")["usable"], false);
    t.run_with(&["validate"]).code(65);
}

#[test]
fn what_a_profile_needs_from_a_broken_place_refuses_it_with_the_reason() {
    // the bastion lives in a file that does not parse
    let hub = "version: 1\nbastions:\n  hub:\n    tenant: t\n    resource_group: rg\n    name: hub\n   sku: standard\n";
    let t = set(&[
        (
            "profiles/a.yaml",
            &one_profile("  p:\n    bastion: b\n    vm: v\n  q:\n    bastion: hub\n    vm: v\n"),
        ),
        ("profiles/hub.yaml", hub),
    ]);
    t.run_with(&["plan", "p"]).code(0);
    t.run_with(&["plan", "q"])
        .code(65)
        .stderr_has("depends on bastion `hub` with problems")
        .stderr_has("profiles/hub.yaml:7:");
    // a name defined twice stays an error for what uses it, and only for that
    let t = set(&[
        (
            "profiles/a.yaml",
            &one_profile("  p:\n    bastion: b\n    vm: v\n  q:\n    bastion: b\n    vm: v2\n"),
        ),
        (
            "profiles/c.yaml",
            "version: 1\nvms:\n  v2:\n    resource_group: r\n    name: x\n",
        ),
        (
            "profiles/d.yaml",
            "version: 1\nvms:\n  v2:\n    resource_group: r\n    name: y\n",
        ),
    ]);
    t.run_with(&["plan", "p"]).code(0);
    t.run_with(&["plan", "q"])
        .code(65)
        .stderr_has("vm `v2` is defined twice");
}

#[test]
fn broken_defaults_and_broken_personal_files_refuse_everything_with_the_reason() {
    // losing `defaults.enable_mfa` would bring "The login attempt failed" back: refuse
    let t = set(&[
        ("profiles/a.yaml", &base()),
        (
            "profiles/d.yaml",
            "version: 1\ndefaults:\n  enable_mfa: yes\n",
        ),
    ]);
    t.run_with(&["plan", "p"])
        .code(65)
        .stderr_has("profiles/d.yaml:3:")
        .stderr_has("`defaults` or a personal file");
    let t = set(&[
        ("profiles/a.yaml", &base()),
        (
            "profiles/me.local.yaml",
            "version: 1\nprofiles:\n  p:\n\tusername: me\n",
        ),
    ]);
    t.run_with(&["plan", "p"])
        .code(65)
        .stderr_has("tabs are not allowed in YAML indentation")
        .stderr_has("profiles/me.local.yaml:4:1");
}

#[test]
fn validate_reports_every_problem_of_every_layer_in_one_run() {
    let a = one_profile(
        "  p1:\n    bastion: b\n    vm: v\n    enable_mfaa: true\n    local_port: 1.5\n  p2:\n    bastion: nope\n    vm: v\n  p3:\n    bastion: b\n    vm: v\n    mode: ssh\n",
    );
    let t = set(&[
        ("profiles/a.yaml", &a),
        (
            "profiles/b.yaml",
            "version: 1\nprofiles:\n  x:\n    bastion: b\n     vm: v\n",
        ),
    ]);
    let r = t.run_with(&["validate", "--format", "json"]);
    r.code(65);
    let problems = r.json()["problems"].as_array().cloned().unwrap_or_default();
    let has = |file: &str, needle: &str| {
        problems
            .iter()
            .any(|p| p["file"] == file && p["message"].as_str().unwrap_or("").contains(needle))
    };
    assert!(
        has("profiles/a.yaml", "unknown key `enable_mfaa`"),
        "{problems:?}"
    );
    assert!(
        has("profiles/a.yaml", "port number"),
        "a bad value beside a bad key: {problems:?}"
    );
    assert!(
        has("profiles/a.yaml", "bastion `nope` is not defined"),
        "{problems:?}"
    );
    assert!(has("profiles/a.yaml", "has no `auth_type`"), "{problems:?}");
    assert!(has("profiles/b.yaml", "indentation"), "{problems:?}");
    let order: Vec<(String, u64)> = problems
        .iter()
        .map(|p| {
            (
                p["file"].as_str().unwrap_or("").to_string(),
                p["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "sorted by file and line");
}

#[test]
fn validate_paths_are_checked_in_their_set_without_personal_files() {
    let t = set(&[
        ("profiles/a.yaml", &base()),
        (
            "profiles/more.yaml",
            "version: 1\nprofiles:\n  q:\n    bastion: b\n    vm: v\n",
        ),
        (
            "profiles/me.local.yaml",
            "version: 1\nprofiles:\n  p:\n    username: \"-x\"\n",
        ),
    ]);
    // more.yaml uses names from a.yaml, and the broken personal file is not part of the check
    t.run_with(&["validate", "profiles/more.yaml"])
        .code(0)
        .stderr_has("1 file valid");
    t.run_with(&["validate"])
        .code(65)
        .stderr_has("begins with `-`");
}

#[test]
fn messages_for_the_mistakes_people_make() {
    let t = set(&[(
        "profiles/a.yaml",
        &format!(
            "{}  007:\n    bastion: b\n    vm: v\n  1.10:\n    bastion: b\n    vm: v\n",
            base()
        ),
    )]);
    t.run_with(&["validate"])
        .code(65)
        .stderr_has("YAML reads this key as the number 7")
        .stderr_has("profiles/a.yaml:22:3")
        .stderr_has("quote it");
    // the rest of the file stays usable
    t.run_with(&["plan", "p"]).code(0);
    let t = set(&[(
        "profiles/a.yaml",
        &one_profile(
            "  p:\n    bastion: b\n    vm: v\n    timeout: 1e99\n    resource_port: 22.5\n",
        ),
    )]);
    t.run_with(&["validate"])
        .code(65)
        .stderr_has("`timeout` is 1e+99, outside 1..=4294967295")
        .stderr_has("`resource_port` must be a whole number, not 22.5");
    // an override that names a profile that does not exist, close to one that does
    let t = set(&[
        (
            "profiles/a.yaml",
            &one_profile("  nw-jump:\n    bastion: b\n    vm: v\n"),
        ),
        (
            "profiles/me.local.yaml",
            "version: 1\nprofiles:\n  nw-jmup:\n    username: me\n",
        ),
    ]);
    t.run_with(&["validate"])
        .code(65)
        .stderr_has("did you mean `nw-jump`?");
    t.run_with(&["plan", "nw-jump"]).code(0);
    // a profile name typed as a command is not run; bprof says how
    let r = Test::examples().args(&["prod-jumpbox"]).run();
    r.code(64)
        .stderr_has("did you mean `bprof run prod-jumpbox`?");
    assert!(r.calls.is_empty());
    // --configure where it means nothing says so
    Test::examples()
        .fake_client("xfreerdp3")
        .args(&["plan", "prod-jumpbox-switch-user", "--os", "linux"])
        .run()
        .code(0)
        .stdout_has("--configure does nothing with `xfreerdp3`");
    // init's next steps work from where the person is
    Test::new()
        .args(&["init", "team/bprof"])
        .run()
        .code(0)
        .stderr_has("`bprof --profiles team/bprof validate`");
}

#[test]
fn extends_chains_are_bounded_and_a_cycle_is_reported_once() {
    let mut deep = String::from("  l0:\n    bastion: b\n    vm: v\n");
    for i in 1..40 {
        deep.push_str(&format!("  l{i}:\n    extends: l{}\n", i - 1));
    }
    let t = set(&[("profiles/a.yaml", &one_profile(&deep))]);
    t.run_with(&["plan", "l39"])
        .code(65)
        .stderr_has("longer than 32 profiles");
    t.run_with(&["plan", "l20"]).code(0);
    let mut cycle = String::new();
    for i in 0..1000 {
        cycle.push_str(&format!(
            "  c{i:04}:\n    bastion: b\n    vm: v\n    extends: c{:04}\n",
            (i + 1) % 1000
        ));
    }
    let t = set(&[("profiles/a.yaml", &one_profile(&cycle))]);
    let r = t.run_with(&["validate"]);
    r.code(65);
    assert_eq!(
        r.stderr.matches("forms a cycle").count(),
        1,
        "{}",
        &r.stderr[..r.stderr.len().min(2000)]
    );
    assert!(r.stderr.len() < 4000, "{} bytes of output", r.stderr.len());
}

#[test]
fn bprof_variables_are_parsed_strictly() {
    for (var, value) in [
        ("BPROF_TUNNEL_TIMEOUT", "inf"),
        ("BPROF_TUNNEL_TIMEOUT", "abc"),
        ("BPROF_TUNNEL_ENGINE", "python"),
        ("BPROF_PROFILES", ":"),
    ] {
        Test::examples()
            .env(var, value)
            .args(&["list"])
            .run()
            .code(64)
            .stderr_has(var);
    }
    Test::examples()
        .env("BPROF_TUNNEL_TIMEOUT", "2.5")
        .args(&["list"])
        .run()
        .code(0);
}
