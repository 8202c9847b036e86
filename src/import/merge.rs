//! The existing file and the new one: whether import wrote it, its entries read back
//! (leniently) and looked up by identity, what the run covered (its [`Scope`]), its VMs outside
//! the scope (kept with `--merge`, else dropped), and how the profiles changed.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::names::name_ok;
use super::{
    AzVm, Inventory, MARK, Model, Options, OutBastion, OutProfile, OutTenant, OutVm, Outcome, Read,
    Request, Scope,
};
use crate::profile::raw::{RawBastion, RawProfile, RawTenant, RawVm, VmOs};
use crate::text::is_guid;

/// Whether a file is one import wrote (its first line is the mark).
pub fn is_generated(text: &str) -> bool {
    text.strip_prefix('\u{feff}')
        .unwrap_or(text)
        .starts_with(MARK)
}

impl Model {
    /// The entries of an existing generated file, read leniently: what cannot be read is
    /// passed by (its VMs get names anew).
    pub fn parse(text: &str) -> Result<Model, String> {
        let (value, _) = crate::profile::yaml::parse(text)
            .map_err(|e| format!("line {}: {}", e.pos.line, e.message))?;
        fn section<T: serde::de::DeserializeOwned>(v: &Value, key: &str) -> Vec<(String, T)> {
            v.get(key)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| name_ok(k))
                        .filter_map(|(k, e)| Some((k.clone(), T::deserialize(e).ok()?)))
                        .collect()
                })
                .unwrap_or_default()
        }
        let mut m = Model::default();
        for (k, t) in section::<RawTenant>(&value, "tenants") {
            m.tenants.insert(
                k,
                OutTenant {
                    id: t.id.to_ascii_lowercase(),
                    subscription: t.subscription.to_ascii_lowercase(),
                },
            );
        }
        for (k, b) in section::<RawBastion>(&value, "bastions") {
            m.bastions.insert(
                k,
                OutBastion {
                    tenant: b.tenant,
                    subscription: b.subscription.map(|s| s.to_ascii_lowercase()),
                    resource_group: b.resource_group,
                    name: b.name,
                    sku: b.sku.map(|s| sku_word(s).to_string()),
                    ip_connect: b.ip_connect,
                    dns_name: b.dns_name,
                },
            );
        }
        for (k, v) in section::<RawVm>(&value, "vms") {
            let Some(id) = v.resource_id else { continue };
            m.vms.insert(
                k,
                OutVm {
                    resource_id: id,
                    os: v.os.unwrap_or(VmOs::Windows),
                    computer_name: v.computer_name,
                    tenant: v.tenant,
                },
            );
        }
        for (k, p) in section::<RawProfile>(&value, "profiles") {
            let (Some(bastion), Some(vm)) = (p.bastion, p.vm) else {
                continue;
            };
            let os = m.vms.get(&vm).map_or(VmOs::Windows, |v| v.os);
            m.profiles.insert(
                k,
                OutProfile {
                    description: p.description,
                    bastion,
                    vm,
                    os,
                },
            );
        }
        Ok(m)
    }

    /// A bastion entry's identity: subscription, resource group and name, lower case.
    pub(super) fn bastion_key(&self, b: &OutBastion) -> Option<(String, String, String)> {
        let sub = b
            .subscription
            .clone()
            .or_else(|| self.tenants.get(&b.tenant).map(|t| t.subscription.clone()))?;
        Some((
            sub.to_ascii_lowercase(),
            b.resource_group.to_ascii_lowercase(),
            b.name.to_ascii_lowercase(),
        ))
    }

    /// The tenant id of a vm entry (its own tenant, else its profile's bastion's).
    pub(super) fn vm_tenant(&self, vm_name: &str, by_vm: &ByVm) -> Option<String> {
        let vm = self.vms.get(vm_name)?;
        let tenant = match &vm.tenant {
            Some(t) => t.clone(),
            None => {
                let (_, p) = by_vm.get(vm_name)?;
                self.bastions.get(&p.bastion)?.tenant.clone()
            }
        };
        self.tenants.get(&tenant).map(|t| t.id.clone())
    }

    /// Each vm's profile (the first by name, when a hand edit made several).
    pub(super) fn profiles_by_vm(&self) -> ByVm<'_> {
        let mut m = ByVm::new();
        for (n, p) in &self.profiles {
            m.entry(p.vm.as_str()).or_insert((n, p));
        }
        m
    }
}

/// A vm's name -> its profile's name and entry.
pub(super) type ByVm<'a> = HashMap<&'a str, (&'a String, &'a OutProfile)>;

fn sku_word(s: crate::profile::raw::Sku) -> &'static str {
    use crate::profile::raw::Sku;
    match s {
        Sku::Basic => "basic",
        Sku::Standard => "standard",
        Sku::Premium => "premium",
        Sku::Developer => "developer",
    }
}

impl Scope {
    /// The scope of a request, given what the read saw.
    pub fn of(req: &Request, read: &Read, inv: &Inventory) -> Scope {
        let mut tenants: BTreeSet<String> = read.token_tenants.iter().cloned().collect();
        if let Some(t) = req.tenant.as_ref().filter(|t| is_guid(t)) {
            tenants.insert(t.clone());
        }
        if req.subscriptions.is_empty() {
            tenants.extend(inv.tenants_seen.iter().cloned());
        }
        Scope {
            subscriptions: (!req.subscriptions.is_empty())
                .then(|| req.subscriptions.iter().cloned().collect()),
            tenants,
            resource_group: req.resource_group.clone(),
        }
    }

    /// Whether a VM (its resource id, its tenant id) is inside what was read.
    pub fn covers(&self, resource_id: &str, tenant: Option<&str>) -> bool {
        let parts: Vec<&str> = resource_id.split('/').collect();
        let (Some(sub), Some(rg)) = (parts.get(2), parts.get(4)) else {
            return true;
        };
        let place = match &self.subscriptions {
            Some(subs) => subs.contains(&sub.to_ascii_lowercase()),
            None => tenant.is_none_or(|t| self.tenants.contains(t)),
        };
        place
            && self
                .resource_group
                .as_ref()
                .is_none_or(|g| g.eq_ignore_ascii_case(rg))
    }
}

/// How the profiles changed from the existing file: (added, removed).
pub fn changes(old: &Model, new: &Model) -> (Vec<String>, Vec<String>) {
    let added = new
        .profiles
        .keys()
        .filter(|k| !old.profiles.contains_key(*k))
        .cloned()
        .collect();
    let removed = old
        .profiles
        .keys()
        .filter(|k| !new.profiles.contains_key(*k))
        .cloned()
        .collect();
    (added, removed)
}

/// The existing file's VMs outside the scope (`chosen`: the VMs read and their bastions): kept
/// with `--merge`, with their profiles, bastions and tenants, else dropped (counted).
pub(super) fn keep_outside(
    old: &Model,
    old_by_vm: &ByVm,
    opts: &Options,
    chosen: &[(&AzVm, usize)],
    out: &mut Outcome,
) {
    let read_now: BTreeSet<&str> = chosen.iter().map(|(v, _)| v.key.as_str()).collect();
    for (vname, vm) in &old.vms {
        let key = vm.resource_id.to_ascii_lowercase();
        if read_now.contains(key.as_str())
            || opts
                .scope
                .covers(&vm.resource_id, old.vm_tenant(vname, old_by_vm).as_deref())
        {
            continue;
        }
        if !opts.merge {
            out.dropped_outside += 1;
            continue;
        }
        if out.model.vms.contains_key(vname) {
            continue;
        }
        let Some(&(pname, profile)) = old_by_vm.get(vname.as_str()) else {
            continue;
        };
        let Some(bastion) = old.bastions.get(&profile.bastion) else {
            continue;
        };
        if out.model.profiles.contains_key(pname) {
            continue;
        }
        let mut tenants: Vec<&String> = vec![&bastion.tenant];
        tenants.extend(vm.tenant.as_ref());
        if tenants
            .iter()
            .any(|t| !old.tenants.contains_key(*t) && !out.model.tenants.contains_key(*t))
        {
            continue;
        }
        for t in tenants {
            if let Some(entry) = old.tenants.get(t) {
                out.model
                    .tenants
                    .entry(t.clone())
                    .or_insert_with(|| entry.clone());
            }
        }
        out.model
            .bastions
            .entry(profile.bastion.clone())
            .or_insert_with(|| bastion.clone());
        out.model.vms.insert(vname.clone(), vm.clone());
        out.model.profiles.insert(
            pname.clone(),
            OutProfile {
                os: vm.os,
                ..profile.clone()
            },
        );
        out.kept_outside += 1;
    }
}
