//! `bprof list`.

use serde::Serialize;

use super::output::{print, print_json};
use super::{Cli, Error, Format, Out, exit, load_set};
use crate::profile::load::{ProfileSet, Section};
use crate::profile::resolve::{self};

/// One profile as `list` shows it (the JSON row of the spec, plus `usable`).
#[derive(Serialize)]
struct Row {
    name: String,
    mode: Option<&'static str>,
    vm: Option<String>,
    bastion: Option<String>,
    tenant: Option<String>,
    description: Option<String>,
    file: String,
    usable: bool,
}

impl Row {
    /// The table's cells, `-` for what is not there.
    fn cells(&self) -> [&str; 6] {
        fn or(v: &Option<String>) -> &str {
            v.as_deref().unwrap_or("-")
        }
        [
            &self.name,
            self.mode.unwrap_or("-"),
            or(&self.vm),
            or(&self.bastion),
            or(&self.tenant),
            or(&self.description),
        ]
    }
}

fn row(set: &ProfileSet, name: &str) -> Row {
    match resolve::resolve(set, name) {
        Ok(p) => Row {
            file: p
                .defined_at
                .rsplit_once(':')
                .map_or(p.defined_at.clone(), |(f, _)| f.to_string()),
            name: p.name,
            mode: Some(resolve::mode_name(p.mode)),
            vm: Some(p.vm.key),
            bastion: Some(p.bastion.key),
            tenant: Some(p.tenant.name),
            description: p.description,
            usable: true,
        },
        Err(_) => Row {
            name: name.to_string(),
            mode: None,
            vm: None,
            bastion: None,
            tenant: None,
            description: Some("(unusable: see `bprof validate`)".into()),
            file: set
                .entry(Section::Profiles, name)
                .and_then(|e| e.defs.first())
                .map(|d| set.file(d).display.clone())
                .or_else(|| {
                    set.unusable(Section::Profiles, name)
                        .and_then(|p| p.first())
                        .map(|p| p.file.clone())
                })
                .unwrap_or_default(),
            usable: false,
        },
    }
}

/// `bprof list` takes no arguments of its own.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// `bprof list`.
pub(super) fn run(cli: &Cli, _args: &Args, out: &Out) -> Result<i32, Error> {
    let set = load_set(cli, out)?;
    let code = list(&set, out);
    super::leave(set);
    code
}

fn list(set: &ProfileSet, out: &Out) -> Result<i32, Error> {
    // every profile the set names, usable or not (a broken entry is not registered)
    let mut names: Vec<&str> = set.names(Section::Profiles).collect();
    names.extend(
        set.broken
            .keys()
            .filter(|(s, _)| *s == Section::Profiles)
            .map(|(_, n)| n.as_str()),
    );
    names.sort_unstable();
    names.dedup();
    // what each profile says (inherited values included), without failing on another
    // profile's problem: `validate` reports those
    let rows: Vec<Row> = resolve::in_chunks(&names, |part| {
        part.iter().map(|n| row(set, n)).collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    let errors = set.problems.iter().filter(|p| p.is_error()).count();
    if errors > 0 {
        out.note(&format!(
            "bprof: warning: {errors} problem{} in the profile set; profiles that depend on them are marked: bprof validate",
            if errors == 1 { "" } else { "s" }
        ));
    }
    if out.format == Format::Json {
        print_json(&serde_json::to_value(&rows).unwrap_or_default())?;
        return Ok(exit::OK);
    }
    let headers = ["NAME", "MODE", "VM", "BASTION", "TENANT", "DESCRIPTION"];
    let cells: Vec<[&str; 6]> = std::iter::once(headers)
        .chain(rows.iter().map(Row::cells))
        .collect();
    let lines = super::output::table(&cells);
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    print(&text)?;
    // the process ends right after
    std::mem::forget(rows);
    Ok(exit::OK)
}
