//! References checked without resolving: what a spoiled profile lacks besides its own
//! problems, and how many references in the set name nothing (for `run`'s one line).

use serde_json::Value;

use crate::profile::diag::Problem;
use crate::profile::load::{ProfileSet, Section};

use super::*;

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
    // an entry that is no mapping (a field indented too little) is said as that alone
    if defs.iter().all(|(_, v)| !v.is_object()) {
        return Vec::new();
    }
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
