//! The checks of one profile, judged from what ARM said: which reads a profile needs (in two
//! rounds), and what each answer means for its connection. This file holds the reads, the
//! order of the checks, and those of the account, the token and the bastion; [`super::vm`]
//! those of the VM and the way to it.

use serde_json::Value;

use super::vm::{computer_name, entra_extension, entra_role, network, settings, vm_running};
use super::{Check, Failure, Found, Got, Read, Scope};
use crate::azure::arm::{BASTION_API, BastionFacts, resource_path};
use crate::azure::bastion::{DataPlane, LARGE_TOKEN};
use crate::azure::http::{Endpoint, bounded};
use crate::azure::resources::{self, VmFacts};
use crate::plan::{self, PlanOptions};
use crate::profile::raw::{AuthType, Mode};
use crate::profile::resolve::Profile;

/// The answers read so far.
type Answers = std::collections::HashMap<Read, Result<Value, Failure>>;

fn value<'a>(answers: &'a Answers, r: &Read) -> Option<&'a Value> {
    answers.get(r).and_then(|a| a.as_ref().ok())
}

/// Whether the profile signs in with Entra ID: rdp with `enable_mfa` or `auth_type: aad`, ssh
/// with `auth_type: aad`.
pub(super) fn entra(p: &Profile) -> bool {
    match p.mode {
        Mode::Rdp => p.enable_mfa || p.auth_type == Some(AuthType::Aad),
        Mode::Ssh => p.auth_type == Some(AuthType::Aad),
        Mode::Tunnel => false,
    }
}

fn bastion_read(p: &Profile) -> Read {
    let b = &p.bastion;
    Read::get(
        &b.subscription,
        resource_path(
            &b.subscription,
            &b.resource_group,
            "Microsoft.Network/bastionHosts",
            &b.name,
        )
        .map(|path| format!("{path}?api-version={BASTION_API}")),
    )
}

/// The VM's reads exist only for a VM given as a resource (not by IP).
fn vm_read(p: &Profile) -> Option<Read> {
    p.vm.ip.is_none().then(|| {
        Read::get(
            &p.bastion.subscription,
            resources::vm_target(&p.vm.resource_id),
        )
    })
}

pub(super) fn extensions_read(p: &Profile) -> Option<Read> {
    (p.vm.ip.is_none() && entra(p)).then(|| {
        Read::get(
            &p.bastion.subscription,
            resources::extensions_target(&p.vm.resource_id),
        )
    })
}

pub(super) fn roles_read(p: &Profile, oid: Option<&str>) -> Option<Read> {
    let oid = oid?;
    (p.vm.ip.is_none() && entra(p)).then(|| {
        Read::list(
            &p.bastion.subscription,
            resources::role_assignments_target(&p.vm.resource_id, oid),
        )
    })
}

/// Round 1: what the token alone lets doctor read.
pub(super) fn first_reads(p: &Profile, oid: Option<&str>) -> Vec<Read> {
    std::iter::once(bastion_read(p))
        .chain(vm_read(p))
        .chain(extensions_read(p))
        .chain(roles_read(p, oid))
        .collect()
}

fn nic_read(p: &Profile, answers: &Answers) -> Option<Read> {
    let vm = value(answers, &vm_read(p)?)?;
    let nic = VmFacts::from_json(vm).nic?;
    Some(Read::get(
        &p.bastion.subscription,
        resources::network_target(&nic),
    ))
}

/// The bastion's virtual network, for its peerings (read whether or not the VM's network turns
/// out to differ: the answer is ready when it does).
fn bastion_vnet_read(p: &Profile, answers: &Answers) -> Option<Read> {
    vm_read(p)?;
    let bastion = value(answers, &bastion_read(p))?;
    let vnet = resources::bastion_vnet(bastion)?;
    Some(Read::get(
        &p.bastion.subscription,
        resources::network_target(&vnet),
    ))
}

/// Round 2: what the first answers point at.
pub(super) fn second_reads(p: &Profile, answers: &Answers) -> Vec<Read> {
    nic_read(p, answers)
        .into_iter()
        .chain(bastion_vnet_read(p, answers))
        .collect()
}

/// The bastion host bprof's engine would talk to, when this profile's connection uses the
/// engine: the profile's `dns_name`, else ARM's `dnsName`.
pub(super) fn bastion_host(
    p: &Profile,
    opts: &PlanOptions,
    answers: &Answers,
) -> Option<Result<Endpoint, String>> {
    if !plan::native(p, opts) {
        return None;
    }
    let dp = match &p.bastion.dns_name {
        Some(d) => DataPlane::from_profile(d),
        None => {
            let facts = BastionFacts::from_json(value(answers, &bastion_read(p))?);
            DataPlane::from_arm(facts.dns_name.as_deref().filter(|d| !d.is_empty())?)
        }
    };
    Some(dp.map(|d| d.endpoint().clone()).map_err(|e| e.to_string()))
}

/// The checks of one profile, in the order a connection meets them.
pub(super) fn checks(p: &Profile, scope: &Scope, f: &Found) -> Vec<Check> {
    let mut out = vec![signed_in(p, f), token(p, scope, f)];
    let bastion = f.got(&bastion_read(p));
    out.push(bastion_exists(p, &bastion));
    let bastion_json = match bastion {
        Got::Value(v) => Some(v),
        _ => None,
    };
    let facts = bastion_json.map(BastionFacts::from_json);
    let opts = scope.plan_options();
    out.extend(bastion_settings(p, &opts, facts.as_ref()));
    out.push(tls_bastion(p, &opts, f, facts.as_ref()));
    let vm = vm_read(p).map(|r| f.got(&r));
    let vm_facts = match &vm {
        Some(Got::Value(v)) => Some(VmFacts::from_json(v)),
        _ => None,
    };
    out.push(vm_running(p, vm.as_ref(), vm_facts.as_ref()));
    out.push(computer_name(p, vm_facts.as_ref()));
    out.push(entra_extension(p, f, vm_facts.as_ref()));
    out.push(entra_role(p, f));
    out.push(network(
        p,
        f,
        bastion_json,
        facts.as_ref(),
        vm_facts.as_ref(),
    ));
    out.push(settings(p, facts.as_ref(), vm_facts.as_ref()));
    out
}

fn signed_in(p: &Profile, f: &Found) -> Check {
    let t = &p.tenant;
    let sub = &p.bastion.subscription;
    if !f.az_profile.knows(sub) {
        let login = std::iter::once(format!("az login --tenant {}", t.id))
            .chain(t.login.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        return Check::warn(
            "signed-in",
            format!(
                "az is not signed in to subscription {sub} (the bastion's, in tenant `{}` {})",
                t.name, t.id
            ),
            format!("`{login}` (`bprof run` signs in by itself; doctor does not)"),
        );
    }
    match f.az_profile.tenant_of(sub) {
        Some(tid) if !tid.eq_ignore_ascii_case(&t.id) => Check::fail(
            "signed-in",
            format!(
                "az has subscription {sub} in tenant {}, but tenant `{}` says its id is {}",
                bounded(tid, 64),
                t.name,
                t.id
            ),
            format!(
                "correct `id` of tenant `{}` in the profile files (`az account show --subscription {sub} --query tenantId`)",
                t.name
            ),
        ),
        _ => Check::ok(
            "signed-in",
            format!(
                "az is signed in to tenant `{}` ({}): subscription {sub} is in its profile",
                t.name, t.id
            ),
        ),
    }
}

fn token(p: &Profile, scope: &Scope, f: &Found) -> Check {
    let sub = p.bastion.subscription.to_ascii_lowercase();
    let facts = match f.tokens.get(&sub) {
        None => {
            return Check::skip(
                "token",
                f.unread(&sub)
                    .unwrap_or_else(|| "no token was asked for".into()),
            );
        }
        Some(Err(why)) => {
            return Check::fail(
                "token",
                format!("az gave no ARM token: {why}"),
                format!("`az login --tenant {}` signs in again", p.tenant.id),
            );
        }
        Some(Ok(facts)) => facts,
    };
    let sharing = scope
        .profiles
        .iter()
        .filter(|q| q.bastion.subscription.eq_ignore_ascii_case(&sub))
        .count();
    let who = match (&facts.upn, &facts.oid) {
        (Some(u), Some(o)) => format!("{} (object id {})", bounded(u, 100), bounded(o, 64)),
        (None, Some(o)) => format!("object id {}", bounded(o, 64)),
        (Some(u), None) => bounded(u, 100),
        (None, None) => "a principal the token does not name".into(),
    };
    let detail = format!(
        "an ARM token for subscription {sub} from one az process{}, for {who}",
        if sharing > 1 {
            format!(", shared by {sharing} profiles")
        } else {
            String::new()
        }
    );
    if facts.len >= LARGE_TOKEN {
        return Check::warn(
            "token",
            format!("{detail}; it is {} characters long", facts.len),
            "tokens this large (members of very many Entra groups) are known to make the bastion refuse sessions; an account in fewer groups, or an admin limiting the token's group claims, avoids it",
        );
    }
    Check::ok("token", detail)
}

fn bastion_exists(p: &Profile, got: &Got) -> Check {
    let b = &p.bastion;
    match got {
        Got::Value(v) => {
            let facts = BastionFacts::from_json(v);
            Check::ok(
                "bastion",
                format!(
                    "bastion `{}` exists (SKU {}{})",
                    b.name,
                    facts
                        .sku
                        .as_deref()
                        .map(|s| bounded(s, 40))
                        .unwrap_or_else(|| "unknown".into()),
                    v.get("location")
                        .and_then(Value::as_str)
                        .map(|l| format!(", {}", bounded(l, 40)))
                        .unwrap_or_default()
                ),
            )
        }
        Got::Failed(e) if e.status() == Some(404) => Check::fail(
            "bastion",
            format!(
                "bastion `{}` is not in resource group {} of subscription {}: {}",
                b.name,
                b.resource_group,
                b.subscription,
                e.describe()
            ),
            format!(
                "check `subscription`, `resource_group` and `name` of bastion `{}`",
                b.key
            ),
        ),
        Got::Failed(e) if matches!(e.status(), Some(401 | 403)) => Check::fail(
            "bastion",
            format!("ARM refuses to show bastion `{}`: {}", b.name, e.describe()),
            format!(
                "ask for the Reader role on bastion `{}` (az's and bprof's tunnels both read it); `az account show` says who az is signed in as",
                b.name
            ),
        ),
        Got::Failed(e) => Check::skip(
            "bastion",
            format!("bastion `{}` could not be read: {}", b.name, e.describe()),
        ),
        Got::Skipped(why) => Check::skip("bastion", why.clone()),
    }
}

/// SKU, native client support, IP connect.
fn bastion_settings(p: &Profile, opts: &PlanOptions, facts: Option<&BastionFacts>) -> Vec<Check> {
    let unread = || Check::skip("", "the bastion could not be read (see check `bastion`)");
    let ip_skip = || {
        Check::skip(
            "ip-connect",
            "the target is a VM resource, not an IP address",
        )
    };
    let Some(facts) = facts else {
        let ip = match p.vm.ip {
            None => ip_skip(),
            Some(_) => Check {
                name: "ip-connect",
                ..unread()
            },
        };
        return vec![
            Check {
                name: "bastion-sku",
                ..unread()
            },
            Check {
                name: "tunneling",
                ..unread()
            },
            ip,
        ];
    };
    let gateway = plan::rdp_path(p, opts) == Some(plan::RdpPath::Gateway);
    let sku = match facts.sku_refusal() {
        Some(r) => Check::fail("bastion-sku", r.why, r.fix),
        None if facts.developer() && gateway => Check::fail(
            "bastion-sku",
            format!(
                "SKU Developer has no RD gateway, and on {} this profile connects through it",
                opts.os.name()
            ),
            format!(
                "add `sku: developer` to bastion `{}` in the profile: bprof then opens its own tunnel and mstsc through it",
                p.bastion.key
            ),
        ),
        None if facts.developer() => Check::ok(
            "bastion-sku",
            "SKU Developer: bprof's own engine serves it (ssh, tunnels, and RDP through bprof's tunnel; az's tunnel and rdp do not), from its own virtual network only (no peering), to VMs by name (no IP-based connection)",
        ),
        None => Check::ok(
            "bastion-sku",
            format!(
                "SKU {}: carries native-client connections",
                bounded(facts.sku.as_deref().unwrap_or_default(), 40)
            ),
        ),
    };
    let tunneling = match facts.tunneling_refusal() {
        Some(r) => Check::fail("tunneling", r.why, r.fix),
        None if facts.developer() => Check::skip(
            "tunneling",
            "the Developer SKU has no native client setting: its broker names a data pod per session",
        ),
        None => Check::ok("tunneling", "native client support (tunneling) is on"),
    };
    let ip = match (&p.vm.ip, facts.ip_connect_refusal()) {
        (None, _) => ip_skip(),
        (Some(_), Some(r)) => Check::fail("ip-connect", r.why, r.fix),
        (Some(ip), None) => Check::ok("ip-connect", format!("IP-based connection is on, for {ip}")),
    };
    vec![sku, tunneling, ip]
}

fn tls_bastion(p: &Profile, opts: &PlanOptions, f: &Found, facts: Option<&BastionFacts>) -> Check {
    if !plan::native(p, opts) {
        return Check::skip(
            "tls-bastion",
            format!(
                "on {} this profile connects through az's own commands, not bprof's engine",
                opts.os.name()
            ),
        );
    }
    let host = match (&p.bastion.dns_name, facts) {
        (Some(d), _) => d.clone(),
        (None, Some(facts)) => match facts.dns_name.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => d.to_string(),
            None => {
                return Check::skip("tls-bastion", "ARM's answer for the bastion has no dnsName");
            }
        },
        (None, None) => {
            return Check::skip(
                "tls-bastion",
                "the bastion's host is unknown: the bastion could not be read",
            );
        }
    };
    let endpoint = match p.bastion.dns_name {
        Some(_) => DataPlane::from_profile(&host),
        None => DataPlane::from_arm(&host),
    };
    let authority = match endpoint {
        Ok(dp) => dp.endpoint().authority(),
        Err(e) => {
            return Check::fail(
                "tls-bastion",
                e.to_string(),
                "this host cannot be used for the tunnel; check the bastion in the portal",
            );
        }
    };
    match f.tls.get(&authority) {
        Some(Ok(how)) => Check::ok("tls-bastion", format!("TLS with the bastion host {how}")),
        Some(Err(e)) => Check::fail(
            "tls-bastion",
            e.to_string(),
            e.hint()
                .unwrap_or_else(|| "check the network path to the bastion host".into()),
        ),
        None => Check::skip(
            "tls-bastion",
            f.unread(&p.bastion.subscription)
                .unwrap_or_else(|| format!("{authority} was not probed")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::plan::Os;

    #[test]
    fn a_developer_bastion_under_the_windows_gateway_path_fails_with_the_sku_to_declare() {
        let yaml = "version: 1
tenants: {t: {id: 11111111-1111-1111-1111-111111111111, subscription: 22222222-2222-2222-2222-222222222222}}
bastions: {b: {tenant: t, resource_group: rg, name: bas}}
vms: {v: {resource_group: rg, name: vm}}
profiles: {desk: {bastion: b, vm: v}}
";
        let set = crate::profile::load::load_text(
            std::path::Path::new("p.yaml"),
            "p.yaml".into(),
            yaml.into(),
        );
        let p = crate::profile::resolve::resolve(&set, "desk").unwrap();
        let facts = BastionFacts::from_json(&serde_json::json!({
            "sku": {"name": "Developer"},
            "properties": {"dnsName": "omnibrain.westeurope.bastionglobal.azure.com"},
        }));
        let sku = |os| {
            bastion_settings(&p, &PlanOptions::for_os(os), Some(&facts))
                .into_iter()
                .find(|c| c.name == "bastion-sku")
                .unwrap()
        };
        let on_windows = sku(Os::Windows);
        assert_eq!(on_windows.status, Status::Fail, "{on_windows:?}");
        assert!(
            on_windows
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("`sku: developer` to bastion `b`")),
            "{on_windows:?}"
        );
        assert_eq!(sku(Os::Linux).status, Status::Ok, "the tunnel serves it");
    }
}
