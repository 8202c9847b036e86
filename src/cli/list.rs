//! `bprof list`.

use serde_json::{Value, json};

use super::output::{print, print_json};
use super::{Error, Format, Out, exit};
use crate::profile::load::{ProfileSet, Section};
use crate::profile::resolve::{self};
pub(super) fn list(set: &ProfileSet, out: &Out) -> Result<i32, Error> {
    let mut rows = Vec::new();
    for name in set.names(Section::Profiles) {
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
            }),
            Err(_) => {
                let def = &set
                    .entry(Section::Profiles, name)
                    .map(|e| e.defs[0].clone());
                let file = def
                    .as_ref()
                    .map(|d| set.file(d).display.clone())
                    .unwrap_or_default();
                json!({"name": name, "mode": null, "vm": null, "bastion": null, "tenant": null, "description": "(invalid: see `bprof validate`)", "file": file})
            }
        };
        rows.push(row);
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
