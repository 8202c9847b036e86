//! The import's unit tests: names, quoting, the choice of bastion, batches, the check and a
//! re-run.

use std::path::Path;

use serde_json::{Value, json};

use super::names::{Names, cut, name_all, with_suffix};
use super::*;
use crate::azure::signin::AzProfile;

const SUB: &str = "22222222-2222-2222-2222-222222222222";
const TEN: &str = "11111111-1111-1111-1111-111111111111";

fn vnet(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/{name}"
    )
}

fn vm_row(name: &str, rg: &str, os: &str) -> Value {
    let id = format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"
    );
    let nic = format!("{id}-nic");
    json!({"id": id, "name": name, "type": "microsoft.compute/virtualmachines", "tenantId": TEN,
        "subscriptionId": SUB, "resourceGroup": rg,
        "properties": {"osProfile": {"computerName": if name == "db" { name.to_uppercase() } else { format!("{}01", name.to_uppercase()) }},
            "storageProfile": {"osDisk": {"osType": os}},
            "networkProfile": {"networkInterfaces": [{"id": nic}]}}})
}

fn nic_row(vm: &Value, net: &str) -> Value {
    let id = format!("{}-nic", vm["id"].as_str().unwrap());
    json!({"id": id, "type": "microsoft.network/networkinterfaces",
        "properties": {"ipConfigurations": [{"properties": {"subnet": {"id": format!("{}/subnets/default", vnet(net))}}}]}})
}

fn bastion_row(name: &str, net: &str, sku: &str) -> Value {
    json!({"id": format!("/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/bastionHosts/{name}"),
        "name": name, "type": "microsoft.network/bastionHosts", "tenantId": TEN, "subscriptionId": SUB,
        "resourceGroup": "rg-net", "sku": {"name": sku},
        "properties": {"enableTunneling": true, "dnsName": "bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com",
            "ipConfigurations": [{"properties": {"subnet": {"id": format!("{}/subnets/AzureBastionSubnet", vnet(net))}}}]}})
}

fn peering(a: &str, b: &str) -> Value {
    json!({"id": vnet(a), "type": "microsoft.network/virtualnetworks",
        "properties": {"virtualNetworkPeerings": [{"properties": {"peeringState": "Connected", "remoteVirtualNetwork": {"id": vnet(b)}}}]}})
}

fn rows_with(vms: &[(&str, &str, &str, &str)], extra: Vec<Value>) -> Vec<Value> {
    let mut rows = extra;
    for (n, rg, net, os) in vms {
        let v = vm_row(n, rg, os);
        rows.push(nic_row(&v, net));
        rows.push(v);
    }
    rows
}

#[test]
fn names_are_valid_and_unique() {
    assert_eq!(base_name("VM-Jumpbox_01", "vm"), "vm-jumpbox_01");
    assert_eq!(base_name("--a  b::c", "vm"), "a-b-c");
    assert_eq!(base_name("日本", "vm"), "vm");
    assert_eq!(base_name(&"x".repeat(300), "vm").len(), 63);
    for n in ["a\"b", "007", "true", "-x", ".x", "a\nb", &"é".repeat(90)] {
        assert!(name_ok(&base_name(n, "vm")), "{n:?}");
    }
    let mut names = Names::default();
    names.taken.insert("web".into());
    let items = vec![
        ("web".to_string(), "RG-B".to_string(), "2".to_string()),
        ("web".to_string(), "rg-a".to_string(), "1".to_string()),
        ("db".to_string(), "rg-a".to_string(), "3".to_string()),
        ("Web".to_string(), "rg-a".to_string(), "4".to_string()),
    ];
    let got = name_all(&items, &mut names, "vm");
    assert_eq!(got, ["web-rg-b", "web-rg-a", "db", "web-rg-a-2"]);
    let long = with_suffix(&"a".repeat(63), "-rg");
    assert!(name_ok(&long) && long.ends_with("-rg"), "{long}");
    assert_eq!(cut("é", 1), "");
    assert_eq!(with_suffix("abc", "-2"), "abc-2");
}

#[test]
fn quoted_strings_stay_one_scalar() {
    for s in [
        "plain",
        "a\"b: c # d",
        "\\\\\"",
        "line\nbreak\r\ttab\u{7}\u{1b}[31m",
        "- item",
        "&anchor *alias !tag %dir @at `tick` |pipe >fold ? key {a: b} [c]",
        "\u{2028}\u{2029}\u{feff}\u{202e}\u{85}\u{e0001}",
        "'single'",
        "",
    ] {
        let doc = format!("k: {}\nnext: 1\n", quoted(s));
        let (v, _) = crate::profile::yaml::parse(&doc).unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(v["k"].as_str(), Some(s), "{doc}");
        assert_eq!(v["next"], json!(1));
    }
    assert!(!quoted("a\nb").contains('\n'));
}

#[test]
fn a_vm_gets_the_bastion_of_its_network_before_a_peered_one() {
    let rows = rows_with(
        &[
            ("web", "rg-a", "spoke", "Windows"),
            ("db", "rg-a", "hub", "Linux"),
            ("lost", "rg-a", "island", "Linux"),
        ],
        vec![
            bastion_row("bas-hub", "hub", "Standard"),
            bastion_row("bas-dev", "spoke", "Developer"),
            peering("spoke", "hub"),
        ],
    );
    let inv = Inventory::from_rows(&rows);
    let out = build(&inv, &Model::default(), &Options::default()).unwrap();
    let m = &out.model;
    assert_eq!(m.profiles["web"].bastion, "bas-hub", "{m:#?}");
    assert_eq!(m.profiles["db"].bastion, "bas-hub");
    assert_eq!(m.vms["web"].computer_name.as_deref(), Some("WEB01"));
    assert_eq!(
        m.vms["db"].computer_name, None,
        "the same name but for case"
    );
    assert!(
        !m.bastions.contains_key("bas-dev"),
        "developer is not written"
    );
    assert_eq!(out.unreachable.len(), 1, "{:?}", out.unreachable);
    assert!(
        out.unreachable[0].starts_with("lost"),
        "{:?}",
        out.unreachable
    );
    // a developer bastion in the VM's own network is the only one reaching it: said why
    let rows = rows_with(
        &[("x", "rg", "spoke", "Linux")],
        vec![bastion_row("bas-dev", "spoke", "Developer")],
    );
    let out = build(
        &Inventory::from_rows(&rows),
        &Model::default(),
        &Options::default(),
    )
    .unwrap();
    assert!(
        out.unreachable[0].contains("Developer") || out.unreachable[0].contains("developer"),
        "{:?}",
        out.unreachable
    );
}

#[test]
fn subscriptions_are_read_with_one_token_per_tenant() {
    let az = AzProfile::parse(
        br#"{"subscriptions": [{"id": "A", "tenantId": "t1"}, {"id": "B", "tenantId": "t2"}, {"id": "C", "tenantId": "T1"}]}"#,
    );
    let req = |subs: &[&str], tenant: Option<&str>| Request {
        subscriptions: subs.iter().map(|s| s.to_string()).collect(),
        tenant: tenant.map(str::to_string),
        resource_group: None,
    };
    let sub = |s: &str| TokenFor::Subscription(s.into());
    let got = batches(&req(&["a", "b", "c", "d"], None), &az);
    assert_eq!(
        got,
        [
            Batch {
                token: sub("a"),
                subscriptions: Some(vec!["a".into(), "c".into()])
            },
            Batch {
                token: sub("b"),
                subscriptions: Some(vec!["b".into()])
            },
            Batch {
                token: sub("d"),
                subscriptions: Some(vec!["d".into()])
            },
        ]
    );
    assert_eq!(
        batches(&req(&["a", "b"], Some("x")), &az),
        [Batch {
            token: TokenFor::Tenant("x".into()),
            subscriptions: Some(vec!["a".into(), "b".into()])
        }]
    );
    assert_eq!(
        batches(&req(&[], None), &az),
        [Batch {
            token: TokenFor::Default,
            subscriptions: None
        }]
    );
    assert!(Request::new(&["x".into()], None, None).is_err());
    assert!(Request::new(&[], Some("-evil"), None).is_err());
    for bad in ["rg'x", "rg\\x", "-rg", ".rg", "rg.", ""] {
        assert!(Request::new(&[], None, Some(bad)).is_err(), "{bad}");
    }
    let ok = Request::new(
        &[SUB.to_uppercase(), SUB.into()],
        Some("Contoso.example"),
        Some("rg-été(1)"),
    )
    .unwrap();
    assert_eq!(ok.subscriptions, [SUB]);
    assert!(query_text(ok.resource_group.as_deref()).contains("resourceGroup =~ 'rg-été(1)'"));
}

#[test]
fn a_vm_in_another_tenant_than_its_bastion_names_its_tenant() {
    let other = "33333333-3333-3333-3333-333333333333";
    let mut rows = rows_with(
        &[("x", "rg", "hub", "Linux")],
        vec![bastion_row("bas", "hub", "Standard")],
    );
    for r in rows
        .iter_mut()
        .filter(|r| r["type"] == "microsoft.compute/virtualmachines")
    {
        r["tenantId"] = json!(other);
    }
    let out = build(
        &Inventory::from_rows(&rows),
        &Model::default(),
        &Options::default(),
    )
    .unwrap();
    assert_eq!(
        out.model.vms["x"].tenant.as_deref(),
        Some("tenant-33333333")
    );
    assert_eq!(out.model.tenants["tenant-33333333"].id, other);
    let text = emit(&out.model, None);
    let problems = check(Path::new("imported.yaml"), "imported.yaml", &text);
    assert!(
        problems.iter().all(|p| !p.is_error()),
        "{problems:?}\n{text}"
    );
}

#[test]
fn the_check_finds_what_a_profile_file_may_not_say() {
    let mut m = Model::default();
    m.vms.insert(
        "v".into(),
        OutVm {
            resource_id: format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/v"),
            os: VmOs::Linux,
            computer_name: Some("a\u{7}b".into()),
            tenant: None,
        },
    );
    m.profiles.insert(
        "v".into(),
        OutProfile {
            description: None,
            bastion: "missing".into(),
            vm: "v".into(),
            os: VmOs::Linux,
        },
    );
    let text = emit(&m, None);
    assert!(text.contains("computer_name: \"a\\u0007b\""), "{text}");
    let problems = check(Path::new("imported.yaml"), "imported.yaml", &text);
    let errors: Vec<&str> = problems
        .iter()
        .filter(|p| p.is_error())
        .map(|p| p.message.as_str())
        .collect();
    assert!(errors.iter().any(|m| m.contains("missing")), "{errors:?}");
    assert!(
        errors.iter().any(|m| m.contains("control character")),
        "{errors:?}"
    );
}

#[test]
fn a_re_run_keeps_names_and_the_text_is_the_same() {
    let rows = rows_with(
        &[
            ("web", "rg-a", "hub", "Windows"),
            ("web", "rg-b", "hub", "Windows"),
        ],
        vec![bastion_row("bas-hub", "hub", "Premium")],
    );
    let inv = Inventory::from_rows(&rows);
    let first = build(&inv, &Model::default(), &Options::default()).unwrap();
    let text = emit(&first.model, None);
    assert!(
        first.model.profiles.contains_key("web-rg-a")
            && first.model.profiles.contains_key("web-rg-b"),
        "{text}"
    );
    let problems = check(Path::new("imported.yaml"), "imported.yaml", &text);
    assert!(
        problems.iter().all(|p| !p.is_error()),
        "{problems:?}\n{text}"
    );
    // renamed by hand: kept by resource id
    let edited = text.replace("\"web-rg-a\"", "\"front\"");
    let old = Model::parse(&edited).unwrap();
    let again = build(&inv, &old, &Options::default()).unwrap();
    assert!(
        again.model.vms.contains_key("front") && again.model.profiles.contains_key("front"),
        "{:#?}",
        again.model
    );
    assert_eq!(emit(&again.model, None), edited);
}
