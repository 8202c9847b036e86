//! Tenants, bastions and vms, resolved once per set (many profiles share each), with their
//! own rules (resource id shape, GUIDs).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use serde_json::Value;

use crate::profile::diag::Problem;
use crate::profile::load::{Def, ProfileSet, Section};
use crate::profile::raw::{RawBastion, RawTenant, RawVm, VmOs};

use super::*;

/// Merged layers of a plain entry (tenant, bastion, vm): shared definition + overrides.
pub(super) fn entry_value<T: serde::de::DeserializeOwned>(
    set: &ProfileSet,
    section: Section,
    name: &str,
) -> Option<(T, Def)> {
    let entry = set.entry(section, name)?;
    let first = entry.defs.first()?.clone();
    if let [only] = entry.defs.as_slice() {
        // no override: read the entry where it is written
        return Some((T::deserialize(set.value(only)?).ok()?, first));
    }
    let mut l = Layered::default();
    for def in &entry.defs {
        l.apply(set, def, &[]);
    }
    Some((serde_json::from_value(Value::Object(l.value)).ok()?, first))
}

/// What checking one entry found: the entry (when usable), the problems it pushed, and the
/// dependencies it found unusable, in order.
#[derive(Clone)]
pub(super) struct Memo<T> {
    pub(super) out: Option<T>,
    pub(super) problems: Vec<Problem>,
    pub(super) unusable: Vec<(Section, String)>,
}

impl<T: Clone> Memo<T> {
    fn run(check: impl FnOnce(&mut Vec<Problem>, &mut Needs) -> Option<T>) -> Memo<T> {
        let mut problems = Vec::new();
        let mut needs = Needs::default();
        let out = check(&mut problems, &mut needs);
        Memo {
            out,
            problems,
            unusable: needs.log,
        }
    }

    /// The same effects as running the check again.
    fn replay(
        &self,
        set: &ProfileSet,
        problems: &mut Vec<Problem>,
        needs: &mut Needs,
    ) -> Option<T> {
        problems.extend(self.problems.iter().cloned());
        for (section, name) in &self.unusable {
            needs.check(set, *section, name);
        }
        self.out.clone()
    }
}

/// Bastions and vms checked once per set: thousands of profiles share a few of them. A
/// bastion's result depends only on the set; a vm's on the set and its default tenant.
#[derive(Default)]
pub struct Cache {
    bastions: Mutex<HashMap<String, Memo<(Bastion, Tenant)>>>,
    vms: Mutex<HashMap<VmKey, Memo<Vm>>>,
}

/// A vm's name and the default tenant it was checked with.
pub(super) type VmKey = (String, Option<String>);

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

/// [`bastion`], once per set.
pub(super) fn bastion_cached(
    set: &ProfileSet,
    key: &str,
    problems: &mut Vec<Problem>,
    needs: &mut Needs,
) -> Option<(Bastion, Tenant)> {
    let mut map = set
        .resolved
        .bastions
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(m) = map.get(key) {
        return m.replay(set, problems, needs);
    }
    let memo = Memo::run(|p, n| bastion(set, key, p, n));
    let out = memo.replay(set, problems, needs);
    map.insert(key.to_string(), memo);
    out
}

/// [`vm`], once per set and default tenant.
pub(super) fn vm_cached(
    set: &ProfileSet,
    key: &str,
    default_tenant: Option<&str>,
    problems: &mut Vec<Problem>,
    needs: &mut Needs,
) -> Option<Vm> {
    let mut map = set.resolved.vms.lock().unwrap_or_else(|e| e.into_inner());
    let id = (key.to_string(), default_tenant.map(str::to_string));
    if let Some(m) = map.get(&id) {
        return m.replay(set, problems, needs);
    }
    let memo = Memo::run(|p, n| vm(set, key, default_tenant, p, n));
    let out = memo.replay(set, problems, needs);
    map.insert(id, memo);
    out
}

pub(super) fn tenant(set: &ProfileSet, name: &str) -> Option<(Tenant, Def)> {
    let (raw, def): (RawTenant, Def) = entry_value(set, Section::Tenants, name)?;
    let login_at = set.entry(Section::Tenants, name).and_then(|e| {
        e.defs
            .iter()
            .rev()
            .find(|d| set.value(d).and_then(|v| v.get("login")).is_some())
            .map(|d| Def {
                file: d.file,
                pointer: format!("{}/login", d.pointer),
            })
    });
    Some((
        Tenant {
            name: name.to_string(),
            id: raw.id,
            subscription: raw.subscription,
            description: raw.description,
            login: raw.login.unwrap_or_default(),
            login_at,
        },
        def,
    ))
}

/// Checks one bastion entry on its own; returns it resolved.
pub fn bastion(
    set: &ProfileSet,
    key: &str,
    problems: &mut Vec<Problem>,
    needs: &mut Needs,
) -> Option<(Bastion, Tenant)> {
    let (raw, def): (RawBastion, Def) = entry_value(set, Section::Bastions, key)?;
    let file = set.file(&def);
    if needs.check(set, Section::Tenants, &raw.tenant) {
        return None;
    }
    let Some((t, _)) = tenant(set, &raw.tenant) else {
        problems.push(
            file.problem(
                &format!("{}/tenant", def.pointer),
                false,
                format!(
                    "bastion `{key}` names tenant `{}`, which is not defined",
                    raw.tenant
                ),
            )
            .with_help(unknown_name_help(set, Section::Tenants, &raw.tenant)),
        );
        return None;
    };
    Some((
        Bastion {
            key: key.to_string(),
            tenant: raw.tenant,
            subscription: raw.subscription.unwrap_or_else(|| t.subscription.clone()),
            resource_group: raw.resource_group,
            name: raw.name,
            sku: raw.sku,
            ip_connect: raw.ip_connect,
            dns_name: raw.dns_name,
        },
        t,
    ))
}

/// Checks the shape of an ARM VM id: `/subscriptions/<GUID>/resourceGroups/<rg>/providers/
/// Microsoft.Compute/virtualMachines/<name>`.
pub fn check_vm_resource_id(id: &str) -> Result<(), String> {
    let parts: Vec<&str> = id.split('/').collect();
    let guid = crate::text::is_guid;
    let ok_shape = parts.len() == 9
        && parts[0].is_empty()
        && parts[1].eq_ignore_ascii_case("subscriptions")
        && parts[3].eq_ignore_ascii_case("resourceGroups")
        && parts[5].eq_ignore_ascii_case("providers");
    if !ok_shape {
        return Err("it is not of the form /subscriptions/<GUID>/resourceGroups/<group>/providers/Microsoft.Compute/virtualMachines/<name>".into());
    }
    if !guid(parts[2]) {
        return Err(format!("its subscription `{}` is not a GUID", parts[2]));
    }
    if parts[4].is_empty() || parts[8].is_empty() {
        return Err("its resource group or VM name is empty".into());
    }
    if !(parts[6].eq_ignore_ascii_case("Microsoft.Compute")
        && parts[7].eq_ignore_ascii_case("virtualMachines"))
    {
        return Err(format!(
            "its provider is `{}/{}`, not `Microsoft.Compute/virtualMachines`",
            parts[6], parts[7]
        ));
    }
    Ok(())
}

/// Checks one vm entry on its own (exactly one target, id shape, IP); returns it resolved.
/// `default_tenant` is the bastion's tenant when the vm names none.
pub fn vm(
    set: &ProfileSet,
    key: &str,
    default_tenant: Option<&str>,
    problems: &mut Vec<Problem>,
    needs: &mut Needs,
) -> Option<Vm> {
    let (raw, def): (RawVm, Def) = entry_value(set, Section::Vms, key)?;
    let file = set.file(&def);
    let at = |field: &str| format!("{}/{}", def.pointer, field);
    let before = problems.len();
    let targets: Vec<&str> = [
        raw.resource_id.as_ref().map(|_| "resource_id"),
        raw.name.as_ref().map(|_| "name"),
        raw.ip.as_ref().map(|_| "ip"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if targets.len() != 1 {
        let msg = if targets.is_empty() {
            format!("vm `{key}` has no target")
        } else {
            format!(
                "vm `{key}` has {} targets: {}",
                targets.len(),
                targets.join(", ")
            )
        };
        problems.push(file.problem(&def.pointer, true, msg).with_help(
            "give exactly one of `resource_id`, `name` (with `resource_group`), or `ip`",
        ));
    }
    if raw.name.is_some() && raw.resource_group.is_none() {
        problems.push(
            file.problem(
                &at("name"),
                true,
                format!("vm `{key}` has `name` but no `resource_group`"),
            )
            .with_help("add `resource_group:` (the VM's resource group)"),
        );
    }
    if raw.resource_group.is_some() && raw.name.is_none() {
        problems.push(
            file.problem(
                &at("resource_group"),
                true,
                format!("vm `{key}` has `resource_group` but no `name`"),
            )
            .with_help("`resource_group` goes with `name`; with `resource_id` or `ip`, remove it"),
        );
    }
    if let Some(id) = &raw.resource_id
        && let Err(why) = check_vm_resource_id(id)
    {
        problems.push(
            file.problem(&at("resource_id"), false, format!("`resource_id` of vm `{key}` is not a VM resource id: {why}"))
                .with_help("copy the id from the VM's Properties page in the portal, or `az vm show -g RG -n NAME --query id`"),
        );
    }
    if let Some(ip) = &raw.ip
        && ip.parse::<IpAddr>().is_err()
    {
        problems.push(
            file.problem(
                &at("ip"),
                false,
                format!("`ip` of vm `{key}` is \"{ip}\", not an IP address"),
            )
            .with_help("write the VM's private IP address, like 10.1.0.4"),
        );
    }
    let tenant_name = raw.tenant.clone().or(default_tenant.map(str::to_string));
    let tenant = match &tenant_name {
        Some(t) if needs.check(set, Section::Tenants, t) => return None,
        Some(t) => match tenant(set, t) {
            Some((t, _)) => Some(t),
            None => {
                problems.push(
                    file.problem(
                        &at("tenant"),
                        false,
                        format!("vm `{key}` names tenant `{t}`, which is not defined"),
                    )
                    .with_help(unknown_name_help(set, Section::Tenants, t)),
                );
                None
            }
        },
        None => None,
    };
    if problems.len() > before {
        return None;
    }
    let subscription = raw
        .subscription
        .clone()
        .or_else(|| tenant.as_ref().map(|t| t.subscription.clone()))
        .unwrap_or_default();
    let resource_id = match (&raw.resource_id, &raw.name, &raw.resource_group) {
        (Some(id), _, _) => id.clone(),
        (None, Some(n), Some(rg)) => format!(
            "/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{n}"
        ),
        _ => String::new(),
    };
    Some(Vm {
        key: key.to_string(),
        tenant: tenant_name.unwrap_or_default(),
        subscription,
        resource_group: raw.resource_group,
        name: raw.name,
        resource_id,
        ip: raw.ip,
        os: raw.os.unwrap_or(VmOs::Windows),
        computer_name: raw.computer_name,
    })
}

/// Every problem of the set's bastions and vms, used or not (profiles are checked as they are
/// resolved, templates by [`crate::plan::validate_all`]).
pub fn validate_entries(set: &ProfileSet) -> Vec<Problem> {
    let mut problems = Vec::new();
    for name in set.names(Section::Bastions) {
        // a broken tenant is reported where it is written
        bastion_cached(set, name, &mut problems, &mut Needs::default());
    }
    for name in set.names(Section::Vms) {
        // a vm's tenant defaults to its bastion's: checked here only when it names one
        vm_cached(set, name, None, &mut problems, &mut Needs::default());
    }
    problems
}
