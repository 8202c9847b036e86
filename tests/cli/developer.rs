//! The Developer SKU on the native engine, against the loopback fake bastion: the broker
//! (`POST /api/connection`) names a data pod per session; the session is asked of that pod and
//! its websocket is `/omni/webtunnel/...`. The broker and the pods have DNS names
//! (`*.test.bastionglobal.azure.com`): the fake is also the HTTP proxy that leads them to itself.

use std::time::Duration;

use serde_json::json;

use crate::fake_bastion::{Answer, FakeBastion, Route};
use crate::harness::Test;
use crate::native::{Running, connect, echo, set, wait_listening};
use crate::session::free_port;

const BROKER: &str = "omnibrain.test.bastionglobal.azure.com";
const POD: &str = "pod-7.test.bastionglobal.azure.com";
const BASTION_ID: &str = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-net/providers/Microsoft.Network/bastionHosts/bas-1";
const VM_ID: &str = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-vm/providers/Microsoft.Compute/virtualMachines/vm-1";

/// A set whose bastion is the Developer SKU (ARM says so), the broker naming `pod`.
fn developer(fake: &FakeBastion, port: u16, pod: &'static str) -> Test {
    fake.set(|c| {
        c.routes = vec![
            Route::new("GET", "/subscriptions/", |_| {
                Answer::Json(
                    200,
                    json!({"id": BASTION_ID, "name": "bas-1", "sku": {"name": "Developer"},
                           "properties": {"dnsName": BROKER, "ipConfigurations": [],
                                          "virtualNetwork": {"id": "/subscriptions/x/vnet"}}}),
                )
            }),
            Route::new("POST", "/api/connection", move |_| {
                Answer::Raw(200, "text/plain; charset=utf-8", pod.to_string())
            }),
        ]
    });
    set(fake, port, "", "")
        .env("HTTPS_PROXY", &fake.proxy_url())
        .env("NO_PROXY", "127.0.0.1")
}

#[test]
fn a_developer_bastion_carries_a_tunnel_through_the_data_pod_its_broker_names() {
    let fake = FakeBastion::start();
    let port = free_port();
    let t = developer(&fake, port, POD);
    let run = Running::start(&t, &["run", "db", "--tunnel-only"]);
    wait_listening(port);
    let mut c = connect(port);
    assert_eq!(echo(&mut c, b"hello developer"), b"hello developer");
    drop(c);
    fake.wait_until("every session deleted", Duration::from_secs(10), |f| {
        f.open_sessions() == 0 && f.requests().iter().filter(|r| r.method == "DELETE").count() >= 2
    });
    let (_, err) = run.stop(libc::SIGINT);
    let requests = fake.requests();
    let host = |r: &crate::fake_bastion::Request| r.header("host").unwrap_or_default().to_string();
    // the broker: a JSON request with the VM, the bastion, the port and the token
    let asks: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/api/connection")
        .collect();
    assert!(
        asks.len() >= 2,
        "one per connection (the probe's too): {err}"
    );
    for a in &asks {
        assert_eq!(host(a), BROKER);
        let body: serde_json::Value = serde_json::from_str(&a.body).expect("JSON body");
        assert_eq!(body["resourceId"], VM_ID);
        assert_eq!(body["bastionResourceId"], BASTION_ID);
        assert_eq!(body["vmPort"], 22);
        assert_eq!(body["connectionType"], "nativeclient");
        assert!(
            body["azToken"]
                .as_str()
                .is_some_and(|t| t.starts_with("eyJ"))
        );
    }
    // the session, its websocket and its DELETE: at the pod, the omni path, no node query
    for r in requests
        .iter()
        .filter(|r| r.path != "/api/connection" && !r.path.starts_with("/subscriptions/"))
    {
        assert_eq!(host(r), POD, "{} {}", r.method, r.path);
    }
    let ws: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/omni/webtunnel/"))
        .collect();
    assert!(
        !ws.is_empty() && ws.iter().all(|r| !r.path.contains('?')),
        "{requests:#?}"
    );
    assert!(!requests.iter().any(|r| r.path.starts_with("/webtunnelv2/")));
    // the token went to ARM, the broker and the pod only
    let connects = fake.connects();
    assert!(
        connects
            .iter()
            .all(|c| c == &format!("{BROKER}:443") || c == &format!("{POD}:443")),
        "{connects:?}"
    );
}

#[test]
fn a_data_pod_outside_the_brokers_domain_never_gets_the_token() {
    for hostile in [
        "evil.example.com",
        "127.0.0.1",
        "pod-7.test.bastionglobal.azure.com:8443",
        "me@pod-7.test.bastionglobal.azure.com",
        "pod-7.test.bastionglobal.azure.com.evil.com",
        "bastionglobal.azure.com",
    ] {
        let fake = FakeBastion::start();
        let port = free_port();
        let t = developer(&fake, port, hostile);
        let run = Running::start(&t, &["run", "db", "--tunnel-only"]);
        wait_listening(port);
        fake.wait_until("the broker asked", Duration::from_secs(10), |f| {
            f.requests().iter().any(|r| r.path == "/api/connection")
        });
        let (_, err) = run.stop(libc::SIGINT);
        assert!(
            err.contains("the data pod") && err.contains("the token is not sent there"),
            "{hostile}: {err}"
        );
        let requests = fake.requests();
        assert!(
            !requests
                .iter()
                .any(|r| r.path.starts_with("/api/tokens") || r.path.contains("webtunnel")),
            "{hostile}: {requests:#?}"
        );
        assert!(
            fake.connects()
                .iter()
                .all(|c| c == &format!("{BROKER}:443")),
            "{hostile}: {:?}",
            fake.connects()
        );
    }
}

#[test]
fn azs_tunnel_and_rdp_are_refused_for_a_developer_bastion_with_what_to_change() {
    let yaml = crate::harness::one_profile(
        "  tun:\n    bastion: b\n    vm: v\n    mode: tunnel\n    resource_port: 5432\n    tunnel_engine: az\n  desk:\n    bastion: b\n    vm: v\n  byip:\n    bastion: b\n    vm: ip\n    mode: ssh\n    auth_type: ssh-key\n    username: u\n    ssh_key: /k\n",
    )
    .replace("    name: bas-1\n", "    name: bas-1\n    sku: developer\n")
    .replace("vms:\n", "vms:\n  ip:\n    ip: 10.0.0.4\n");
    let t = Test::new().file("profiles/p.yaml", yaml);
    t.run_with(&["plan", "tun"])
        .code(65)
        .stderr_has("bastion `b` is the Developer SKU, and az's tunnel does not serve it")
        .stderr_has("leave out `tunnel_engine: az`");
    // az's rdp does not serve it; bprof's own tunnel and mstsc do (the gateway is not there)
    let out = t
        .command()
        .env("BPROF_TUNNEL_ENGINE", "az")
        .args(["plan", "desk", "--os", "windows"])
        .output()
        .unwrap();
    t.finish(out.status.code().unwrap_or(-1), out.stdout, out.stderr)
        .code(65)
        .stderr_has("`az network bastion rdp` does not serve it");
    let w = t
        .run_with(&["--format", "json", "plan", "desk", "--os", "windows"])
        .json();
    let names: Vec<&str> = w["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "login",
            "token",
            "connection",
            "tunnel",
            "write-rdp",
            "client"
        ],
        "{w}"
    );
    assert_eq!(w["steps"][5]["argv"][0], "mstsc");
    // on Linux the same rdp profile goes through bprof's own tunnel
    t.run_with(&["plan", "desk", "--os", "linux"]).code(0);
    t.run_with(&["show", "byip"])
        .code(65)
        .stderr_has("has SKU developer, which has no IP-based connection");
    let v = t.run_with(&["validate"]);
    v.code(65);
    // `desk` plans on every OS now (bprof's tunnel and mstsc on Windows)
    assert!(!v.stderr.contains("profile `desk`"), "{}", v.stderr);
    // the plan shows the broker's request, without a token
    let j = t
        .run_with(&["--format", "json", "plan", "desk", "--os", "linux"])
        .json();
    let step = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "connection")
        .expect("the connection step");
    assert_eq!(step["request"]["method"], "POST");
    assert!(
        step["request"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/api/connection")
    );
    assert!(step.get("argv").is_none(), "{step}");
}
