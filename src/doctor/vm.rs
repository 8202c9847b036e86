//! The checks of one profile's VM, judged from what ARM said: whether it runs, its computer
//! name, Entra sign-in (extension and role), the network between the bastion and it, and the
//! profile's own settings against what Azure says.

use serde_json::Value;

use super::profile::{entra, extensions_read, roles_read};
use super::{Check, Failure, Found, Got, Read, Status, name_of};
use crate::azure::arm::BastionFacts;
use crate::azure::http::bounded;
use crate::azure::resources::{self, ENTRA_PUBLISHER, VmFacts};
use crate::profile::raw::{Mode, Sku, VmOs};
use crate::profile::resolve::Profile;

/// The check of a VM read that failed: 404 and 403 are findings, the rest a skip.
fn vm_failure(name: &'static str, p: &Profile, e: &Failure) -> Check {
    let vm = p.vm.name.as_deref().unwrap_or(&p.vm.key);
    match e.status() {
        Some(404) => Check::fail(
            name,
            format!("VM `{vm}` was not found: {}", e.describe()),
            format!(
                "check `resource_group` and `name` (or `resource_id`) and `subscription` of vm `{}`",
                p.vm.key
            ),
        ),
        Some(401 | 403) => Check::warn(
            name,
            format!("ARM refuses to show VM `{vm}`: {}", e.describe()),
            "Azure Bastion documents the Reader role on the VM, its network interface and the bastion as needed to connect: ask for it",
        ),
        _ => Check::skip(
            name,
            format!("VM `{vm}` could not be read: {}", e.describe()),
        ),
    }
}

fn ip_skip(name: &'static str, p: &Profile) -> Option<Check> {
    p.vm.ip.as_ref().map(|ip| {
        Check::skip(
            name,
            format!("the target is an IP address ({ip}): there is no VM resource to read"),
        )
    })
}

pub(super) fn vm_running(p: &Profile, got: Option<&Got>, facts: Option<&VmFacts>) -> Check {
    if let Some(c) = ip_skip("vm", p) {
        return c;
    }
    let vm = p.vm.name.as_deref().unwrap_or(&p.vm.key);
    match (got, facts) {
        (_, Some(facts)) => {
            let os = facts
                .os_type
                .as_deref()
                .map(|o| format!(" ({})", bounded(o, 20)))
                .unwrap_or_default();
            match facts.power.as_deref() {
                Some("running") => Check::ok("vm", format!("VM `{vm}` is running{os}")),
                Some(state @ ("deallocated" | "deallocating" | "stopped" | "stopping")) => {
                    Check::fail(
                        "vm",
                        format!("VM `{vm}` is {state}{os}"),
                        format!("start it: `az vm start --ids {}`", p.vm.resource_id),
                    )
                }
                Some(state) => Check::warn(
                    "vm",
                    format!("VM `{vm}` is {}{os}", bounded(state, 40)),
                    "wait until it runs (`az vm get-instance-view` shows its state)",
                ),
                None => Check::warn(
                    "vm",
                    format!("ARM's instance view of VM `{vm}` has no power state"),
                    "look at the VM in the portal",
                ),
            }
        }
        (Some(Got::Failed(e)), _) => vm_failure("vm", p, e),
        (Some(Got::Skipped(why)), _) => Check::skip("vm", why.clone()),
        _ => Check::skip("vm", "the VM was not read"),
    }
}

/// Whether a name could be a computer name (so that a fix may suggest it as YAML).
fn plain_host_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

pub(super) fn computer_name(p: &Profile, facts: Option<&VmFacts>) -> Check {
    if let Some(c) = ip_skip("computer-name", p) {
        return c;
    }
    if !(p.mode == Mode::Rdp && entra(p)) {
        return Check::skip(
            "computer-name",
            "only Entra (AAD) RDP sign-in looks the VM up by its computer name",
        );
    }
    let Some(facts) = facts else {
        return Check::skip("computer-name", "the VM could not be read (see check `vm`)");
    };
    let Some(actual) = facts.computer_name.as_deref() else {
        return Check::skip(
            "computer-name",
            "ARM's answer has no osProfile.computerName (a VM made from a specialized disk): nothing to compare",
        );
    };
    let azure_name =
        p.vm.name
            .clone()
            .unwrap_or_else(|| name_of(&p.vm.resource_id));
    let (expected, from) = match &p.vm.computer_name {
        Some(c) => (c.clone(), "the vm's `computer_name`"),
        None => (azure_name, "the VM's Azure name (no `computer_name` set)"),
    };
    if actual.eq_ignore_ascii_case(&expected) {
        return Check::ok(
            "computer-name",
            format!("the VM's computer name {expected} is the name Entra sign-in uses ({from})"),
        );
    }
    let set = if plain_host_name(actual) {
        format!("set `computer_name: {actual}`")
    } else {
        "set `computer_name:` to the VM's computer name".into()
    };
    Check::fail(
        "computer-name",
        format!(
            "the VM's computer name is {}, but Entra sign-in will ask for {expected} ({from})",
            bounded(actual, 64)
        ),
        format!(
            "{set} on vm `{}`; otherwise Entra sign-in fails with AADSTS293004 (device not found)",
            p.vm.key
        ),
    )
}

/// The extension Entra sign-in needs on this VM: by Azure's OS type, else the profile's `os`.
fn entra_extension_type(p: &Profile, facts: Option<&VmFacts>) -> &'static str {
    let linux = match facts.and_then(|f| f.os_type.as_deref()) {
        Some(t) => t.eq_ignore_ascii_case("linux"),
        None => p.vm.os == VmOs::Linux,
    };
    if linux {
        "AADSSHLoginForLinux"
    } else {
        "AADLoginForWindows"
    }
}

/// `--resource-group RG --vm-name NAME` from a VM's resource id.
fn vm_args(id: &str) -> String {
    let parts: Vec<&str> = id.trim_start_matches('/').split('/').collect();
    match (parts.get(3), parts.get(7)) {
        (Some(rg), Some(name)) => format!("--resource-group {rg} --vm-name {name}"),
        _ => format!("--ids {id}"),
    }
}

fn not_entra(name: &'static str, p: &Profile) -> Option<Check> {
    if let Some(c) = ip_skip(name, p) {
        return Some(c);
    }
    (!entra(p)).then(|| {
        Check::skip(
            name,
            "not an Entra profile (rdp with `enable_mfa` or `auth_type: aad`, ssh with `auth_type: aad`)",
        )
    })
}

pub(super) fn entra_extension(p: &Profile, f: &Found, facts: Option<&VmFacts>) -> Check {
    const NAME: &str = "entra-extension";
    if let Some(c) = not_entra(NAME, p) {
        return c;
    }
    let kind = entra_extension_type(p, facts);
    let install = format!(
        "`az vm extension set --publisher {ENTRA_PUBLISHER} --name {kind} {}`",
        vm_args(&p.vm.resource_id)
    );
    let Some(read) = extensions_read(p) else {
        return Check::skip(NAME, "the VM's extensions were not read");
    };
    let list = match f.got(&read) {
        Got::Value(v) => resources::extensions(v),
        Got::Failed(e) => {
            return Check::skip(
                NAME,
                format!("the VM's extensions could not be listed: {}", e.describe()),
            );
        }
        Got::Skipped(why) => return Check::skip(NAME, why),
    };
    let found = list.iter().find(|e| {
        e.publisher.eq_ignore_ascii_case(ENTRA_PUBLISHER) && e.kind.eq_ignore_ascii_case(kind)
    });
    match found.map(|e| e.state.as_deref()) {
        None => Check::fail(
            NAME,
            format!("the VM has no {kind} extension, which Entra sign-in needs"),
            format!("install it: {install}"),
        ),
        Some(Some(s)) if s.eq_ignore_ascii_case("succeeded") => {
            Check::ok(NAME, format!("{kind} is provisioned"))
        }
        Some(Some(s)) if s.eq_ignore_ascii_case("failed") => Check::fail(
            NAME,
            format!("{kind} failed to provision"),
            format!("install it again: {install}"),
        ),
        Some(state) => Check::warn(
            NAME,
            format!(
                "{kind} is {}",
                state
                    .map(|s| bounded(s, 40))
                    .unwrap_or_else(|| "in no known state".into())
            ),
            format!("wait for it to finish, or install it again: {install}"),
        ),
    }
}

pub(super) fn entra_role(p: &Profile, f: &Found) -> Check {
    const NAME: &str = "entra-role";
    if let Some(c) = not_entra(NAME, p) {
        return c;
    }
    let sub = p.bastion.subscription.to_ascii_lowercase();
    let token = match f.tokens.get(&sub) {
        Some(Ok(t)) => t,
        _ => {
            return Check::skip(
                NAME,
                f.unread(&sub).unwrap_or_else(|| "there is no token".into()),
            );
        }
    };
    let Some(oid) = token.oid.as_deref() else {
        return Check::skip(
            NAME,
            "the token names no principal (`oid`): cannot ask whose roles",
        );
    };
    let Some(read) = roles_read(p, Some(oid)) else {
        return Check::skip(NAME, "the role assignments were not read");
    };
    let who = match &token.upn {
        Some(u) => format!("{} ({})", bounded(u, 100), bounded(oid, 64)),
        None => bounded(oid, 64),
    };
    let assignments = match f.got(&read) {
        Got::Value(Value::Array(list)) => list,
        Got::Value(_) => {
            return Check::skip(NAME, "ARM's answer is not a list of role assignments");
        }
        Got::Failed(e) if matches!(e.status(), Some(401 | 403)) => {
            return Check::skip(
                NAME,
                format!(
                    "you may not read role assignments at the VM: cannot tell whether {who} holds a login role ({})",
                    e.describe()
                ),
            )
            .with_fix("ask an owner of the VM, or look in the portal: the VM > Access control (IAM) > Check access");
        }
        Got::Failed(e) => {
            return Check::skip(
                NAME,
                format!("the role assignments could not be listed: {}", e.describe()),
            );
        }
        Got::Skipped(why) => return Check::skip(NAME, why),
    };
    let roles = resources::login_roles(assignments);
    match roles.first() {
        Some((role, scope)) => Check::ok(
            NAME,
            format!(
                "{who} holds {role}{}",
                if scope.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", bounded(scope, 300))
                }
            ),
        ),
        None => Check::fail(
            NAME,
            format!(
                "{who} holds neither Virtual Machine Administrator Login nor Virtual Machine User Login on the VM or above it (groups included); Entra sign-in will be refused"
            ),
            format!(
                "ask an owner for one of them on the VM, its resource group or subscription: `az role assignment create --role \"Virtual Machine User Login\" --assignee {oid} --scope {}`",
                p.vm.resource_id
            ),
        ),
    }
}

pub(super) fn network(
    p: &Profile,
    f: &Found,
    bastion_json: Option<&Value>,
    bastion: Option<&BastionFacts>,
    vm: Option<&VmFacts>,
) -> Check {
    const NAME: &str = "network";
    if let Some(c) = ip_skip(NAME, p) {
        return c;
    }
    let (Some(bastion_json), Some(bastion_facts), Some(vm)) = (bastion_json, bastion, vm) else {
        return Check::skip(NAME, "the bastion or the VM could not be read");
    };
    let Some(bastion_vnet) = resources::bastion_vnet(bastion_json) else {
        return Check::skip(
            NAME,
            "ARM's answer for the bastion names no subnet or virtual network",
        );
    };
    let Some(nic) = vm.nic.as_deref() else {
        return Check::skip(NAME, "ARM's answer for the VM names no network interface");
    };
    let vm_vnet = match vm_network(p, f, nic) {
        Ok(v) => v,
        Err(check) => return check,
    };
    let (bn, vn) = (name_of(&bastion_vnet), name_of(&vm_vnet));
    if resources::same_id(&bastion_vnet, &vm_vnet) {
        return Check::ok(
            NAME,
            format!("the bastion and the VM are in the same virtual network, {vn}"),
        );
    }
    let peer = "peer the two networks (the portal: the virtual network > Peerings > Add), or use a bastion in the VM's network";
    if bastion_facts
        .sku
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("developer"))
    {
        return Check::fail(
            NAME,
            format!(
                "the VM is in {vn}, the Developer bastion in {bn}, and a Developer bastion does not reach peered networks"
            ),
            "use a Standard or Premium bastion, or one in the VM's network",
        );
    }
    peering(p, f, &bastion_vnet, &vm_vnet, peer)
}

/// The virtual network of the VM's network interface (read in the second round), or the
/// check that says why it is not known.
fn vm_network(p: &Profile, f: &Found, nic: &str) -> Result<String, Check> {
    const NAME: &str = "network";
    let nic_json = match f.got(&Read::get(
        &p.bastion.subscription,
        resources::network_target(nic),
    )) {
        Got::Value(v) => v,
        Got::Failed(e) if matches!(e.status(), Some(401 | 403)) => {
            return Err(Check::warn(
                NAME,
                format!(
                    "ARM refuses to show the VM's network interface {}: {}",
                    name_of(nic),
                    e.describe()
                ),
                "Azure Bastion documents the Reader role on the VM's network interface as needed to connect: ask for it",
            ));
        }
        Got::Failed(e) => {
            return Err(Check::skip(
                NAME,
                format!(
                    "the VM's network interface could not be read: {}",
                    e.describe()
                ),
            ));
        }
        Got::Skipped(why) => return Err(Check::skip(NAME, why)),
    };
    let Some(vm_vnet) = resources::nic_subnet(nic_json).and_then(|s| resources::vnet_of(&s)) else {
        return Err(Check::skip(
            NAME,
            "the VM's network interface names no subnet",
        ));
    };
    Ok(vm_vnet)
}

/// A bastion and a VM in different networks: the bastion's network must be peered with the
/// VM's, and the peering Connected.
fn peering(p: &Profile, f: &Found, bastion_vnet: &str, vm_vnet: &str, peer: &str) -> Check {
    const NAME: &str = "network";
    let (bn, vn) = (name_of(bastion_vnet), name_of(vm_vnet));
    let vnet_json = match f.got(&Read::get(
        &p.bastion.subscription,
        resources::network_target(bastion_vnet),
    )) {
        Got::Value(v) => v,
        Got::Failed(e) => {
            return Check::skip(
                NAME,
                format!(
                    "the VM is in {vn}, the bastion in {bn}, whose peerings could not be read: {}",
                    e.describe()
                ),
            );
        }
        Got::Skipped(why) => return Check::skip(NAME, why),
    };
    let peering = resources::peerings(vnet_json)
        .into_iter()
        .find(|x| resources::same_id(&x.remote, vm_vnet));
    match peering {
        Some(x)
            if x.state
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("connected")) =>
        {
            Check::ok(
                NAME,
                format!("the bastion's network {bn} is peered with the VM's, {vn} (Connected)"),
            )
        }
        Some(x) => Check::fail(
            NAME,
            format!(
                "the peering of {bn} with {vn} is {}, not Connected",
                x.state
                    .as_deref()
                    .map(|s| bounded(s, 40))
                    .unwrap_or_else(|| "in no known state".into())
            ),
            "both networks need their side of the peering: add or re-sync it on each (the portal: the virtual network > Peerings)",
        ),
        None => Check::fail(
            NAME,
            format!(
                "the VM is in {vn}, the bastion in {bn}, and {bn} is not peered with {vn}: the bastion cannot reach the VM"
            ),
            peer,
        ),
    }
}

fn sku_name(s: Sku) -> &'static str {
    match s {
        Sku::Basic => "basic",
        Sku::Standard => "standard",
        Sku::Premium => "premium",
        Sku::Developer => "developer",
    }
}

/// The profile's own settings against what Azure says.
pub(super) fn settings(p: &Profile, bastion: Option<&BastionFacts>, vm: Option<&VmFacts>) -> Check {
    const NAME: &str = "settings";
    let mut compared: Vec<&str> = Vec::new();
    let mut problems: Vec<(Status, String, String)> = Vec::new();
    if let Some(b) = bastion {
        if let (Some(declared), Some(actual)) = (p.bastion.sku, b.sku.as_deref()) {
            compared.push("sku");
            if !actual.eq_ignore_ascii_case(sku_name(declared)) {
                let actual = bounded(actual, 40);
                problems.push((
                    Status::Warn,
                    format!(
                        "bastion `{}` says `sku: {}`, Azure says {actual}",
                        p.bastion.key,
                        sku_name(declared)
                    ),
                    format!(
                        "set `sku: {}` on bastion `{}`",
                        actual.to_ascii_lowercase(),
                        p.bastion.key
                    ),
                ));
            }
        }
        if let Some(declared) = p.bastion.ip_connect {
            compared.push("ip_connect");
            if declared != b.ip_connect {
                problems.push((
                    Status::Warn,
                    format!(
                        "bastion `{}` says `ip_connect: {declared}`, Azure says {}",
                        p.bastion.key, b.ip_connect
                    ),
                    format!(
                        "set `ip_connect: {}` on bastion `{}`",
                        b.ip_connect, p.bastion.key
                    ),
                ));
            }
        }
        if let (Some(declared), Some(actual)) = (&p.bastion.dns_name, b.dns_name.as_deref()) {
            compared.push("dns_name");
            if !declared.eq_ignore_ascii_case(actual) {
                problems.push((
                    Status::Fail,
                    format!(
                        "bastion `{}` says `dns_name: {declared}`, but ARM says its host is {}: bprof's engine would open sessions at the wrong host",
                        p.bastion.key,
                        bounded(actual, 100)
                    ),
                    format!("remove `dns_name` from bastion `{}` (bprof then asks ARM), or correct it", p.bastion.key),
                ));
            }
        }
    }
    if let Some(actual) = vm.and_then(|v| v.os_type.as_deref()) {
        compared.push("os");
        let declared = match p.vm.os {
            VmOs::Windows => "windows",
            VmOs::Linux => "linux",
        };
        if !actual.eq_ignore_ascii_case(declared) {
            let actual = bounded(actual, 20);
            problems.push((
                Status::Warn,
                format!(
                    "vm `{}` has `os: {declared}` (windows when not set), Azure says {actual}",
                    p.vm.key
                ),
                format!(
                    "set `os: {}` on vm `{}`",
                    actual.to_ascii_lowercase(),
                    p.vm.key
                ),
            ));
        }
    }
    if compared.is_empty() {
        return Check::skip(
            NAME,
            "nothing to compare: the bastion and the VM could not be read, or the profile declares nothing Azure reports",
        );
    }
    let Some(worst) = problems.iter().map(|(s, _, _)| *s).max() else {
        return Check::ok(
            NAME,
            format!("the profile agrees with Azure ({})", compared.join(", ")),
        );
    };
    let detail = problems
        .iter()
        .map(|(_, d, _)| d.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let fix = problems
        .iter()
        .map(|(_, _, f)| f.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Check::new(NAME, worst, detail).with_fix(fix)
}
