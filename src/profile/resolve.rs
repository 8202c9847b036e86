//! From the loaded set to one resolved profile: inheritance (built-in defaults < `defaults` <
//! the `extends` chain < the profile < its personal overrides), references, and every rule the
//! real az would enforce at run time, checked now.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::profile::allow;
use crate::profile::diag::{self, Problem};
use crate::profile::load::{Def, ProfileSet, Section};
use crate::profile::raw::{
    AuthType, Client, LocalPort, Mode, RawBastion, RawProfile, RawRdp, RawTenant, RawVm, Sku, VmOs,
};
use crate::profile::trust::{Destination, Request};

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

/// The fields and origins of a merge of layers.
#[derive(Debug, Default)]
struct Layered {
    value: Map<String, Value>,
    /// field path -> (file, pointer) of the layer that set it, or None for built-in.
    origins: BTreeMap<String, Option<Def>>,
}

impl Layered {
    fn apply(&mut self, set: &ProfileSet, def: &Def, skip: &[&str]) {
        if let Some(Value::Object(obj)) = set.value(def) {
            let mut at = Cursor {
                file: def.file,
                pointer: def.pointer.clone(),
                path: String::new(),
            };
            merge(&mut self.value, &mut self.origins, obj, &mut at, skip);
        }
    }
}

/// Where a merge is: the layer's file, the JSON pointer in it, and the field path (`rdp.width`).
/// Both strings grow and shrink as the merge descends; only the recorded origins allocate.
struct Cursor {
    file: usize,
    pointer: String,
    path: String,
}

impl Cursor {
    fn enter(&mut self, key: &str) -> (usize, usize) {
        let lens = (self.pointer.len(), self.path.len());
        self.pointer.push('/');
        crate::profile::yaml::push_segment(&mut self.pointer, key);
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(key);
        lens
    }

    fn leave(&mut self, (pointer, path): (usize, usize)) {
        self.pointer.truncate(pointer);
        self.path.truncate(path);
    }

    /// Notes the cursor's place as the origin of its field.
    fn record(&self, origins: &mut BTreeMap<String, Option<Def>>) {
        match origins.get_mut(self.path.as_str()) {
            Some(Some(def)) => {
                def.file = self.file;
                def.pointer.clone_from(&self.pointer);
            }
            Some(slot) => {
                *slot = Some(Def {
                    file: self.file,
                    pointer: self.pointer.clone(),
                })
            }
            None => {
                origins.insert(
                    self.path.clone(),
                    Some(Def {
                        file: self.file,
                        pointer: self.pointer.clone(),
                    }),
                );
            }
        }
    }
}

fn merge(
    into: &mut Map<String, Value>,
    origins: &mut BTreeMap<String, Option<Def>>,
    from: &Map<String, Value>,
    at: &mut Cursor,
    skip: &[&str],
) {
    for (k, v) in from {
        if at.path.is_empty() && skip.contains(&k.as_str()) {
            continue;
        }
        let lens = at.enter(k);
        match (into.get_mut(k), v) {
            (Some(Value::Object(existing)), Value::Object(new)) => {
                merge(existing, origins, new, at, &[]);
            }
            (Some(slot), _) => {
                *slot = v.clone();
                record_origins(origins, v, at);
                at.record(origins);
            }
            (None, _) => {
                into.insert(k.clone(), v.clone());
                record_origins(origins, v, at);
                at.record(origins);
            }
        }
        at.leave(lens);
    }
}

/// Notes the layer as the origin of every field below `v` (a mapping set as a whole).
fn record_origins(origins: &mut BTreeMap<String, Option<Def>>, v: &Value, at: &mut Cursor) {
    if let Value::Object(new) = v {
        for (sub, item) in new {
            let lens = at.enter(sub);
            record_origins(origins, item, at);
            at.record(origins);
            at.leave(lens);
        }
    }
}

/// Merged layers of a plain entry (tenant, bastion, vm): shared definition + overrides.
fn entry_value<T: serde::de::DeserializeOwned>(
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
struct Memo<T> {
    out: Option<T>,
    problems: Vec<Problem>,
    unusable: Vec<(Section, String)>,
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
type VmKey = (String, Option<String>);

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

/// [`bastion`], once per set.
fn bastion_cached(
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
fn vm_cached(
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

/// The required fields (`bastion`, `vm`) that a profile spoiled by other problems lacks
/// everywhere it could get them (every file's definition of it, `defaults`): said beside those
/// problems, so that one entry's problems come at once. A profile that `extends` another may
/// get them there: not judged.
pub fn missing_required(set: &ProfileSet, name: &str) -> Vec<Problem> {
    let defs: Vec<(&crate::profile::load::SourceFile, &Value)> = set
        .files
        .iter()
        .filter_map(|f| Some((f, f.value.get("profiles")?.get(name)?)))
        .collect();
    let Some((first, _)) = defs.first() else {
        return Vec::new();
    };
    let has = |field: &str| {
        defs.iter().any(|(_, v)| v.get(field).is_some())
            || set
                .defaults
                .iter()
                .any(|d| set.value(d).and_then(|v| v.get(field)).is_some())
    };
    if has("extends") {
        return Vec::new();
    }
    let mut pointer = String::from("/profiles/");
    crate::profile::yaml::push_segment(&mut pointer, name);
    ["bastion", "vm"]
        .into_iter()
        .filter(|field| !has(field))
        .map(|field| {
            first
                .problem(&pointer, true, format!("profile `{name}` has no `{field}`"))
                .with_help(format!(
                    "add `{field}: NAME` to the profile, or to `defaults`; {}",
                    known_names(
                        set,
                        if field == "vm" {
                            Section::Vms
                        } else {
                            Section::Bastions
                        }
                    )
                ))
        })
        .collect()
}

/// How many references in the set name nothing (`bastion`, `vm` and `template` of profiles and
/// `defaults`, `tenant` of bastions and vms): a scan of what is written, without resolving, so
/// that `run` of a healthy profile can say in one line that something elsewhere is broken.
/// Names of entries spoiled by their own problems are counted there, not here.
pub fn dangling_references(set: &ProfileSet) -> usize {
    let defined = |section: Section, name: &str| {
        set.entry(section, name).is_some()
            || set.broken.contains_key(&(section, name.to_string()))
            || (section == Section::Templates
                && crate::profile::raw::BUILTIN_TEMPLATES.contains(&name))
    };
    let refs = |value: Option<&Value>, fields: &[(&str, Section)]| {
        fields
            .iter()
            .filter(|(field, section)| {
                value
                    .and_then(|v| v.get(*field))
                    .and_then(Value::as_str)
                    .is_some_and(|name| !defined(*section, name))
            })
            .count()
    };
    let of_profiles = [
        ("bastion", Section::Bastions),
        ("vm", Section::Vms),
        ("template", Section::Templates),
    ];
    let mut n = 0;
    for (section, fields) in [
        (Section::Profiles, &of_profiles[..]),
        (Section::Bastions, &[("tenant", Section::Tenants)][..]),
        (Section::Vms, &[("tenant", Section::Tenants)][..]),
    ] {
        for name in set.names(section) {
            if let Some(e) = set.entry(section, name) {
                n += e
                    .defs
                    .iter()
                    .map(|d| refs(set.value(d), fields))
                    .sum::<usize>();
            }
        }
    }
    n + set
        .defaults
        .iter()
        .map(|d| refs(set.value(d), &of_profiles))
        .sum::<usize>()
}

fn tenant(set: &ProfileSet, name: &str) -> Option<(Tenant, Def)> {
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
    let guid = regex_guid;
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

/// Whether `s` is a GUID (8-4-4-4-12 hex digits).
pub fn regex_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
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

/// Checks `rdp.properties`: each value's type matches the key's `:s`, `:i` or `:b`.
fn check_rdp_properties(rdp: &RawRdp, ctx: &mut Ctx) {
    for (key, value) in rdp.properties.iter().flatten() {
        let ty = key.rsplit(':').next().unwrap_or("");
        let field = format!("rdp.properties.{key}");
        let bad = match (ty, value) {
            ("i", crate::profile::raw::RdpValue::Int(_)) => None,
            ("i", crate::profile::raw::RdpValue::Text(t)) if t.trim().parse::<i64>().is_ok() => {
                None
            }
            ("i", _) => Some("an integer"),
            ("s", crate::profile::raw::RdpValue::Text(t)) if t.contains(['\n', '\r']) => {
                Some("a string on one line")
            }
            ("s", _) => None,
            ("b", crate::profile::raw::RdpValue::Text(t))
                if t.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                None
            }
            ("b", _) => Some("hex digits (binary)"),
            _ => None,
        };
        if let Some(what) = bad {
            ctx.at_field(
                &field,
                false,
                format!("the .rdp property `{key}` must be {what}"),
                Some(format!(
                    "`:{ty}` sets the property's type; fix the value or the type"
                )),
            );
        }
        // matched the way clients match names: any case, spaces normalised
        let normal = allow::rdp_key(key);
        let name = normal.rsplit_once(':').map(|(n, _)| n).unwrap_or(&normal);
        if name.starts_with("password") || name.contains("token") || name.contains("secret") {
            ctx.at_field(
                &field,
                true,
                format!("the .rdp property `{name}` would store a secret"),
                Some("bprof never writes passwords or tokens into .rdp files; remove it".into()),
            );
        }
    }
}

const AZ_AAD_RULE: &str = "AAD login is not supported for Disable Gateway & IP Connect scenarios.";
const AZ_SKU_RULE: &str =
    "Bastion Host SKU must be Standard or Premium and Native Client must be enabled.";
const AZ_IP_PORT_RULE: &str =
    "Custom ports are not allowed. Allowed ports for Tunnel with IP connect is 22, 3389.";
const AZ_IP_CONNECT_RULE: &str = "`--target-ip-address` flag cannot be used when IpConnect is not enabled. Please use --target-resource-id flag instead.";

/// A required reference of profile `name` (`bastion`, `vm`): reported when missing or
/// unknown; the name when it is defined.
fn reference<'r>(
    ctx: &mut Ctx,
    name: &str,
    value: Option<&'r str>,
    section: Section,
    where_else: &str,
) -> Option<&'r str> {
    let set = ctx.set;
    let field = section.noun();
    match value {
        None => {
            let help = format!(
                "add `{field}: NAME` to the profile, {where_else}; {}",
                known_names(set, section)
            );
            ctx.at_field(
                field,
                true,
                format!("profile `{name}` has no `{field}`"),
                Some(help),
            );
            None
        }
        Some(v) if ctx.needs.check(set, section, v) => None,
        Some(v) if set.entry(section, v).is_none() => {
            // no profile name in the message: a value set in `defaults` or a parent is one
            // problem, however many profiles inherit it
            let msg = format!("{field} `{v}` is not defined");
            ctx.at_field(field, false, msg, Some(unknown_name_help(set, section, v)));
            None
        }
        Some(v) => Some(v),
    }
}

fn build(set: &ProfileSet, name: &str, raw: RawProfile, ctx: &mut Ctx) -> Option<Profile> {
    let mode = raw.mode.unwrap_or(Mode::Rdp);
    let bastion_tenant = reference(
        ctx,
        name,
        raw.bastion.as_deref(),
        Section::Bastions,
        "its `extends` parent or `defaults`",
    )
    .and_then(|b| bastion_cached(set, b, &mut ctx.problems, &mut ctx.needs));
    let vm_res = reference(
        ctx,
        name,
        raw.vm.as_deref(),
        Section::Vms,
        "or its `extends` parent",
    )
    .and_then(|v| {
        let default_tenant = bastion_tenant.as_ref().map(|(b, _)| b.tenant.clone());
        vm_cached(
            set,
            v,
            default_tenant.as_deref(),
            &mut ctx.problems,
            &mut ctx.needs,
        )
    });
    if let Some(t) = &raw.template
        && !ctx.needs.check(set, Section::Templates, t)
        && set.entry(Section::Templates, t).is_none()
        && !crate::profile::raw::BUILTIN_TEMPLATES.contains(&t.as_str())
    {
        let mut candidates: Vec<&str> = set.names(Section::Templates).collect();
        candidates.extend(crate::profile::raw::BUILTIN_TEMPLATES);
        let help = match diag::did_you_mean(t, candidates.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("known templates: {}", candidates.join(", ")),
        };
        ctx.at_field(
            "template",
            false,
            format!("template `{t}` is not defined"),
            Some(help),
        );
    }

    // mode-specific fields
    for flag in ["enable_mfa", "configure", "disable_gateway"] {
        let on = match flag {
            "enable_mfa" => raw.enable_mfa,
            "configure" => raw.configure,
            _ => raw.disable_gateway,
        } == Some(true);
        if on && mode != Mode::Rdp && !ctx.set_by_defaults(flag) {
            ctx.at_field(flag, true, format!("`{flag}` is an `az network bastion rdp` option, but profile `{name}` has mode {}", mode_name(mode)), Some(format!("remove `{flag}`, or set `mode: rdp`")));
        }
    }
    let ip_target = vm_res.as_ref().is_some_and(|v| v.ip.is_some());
    match mode {
        Mode::Ssh => match raw.auth_type {
            None => ctx.at_field("mode", true, format!("ssh profile `{name}` has no `auth_type`"), Some("add `auth_type: aad`, `password` or `ssh-key` (az requires --auth-type for ssh)".into())),
            Some(AuthType::Password) if raw.username.is_none() => ctx.at_field("auth_type", false, "`auth_type: password` needs `username` (az: \"Please enter username with --username.\")".into(), Some("add `username:`; a personal user name belongs in your *.local.yaml override".into())),
            Some(AuthType::SshKey) if raw.username.is_none() || raw.ssh_key.is_none() => ctx.at_field("auth_type", false, "`auth_type: ssh-key` needs `username` and `ssh_key` (az: \"Please enter username --username and ssh cert location --ssh-key.\")".into(), Some("add `username:` and `ssh_key:` (the private key's path)".into())),
            _ => {}
        },
        Mode::Rdp => {
            if raw.auth_type == Some(AuthType::SshKey) {
                ctx.at_field("auth_type", false, "`auth_type: ssh-key` is for ssh; rdp takes `aad` or `password`".into(), None);
            }
            if raw.auth_type == Some(AuthType::Aad) && raw.disable_gateway == Some(true) {
                ctx.at_field("disable_gateway", false, format!("Entra sign-in (`auth_type: aad`) does not work with `disable_gateway: true` (az: \"{AZ_AAD_RULE}\")"), Some("remove `disable_gateway`, or use `auth_type: password`".into()));
            }
            if raw.auth_type == Some(AuthType::Aad) && ip_target {
                ctx.at_field("auth_type", false, format!("Entra sign-in (`auth_type: aad`) does not work with a vm given by `ip` (az: \"{AZ_AAD_RULE}\")"), Some("give the vm by `resource_id` or `name`, or use `auth_type: password`".into()));
            }
        }
        Mode::Tunnel => {
            if raw.resource_port.is_none() {
                ctx.at_field("mode", true, format!("tunnel profile `{name}` has no `resource_port`"), Some("add `resource_port:` (the VM's port to reach, like 5432); az requires it for tunnels".into()));
            }
        }
    }
    let resource_port = raw
        .resource_port
        .unwrap_or(if mode == Mode::Ssh { 22 } else { 3389 });
    if ip_target && ![22, 3389].contains(&resource_port) {
        ctx.at_field("resource_port", false, format!("a vm given by `ip` can only be reached on port 22 or 3389, not {resource_port} (az: \"{AZ_IP_PORT_RULE}\")"), Some("use port 22 or 3389, or give the vm by `resource_id` or `name`".into()));
    }
    if let Some((b, _)) = &bastion_tenant {
        if matches!(b.sku, Some(Sku::Basic | Sku::Developer)) {
            let def = set
                .entry(Section::Bastions, &b.key)
                .map(|e| e.defs[0].clone());
            if let Some(def) = def {
                ctx.at_def(&Def { file: def.file, pointer: format!("{}/sku", def.pointer) }, false, format!("bastion `{}` has SKU {:?}, which has no native client (az: \"{AZ_SKU_RULE}\")", b.key, b.sku.map(|s| format!("{s:?}").to_lowercase()).unwrap_or_default()), Some("bprof connects with the native client: upgrade the bastion to standard or premium and enable native client support".into()));
            }
        }
        if ip_target && b.ip_connect == Some(false) {
            ctx.at_field("vm", false, format!("vm is given by `ip`, but bastion `{}` has `ip_connect: false` (az: \"{AZ_IP_CONNECT_RULE}\")", b.key), Some("give the vm by `resource_id` or `name`, or enable IP-based connection on the bastion".into()));
        }
    }
    if let Some(rdp) = &raw.rdp {
        check_rdp_properties(rdp, ctx);
    }
    for (field, value) in [("username", &raw.username), ("ssh_key", &raw.ssh_key)] {
        if let Some(v) = value
            && v.starts_with('-')
        {
            ctx.at_field(
                field,
                false,
                format!("`{field}` begins with `-`: az and ssh would read \"{v}\" as an option"),
                Some(format!("fix the value of `{field}`")),
            );
        }
    }
    let (bastion, tenant) = bastion_tenant?;
    let vm = vm_res?;
    if !ctx.problems.is_empty() {
        return None;
    }
    let raw_lists = Lists {
        ssh_args: raw.ssh_args.clone(),
        extra_args: raw.extra_args.clone(),
        properties: raw
            .rdp
            .as_ref()
            .and_then(|r| r.properties.clone())
            .unwrap_or_default(),
        drives: raw.rdp.as_ref().and_then(|r| r.drives),
    };
    let whom = Whom {
        profile: name,
        destination: destination(&tenant, &bastion, &vm, resource_port),
    };
    let asked = requests(set, ctx.origins, &raw_lists, &tenant, &whom);
    let rdp = raw.rdp.unwrap_or_default();
    // filled in by `resolve`, which owns the layers
    let origins = BTreeMap::new();
    Some(Profile {
        name: name.to_string(),
        description: raw.description,
        mode,
        enable_mfa: raw.enable_mfa.unwrap_or(false) && mode == Mode::Rdp,
        configure: raw.configure.unwrap_or(false) && mode == Mode::Rdp,
        disable_gateway: raw.disable_gateway.unwrap_or(false) && mode == Mode::Rdp,
        auth_type: raw.auth_type,
        username: raw.username,
        ssh_key: raw
            .ssh_key
            .map(|k| crate::profile::load::expand_tilde(&k, set.home.as_deref())),
        resource_port,
        local_port: raw
            .local_port
            .unwrap_or(LocalPort::Auto(crate::profile::raw::AutoWord::Auto)),
        timeout: raw.timeout,
        ssh_args: raw.ssh_args.unwrap_or_default(),
        extra_args: raw.extra_args.unwrap_or_default(),
        client: raw.client.unwrap_or(Client::Auto),
        tunnel_engine: raw.tunnel_engine,
        template: raw.template,
        rdp: RdpSettings {
            screen: rdp.screen,
            width: rdp.width,
            height: rdp.height,
            multimon: rdp.multimon,
            clipboard: rdp.clipboard,
            drives: rdp.drives,
            audio: rdp.audio,
            properties: rdp.properties.unwrap_or_default(),
        },
        tenant,
        bastion,
        vm,
        origins,
        defined_at: set
            .file(&ctx.profile_def)
            .location(&ctx.profile_def.pointer),
        requests: asked,
    })
}

/// The lists of a profile that reach a process or an .rdp file, as written.
struct Lists {
    ssh_args: Option<Vec<String>>,
    extra_args: Option<Vec<String>>,
    properties: BTreeMap<String, crate::profile::raw::RdpValue>,
    drives: Option<bool>,
}

/// The content at `field`'s origin, when it comes from a file that grants nothing.
fn untrusted<'s>(
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
struct Whom<'a> {
    profile: &'a str,
    destination: Destination,
}

fn request(
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
type ListCheck = fn(&[String]) -> Vec<allow::Outside>;

/// Capability-bearing values from files that grant nothing, outside their allow-lists.
fn requests(
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
        assert!(regex_guid("00000000-0000-0000-0000-00000000abcd"));
        assert!(!regex_guid("00000000-0000-0000-0000-00000000abc"));
        assert!(!regex_guid("0000000g-0000-0000-0000-00000000abcd"));
    }
}
