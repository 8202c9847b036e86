//! `bprof import` against the fake ARM's Resource Graph (pages of canned rows, `$skipToken`),
//! with the fake az's token: the file it writes, the names it keeps, what it refuses.

use serde_json::{Value, json};

use crate::fake_bastion::{Answer, FakeBastion, Route};
use crate::harness::Test;

const SUB: &str = "22222222-2222-2222-2222-222222222222";
const HUB: &str = "55555555-5555-5555-5555-555555555555";
const TEN: &str = "11111111-1111-1111-1111-111111111111";
const GRAPH: &str = "/providers/Microsoft.ResourceGraph/resources";
const DNS: &str = "bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com";

fn vnet_id(sub: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/{name}"
    )
}

fn vm_id(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"
    )
}

/// A VM and its NIC in `net` (a virtual network of subscription `SUB` unless it is an id).
fn vm(sub: &str, rg: &str, name: &str, net: &str, os: &str, computer: &str) -> Vec<Value> {
    let id = vm_id(sub, rg, name);
    let nic = format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkInterfaces/{name}-nic"
    );
    let net = if net.starts_with('/') {
        net.to_string()
    } else {
        vnet_id(SUB, net)
    };
    vec![
        json!({"id": id, "name": name, "type": "microsoft.compute/virtualmachines", "tenantId": TEN,
            "subscriptionId": sub, "resourceGroup": rg, "sku": null,
            "properties": {
                "osProfile": {"computerName": computer},
                "storageProfile": {"osDisk": {"osType": os}},
                "extended": {"instanceView": {"powerState": {"code": "PowerState/running"}}},
                "networkProfile": {"networkInterfaces": [{"id": nic}]}}}),
        json!({"id": nic, "name": format!("{name}-nic"), "type": "microsoft.network/networkinterfaces",
            "tenantId": TEN, "subscriptionId": sub, "resourceGroup": rg, "sku": null,
            "properties": {"ipConfigurations": [{"properties": {
                "privateIPAddress": "10.0.0.4",
                "subnet": {"id": format!("{net}/subnets/default")}}}]}}),
    ]
}

fn bastion(sub: &str, name: &str, net: &str, sku: &str) -> Value {
    json!({"id": format!("/subscriptions/{sub}/resourceGroups/rg-net/providers/Microsoft.Network/bastionHosts/{name}"),
        "name": name, "type": "microsoft.network/bastionhosts", "tenantId": TEN, "subscriptionId": sub,
        "resourceGroup": "rg-net", "sku": {"name": sku},
        "properties": {"dnsName": DNS, "enableTunneling": true, "enableIpConnect": false,
            "ipConfigurations": [{"properties": {"subnet": {"id": format!("{}/subnets/AzureBastionSubnet", vnet_id(SUB, net))}}}]}})
}

/// A virtual network of `SUB` peered (connected) with `peers`.
fn vnet(name: &str, peers: &[&str]) -> Value {
    let peerings: Vec<Value> = peers
        .iter()
        .map(|p| json!({"name": format!("to-{p}"), "properties": {"peeringState": "Connected", "remoteVirtualNetwork": {"id": vnet_id(SUB, p)}}}))
        .collect();
    json!({"id": vnet_id(SUB, name), "name": name, "type": "microsoft.network/virtualnetworks",
        "tenantId": TEN, "subscriptionId": SUB, "resourceGroup": "rg-net", "sku": null,
        "properties": {"virtualNetworkPeerings": peerings, "subnets": []}})
}

/// Resource Graph answers `rows`, `per_page` at a time, with `$skipToken`s `page-N`.
fn graph(fake: &FakeBastion, rows: Vec<Value>, per_page: usize) {
    fake.set(move |c| {
        c.routes = vec![Route::new("POST", GRAPH, move |req| {
            let body: Value = serde_json::from_str(&req.body).unwrap_or_default();
            let start: usize = body["options"]["$skipToken"]
                .as_str()
                .and_then(|t| t.strip_prefix("page-"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
                .min(rows.len());
            let end = (start + per_page).min(rows.len());
            let mut answer = json!({"totalRecords": rows.len(), "count": end - start,
                "data": rows[start..end], "resultTruncated": "false", "facets": []});
            if end < rows.len() {
                answer["$skipToken"] = json!(format!("page-{end}"));
            }
            Answer::Json(200, answer)
        })]
    });
}

/// The Resource Graph requests the fake received, as JSON bodies.
fn graph_bodies(fake: &FakeBastion) -> Vec<Value> {
    fake.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.decoded_path == GRAPH)
        .map(|r| serde_json::from_str(&r.body).expect("a JSON body"))
        .collect()
}

fn env(fake: &FakeBastion) -> Test {
    Test::new()
        .signed_in(&[SUB, HUB])
        .env("BPROF_ARM_ENDPOINT", &fake.arm_endpoint())
        .env("SSL_CERT_FILE", &fake.ca_file().display().to_string())
}

fn read(t: &Test, rel: &str) -> String {
    std::fs::read_to_string(t.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The entry names of a section, as the file writes them (quoted keys two spaces in), in order.
fn entries(text: &str, section: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            inside = line == format!("{section}:");
            continue;
        }
        if inside && line.starts_with("  \"") && !line.starts_with("   ") {
            names.push(
                line.trim()
                    .trim_end_matches(':')
                    .trim_matches('"')
                    .to_string(),
            );
        }
    }
    names
}

/// Two spokes peered with the hub, one with a bastion of its own; an island nobody reaches.
fn network() -> Vec<Value> {
    let mut rows = vec![
        vnet("hub", &["spoke-a", "spoke-b"]),
        vnet("spoke-a", &["hub"]),
        vnet("spoke-b", &["hub"]),
        vnet("island", &[]),
        bastion(SUB, "bas-hub", "hub", "Standard"),
        bastion(SUB, "bas-b", "spoke-b", "Premium"),
        bastion(SUB, "bas-dev", "island", "Developer"),
    ];
    rows.extend(vm(SUB, "rg-app", "app01", "spoke-a", "Windows", "APP01X"));
    rows.extend(vm(SUB, "rg-app", "db01", "spoke-b", "Linux", "db01"));
    rows.extend(vm(SUB, "rg-app", "iso", "island", "Linux", "iso"));
    rows.extend(vm(SUB, "rg-app", "lonely", "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-x/providers/Microsoft.Network/virtualNetworks/nowhere", "Linux", "lonely"));
    rows
}

#[test]
fn pages_are_followed_with_the_skip_token_and_the_file_validates() {
    let fake = FakeBastion::start();
    let mut rows = vec![vnet("hub", &[]), bastion(SUB, "bas-hub", "hub", "Standard")];
    for i in 0..4 {
        rows.extend(vm(
            SUB,
            "rg-app",
            &format!("vm{i}"),
            "hub",
            "Windows",
            &format!("vm{i}"),
        ));
    }
    graph(&fake, rows, 3);
    let t = env(&fake).file("profiles/team.yaml", "version: 1\n");
    let r = t.run_with(&["import", "--subscription", SUB]);
    r.code(0);
    assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.stdout);
    let bodies = graph_bodies(&fake);
    assert_eq!(bodies.len(), 4, "10 rows, 3 a page: {bodies:#?}");
    assert!(bodies[0]["options"].get("$skipToken").is_none());
    for (i, b) in bodies.iter().enumerate().skip(1) {
        assert_eq!(
            b["options"]["$skipToken"],
            json!(format!("page-{}", 3 * i)),
            "{b}"
        );
    }
    for b in &bodies {
        assert_eq!(b["subscriptions"], json!([SUB]));
        assert_eq!(b["options"]["$top"], json!(1000));
        let q = b["query"].as_str().unwrap_or_default();
        for kind in [
            "microsoft.compute/virtualmachines",
            "microsoft.network/networkinterfaces",
            "microsoft.network/virtualnetworks",
            "microsoft.network/bastionhosts",
        ] {
            assert!(q.contains(kind), "{q}");
        }
    }
    let posts: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    for p in &posts {
        assert_eq!(
            p.path,
            format!("{GRAPH}?api-version=2022-10-01"),
            "the reference's call"
        );
        assert!(
            p.header("authorization")
                .is_some_and(|a| a.starts_with("Bearer "))
        );
    }
    let calls = t.calls();
    assert_eq!(
        calls,
        [[
            "account",
            "get-access-token",
            "--subscription",
            SUB,
            "-o",
            "json"
        ]],
        "one az process, for the token"
    );
    let text = read(&t, "profiles/imported.yaml");
    assert!(text.starts_with("# generated by bprof import"), "{text}");
    assert_eq!(
        entries(&text, "profiles"),
        ["vm0", "vm1", "vm2", "vm3"],
        "{text}"
    );
    t.run_with(&["validate", "--strict"]).code(0);
    let list = t.run_with(&["--format", "json", "list"]);
    list.code(0);
    let listed: Vec<String> = list
        .json()
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(listed, ["vm0", "vm1", "vm2", "vm3"]);
}

#[test]
fn each_vm_gets_the_bastion_of_its_network_or_a_peered_one_and_bastion_forces_one() {
    let fake = FakeBastion::start();
    graph(&fake, network(), 1000);
    let t = env(&fake);
    let r = t.run_with(&["import", "--subscription", SUB, "-o", "out.yaml"]);
    r.code(0);
    // the island's VM: listed with why, not guessed
    r.stderr_has("2 VMs have no bastion")
        .stderr_has("lonely (rg-app, subscription 22222222-2222-2222-2222-222222222222): no bastion in its virtual network or a peered one")
        .stderr_has("iso (rg-app, subscription 22222222-2222-2222-2222-222222222222): only bastion bas-dev reaches it, and its SKU is developer")
        .stderr_has("bastion bas-dev (rg-net): not written: its SKU is developer");
    let text = read(&t, "out.yaml");
    let want = format!(
        r#"# generated by bprof import: the next `bprof import` replaces this file, so edit other files.
# Hand-written profiles go in other files of this directory and may `extends` the ones here:
# names stay the same from run to run (matched by Azure resource id).
version: 1

tenants:
  "tenant-11111111":
    id: "{TEN}"
    subscription: "{SUB}"

bastions:
  "bas-b":
    tenant: "tenant-11111111"
    subscription: "{SUB}"
    resource_group: "rg-net"
    name: "bas-b"
    sku: "premium"
    ip_connect: false
    dns_name: "{DNS}"
  "bas-hub":
    tenant: "tenant-11111111"
    subscription: "{SUB}"
    resource_group: "rg-net"
    name: "bas-hub"
    sku: "standard"
    ip_connect: false
    dns_name: "{DNS}"

vms:
  "app01":
    resource_id: "{app}"
    os: "windows"
    computer_name: "APP01X"
  "db01":
    resource_id: "{db}"
    os: "linux"

profiles:
  "app01":
    description: "app01 (rg-app)"
    bastion: "bas-hub"
    vm: "app01"
    mode: "rdp"
    enable_mfa: true
  "db01":
    description: "db01 (rg-app)"
    bastion: "bas-b"
    vm: "db01"
    mode: "ssh"
    auth_type: "aad"
"#,
        app = vm_id(SUB, "rg-app", "app01"),
        db = vm_id(SUB, "rg-app", "db01"),
    );
    assert_eq!(
        text, want,
        "peered spoke-a -> hub; spoke-b's own bastion before the peered hub"
    );
    t.run_with(&["--profiles", "out.yaml", "validate", "--strict"])
        .code(0);

    // --bastion: one bastion for every VM, the island's too (in a directory of its own: beside
    // out.yaml its names would avoid out.yaml's)
    std::fs::create_dir(t.path().join("forced")).expect("mkdir");
    let r = t.run_with(&[
        "import",
        "--subscription",
        SUB,
        "-o",
        "forced/imported.yaml",
        "--bastion",
        "bas-b",
    ]);
    r.code(0);
    assert!(!r.stderr.contains("no bastion"), "{}", r.stderr);
    let forced = read(&t, "forced/imported.yaml");
    assert_eq!(forced.matches("bastion: \"bas-b\"").count(), 4, "{forced}");
    assert!(
        forced.contains("\"lonely\":") && forced.contains("\"iso\":"),
        "{forced}"
    );
    // a bastion that does not exist, or cannot carry a connection: usage errors
    t.run_with(&[
        "import",
        "--subscription",
        SUB,
        "-o",
        "x.yaml",
        "--bastion",
        "nope",
    ])
    .code(64)
    .stderr_has("bastions found: bas-b, bas-dev, bas-hub");
    t.run_with(&[
        "import",
        "--subscription",
        SUB,
        "-o",
        "x.yaml",
        "--bastion",
        "bas-dev",
    ])
    .code(64)
    .stderr_has("developer");
    assert!(!t.path().join("x.yaml").exists());
}

#[test]
fn same_vm_names_in_two_resource_groups_get_distinct_names_and_a_re_run_is_byte_identical() {
    let fake = FakeBastion::start();
    let mut rows = vec![vnet("hub", &[]), bastion(SUB, "bas-hub", "hub", "Standard")];
    rows.extend(vm(SUB, "rg-b", "web", "hub", "Windows", "web"));
    rows.extend(vm(SUB, "rg-a", "web", "hub", "Windows", "web"));
    rows.extend(vm(SUB, "rg-a", "API", "hub", "Linux", "api"));
    graph(&fake, rows.clone(), 2);
    let t = env(&fake);
    t.run_with(&["import", "-o", "p/imported.yaml"]).code(73);
    std::fs::create_dir(t.path().join("p")).expect("mkdir");
    t.run_with(&["import", "-o", "p/imported.yaml"]).code(0);
    let first = read(&t, "p/imported.yaml");
    assert_eq!(
        entries(&first, "vms"),
        ["api", "web-rg-a", "web-rg-b"],
        "{first}"
    );
    assert_eq!(entries(&first, "profiles"), ["api", "web-rg-a", "web-rg-b"]);
    // no --subscription: the tenant of az's default, every subscription (none listed)
    assert!(graph_bodies(&fake)[0].get("subscriptions").is_none());
    assert_eq!(t.calls()[0], ["account", "get-access-token", "-o", "json"]);
    // Azure lists them in another order: the same bytes
    rows.reverse();
    graph(&fake, rows, 1000);
    t.run_with(&["import", "-o", "p/imported.yaml"]).code(0);
    assert_eq!(
        read(&t, "p/imported.yaml"),
        first,
        "a re-run changes nothing"
    );
}

#[test]
fn a_re_run_keeps_every_name_by_resource_id_and_removes_what_azure_no_longer_has() {
    let fake = FakeBastion::start();
    let base = || {
        let mut rows = vec![vnet("hub", &[]), bastion(SUB, "bas-hub", "hub", "Standard")];
        rows.extend(vm(SUB, "rg-a", "web", "hub", "Windows", "web"));
        rows.extend(vm(SUB, "rg-a", "old", "hub", "Linux", "old"));
        rows
    };
    graph(&fake, base(), 1000);
    let t = env(&fake).file("profiles/team.yaml", "version: 1\n");
    t.run_with(&["import", "--subscription", SUB]).code(0);
    // a teammate renames the entries (the file is still the import's)
    let text = read(&t, "profiles/imported.yaml")
        .replace("\"web\":", "\"front\":")
        .replace("vm: \"web\"", "vm: \"front\"")
        .replace("\"bas-hub\":", "\"hub\":")
        .replace("bastion: \"bas-hub\"", "bastion: \"hub\"");
    std::fs::write(t.path().join("profiles/imported.yaml"), &text).expect("write");
    // a hand-written profile extends an imported one; its name is the team's: new names avoid it
    std::fs::write(
        t.path().join("profiles/team.yaml"),
        "version: 1\nprofiles:\n  web:\n    extends: front\n    description: the front end, my way\n",
    )
    .expect("write");
    let mut rows = base();
    rows.retain(|r| !r["id"].as_str().unwrap_or_default().contains("/old"));
    // Azure now has another `web` (another group), and `old` is gone
    rows.extend(vm(SUB, "rg-b", "web", "hub", "Windows", "web"));
    graph(&fake, rows, 1000);
    let r = t.run_with(&["import", "--subscription", SUB]);
    r.code(0).stderr_has("1 new, 1 removed");
    let after = read(&t, "profiles/imported.yaml");
    assert_eq!(entries(&after, "vms"), ["front", "web-rg-b"], "{after}");
    assert_eq!(entries(&after, "profiles"), ["front", "web-rg-b"]);
    assert_eq!(entries(&after, "bastions"), ["hub"]);
    assert!(
        !after.contains("/old"),
        "the VM gone from Azure is gone: {after}"
    );
    assert!(after.contains("vm: \"front\"") && after.contains("bastion: \"hub\""));
    t.run_with(&["validate", "--strict"]).code(0);
    t.run_with(&["plan", "web", "--os", "windows"]).code(0);
    let plan = t.run_with(&["--format", "json", "plan", "front", "--os", "windows"]);
    plan.code(0);
    assert!(
        plan.stdout.contains(&vm_id(SUB, "rg-a", "web")),
        "{}",
        plan.stdout
    );
}

#[test]
fn hostile_names_from_azure_are_escaped_and_the_file_validates_and_plans() {
    let fake = FakeBastion::start();
    let long = format!("a{}", "L".repeat(63));
    // names YAML would read as other things, a name of Azure's longest
    let names = ["007", "true", "null", "1e3", "0x1F", long.as_str()];
    // computer names are free text from the VM: quotes, comments, keys, YAML's special starts
    let computers = [
        "q\"uote: x # y",
        "&anchor *alias !tag",
        "- item",
        "back\\slash{[",
        "#comment",
        "%YAML ? | > 'single' \u{e9}",
    ];
    let rg = "rg-\u{e9}t\u{e9}(1)";
    let mut rows = vec![vnet("hub", &[]), bastion(SUB, "bas-hub", "hub", "Standard")];
    for (i, (n, c)) in names.iter().zip(computers).enumerate() {
        let os = if i % 2 == 0 { "Windows" } else { "Linux" };
        rows.extend(vm(SUB, rg, n, "hub", os, c));
    }
    // a computer name with a line break is left out; VMs whose names break Azure's rules too
    rows.extend(vm(
        SUB,
        "rg",
        "ctl",
        "hub",
        "Linux",
        "evil\n  injected: true",
    ));
    for bad in ["line\nbreak", "q\"uote: x # y", "- item", &"L".repeat(300)] {
        rows.extend(vm(SUB, "rg", bad, "hub", "Linux", "x"));
    }
    // a bastion whose name breaks Azure's rules is not used
    let mut evil = bastion(SUB, "bas-evil", "hub", "Standard");
    evil["name"] = json!("bas\"evil");
    rows.push(evil);
    graph(&fake, rows, 1000);
    let t = env(&fake);
    let r = t.run_with(&["import", "--subscription", SUB, "-o", "h.yaml"]);
    r.code(0)
        .stderr_has("line\\x0abreak: its resource id holds control characters")
        .stderr_has("virtualMachines/q\"uote: x # y: its name or resource group does not follow Azure's naming rules")
        .stderr_has("bas\"evil (rg-net): not written: its name");
    assert_eq!(
        r.stderr
            .matches("does not follow Azure's naming rules")
            .count(),
        4,
        "{}",
        r.stderr
    );
    let text = read(&t, "h.yaml");
    assert!(!text.contains("injected"), "{text}");
    for c in computers {
        let quoted = c.replace('\\', "\\\\").replace('"', "\\\"");
        assert!(
            text.contains(&format!("computer_name: \"{quoted}\"\n")),
            "{c}: {text}"
        );
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(
            line.starts_with("  ") || line.ends_with(':') || line == "version: 1",
            "a line of its own structure only: {line}"
        );
    }
    let vms = entries(&text, "vms");
    let want_long = format!("a{}", "l".repeat(62));
    assert_eq!(
        vms,
        [
            "007",
            "0x1f",
            "1e3",
            want_long.as_str(),
            "ctl",
            "null",
            "true"
        ],
        "{text}"
    );
    t.run_with(&["--profiles", "h.yaml", "validate", "--strict"])
        .code(0);
    for (name, azure) in [
        ("007", "007"),
        ("true", "true"),
        ("null", "null"),
        (want_long.as_str(), long.as_str()),
    ] {
        // az's ssh (BPROF_TUNNEL_ENGINE=az): the VM's id in an argv, as cmd.exe reads it
        let plan = t
            .command()
            .env("BPROF_TUNNEL_ENGINE", "az")
            .args([
                "--profiles",
                "h.yaml",
                "--format",
                "json",
                "plan",
                name,
                "--os",
                "windows",
            ])
            .output()
            .unwrap();
        let plan = t.finish(plan.status.code().unwrap_or(-1), plan.stdout, plan.stderr);
        plan.code(0);
        let argv: Vec<String> = plan.json()["steps"]
            .as_array()
            .and_then(|s| s.last())
            .and_then(|s| s["argv"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            argv.contains(&vm_id(SUB, rg, azure)),
            "the id reaches az exactly: {argv:?}"
        );
    }
}

#[test]
fn a_file_import_did_not_write_is_never_replaced_without_force() {
    let fake = FakeBastion::start();
    graph(&fake, network(), 1000);
    let mine = "version: 1\n# my own\n";
    let t = env(&fake).file("profiles/imported.yaml", mine);
    t.run_with(&["import", "--subscription", SUB])
        .code(73)
        .stderr_has("was not written by bprof import")
        .stderr_has("--force");
    assert_eq!(read(&t, "profiles/imported.yaml"), mine);
    assert!(fake.requests().is_empty(), "nothing read from Azure first");
    assert!(t.calls().is_empty(), "no az process");
    t.run_with(&["import", "--subscription", SUB, "--dry-run"])
        .code(73);
    // a link is never written through
    std::os::unix::fs::symlink("imported.yaml", t.path().join("profiles/link.yaml")).expect("link");
    t.run_with(&[
        "import",
        "--subscription",
        SUB,
        "-o",
        "profiles/link.yaml",
        "--force",
    ])
    .code(73)
    .stderr_has("symlink");
    t.run_with(&["import", "--subscription", SUB, "--force"])
        .code(0);
    assert!(read(&t, "profiles/imported.yaml").starts_with("# generated by bprof import"));
    // a file import wrote that no longer reads as YAML: left alone
    std::fs::write(
        t.path().join("profiles/imported.yaml"),
        "# generated by bprof import\nversion: 1\nvms: [\n",
    )
    .expect("write");
    t.run_with(&["import", "--subscription", SUB]).code(65);
    // JSON has no form here; flags are checked before anything runs
    let before = fake.requests().len();
    t.run_with(&["--format", "json", "import"]).code(64);
    t.run_with(&["import", "--subscription", "not-a-guid"])
        .code(64);
    t.run_with(&["import", "--resource-group", "rg' or 1==1"])
        .code(64);
    assert_eq!(fake.requests().len(), before);
}

#[test]
fn stdout_and_dry_run_write_nothing() {
    let fake = FakeBastion::start();
    graph(&fake, network(), 1000);
    let t = env(&fake);
    let r = t.run_with(&["import", "--subscription", SUB, "-o", "-"]);
    r.code(0);
    assert!(
        r.stdout.starts_with("# generated by bprof import"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\"app01\":"));
    assert!(!t.path().join("profiles").exists(), "nothing written");
    t.run_with(&["import", "--subscription", SUB]).code(0);
    let written = read(&t, "profiles/imported.yaml");
    assert_eq!(r.stdout, written, "-o - prints what would be written");
    // Azure changes; a dry run shows it and writes nothing
    let mut rows = network();
    rows.extend(vm(SUB, "rg-app", "app02", "spoke-a", "Windows", "app02"));
    graph(&fake, rows, 1000);
    let d = t.run_with(&["import", "--subscription", SUB, "--dry-run"]);
    d.code(0)
        .stderr_has("dry run: nothing written")
        .stderr_has("1 new, 0 removed");
    assert!(d.stdout.contains("\"app02\":"), "{}", d.stdout);
    assert_eq!(read(&t, "profiles/imported.yaml"), written);
    t.run_with(&["import", "-o", "-", "--merge"]).code(64);
}

#[test]
fn merge_keeps_what_this_scope_did_not_read() {
    let fake = FakeBastion::start();
    let mut rows = vec![vnet("hub", &[]), bastion(SUB, "bas-hub", "hub", "Standard")];
    rows.extend(vm(SUB, "rg-a", "a1", "hub", "Windows", "a1"));
    rows.extend(vm(HUB, "rg-h", "h1", "hub", "Linux", "h1"));
    graph(&fake, rows, 1000);
    let t = env(&fake);
    t.run_with(&["import", "--subscription", SUB, "--subscription", HUB])
        .code(0);
    let both = read(&t, "profiles/imported.yaml");
    assert_eq!(entries(&both, "profiles"), ["a1", "h1"]);
    // now only SUB, where a2 appeared: --merge keeps HUB's h1
    let mut rows = vec![vnet("hub", &[]), bastion(SUB, "bas-hub", "hub", "Standard")];
    rows.extend(vm(SUB, "rg-a", "a1", "hub", "Windows", "a1"));
    rows.extend(vm(SUB, "rg-a", "a2", "hub", "Windows", "a2"));
    graph(&fake, rows.clone(), 1000);
    let r = t.run_with(&["import", "--subscription", SUB, "--merge"]);
    r.code(0).stderr_has("1 kept from outside the scope");
    let merged = read(&t, "profiles/imported.yaml");
    assert_eq!(entries(&merged, "profiles"), ["a1", "a2", "h1"], "{merged}");
    t.run_with(&["validate", "--strict"]).code(0);
    // without --merge the file is this scope's alone, and says what it dropped
    let r = t.run_with(&["import", "--subscription", SUB]);
    r.code(0)
        .stderr_has("1 VM of profiles/imported.yaml outside this run's scope was removed");
    assert_eq!(
        entries(&read(&t, "profiles/imported.yaml"), "profiles"),
        ["a1", "a2"]
    );
    // --resource-group narrows the VMs only, in the query itself
    graph(&fake, rows, 1000);
    t.run_with(&[
        "import",
        "--subscription",
        SUB,
        "--resource-group",
        "rg-a",
        "--dry-run",
    ])
    .code(0);
    let last = graph_bodies(&fake).pop().unwrap_or_default();
    assert!(
        last["query"]
            .as_str()
            .unwrap_or_default()
            .contains("resourceGroup =~ 'rg-a'"),
        "{last}"
    );
}

#[test]
fn a_tenant_is_read_with_a_tenant_token_and_an_incomplete_read_writes_nothing() {
    let fake = FakeBastion::start();
    graph(&fake, network(), 1000);
    let t = env(&fake);
    t.run_with(&["import", "--tenant", TEN, "-o", "t.yaml"])
        .code(0);
    assert_eq!(
        t.calls(),
        [["account", "get-access-token", "--tenant", TEN, "-o", "json"]]
    );
    assert!(graph_bodies(&fake)[0].get("subscriptions").is_none());
    let before = read(&t, "t.yaml");
    // fewer rows than announced, with no token to go on: refused, the file untouched
    fake.set(|c| {
        c.routes = vec![Route::new("POST", GRAPH, |_| {
            Answer::Json(
                200,
                json!({"totalRecords": 5000, "count": 1, "data": [vnet("hub", &[])]}),
            )
        })]
    });
    t.run_with(&["import", "--tenant", TEN, "-o", "t.yaml"])
        .code(69)
        .stderr_has("1 rows of the 5000 it announced")
        .stderr_has("nothing was written");
    // ARM refuses: its message, exit 69
    fake.set(|c| {
        c.routes = vec![Route::new("POST", GRAPH, |_| {
            Answer::Json(
                403,
                json!({"error": {"code": "AuthorizationFailed", "message": "no access"}}),
            )
        })]
    });
    t.run_with(&["import", "--tenant", TEN, "-o", "t.yaml"])
        .code(69)
        .stderr_has("AuthorizationFailed");
    assert_eq!(read(&t, "t.yaml"), before);
    assert!(t.path().join("t.yaml").is_file());
}
