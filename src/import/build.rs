//! Building the new file from what was read and the existing file, in named steps: each VM's
//! bastion ([`choose_bastions`]), the names (the existing file's kept by identity, new ones
//! made unique: [`Namer`]), the entries, and the existing file's VMs outside the scope
//! ([`keep_outside`](super::merge::keep_outside)).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::inventory::{clean, shown};
use super::merge::{ByVm, keep_outside};
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
    let ix = OldIndex::new(old);
    let chosen = choose_bastions(inv, old, &ix, forced, &mut out);
    let mut namer = Namer::new(old, &opts.reserved);
    // bastions: every usable one read (and the forced one)
    let written: Vec<usize> = (0..inv.bastions.len())
        .filter(|&i| inv.bastions[i].unusable.is_none())
        .collect();
    let bastions = name_bastions(inv, &written, &ix, &mut namer);
    let tenants = write_tenants(inv, &written, &chosen, old, &ix, &mut namer, &mut out.model);
    let mut given = Given {
        bastions,
        tenants,
        vms: Vec::new(),
        profiles: Vec::new(),
    };
    write_bastions(inv, &written, &given, &mut out.model);
    given.vms = name_vms(&chosen, &ix, &mut namer);
    given.profiles = name_profiles(&chosen, &ix, &given.vms, &mut namer);
    write_vms(inv, old, &chosen, &ix, &given, &mut out.model);
    keep_outside(old, &ix.by_vm, opts, &chosen, &mut out);
    out.clashes = namer.clashes.into_iter().collect();
    Ok(out)
}

/// The existing file's names, by identity.
struct OldIndex<'a> {
    /// A vm's resource id, lower case -> its name.
    vm_by_id: HashMap<String, &'a String>,
    /// A bastion's subscription, resource group and name, lower case -> its name.
    bastion_by_key: HashMap<(String, String, String), &'a String>,
    /// A vm's name -> its profile.
    by_vm: ByVm<'a>,
    /// A tenant's id -> its name.
    tenant_by_id: HashMap<&'a str, &'a String>,
}

impl<'a> OldIndex<'a> {
    fn new(old: &'a Model) -> OldIndex<'a> {
        OldIndex {
            vm_by_id: old
                .vms
                .iter()
                .map(|(n, v)| (v.resource_id.to_ascii_lowercase(), n))
                .collect(),
            bastion_by_key: old
                .bastions
                .iter()
                .filter_map(|(n, b)| Some((old.bastion_key(b)?, n)))
                .collect(),
            by_vm: old.profiles_by_vm(),
            tenant_by_id: old
                .tenants
                .iter()
                .map(|(n, t)| (t.id.as_str(), n))
                .collect(),
        }
    }

    /// The existing file's profile (its name and entry) of the VM with this lower-case id.
    fn profile_of(&self, vm_key: &str) -> Option<(&'a String, &'a OutProfile)> {
        self.vm_by_id
            .get(vm_key)
            .and_then(|n| self.by_vm.get(n.as_str()).copied())
    }
}

/// Each VM's bastion, in resource id order: the forced one; else the existing file's choice
/// while it still reaches the VM; else the nearest usable one. A VM none reaches goes to
/// `out.unreachable` with why; stopped VMs are counted.
fn choose_bastions<'a>(
    inv: &'a Inventory,
    old: &Model,
    ix: &OldIndex,
    forced: Option<usize>,
    out: &mut Outcome,
) -> Vec<(&'a AzVm, usize)> {
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
        let previous = ix
            .profile_of(&vm.key)
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
            None => out.unreachable.push(unreachable(inv, vm, &reaching)),
        }
    }
    chosen
}

/// The line for a VM no usable bastion reaches (`reaching`: those that reach it, nearest first).
fn unreachable(inv: &Inventory, vm: &AzVm, reaching: &[(u8, usize)]) -> String {
    let why = if inv.vnets_of(vm).is_empty() {
        "its network interfaces or their virtual network were not found in the scope read"
            .to_string()
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
    format!(
        "{} ({}, subscription {}): {why}",
        shown(&vm.name),
        shown(&vm.resource_group),
        vm.subscription
    )
}

/// The names of every section: those taken (the existing file's, and those other files beside
/// the output define), new ones made unique; and the kept names another file defines too.
struct Namer<'a> {
    names: BTreeMap<Section, Names>,
    reserved: &'a BTreeSet<(Section, String)>,
    clashes: BTreeSet<String>,
}

impl<'a> Namer<'a> {
    fn new(old: &Model, reserved: &'a BTreeSet<(Section, String)>) -> Namer<'a> {
        let mut names: BTreeMap<Section, Names> = BTreeMap::new();
        for (section, keys) in [
            (Section::Tenants, old.tenants.keys().collect::<Vec<_>>()),
            (Section::Bastions, old.bastions.keys().collect()),
            (Section::Vms, old.vms.keys().collect()),
            (Section::Profiles, old.profiles.keys().collect()),
        ] {
            names.entry(section).or_default().taken = keys.into_iter().cloned().collect();
        }
        for (section, n) in reserved {
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
        Namer {
            names,
            reserved,
            clashes: BTreeSet::new(),
        }
    }

    /// A section's names.
    fn section(&mut self, section: Section) -> &mut Names {
        self.names.entry(section).or_default()
    }

    /// The existing file's name `n`, kept (a clash when another file beside it defines it too).
    fn keep(&mut self, section: Section, n: &String) -> String {
        if self.reserved.contains(&(section, n.to_string())) {
            self.clashes.insert(format!("{} `{n}`", section.noun()));
        }
        n.clone()
    }
}

/// The names given to what is written.
struct Given {
    /// A bastion's index in the inventory -> its name.
    bastions: HashMap<usize, String>,
    /// A tenant's id -> its name.
    tenants: HashMap<String, String>,
    /// Each chosen VM's vm name and profile name (by its index in the chosen list).
    vms: Vec<Option<String>>,
    profiles: Vec<Option<String>>,
}

/// The names of the bastions written: the existing file's by identity, new ones from their
/// Azure names.
fn name_bastions(
    inv: &Inventory,
    written: &[usize],
    ix: &OldIndex,
    namer: &mut Namer,
) -> HashMap<usize, String> {
    let mut bastion_name: HashMap<usize, String> = HashMap::new();
    let mut new_bastions: Vec<usize> = Vec::new();
    for &i in written {
        match ix.bastion_by_key.get(&inv.bastions[i].identity()) {
            Some(n) => {
                bastion_name.insert(i, namer.keep(Section::Bastions, n));
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
    let fresh = name_all(&items, namer.section(Section::Bastions), "bastion");
    for (i, n) in new_bastions.into_iter().zip(fresh) {
        bastion_name.insert(i, n);
    }
    bastion_name
}

/// The tenant entries: those of the bastions written and of the VMs; a new tenant's default
/// subscription is the smallest id among theirs. Returns each tenant id's name.
fn write_tenants(
    inv: &Inventory,
    written: &[usize],
    chosen: &[(&AzVm, usize)],
    old: &Model,
    ix: &OldIndex,
    namer: &mut Namer,
    model: &mut Model,
) -> HashMap<String, String> {
    let mut tenant_subs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for &i in written {
        let b = &inv.bastions[i];
        tenant_subs
            .entry(b.tenant.clone())
            .or_default()
            .insert(b.subscription.clone());
    }
    for (vm, _) in chosen {
        if let Some(t) = &vm.tenant {
            tenant_subs
                .entry(t.clone())
                .or_default()
                .insert(vm.subscription.clone());
        }
    }
    let mut tenant_name: HashMap<String, String> = HashMap::new();
    for (id, subs) in &tenant_subs {
        let (name, subscription) = match ix.tenant_by_id.get(id.as_str()) {
            Some(n) => {
                let previous = &old.tenants[*n].subscription;
                (namer.keep(Section::Tenants, n), previous.clone())
            }
            None => {
                let short = id.split('-').next().unwrap_or("t");
                let n = namer
                    .section(Section::Tenants)
                    .fresh(&format!("tenant-{short}"));
                (n, subs.iter().next().cloned().unwrap_or_default())
            }
        };
        tenant_name.insert(id.clone(), name.clone());
        model.tenants.insert(
            name,
            OutTenant {
                id: id.clone(),
                subscription,
            },
        );
    }
    tenant_name
}

/// The bastion entries.
fn write_bastions(inv: &Inventory, written: &[usize], given: &Given, model: &mut Model) {
    for &i in written {
        let b = &inv.bastions[i];
        let tenant = given.tenants.get(&b.tenant).cloned().unwrap_or_default();
        model.bastions.insert(
            given.bastions.get(&i).cloned().unwrap_or_default(),
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
}

/// The vm names of the chosen VMs: the existing file's by resource id, new ones from their
/// Azure names.
fn name_vms(chosen: &[(&AzVm, usize)], ix: &OldIndex, namer: &mut Namer) -> Vec<Option<String>> {
    let mut vm_name: Vec<Option<String>> = vec![None; chosen.len()];
    let mut new_vms: Vec<usize> = Vec::new();
    for (k, (vm, _)) in chosen.iter().enumerate() {
        match ix.vm_by_id.get(&vm.key) {
            Some(n) => vm_name[k] = Some(namer.keep(Section::Vms, n)),
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
    let fresh = name_all(&items, namer.section(Section::Vms), "vm");
    for (k, n) in new_vms.into_iter().zip(fresh) {
        vm_name[k] = Some(n);
    }
    vm_name
}

/// The profile names of the chosen VMs: the existing file's, else (in name order) their vm's.
fn name_profiles(
    chosen: &[(&AzVm, usize)],
    ix: &OldIndex,
    vm_name: &[Option<String>],
    namer: &mut Namer,
) -> Vec<Option<String>> {
    let mut profile_name: Vec<Option<String>> = vec![None; chosen.len()];
    for (k, (vm, _)) in chosen.iter().enumerate() {
        let previous = ix.profile_of(&vm.key).map(|(p, _)| p.clone());
        profile_name[k] = previous.map(|p| namer.keep(Section::Profiles, &p));
    }
    // new profiles are named after their vm, in name order
    let mut unnamed: Vec<usize> = (0..chosen.len())
        .filter(|&k| profile_name[k].is_none())
        .collect();
    unnamed.sort_by(|&a, &b| vm_name[a].cmp(&vm_name[b]));
    for k in unnamed {
        let wanted = vm_name[k].clone().unwrap_or_default();
        profile_name[k] = Some(namer.section(Section::Profiles).fresh(&wanted));
    }
    profile_name
}

/// The vm entries and their profiles.
fn write_vms(
    inv: &Inventory,
    old: &Model,
    chosen: &[(&AzVm, usize)],
    ix: &OldIndex,
    given: &Given,
    model: &mut Model,
) {
    for (k, (vm, i)) in chosen.iter().enumerate() {
        let vname = given.vms[k].clone().unwrap_or_default();
        let bastion = &inv.bastions[*i];
        let tenant = vm
            .tenant
            .as_ref()
            .filter(|t| **t != bastion.tenant)
            .and_then(|t| given.tenants.get(t).cloned());
        // the id as the existing file wrote it, when only its case changed
        let resource_id = ix
            .vm_by_id
            .get(&vm.key)
            .and_then(|n| old.vms.get(*n))
            .map(|v| v.resource_id.clone())
            .filter(|id| *id != vm.id && clean(id))
            .unwrap_or_else(|| vm.id.clone());
        model.vms.insert(
            vname.clone(),
            OutVm {
                resource_id,
                os: vm.os,
                computer_name: vm.computer_name.clone(),
                tenant,
            },
        );
        model.profiles.insert(
            given.profiles[k].clone().unwrap_or_default(),
            OutProfile {
                description: Some(format!("{} ({})", vm.name, vm.resource_group)),
                bastion: given.bastions.get(i).cloned().unwrap_or_default(),
                vm: vname,
                os: vm.os,
            },
        );
    }
}
