//! The global name tables of a set: every file's entries, names defined twice, overrides of
//! nothing, `defaults` layers, `allow_programs` from the user config only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::load::*;
use crate::profile::diag::{self, Problem};
use crate::profile::yaml::{self};

/// What the files of a set add up to besides the name tables.
#[derive(Default)]
struct Tally {
    /// `allow_programs` of the user config.
    allow: Vec<String>,
    /// Each `defaults` field of the shared files, with the file that sets it.
    default_fields: BTreeMap<String, usize>,
    /// Entries refused with why (a broken part, a name defined twice).
    spoiled: Vec<(Section, String, Problem)>,
    /// Problems that refuse every profile.
    blockers: Vec<Problem>,
}

/// Builds the global name tables; reports names defined twice and overrides of nothing.
pub fn assemble(files: Vec<SourceFile>, problems: &mut Vec<Problem>) -> ProfileSet {
    let mut set = ProfileSet {
        files,
        ..Default::default()
    };
    let mut tally = Tally::default();
    for kind in [FileKind::Shared, FileKind::Override, FileKind::User] {
        for fi in (0..set.files.len()).filter(|&i| set.files[i].kind == kind) {
            let file = &set.files[fi];
            if whole_is_broken(file, &mut tally) {
                continue;
            }
            // looked up once per entry: a map, so many broken entries stay linear
            let broken: BTreeMap<&Part, &Problem> =
                file.broken.iter().rev().map(|(p, w)| (p, w)).collect();
            let (files, sections) = (&set.files, &mut set.sections);
            name_entries(files, fi, sections, &broken, &mut tally, problems);
            defaults_of(files, fi, &mut set.defaults, &broken, &mut tally, problems);
            allow_programs(file, &mut tally, problems);
        }
    }
    set.allow_programs = tally.allow;
    for (section, name, why) in tally.spoiled {
        set.spoil(section, &name, why);
    }
    set.blockers = tally.blockers;
    set.bad_chains = chains(&set);
    problems.extend(set.bad_chains.values().cloned());
    user_config_warnings(&mut set);
    set
}

/// A file broken as a whole: nothing of it is used, and what it seems to define is refused
/// with its reason (a personal one refuses everything: its overrides would be missing).
fn whole_is_broken(file: &SourceFile, tally: &mut Tally) -> bool {
    let Some((_, why)) = file.broken.iter().find(|(p, _)| *p == Part::Whole) else {
        return false;
    };
    for part in &file.seems_to_define {
        match part {
            Part::Entry(section, name) => tally.spoiled.push((*section, name.clone(), why.clone())),
            Part::Defaults => tally.blockers.push(why.clone()),
            Part::Whole => {}
        }
    }
    if file.kind != FileKind::Shared {
        tally.blockers.push(why.clone());
    }
    true
}

/// The file's entries into the name tables: names defined twice, overrides of nothing and
/// near-miss profiles of one's own are said (and refused).
fn name_entries(
    files: &[SourceFile],
    fi: usize,
    sections: &mut BTreeMap<Section, BTreeMap<String, Entry>>,
    broken: &BTreeMap<&Part, &Problem>,
    tally: &mut Tally,
    problems: &mut Vec<Problem>,
) {
    let file = &files[fi];
    let kind = file.kind;
    for section in Section::ALL {
        let Some(map) = file.value.get(section.key()).and_then(Value::as_object) else {
            continue;
        };
        if section == Section::Templates && kind == FileKind::Override && !is_override(&file.path) {
            continue; // a user config that may not grant: said in a warning below
        }
        for name in map.keys() {
            if !broken.is_empty()
                && let Some(why) = broken.get(&Part::Entry(section, name.clone()))
            {
                tally.spoiled.push((section, name.clone(), (*why).clone()));
                continue;
            }
            let pointer = format!("/{}/{}", section.key(), yaml::escape_segment(name));
            let table = sections.entry(section).or_default();
            if let Some(p) = entry_refusal(files, file, section, name, &pointer, table, tally) {
                problems.push(p);
                continue;
            }
            table
                .entry(name.clone())
                .or_default()
                .defs
                .push(Def { file: fi, pointer });
        }
    }
}

/// Why an entry of `file` does not go into its table, if it does not (said as a problem;
/// the entry may be spoiled too).
fn entry_refusal(
    files: &[SourceFile],
    file: &SourceFile,
    section: Section,
    name: &str,
    pointer: &str,
    table: &BTreeMap<String, Entry>,
    tally: &mut Tally,
) -> Option<Problem> {
    let kind = file.kind;
    let exists = table.contains_key(name);
    let pointer = pointer.to_string();
    match (kind, exists) {
        (FileKind::Shared, true) => {
            let first = &table[name].defs[0];
            let first_at = files[first.file].location(&first.pointer);
            let p = file
                .problem(
                    &pointer,
                    true,
                    format!(
                        "{} `{name}` is defined twice: here and at {first_at}",
                        section.noun()
                    ),
                )
                .with_help(format!(
                    "{} names are global across all profile files; rename or remove one",
                    section.noun()
                ));
            tally.spoiled.push((section, name.to_string(), p.clone()));
            return Some(p);
        }
        (FileKind::User, false) if section == Section::Templates => {}
        (FileKind::Override | FileKind::User, false) if section == Section::Profiles => {
            // a new profile of one's own, unless it is a typo of a shared one
            let known = table.keys().map(String::as_str);
            if let Some(close) = diag::did_you_mean(name, known) {
                let p = file
                        .problem(&pointer, true, format!("this override adds a new profile `{name}`, which no shared file defines"))
                        .with_help(format!("did you mean `{close}`? (to add a profile of your own, give it a name not this close to another)"));
                tally.spoiled.push((section, name.to_string(), p.clone()));
                return Some(p);
            }
        }
        (FileKind::Override | FileKind::User, false) => {
            let known: Vec<&str> = table.keys().map(String::as_str).collect();
            let mut p = file.problem(
                &pointer,
                true,
                format!(
                    "this override changes {} `{name}`, which no shared file defines",
                    section.noun()
                ),
            );
            p = match diag::did_you_mean(name, known) {
                    Some(s) => p.with_help(format!("did you mean `{s}`?")),
                    None => p.with_help(format!(
                        "a personal override may only change entries of the shared files, or add profiles; define the {} in a shared file",
                        section.noun()
                    )),
                };
            return Some(p);
        }
        _ => {}
    }
    None
}

/// The file's `defaults`: a field set twice across the shared files, `extends` there.
fn defaults_of(
    files: &[SourceFile],
    fi: usize,
    defaults: &mut Vec<Def>,
    broken: &BTreeMap<&Part, &Problem>,
    tally: &mut Tally,
    problems: &mut Vec<Problem>,
) {
    let file = &files[fi];
    let kind = file.kind;
    if let Some(why) = broken.get(&Part::Defaults) {
        tally.blockers.push((*why).clone());
    } else if let Some(d) = file.value.get("defaults").and_then(Value::as_object) {
        if kind == FileKind::Shared {
            for field in d.keys() {
                let ptr = format!("/defaults/{}", yaml::escape_segment(field));
                if let Some(&other) = tally.default_fields.get(field) {
                    let first_at = files[other].location(&ptr);
                    let p = file
                        .problem(
                            &ptr,
                            true,
                            format!("`defaults.{field}` is set twice: here and at {first_at}"),
                        )
                        .with_help("keep one `defaults` value per field across the shared files");
                    tally.blockers.push(p.clone());
                    problems.push(p);
                } else {
                    tally.default_fields.insert(field.clone(), fi);
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
        defaults.push(Def {
            file: fi,
            pointer: "/defaults".into(),
        });
    }
}

/// `allow_programs`: the user config's grant; anywhere else, said to grant nothing.
fn allow_programs(file: &SourceFile, tally: &mut Tally, problems: &mut Vec<Problem>) {
    let kind = file.kind;
    if let Some(list) = file.value.get("allow_programs").and_then(Value::as_array) {
        let user = PathBuf::from("your user config (~/.config/bprof/local.yaml)");
        match kind {
            FileKind::User => {
                tally.allow.extend(list.iter().filter_map(Value::as_str).map(str::to_string))
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

/// A user config that may not grant (its directories are not the person's alone) is said.
fn user_config_warnings(set: &mut ProfileSet) {
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
}
