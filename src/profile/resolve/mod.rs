//! From the loaded set to one resolved profile: inheritance (built-in defaults < `defaults` <
//! the `extends` chain < the profile < its personal overrides), references, and every rule the
//! real az would enforce at run time, checked now.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::profile::diag::{self, Problem};
use crate::profile::load::{Def, ProfileSet, Section};
use crate::profile::raw::{AuthType, Client, LocalPort, Mode, RawProfile, Sku, VmOs};
use crate::profile::trust::Request;

mod build;
mod entries;
mod layers;
mod references;
mod requests;

use build::build;
use entries::*;
pub use entries::{Cache, bastion, check_vm_resource_id, validate_entries, vm};
use layers::*;
pub use references::{dangling_references, missing_required};
pub use requests::destination;
use requests::*;

/// A resolved tenant.
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub name: String,
    pub id: String,
    pub subscription: String,
    pub description: Option<String>,
    pub login: Vec<String>,
    /// Where `login` is written: the last layer that sets it.
    #[serde(skip)]
    pub login_at: Option<Def>,
}

/// A resolved bastion; `subscription` is always filled in.
#[derive(Debug, Clone, Serialize)]
pub struct Bastion {
    /// The bastion's name in the profile set.
    pub key: String,
    pub tenant: String,
    pub subscription: String,
    pub resource_group: String,
    /// The Azure resource name.
    pub name: String,
    pub sku: Option<Sku>,
    pub ip_connect: Option<bool>,
    pub dns_name: Option<String>,
}

/// A resolved VM; `resource_id` is filled in for resource-id and name targets.
#[derive(Debug, Clone, Serialize)]
pub struct Vm {
    pub key: String,
    pub tenant: String,
    pub subscription: String,
    pub resource_group: Option<String>,
    pub name: Option<String>,
    pub resource_id: String,
    pub ip: Option<String>,
    pub os: VmOs,
    pub computer_name: Option<String>,
}

/// Resolved .rdp settings (None: not written, the client's default applies).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RdpSettings {
    pub screen: Option<crate::profile::raw::Screen>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub multimon: Option<bool>,
    pub clipboard: Option<bool>,
    pub drives: Option<bool>,
    pub audio: Option<crate::profile::raw::Audio>,
    pub properties: BTreeMap<String, crate::profile::raw::RdpValue>,
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Origin {
    BuiltIn,
    At(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in default"),
            Origin::At(s) => f.write_str(s),
        }
    }
}

/// A profile with everything inherited, referenced and defaulted: what plans are made from.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub name: String,
    pub description: Option<String>,
    pub mode: Mode,
    pub enable_mfa: bool,
    pub configure: bool,
    pub disable_gateway: bool,
    pub auth_type: Option<AuthType>,
    pub username: Option<String>,
    pub ssh_key: Option<String>,
    pub resource_port: u16,
    pub local_port: LocalPort,
    pub timeout: Option<u32>,
    pub ssh_args: Vec<String>,
    pub extra_args: Vec<String>,
    pub client: Client,
    /// None: the profile does not say (`BPROF_TUNNEL_ENGINE`, else native).
    pub tunnel_engine: Option<crate::profile::raw::TunnelEngine>,
    pub template: Option<String>,
    pub rdp: RdpSettings,
    #[serde(skip)]
    pub tenant: Tenant,
    #[serde(skip)]
    pub bastion: Bastion,
    #[serde(skip)]
    pub vm: Vm,
    /// field path (`rdp.width`) -> where it was set (fields not here are built-in defaults).
    #[serde(skip)]
    pub origins: BTreeMap<String, Def>,
    /// Where the profile itself is defined (`file:line`).
    #[serde(skip)]
    pub defined_at: String,
    /// Capability-bearing content this profile uses from files that grant nothing, outside the
    /// allow-lists: it runs only with the person's consent (`bprof trust`).
    #[serde(skip)]
    pub requests: Vec<Request>,
}

/// Errors of this layer.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no profile named `{name}`")]
    UnknownProfile {
        name: String,
        suggestions: Vec<String>,
    },
    #[error("{} problem{} in profile `{name}`", .problems.len(), if .problems.len() == 1 { "" } else { "s" })]
    Invalid {
        name: String,
        problems: Vec<Problem>,
    },
    #[error("profile `{name}` cannot be used: it depends on {} with problems (above)", .needs.join(", "))]
    Unusable {
        name: String,
        /// What it depends on that is broken: "bastion `hub`", "`defaults`".
        needs: Vec<String>,
        /// The problems of those dependencies.
        because: Vec<Problem>,
        /// The profile's own problems, found all the same.
        own: Vec<Problem>,
    },
}

impl ResolveError {
    /// bprof's exit code for it: 66 for a profile that does not exist, 65 for one whose data
    /// has problems.
    pub fn exit_code(&self) -> i32 {
        match self {
            ResolveError::UnknownProfile { .. } => crate::exit::NO_INPUT,
            ResolveError::Invalid { .. } | ResolveError::Unusable { .. } => crate::exit::DATA,
        }
    }
}

/// A problem at the origin of `field` in a layered profile, or at the profile itself.
struct Ctx<'a> {
    set: &'a ProfileSet,
    profile_def: Def,
    origins: &'a BTreeMap<String, Option<Def>>,
    problems: Vec<Problem>,
    /// What the profile depends on that cannot be used, and why.
    needs: Needs,
}

/// Dependencies that cannot be used: what they are, and their problems.
#[derive(Debug, Default)]
pub struct Needs {
    pub what: Vec<String>,
    pub because: Vec<Problem>,
    /// Every check that found a dependency unusable, in order (to replay a cached result).
    log: Vec<(Section, String)>,
}

impl Needs {
    /// Notes `name` when the set cannot use it; true when it cannot.
    pub fn check(&mut self, set: &ProfileSet, section: Section, name: &str) -> bool {
        let Some(why) = set.unusable(section, name) else {
            return false;
        };
        self.log.push((section, name.to_string()));
        let what = format!("{} `{name}`", section.noun());
        if !self.what.contains(&what) {
            self.what.push(what);
            self.because.extend(why.iter().cloned());
        }
        true
    }
}

impl Ctx<'_> {
    fn at_field(&mut self, field: &str, key: bool, msg: String, help: Option<String>) {
        let p = match self.origins.get(field).cloned().flatten() {
            Some(def) => self.set.file(&def).problem(&def.pointer, key, msg),
            None => self
                .set
                .file(&self.profile_def)
                .problem(&self.profile_def.pointer, true, msg),
        };
        self.problems.push(match help {
            Some(h) => p.with_help(h),
            None => p,
        });
    }

    fn at_def(&mut self, def: &Def, key: bool, msg: String, help: Option<String>) {
        let p = self.set.file(def).problem(&def.pointer, key, msg);
        self.problems.push(match help {
            Some(h) => p.with_help(h),
            None => p,
        });
    }

    /// Whether `field` was set by `defaults` (then mode-specific flags are simply unused).
    fn set_by_defaults(&self, field: &str) -> bool {
        matches!(self.origins.get(field), Some(Some(d)) if d.pointer.starts_with("/defaults/"))
    }
}

impl Profile {
    /// Where the effective value of `field` (`mode`, `rdp.width`) was set.
    pub fn origin(&self, set: &ProfileSet, field: &str) -> Origin {
        match self.origins.get(field) {
            Some(def) => Origin::At(set.file(def).location(&def.pointer)),
            None => Origin::BuiltIn,
        }
    }
}

fn unknown_name_help(set: &ProfileSet, section: Section, name: &str) -> String {
    match diag::did_you_mean(name, set.names(section)) {
        Some(s) => format!("did you mean `{s}`?"),
        None => known_names(set, section),
    }
}

/// "known bastions: a, b" or, when the files read define none, where they would go.
fn known_names(set: &ProfileSet, section: Section) -> String {
    let names: Vec<&str> = set.names(section).take(8).collect();
    if names.is_empty() {
        format!(
            "the files read define no {}: define them under `{}:` (validating single files? names in other files of the set are not loaded)",
            section.key(),
            section.key()
        )
    } else {
        format!("known {}: {}", section.key(), names.join(", "))
    }
}

/// The names of profiles closest to `name` (for "unknown profile").
pub fn suggestions(set: &ProfileSet, name: &str) -> Vec<String> {
    diag::closest(name, set.names(Section::Profiles), 3)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// The `extends` chain of a profile, nearest last: `[root, ..., parent, profile]`. Cycles and
/// chains that are too deep are found once for the whole set (`ProfileSet::bad_chains`).
fn chain(set: &ProfileSet, name: &str, ctx: &mut Ctx) -> Vec<String> {
    let mut chain = vec![name.to_string()];
    if let Some(p) = set.bad_chains.get(name) {
        ctx.problems.push(p.clone());
        return chain;
    }
    let mut cur = name.to_string();
    while let Some((parent, layer)) = crate::profile::load::parent_layer(set, &cur) {
        if chain.len() > crate::profile::load::MAX_EXTENDS || chain.iter().any(|c| c == parent) {
            break; // reported in `bad_chains`
        }
        if ctx.needs.check(set, Section::Profiles, parent) {
            break;
        }
        if set.entry(Section::Profiles, parent).is_none() {
            let ext_def = Def {
                file: layer.file,
                pointer: format!("{}/extends", layer.pointer),
            };
            ctx.at_def(
                &ext_def,
                false,
                format!("profile `{cur}` extends `{parent}`, which is not a profile"),
                Some(unknown_name_help(set, Section::Profiles, parent)),
            );
            break;
        }
        chain.push(parent.to_string());
        cur = parent.to_string();
    }
    chain.reverse();
    chain
}

/// Resolves one profile; every problem of it at once.
pub fn resolve(set: &ProfileSet, name: &str) -> Result<Profile, ResolveError> {
    let mut needs = Needs::default();
    if !set.blockers.is_empty() {
        needs.what.push("`defaults` or a personal file".into());
        needs.because.extend(set.blockers.iter().cloned());
    }
    let own_broken = needs.check(set, Section::Profiles, name);
    if own_broken && set.blockers.is_empty() {
        // the profile's own definition has the problems, and every one of them is said at once
        let mut problems = needs.because;
        problems.extend(missing_required(set, name));
        diag::sort(&mut problems);
        return Err(ResolveError::Invalid {
            name: name.to_string(),
            problems,
        });
    }
    let Some(entry) = set.entry(Section::Profiles, name) else {
        if own_broken || !needs.what.is_empty() {
            return Err(ResolveError::Unusable {
                name: name.to_string(),
                needs: needs.what,
                because: needs.because,
                own: Vec::new(),
            });
        }
        return Err(ResolveError::UnknownProfile {
            name: name.to_string(),
            suggestions: suggestions(set, name),
        });
    };
    let profile_def = entry.defs[0].clone();
    let mut layered = Layered::default();
    for def in &set.defaults {
        layered.apply(set, def, &["extends"]);
    }
    let empty = BTreeMap::new();
    let mut pre = Ctx {
        set,
        profile_def: profile_def.clone(),
        origins: &empty,
        problems: Vec::new(),
        needs,
    };
    let chain = chain(set, name, &mut pre);
    let mut problems = pre.problems;
    let needs = pre.needs;
    if set.bad_chains.contains_key(name) {
        // a cycle or a chain too deep: its one problem, not what the missing layers lack
        return Err(ResolveError::Invalid {
            name: name.to_string(),
            problems,
        });
    }
    for link in &chain {
        if let Some(e) = set.entry(Section::Profiles, link) {
            for def in &e.defs {
                layered.apply(set, def, &["extends"]);
            }
        }
    }
    let mut ctx = Ctx {
        set,
        profile_def: profile_def.clone(),
        origins: &layered.origins,
        problems: Vec::new(),
        needs,
    };
    let value = Value::Object(std::mem::take(&mut layered.value));
    let raw: RawProfile = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            // every layer passed the schema, so this is unexpected; still a data problem
            ctx.at_def(
                &profile_def,
                true,
                format!("profile `{name}` cannot be read: {e}"),
                None,
            );
            problems.append(&mut ctx.problems);
            return Err(ResolveError::Invalid {
                name: name.to_string(),
                problems,
            });
        }
    };
    let profile = build(set, name, raw, &mut ctx);
    problems.append(&mut ctx.problems);
    diag::sort(&mut problems);
    if !ctx.needs.what.is_empty() {
        let mut because = ctx.needs.because;
        diag::sort(&mut because);
        return Err(ResolveError::Unusable {
            name: name.to_string(),
            needs: ctx.needs.what,
            because,
            own: problems,
        });
    }
    match profile {
        Some(mut p) if problems.is_empty() => {
            p.origins = std::mem::take(&mut layered.origins)
                .into_iter()
                .filter_map(|(k, d)| Some((k, d?)))
                .collect();
            Ok(p)
        }
        _ => Err(ResolveError::Invalid {
            name: name.to_string(),
            problems,
        }),
    }
}

/// `f` over chunks of `items`, on all cores when there are more than 1,000 (profiles are
/// resolved independently); the results in the items' order, so the outcome is the same as
/// one after the other.
pub fn in_chunks<'a, T: Sync, R: Send>(items: &'a [T], f: impl Fn(&'a [T]) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len() / 1000)
        .max(1);
    if threads == 1 {
        return vec![f(items)];
    }
    let chunk = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || f(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Rdp => "rdp",
        Mode::Ssh => "ssh",
        Mode::Tunnel => "tunnel",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_id_shape() {
        let ok = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm";
        assert!(check_vm_resource_id(ok).is_ok());
        assert!(
            check_vm_resource_id(&ok.to_lowercase()).is_ok(),
            "ARM ids are case-insensitive"
        );
        assert!(
            check_vm_resource_id(&ok.replace("22222222-", "x-"))
                .unwrap_err()
                .contains("not a GUID")
        );
        assert!(
            check_vm_resource_id(&ok.replace("Microsoft.Compute", "Microsoft.Network")).is_err()
        );
        assert!(check_vm_resource_id("/subscriptions/x").is_err());
        assert!(check_vm_resource_id(&format!("{ok}/extensions/e")).is_err());
    }

    #[test]
    fn guids() {
        assert!(crate::text::is_guid("00000000-0000-0000-0000-00000000abcd"));
        assert!(!crate::text::is_guid("00000000-0000-0000-0000-00000000abc"));
        assert!(!crate::text::is_guid(
            "0000000g-0000-0000-0000-00000000abcd"
        ));
    }
}
