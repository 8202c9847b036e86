//! A fake Azure around the fake bastion: the ARM reads `bprof doctor` makes (bastion, VM with
//! its instance view, extensions, role assignments, NIC, virtual networks), healthy by default
//! and broken on command, as routes of the fake bastion. Shared by the doctor tests and the
//! bench.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fake_bastion::{Answer, Route};

pub const SUB: &str = "22222222-2222-2222-2222-222222222222";
pub const TENANT: &str = "11111111-1111-1111-1111-111111111111";
pub const OID: &str = "0000-oid";

pub fn bastion_id() -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/bastionHosts/bas-1"
    )
}
pub fn vm_id() -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-vm/providers/Microsoft.Compute/virtualMachines/vm-1"
    )
}
pub fn nic_id() -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-vm/providers/Microsoft.Network/networkInterfaces/vm-1-nic"
    )
}
pub fn vnet_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/{name}"
    )
}

/// What the fake ARM shows: healthy by default; each test breaks one thing.
#[derive(Clone)]
pub struct Azure {
    pub sku: &'static str,
    pub tunneling: bool,
    pub power: &'static str,
    pub computer_name: String,
    pub os_type: &'static str,
    /// The VM's extensions (`value` of the list).
    pub extensions: Vec<Value>,
    /// The role assignments answer.
    pub roles: Answer,
    /// Instead of the VM's JSON (hostile bodies).
    pub vm: Option<Answer>,
    /// The network the VM's NIC is in (`hub` is the bastion's).
    pub vm_vnet: &'static str,
    /// The hub's peerings.
    pub peerings: Vec<Value>,
    /// Every answer comes this late (ARM's latency).
    pub delay: Duration,
    /// When each request arrived (path, time), for the rounds.
    pub arrivals: Arc<Mutex<Vec<(String, Instant)>>>,
}

pub fn role(definition: &str, scope: &str) -> Value {
    json!({
        "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/a1"),
        "properties": {
            "roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{definition}"),
            "principalId": OID,
            "scope": scope,
        }
    })
}

pub const USER_LOGIN: &str = "fb879df8-f326-4884-b1cf-06f3ad86be52";
pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

pub fn entra_extension(kind: &str, state: &str) -> Value {
    // installed under a name of its own choosing: doctor matches publisher and type
    json!({"name": "entra-login", "properties": {
        "publisher": "Microsoft.Azure.ActiveDirectory", "type": kind, "provisioningState": state}})
}

impl Azure {
    pub fn healthy() -> Azure {
        Azure {
            sku: "Standard",
            tunneling: true,
            power: "running",
            computer_name: "JUMP01".into(),
            os_type: "Windows",
            extensions: vec![
                json!({"name": "MDE.Windows", "properties": {"publisher": "Microsoft.Azure.AzureDefenderForServers", "type": "MDE.Windows", "provisioningState": "Succeeded"}}),
                entra_extension("AADLoginForWindows", "Succeeded"),
            ],
            roles: Answer::Json(
                200,
                json!({"value": [
                    role(READER, &format!("/subscriptions/{SUB}")),
                    role(USER_LOGIN, &format!("/subscriptions/{SUB}/resourceGroups/rg-vm")),
                ]}),
            ),
            vm: None,
            vm_vnet: "hub",
            peerings: Vec::new(),
            delay: Duration::ZERO,
            arrivals: Arc::default(),
        }
    }

    /// The routes, most specific first (the VM's prefix also starts its extensions' paths).
    pub fn routes(&self, host: String) -> Vec<Route> {
        let a = self.clone();
        let answer = move |req: &crate::fake_bastion::Request, api: &str, body: Answer| {
            a.arrivals
                .lock()
                .unwrap()
                .push((req.decoded_path.clone(), Instant::now()));
            let body = if req.path.contains(&format!("api-version={api}")) {
                body
            } else {
                Answer::Json(
                    400,
                    json!({"error": {"code": "InvalidApiVersionParameter", "message": format!("doctor's test wants {api}: {}", req.path)}}),
                )
            };
            if a.delay.is_zero() {
                body
            } else {
                Answer::After(a.delay, Box::new(body))
            }
        };
        let answer = Arc::new(answer);
        let route =
            |prefix: String,
             api: &'static str,
             body: Box<dyn Fn(&crate::fake_bastion::Request) -> Answer + Send + Sync>| {
                let answer = Arc::clone(&answer);
                Route::new("GET", &prefix, move |req| answer(req, api, body(req)))
            };
        let me = self.clone();
        let roles = self.roles.clone();
        let extensions = self.extensions.clone();
        let vm = self.clone();
        let peerings = self.peerings.clone();
        let vm_vnet = vnet_id(self.vm_vnet);
        vec![
            route(
                format!(
                    "{}/providers/Microsoft.Authorization/roleAssignments",
                    vm_id()
                ),
                "2022-04-01",
                Box::new(move |req| {
                    let filter =
                        format!("$filter=atScope%28%29%20and%20assignedTo%28%27{OID}%27%29");
                    if req.path.contains(&filter) {
                        roles.clone()
                    } else {
                        Answer::Json(
                            400,
                            json!({"error": {"code": "BadFilter", "message": req.path}}),
                        )
                    }
                }),
            ),
            route(
                format!("{}/extensions", vm_id()),
                "2024-07-01",
                Box::new(move |_| Answer::Json(200, json!({ "value": extensions }))),
            ),
            route(
                vm_id(),
                "2024-07-01",
                Box::new(move |req| {
                    if !req.path.contains("$expand=instanceView") {
                        return Answer::Json(
                            400,
                            json!({"error": {"code": "NoInstanceView", "message": req.path}}),
                        );
                    }
                    vm.vm.clone().unwrap_or_else(|| Answer::Json(200, json!({
                        "id": vm_id(), "name": "vm-1", "location": "westeurope",
                        "properties": {
                            "osProfile": {"computerName": vm.computer_name},
                            "storageProfile": {"osDisk": {"osType": vm.os_type}},
                            "networkProfile": {"networkInterfaces": [{"id": nic_id(), "properties": {"primary": true}}]},
                            "instanceView": {"statuses": [
                                {"code": "ProvisioningState/succeeded"},
                                {"code": format!("PowerState/{}", vm.power)}]}}})))
                }),
            ),
            route(
                nic_id(),
                "2024-05-01",
                Box::new(move |_| {
                    Answer::Json(
                        200,
                        json!({"id": nic_id(), "properties": {"ipConfigurations": [
                    {"properties": {"primary": true, "privateIPAddress": "10.1.0.4",
                        "subnet": {"id": format!("{vm_vnet}/subnets/default")}}}]}}),
                    )
                }),
            ),
            route(
                vnet_id("hub"),
                "2024-05-01",
                Box::new(move |_| {
                    Answer::Json(
                        200,
                        json!({"id": vnet_id("hub"), "properties": {"virtualNetworkPeerings": peerings}}),
                    )
                }),
            ),
            route(
                bastion_id(),
                "2024-05-01",
                Box::new(move |_| {
                    Answer::Json(
                        200,
                        json!({
                    "id": bastion_id(), "name": "bas-1", "location": "westeurope",
                    "sku": {"name": me.sku},
                    "properties": {"dnsName": host, "enableTunneling": me.tunneling, "provisioningState": "Succeeded",
                        "ipConfigurations": [{"properties": {"subnet": {"id": format!("{}/subnets/AzureBastionSubnet", vnet_id("hub"))}}}]}}),
                    )
                }),
            ),
        ]
    }
}

/// The profile set: `prod-jumpbox` (Entra rdp to vm-1 through bas-1) and `second` (the same
/// VM, another profile).
pub fn profiles_yaml() -> String {
    format!(
        "version: 1
tenants:
  t:
    id: {TENANT}
    subscription: {SUB}
bastions:
  b:
    tenant: t
    resource_group: rg-net
    name: bas-1
vms:
  jump:
    resource_group: rg-vm
    name: vm-1
    computer_name: JUMP01
profiles:
  prod-jumpbox:
    bastion: b
    vm: jump
    mode: rdp
    enable_mfa: true
  second:
    bastion: b
    vm: jump
    mode: rdp
    enable_mfa: true
    client: none
"
    )
}
