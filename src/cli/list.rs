//! `bprof list`.

use serde_json::{Value, json};

use super::output::{print, print_json};
use super::{Error, Format, Out, exit};
use crate::profile::load::{ProfileSet, Section};
use crate::profile::resolve::{self};
pub(super) fn list(set: &ProfileSet, out: &Out) -> Result<i32, Error> {
    let mut rows = Vec::new();
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
    for name in names {
        // list shows what each profile says (inherited values included), without failing on
        // another profile's problem: `validate` reports those
        let row = match resolve::resolve(set, name) {
            Ok(p) => json!({
                "name": p.name,
                "mode": resolve::mode_name(p.mode),
                "vm": p.vm.key,
                "bastion": p.bastion.key,
                "tenant": p.tenant.name,
                "description": p.description,
                "file": p.defined_at.rsplit_once(':').map(|(f, _)| f).unwrap_or(&p.defined_at),
                "usable": true,
            }),
            Err(_) => {
                let file = set
                    .entry(Section::Profiles, name)
                    .and_then(|e| e.defs.first())
                    .map(|d| set.file(d).display.clone())
                    .or_else(|| {
                        set.unusable(Section::Profiles, name)
                            .and_then(|p| p.first())
                            .map(|p| p.file.clone())
                    })
                    .unwrap_or_default();
                json!({"name": name, "mode": null, "vm": null, "bastion": null, "tenant": null, "description": "(unusable: see `bprof validate`)", "file": file, "usable": false})
            }
        };
        rows.push(row);
    }
    let errors = set.problems.iter().filter(|p| p.is_error()).count();
    if errors > 0 {
        out.note(&format!(
            "bprof: warning: {errors} problem{} in the profile set; profiles that depend on them are marked: bprof validate",
            if errors == 1 { "" } else { "s" }
        ));
    }
    if out.format == Format::Json {
        print_json(&Value::Array(rows))?;
        return Ok(exit::OK);
    }
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let headers = ["NAME", "MODE", "VM", "BASTION", "TENANT", "DESCRIPTION"];
    let keys = ["name", "mode", "vm", "bastion", "tenant", "description"];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| keys.iter().map(|k| s(&r[*k])).collect())
        .collect();
    let widths: Vec<usize> = (0..keys.len())
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    text.push_str(&line(headers.to_vec()));
    for r in &table {
        text.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    print(&text)?;
    Ok(exit::OK)
}
