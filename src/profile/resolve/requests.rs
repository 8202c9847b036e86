//! What a resolved profile asks consent for: its capability-bearing values from files that
//! grant nothing, outside their allow-lists, each with the destination it would go to.

use std::collections::BTreeMap;

use crate::profile::allow;
use crate::profile::load::{Def, ProfileSet};
use crate::profile::trust::{Destination, Request};

use super::*;

/// The lists of a profile that reach a process or an .rdp file, as written.
pub(super) struct Lists {
    pub(super) ssh_args: Option<Vec<String>>,
    pub(super) extra_args: Option<Vec<String>>,
    pub(super) properties: BTreeMap<String, crate::profile::raw::RdpValue>,
    pub(super) drives: Option<bool>,
}

/// The content at `field`'s origin, when it comes from a file that grants nothing.
pub(super) fn untrusted<'s>(
    set: &'s ProfileSet,
    origins: &BTreeMap<String, Option<Def>>,
    field: &str,
) -> Option<(&'s crate::profile::load::SourceFile, Def)> {
    let def = origins.get(field).cloned().flatten()?;
    let file = set.file(&def);
    (!file.kind.trusted()).then_some((file, def))
}

/// Where a profile goes: what a consent is pinned to besides the content.
pub fn destination(tenant: &Tenant, bastion: &Bastion, vm: &Vm, port: u16) -> Destination {
    Destination {
        tenant: tenant.id.clone(),
        subscription: bastion.subscription.clone(),
        bastion: format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/bastionHosts/{}",
            bastion.subscription, bastion.resource_group, bastion.name
        ),
        target: vm.ip.clone().unwrap_or_else(|| vm.resource_id.clone()),
        port,
    }
}

impl Profile {
    /// Where this profile goes ([`destination`]).
    pub fn destination(&self) -> Destination {
        destination(&self.tenant, &self.bastion, &self.vm, self.resource_port)
    }
}

/// The profile that asks, and where it goes.
pub(super) struct Whom<'a> {
    pub(super) profile: &'a str,
    pub(super) destination: Destination,
}

pub(super) fn request(
    file: &crate::profile::load::SourceFile,
    def: &Def,
    reasons: Vec<String>,
    whom: &Whom,
) -> Request {
    let what = format!(
        "`{}`",
        crate::profile::schema::human_path(&file.value, &def.pointer)
    );
    Request::new(
        file,
        &def.pointer,
        what,
        reasons,
        whom.profile,
        whom.destination.clone(),
    )
}

/// An allow-list check of a list field.
pub(super) type ListCheck = fn(&[String]) -> Vec<allow::Outside>;

/// Capability-bearing values from files that grant nothing, outside their allow-lists.
pub(super) fn requests(
    set: &ProfileSet,
    origins: &BTreeMap<String, Option<Def>>,
    lists: &Lists,
    tenant: &Tenant,
    whom: &Whom,
) -> Vec<Request> {
    let mut out = Vec::new();
    let checks: [(&str, &Option<Vec<String>>, ListCheck); 2] = [
        ("ssh_args", &lists.ssh_args, allow::ssh_args),
        ("extra_args", &lists.extra_args, allow::az_extra_args),
    ];
    for (field, value, check) in checks {
        if let (Some(list), Some((file, def))) = (value, untrusted(set, origins, field)) {
            let reasons: Vec<String> = check(list).into_iter().map(|o| o.reason).collect();
            if !reasons.is_empty() {
                out.push(request(file, &def, reasons, whom));
            }
        }
    }
    for (key, value) in &lists.properties {
        if let Some((file, def)) = untrusted(set, origins, &format!("rdp.properties.{key}"))
            && let Err(reason) = allow::rdp_property(key, value)
        {
            out.push(request(file, &def, vec![reason], whom));
        }
    }
    if lists.drives == Some(true)
        && let Some((file, def)) = untrusted(set, origins, "rdp.drives")
    {
        out.push(request(
            file,
            &def,
            vec!["`drives: true` hands the VM all your local drives; a shared file may only turn it off".into()],
            whom,
        ));
    }
    // the tenant's login argv
    if let Some(def) = &tenant.login_at {
        let file = set.file(def);
        let reasons: Vec<String> = allow::login_args(&tenant.login)
            .into_iter()
            .map(|o| o.reason)
            .collect();
        if !file.kind.trusted() && !reasons.is_empty() {
            out.push(request(file, def, reasons, whom));
        }
    }
    out
}
