//! The global name tables of a set: every file's entries, names defined twice, overrides of
//! nothing, `defaults` layers, `allow_programs` from the user config only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::load::*;
use crate::profile::diag::{self, Problem};
use crate::profile::yaml::{self};

/// Builds the global name tables; reports names defined twice and overrides of nothing.
pub fn assemble(files: Vec<SourceFile>, problems: &mut Vec<Problem>) -> ProfileSet {
    let mut set = ProfileSet {
        files,
        ..Default::default()
    };
    let mut allow = Vec::new();
    let mut default_fields: BTreeMap<String, usize> = BTreeMap::new();
    let mut spoiled: Vec<(Section, String, Problem)> = Vec::new();
    let mut blockers: Vec<Problem> = Vec::new();
    for kind in [FileKind::Shared, FileKind::Override, FileKind::User] {
        for (fi, file) in set.files.iter().enumerate().filter(|(_, f)| f.kind == kind) {
            let personal = kind != FileKind::Shared;
            if let Some((_, why)) = file.broken.iter().find(|(p, _)| *p == Part::Whole) {
                // nothing of it is used; what it seems to define is refused with its reason
                for part in &file.seems_to_define {
                    match part {
                        Part::Entry(section, name) => {
                            spoiled.push((*section, name.clone(), why.clone()))
                        }
                        Part::Defaults => blockers.push(why.clone()),
                        Part::Whole => {}
                    }
                }
                if personal {
                    blockers.push(why.clone());
                }
                continue;
            }
            // looked up once per entry: a map, so many broken entries stay linear
            let broken_parts: std::collections::BTreeMap<&Part, &Problem> =
                file.broken.iter().rev().map(|(p, w)| (p, w)).collect();
            let broken = |part: &Part| broken_parts.get(part).copied();
            for section in Section::ALL {
                let Some(map) = file.value.get(section.key()).and_then(Value::as_object) else {
                    continue;
                };
                if section == Section::Templates
                    && kind == FileKind::Override
                    && !is_override(&file.path)
                {
                    continue; // a user config that may not grant: said in a warning below
                }
                for name in map.keys() {
                    if !file.broken.is_empty()
                        && let Some(why) = broken(&Part::Entry(section, name.clone()))
                    {
                        spoiled.push((section, name.clone(), why.clone()));
                        continue;
                    }
                    let pointer = format!("/{}/{}", section.key(), yaml::escape_segment(name));
                    let table = set.sections.entry(section).or_default();
                    let exists = table.contains_key(name);
                    match (kind, exists) {
                        (FileKind::Shared, true) => {
                            let first = &table[name].defs[0];
                            let first_at = set.files[first.file].location(&first.pointer);
                            let p = file.problem(&pointer, true, format!("{} `{name}` is defined twice: here and at {first_at}", section.noun()))
                                .with_help(format!("{} names are global across all profile files; rename or remove one", section.noun()));
                            spoiled.push((section, name.clone(), p.clone()));
                            problems.push(p);
                            continue;
                        }
                        (FileKind::User, false) if section == Section::Templates => {}
                        (FileKind::Override | FileKind::User, false)
                            if section == Section::Profiles =>
                        {
                            // a new profile of one's own, unless it is a typo of a shared one
                            let known = table.keys().map(String::as_str);
                            if let Some(close) = diag::did_you_mean(name, known) {
                                let p = file
                                    .problem(&pointer, true, format!("this override adds a new profile `{name}`, which no shared file defines"))
                                    .with_help(format!("did you mean `{close}`? (to add a profile of your own, give it a name not this close to another)"));
                                spoiled.push((section, name.clone(), p.clone()));
                                problems.push(p);
                                continue;
                            }
                        }
                        (FileKind::Override | FileKind::User, false) => {
                            let known: Vec<&str> = table.keys().map(String::as_str).collect();
                            let mut p = file.problem(
                                &pointer,
                                true,
                                format!("this override changes {} `{name}`, which no shared file defines", section.noun()),
                            );
                            p = match diag::did_you_mean(name, known) {
                                Some(s) => p.with_help(format!("did you mean `{s}`?")),
                                None => p.with_help(format!(
                                    "a personal override may only change entries of the shared files, or add profiles; define the {} in a shared file",
                                    section.noun()
                                )),
                            };
                            problems.push(p);
                            continue;
                        }
                        _ => {}
                    }
                    table
                        .entry(name.clone())
                        .or_default()
                        .defs
                        .push(Def { file: fi, pointer });
                }
            }
            if let Some(why) = broken(&Part::Defaults) {
                blockers.push(why.clone());
            } else if let Some(d) = file.value.get("defaults").and_then(Value::as_object) {
                if kind == FileKind::Shared {
                    for field in d.keys() {
                        let ptr = format!("/defaults/{}", yaml::escape_segment(field));
                        if let Some(&other) = default_fields.get(field) {
                            let first_at = set.files[other].location(&ptr);
                            let p = file
                                .problem(
                                    &ptr,
                                    true,
                                    format!(
                                        "`defaults.{field}` is set twice: here and at {first_at}"
                                    ),
                                )
                                .with_help(
                                    "keep one `defaults` value per field across the shared files",
                                );
                            blockers.push(p.clone());
                            problems.push(p);
                        } else {
                            default_fields.insert(field.clone(), fi);
                        }
                    }
                }
                if d.contains_key("extends") {
                    problems.push(
                        file.problem(
                            "/defaults/extends",
                            true,
                            "`extends` has no meaning in `defaults`",
                        )
                        .with_help("move `extends` into the profiles that inherit"),
                    );
                }
                set.defaults.push(Def {
                    file: fi,
                    pointer: "/defaults".into(),
                });
            }
            if let Some(list) = file.value.get("allow_programs").and_then(Value::as_array) {
                let user = PathBuf::from("your user config (~/.config/bprof/local.yaml)");
                match kind {
                    FileKind::User => {
                        allow.extend(list.iter().filter_map(Value::as_str).map(str::to_string))
                    }
                    FileKind::Shared => problems.push(
                        file.problem("/allow_programs", true, "`allow_programs` in a shared file grants nothing: only your own user config file may allow programs")
                            .with_help(format!("move it to {}", user.display())),
                    ),
                    FileKind::Override if is_override(&file.path) => problems.push(
                        file.problem("/allow_programs", true, "`allow_programs` in a *.local.yaml grants nothing: anyone can commit such a file, so bprof treats it as shared")
                            .with_help(format!("move it to your user config file, {}", user.display())),
                    ),
                    FileKind::Override => {}
                }
            }
        }
    }
    set.allow_programs = allow;
    for (section, name, why) in spoiled {
        set.spoil(section, &name, why);
    }
    set.blockers = blockers;
    set.bad_chains = chains(&set);
    problems.extend(set.bad_chains.values().cloned());
    for file in &set.files {
        if file.kind == FileKind::Override
            && !is_override(&file.path)
            && let Err(why) = crate::profile::trust::may_grant(&file.path)
        {
            set.warnings.push(
                Problem::file_level(&file.display, format!("your user config grants nothing (its templates and allow_programs are ignored): {why}"))
                    .warning()
                    .with_help("bprof believes a user config only while it is yours alone and outside every git work tree"),
            );
        }
    }
    set
}
