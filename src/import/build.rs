//! Building the new file from what was read and the existing file.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::inventory::{clean, shown};
use super::names::{Names, name_all};
use super::{
    AzVm, ImportError, Inventory, Model, Options, OutBastion, OutProfile, OutTenant, OutVm, Outcome,
};
use crate::profile::load::Section;

/// The bastion `--bastion` names, or why none.
fn forced(inv: &Inventory, old: &Model, wanted: &str) -> Result<usize, ImportError> {
    let lower = wanted.to_ascii_lowercase();
    let by_file_name = old.bastions.get(wanted).and_then(|b| old.bastion_key(b));
    let matches: Vec<usize> = inv
        .bastions
        .iter()
        .enumerate()
        .filter(|(_, b)| {
            b.key == lower
                || b.name.eq_ignore_ascii_case(wanted)
                || by_file_name.as_ref().is_some_and(|k| *k == b.identity())
        })
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [i] => match &inv.bastions[*i].unusable {
            None => Ok(*i),
            Some(why) => Err(ImportError::Usage(format!(
                "--bastion {}: {why}",
                shown(wanted)
            ))),
        },
        [] => {
            let mut known: Vec<String> = inv.bastions.iter().map(|b| shown(&b.name)).collect();
            known.sort();
            known.dedup();
            known.truncate(20);
            Err(ImportError::Usage(format!(
                "--bastion {}: no bastion of that name in the scope read{}",
                shown(wanted),
                if known.is_empty() {
                    " (none was found)".to_string()
                } else {
                    format!(" (bastions found: {})", known.join(", "))
                }
            )))
        }
        many => Err(ImportError::Usage(format!(
            "--bastion {}: {} bastions have that name; give its resource id: {}",
            shown(wanted),
            many.len(),
            many.iter()
                .take(10)
                .map(|&i| shown(&inv.bastions[i].id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The new file from what was read and the existing file.
pub fn build(inv: &Inventory, old: &Model, opts: &Options) -> Result<Outcome, ImportError> {
    let mut out = Outcome {
        skipped: inv.skipped.clone(),
        ..Default::default()
    };
    let forced = opts
        .bastion
        .as_deref()
        .map(|b| forced(inv, old, b))
        .transpose()?;
    for b in inv.bastions.iter().filter(|b| b.unusable.is_some()) {
        out.skipped.push(format!(
            "bastion {} ({}): not written: {}",
            shown(&b.name),
            shown(&b.resource_group),
            b.unusable.as_deref().unwrap_or_default()
        ));
    }
    // the existing file's names, by identity
    let old_vm_by_id: HashMap<String, &String> = old
        .vms
        .iter()
        .map(|(n, v)| (v.resource_id.to_ascii_lowercase(), n))
        .collect();
    let old_bastion_by_key: HashMap<(String, String, String), &String> = old
        .bastions
        .iter()
        .filter_map(|(n, b)| Some((old.bastion_key(b)?, n)))
        .collect();
    let old_by_vm = old.profiles_by_vm();
    let old_tenant_by_id: HashMap<&str, &String> = old
        .tenants
        .iter()
        .map(|(n, t)| (t.id.as_str(), n))
        .collect();

    // each VM's bastion
    let mut vms: Vec<&AzVm> = inv.vms.iter().collect();
    vms.sort_by(|a, b| a.key.cmp(&b.key));
    let mut chosen: Vec<(&AzVm, usize)> = Vec::new();
    for vm in vms {
        if vm.running == Some(false) {
            out.stopped += 1;
        }
        if let Some(f) = forced {
            chosen.push((vm, f));
            continue;
        }
        let reaching = inv.reaching(vm);
        let usable: Vec<usize> = reaching
            .iter()
            .map(|&(_, i)| i)
            .filter(|&i| inv.bastions[i].unusable.is_none())
            .collect();
        // the existing file's choice, while it still reaches the VM
        let previous = old_vm_by_id
            .get(&vm.key)
            .and_then(|n| old_by_vm.get(n.as_str()).copied())
            .and_then(|(_, p)| old.bastions.get(&p.bastion))
            .and_then(|b| old.bastion_key(b));
        let keep = previous.and_then(|k| {
            usable
                .iter()
                .copied()
                .find(|&i| inv.bastions[i].identity() == k)
        });
        match keep.or_else(|| usable.first().copied()) {
            Some(i) => chosen.push((vm, i)),
            None => {
                let why = if inv.vnets_of(vm).is_empty() {
                    "its network interfaces or their virtual network were not found in the scope read".to_string()
                } else if let Some(&(_, i)) = reaching.first() {
                    let b = &inv.bastions[i];
                    format!(
                        "only bastion {} reaches it, and {}",
                        shown(&b.name),
                        b.unusable.as_deref().unwrap_or_default()
                    )
                } else {
                    "no bastion in its virtual network or a peered one".to_string()
                };
                out.unreachable.push(format!(
                    "{} ({}, subscription {}): {why}",
                    shown(&vm.name),
                    shown(&vm.resource_group),
                    vm.subscription
                ));
            }
        }
    }

    let mut names: BTreeMap<Section, Names> = BTreeMap::new();
    for (section, keys) in [
        (Section::Tenants, old.tenants.keys().collect::<Vec<_>>()),
        (Section::Bastions, old.bastions.keys().collect()),
        (Section::Vms, old.vms.keys().collect()),
        (Section::Profiles, old.profiles.keys().collect()),
    ] {
        names.entry(section).or_default().taken = keys.into_iter().cloned().collect();
    }
    for (section, n) in &opts.reserved {
        names.entry(*section).or_default().taken.insert(n.clone());
    }
    // a new vm's name is its profile's too: it avoids the names profiles have as well
    let profile_names = names
        .get(&Section::Profiles)
        .map(|n| n.taken.clone())
        .unwrap_or_default();
    names
        .entry(Section::Vms)
        .or_default()
        .taken
        .extend(profile_names);
    let reserved = |section: Section, n: &str| opts.reserved.contains(&(section, n.to_string()));
    let mut clashes: BTreeSet<String> = BTreeSet::new();
    let mut keep_name = |section: Section, n: &String| -> String {
        if reserved(section, n) {
            clashes.insert(format!("{} `{n}`", section.noun()));
        }
        n.clone()
    };

    // bastions: every usable one read (and the forced one)
    let written: Vec<usize> = (0..inv.bastions.len())
        .filter(|&i| inv.bastions[i].unusable.is_none())
        .collect();
    let mut bastion_name: HashMap<usize, String> = HashMap::new();
    let mut new_bastions: Vec<usize> = Vec::new();
    for &i in &written {
        match old_bastion_by_key.get(&inv.bastions[i].identity()) {
            Some(n) => {
                bastion_name.insert(i, keep_name(Section::Bastions, n));
            }
            None => new_bastions.push(i),
        }
    }
    let items: Vec<(String, String, String)> = new_bastions
        .iter()
        .map(|&i| {
            let b = &inv.bastions[i];
            (b.name.clone(), b.resource_group.clone(), b.key.clone())
        })
        .collect();
    let fresh = name_all(
        &items,
        names.entry(Section::Bastions).or_default(),
        "bastion",
    );
    for (i, n) in new_bastions.into_iter().zip(fresh) {
        bastion_name.insert(i, n);
    }

    // tenants: those of the bastions and the VMs; a new tenant's default subscription is the
    // smallest id among theirs
    let mut tenant_subs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for &i in &written {
        let b = &inv.bastions[i];
        tenant_subs
            .entry(b.tenant.clone())
            .or_default()
            .insert(b.subscription.clone());
    }
    for (vm, _) in &chosen {
        if let Some(t) = &vm.tenant {
            tenant_subs
                .entry(t.clone())
                .or_default()
                .insert(vm.subscription.clone());
        }
    }
    let mut tenant_name: HashMap<String, String> = HashMap::new();
    for (id, subs) in &tenant_subs {
        let (name, subscription) = match old_tenant_by_id.get(id.as_str()) {
            Some(n) => {
                let previous = &old.tenants[*n].subscription;
                (keep_name(Section::Tenants, n), previous.clone())
            }
            None => {
                let short = id.split('-').next().unwrap_or("t");
                let n = names
                    .entry(Section::Tenants)
                    .or_default()
                    .fresh(&format!("tenant-{short}"));
                (n, subs.iter().next().cloned().unwrap_or_default())
            }
        };
        tenant_name.insert(id.clone(), name.clone());
        out.model.tenants.insert(
            name,
            OutTenant {
                id: id.clone(),
                subscription,
            },
        );
    }
    for &i in &written {
        let b = &inv.bastions[i];
        let tenant = tenant_name.get(&b.tenant).cloned().unwrap_or_default();
        out.model.bastions.insert(
            bastion_name.get(&i).cloned().unwrap_or_default(),
            OutBastion {
                subscription: Some(b.subscription.clone()),
                tenant,
                resource_group: b.resource_group.clone(),
                name: b.name.clone(),
                sku: b.sku.clone(),
                ip_connect: Some(b.ip_connect),
                dns_name: b.dns_name.clone(),
            },
        );
    }

    // vms and their profiles
    let mut vm_name: Vec<Option<String>> = vec![None; chosen.len()];
    let mut new_vms: Vec<usize> = Vec::new();
    for (k, (vm, _)) in chosen.iter().enumerate() {
        match old_vm_by_id.get(&vm.key) {
            Some(n) => vm_name[k] = Some(keep_name(Section::Vms, n)),
            None => new_vms.push(k),
        }
    }
    let items: Vec<(String, String, String)> = new_vms
        .iter()
        .map(|&k| {
            let vm = chosen[k].0;
            (vm.name.clone(), vm.resource_group.clone(), vm.key.clone())
        })
        .collect();
    let fresh = name_all(&items, names.entry(Section::Vms).or_default(), "vm");
    for (k, n) in new_vms.into_iter().zip(fresh) {
        vm_name[k] = Some(n);
    }
    let mut profile_name: Vec<Option<String>> = vec![None; chosen.len()];
    for (k, (vm, _)) in chosen.iter().enumerate() {
        let previous = old_vm_by_id
            .get(&vm.key)
            .and_then(|n| old_by_vm.get(n.as_str()).copied())
            .map(|(p, _)| p.clone());
        profile_name[k] = previous.map(|p| keep_name(Section::Profiles, &p));
    }
    // new profiles are named after their vm, in name order
    let mut unnamed: Vec<usize> = (0..chosen.len())
        .filter(|&k| profile_name[k].is_none())
        .collect();
    unnamed.sort_by(|&a, &b| vm_name[a].cmp(&vm_name[b]));
    for k in unnamed {
        let wanted = vm_name[k].clone().unwrap_or_default();
        profile_name[k] = Some(names.entry(Section::Profiles).or_default().fresh(&wanted));
    }
    for (k, (vm, i)) in chosen.iter().enumerate() {
        let vname = vm_name[k].clone().unwrap_or_default();
        let bastion = &inv.bastions[*i];
        let tenant = vm
            .tenant
            .as_ref()
            .filter(|t| **t != bastion.tenant)
            .and_then(|t| tenant_name.get(t).cloned());
        // the id as the existing file wrote it, when only its case changed
        let resource_id = old_vm_by_id
            .get(&vm.key)
            .and_then(|n| old.vms.get(*n))
            .map(|v| v.resource_id.clone())
            .filter(|id| *id != vm.id && clean(id))
            .unwrap_or_else(|| vm.id.clone());
        out.model.vms.insert(
            vname.clone(),
            OutVm {
                resource_id,
                os: vm.os,
                computer_name: vm.computer_name.clone(),
                tenant,
            },
        );
        out.model.profiles.insert(
            profile_name[k].clone().unwrap_or_default(),
            OutProfile {
                description: Some(format!("{} ({})", vm.name, vm.resource_group)),
                bastion: bastion_name.get(i).cloned().unwrap_or_default(),
                vm: vname,
                os: vm.os,
            },
        );
    }

    // the existing file's VMs outside the scope: kept with --merge, else dropped
    let read_now: BTreeSet<&str> = chosen.iter().map(|(v, _)| v.key.as_str()).collect();
    for (vname, vm) in &old.vms {
        let key = vm.resource_id.to_ascii_lowercase();
        if read_now.contains(key.as_str())
            || opts
                .scope
                .covers(&vm.resource_id, old.vm_tenant(vname, &old_by_vm).as_deref())
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
    out.clashes = clashes.into_iter().collect();
    Ok(out)
}
