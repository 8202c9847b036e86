//! The model of what was read: Resource Graph's rows as VMs, bastions, the networks of NICs and
//! peerings; which bastions reach a VM. Rows that break Azure's rules are left out with the
//! reason.

use std::collections::BTreeSet;

use serde_json::Value;

use super::request::{resource_group_ok, resource_name_ok};
use super::{AzBastion, AzVm, Inventory};
use crate::azure::http::bounded;
use crate::profile::raw::VmOs;
use crate::profile::resolve::check_vm_resource_id;
use crate::text::is_guid;

/// A string from Azure longer than this is not used.
const MAX_TEXT: usize = 4096;

impl AzBastion {
    /// Subscription, resource group and name, lower case: how a bastion entry is matched.
    pub(super) fn identity(&self) -> (String, String, String) {
        (
            self.subscription.clone(),
            self.resource_group.to_ascii_lowercase(),
            self.name.to_ascii_lowercase(),
        )
    }
}

/// A bounded string at `path` under `v` (None: missing, not a string, empty, or too long).
fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
        .filter(|s| !s.is_empty() && s.len() <= MAX_TEXT)
}

fn flag(v: &Value, path: &[&str]) -> bool {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(c) => cur = c,
            None => return false,
        }
    }
    cur.as_bool().unwrap_or(false)
}

fn list<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(c) => cur = c,
            None => return &[],
        }
    }
    cur.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The virtual network of a subnet id (`.../virtualNetworks/NET/subnets/SUB`), lower case.
fn vnet_of_subnet(subnet: &str) -> Option<String> {
    let lower = subnet.to_ascii_lowercase();
    let i = lower.find("/subnets/")?;
    let vnet = &lower[..i];
    (vnet.starts_with("/subscriptions/")
        && vnet.contains("/providers/microsoft.network/virtualnetworks/"))
    .then(|| vnet.to_string())
}

/// `s` for a message: bounded and with control characters escaped.
pub(super) fn shown(s: &str) -> String {
    crate::terminal::value(&bounded(s, 200)).into_owned()
}

/// Whether a value from Azure may go into a profile file (no control characters).
pub(super) fn clean(s: &str) -> bool {
    crate::profile::allow::control_char(s).is_none()
}

impl Inventory {
    /// The model of Resource Graph's rows (unknown types and malformed rows are passed by).
    pub fn from_rows(rows: &[Value]) -> Inventory {
        let mut inv = Inventory::default();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for row in rows {
            let (Some(id), Some(kind)) = (text(row, &["id"]), text(row, &["type"])) else {
                continue;
            };
            let key = id.to_ascii_lowercase();
            if !seen.insert(key.clone()) {
                continue;
            }
            if let Some(t) = text(row, &["tenantId"]).filter(|t| is_guid(t)) {
                inv.tenants_seen.insert(t.to_ascii_lowercase());
            }
            match kind.to_ascii_lowercase().as_str() {
                "microsoft.compute/virtualmachines" => inv.vm(row, id, key),
                "microsoft.network/networkinterfaces" => {
                    let nets: BTreeSet<String> = list(row, &["properties", "ipConfigurations"])
                        .iter()
                        .filter_map(|c| text(c, &["properties", "subnet", "id"]))
                        .filter_map(vnet_of_subnet)
                        .collect();
                    inv.nic_vnets.insert(key, nets);
                }
                "microsoft.network/virtualnetworks" => {
                    for p in list(row, &["properties", "virtualNetworkPeerings"]) {
                        let connected = text(p, &["properties", "peeringState"])
                            .is_some_and(|s| s.eq_ignore_ascii_case("connected"));
                        let Some(remote) = text(p, &["properties", "remoteVirtualNetwork", "id"])
                        else {
                            continue;
                        };
                        if connected {
                            let remote = remote.to_ascii_lowercase();
                            inv.peers
                                .entry(key.clone())
                                .or_default()
                                .insert(remote.clone());
                            inv.peers.entry(remote).or_default().insert(key.clone());
                        }
                    }
                }
                "microsoft.network/bastionhosts" => inv.bastion(row, id, key),
                _ => {}
            }
        }
        inv
    }

    fn vm(&mut self, row: &Value, id: &str, key: String) {
        let skip = |why: String| format!("VM {}: {why}", shown(id));
        if !clean(id) {
            self.skipped
                .push(skip("its resource id holds control characters".into()));
            return;
        }
        if let Err(why) = check_vm_resource_id(id) {
            self.skipped
                .push(skip(format!("not used: {why} (as read from Azure)")));
            return;
        }
        let parts: Vec<&str> = id.split('/').collect();
        // Azure's own naming rules: a name outside them did not come from Azure as it should
        if !resource_name_ok(parts[8], 64) || !resource_group_ok(parts[4]) {
            self.skipped.push(skip(
                "its name or resource group does not follow Azure's naming rules".into(),
            ));
            return;
        }
        let os = match text(row, &["properties", "storageProfile", "osDisk", "osType"]) {
            Some(o) if o.eq_ignore_ascii_case("windows") => VmOs::Windows,
            Some(o) if o.eq_ignore_ascii_case("linux") => VmOs::Linux,
            other => {
                self.skipped.push(skip(format!(
                    "its OS type is {}, neither Windows nor Linux",
                    other.map_or("not known".into(), |o| format!("`{}`", shown(o)))
                )));
                return;
            }
        };
        let name = parts[8].to_string();
        let computer_name = text(row, &["properties", "osProfile", "computerName"])
            .filter(|c| clean(c) && c.chars().count() <= 255)
            .filter(|c| !c.eq_ignore_ascii_case(&name))
            .map(str::to_string);
        let running = text(
            row,
            &[
                "properties",
                "extended",
                "instanceView",
                "powerState",
                "code",
            ],
        )
        .map(|c| c.eq_ignore_ascii_case("PowerState/running"));
        let nics = list(row, &["properties", "networkProfile", "networkInterfaces"])
            .iter()
            .filter_map(|n| text(n, &["id"]))
            .map(str::to_ascii_lowercase)
            .collect();
        self.vms.push(AzVm {
            id: id.to_string(),
            key,
            name,
            resource_group: parts[4].to_string(),
            subscription: parts[2].to_ascii_lowercase(),
            tenant: text(row, &["tenantId"])
                .filter(|t| is_guid(t))
                .map(str::to_ascii_lowercase),
            computer_name,
            os,
            running,
            nics,
        });
    }

    fn bastion(&mut self, row: &Value, id: &str, key: String) {
        let parts: Vec<&str> = id.split('/').collect();
        let from_id = |i: usize| parts.get(i).copied().unwrap_or("");
        let name = text(row, &["name"]).unwrap_or(from_id(8)).to_string();
        let resource_group = text(row, &["resourceGroup"])
            .unwrap_or(from_id(4))
            .to_string();
        let subscription = text(row, &["subscriptionId"])
            .unwrap_or(from_id(2))
            .to_ascii_lowercase();
        let tenant = text(row, &["tenantId"])
            .filter(|t| is_guid(t))
            .map(str::to_ascii_lowercase);
        let sku = text(row, &["sku", "name"]).map(str::to_ascii_lowercase);
        let vnet = text(row, &["properties", "virtualNetwork", "id"])
            .map(str::to_ascii_lowercase)
            .or_else(|| {
                list(row, &["properties", "ipConfigurations"])
                    .iter()
                    .filter_map(|c| text(c, &["properties", "subnet", "id"]))
                    .find_map(vnet_of_subnet)
            });
        let tunneling = flag(row, &["properties", "enableTunneling"]);
        let unusable = if !resource_name_ok(&name, 80) {
            Some(format!(
                "its name `{}` does not follow Azure's naming rules",
                shown(&name)
            ))
        } else if !resource_group_ok(&resource_group) {
            Some(format!(
                "its resource group `{}` does not follow Azure's naming rules",
                shown(&resource_group)
            ))
        } else if !is_guid(&subscription) || tenant.is_none() {
            Some("its subscription or tenant id is not a GUID".into())
        } else {
            match sku.as_deref() {
                Some("standard" | "premium") if tunneling => None,
                Some("standard" | "premium") => Some("native client support (tunneling) is off: turn it on in the portal (the bastion > Configuration > Native client support)".into()),
                Some(other) => Some(format!(
                    "its SKU is {}: native-client connections need Standard or Premium",
                    shown(other)
                )),
                None => Some("its SKU is not known".into()),
            }
        };
        self.bastions.push(AzBastion {
            id: id.to_string(),
            key,
            name,
            resource_group,
            subscription,
            tenant: tenant.unwrap_or_default(),
            sku,
            dns_name: text(row, &["properties", "dnsName"])
                .filter(|d| crate::azure::bastion::is_public_bastion_host(d))
                .map(str::to_string),
            tunneling,
            ip_connect: flag(row, &["properties", "enableIpConnect"]),
            vnet,
            unusable,
        });
    }

    /// The virtual networks a VM is in (through its NICs).
    pub(super) fn vnets_of(&self, vm: &AzVm) -> BTreeSet<String> {
        vm.nics
            .iter()
            .filter_map(|n| self.nic_vnets.get(n))
            .flatten()
            .cloned()
            .collect()
    }

    /// The bastions that reach a VM, nearest first: (rank, index) with rank 0 for its own
    /// network, 1 for a peered one (not Developer SKU).
    pub(super) fn reaching(&self, vm: &AzVm) -> Vec<(u8, usize)> {
        let nets = self.vnets_of(vm);
        let mut out: Vec<(u8, usize)> = Vec::new();
        for (i, b) in self.bastions.iter().enumerate() {
            let Some(bnet) = &b.vnet else { continue };
            if nets.contains(bnet) {
                out.push((0, i));
            } else if b.sku.as_deref() != Some("developer")
                && nets
                    .iter()
                    .any(|n| self.peers.get(n).is_some_and(|p| p.contains(bnet)))
            {
                out.push((1, i));
            }
        }
        out.sort_by(|a, b| (a.0, &self.bastions[a.1].key).cmp(&(b.0, &self.bastions[b.1].key)));
        out
    }
}
