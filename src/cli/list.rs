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
    let row = |name: &str| match resolve::resolve(set, name) {
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
    // list shows what each profile says (inherited values included), without failing on
    // another profile's problem: `validate` reports those
    rows.extend(
        resolve::in_chunks(&names, |part| {
            part.iter().map(|n| row(n)).collect::<Vec<_>>()
        })
        .into_iter()
        .flatten(),
    );
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
    let headers = ["NAME", "MODE", "VM", "BASTION", "TENANT", "DESCRIPTION"];
    let keys = ["name", "mode", "vm", "bastion", "tenant", "description"];
    fn cell<'v>(r: &'v Value, k: &str) -> &'v str {
        r[k].as_str().unwrap_or("-")
    }
    let widths: Vec<usize> = (0..keys.len())
        .map(|i| {
            rows.iter()
                .map(|r| cell(r, keys[i]).chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // one text, padded by hand: a table of 10,000 rows is built in a few milliseconds
    let mut text = String::with_capacity(rows.len() * 96);
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let start = text.len();
        for (i, c) in cells.enumerate() {
            text.push_str(c);
            if i + 1 < keys.len() {
                let pad = widths[i].saturating_sub(c.chars().count()) + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let end = text[start..].trim_end().len() + start;
        text.truncate(end);
        text.push('\n');
    };
    line(&mut headers.iter().copied());
    for r in &rows {
        line(&mut keys.iter().map(|k| cell(r, k)));
    }
    print(&text)?;
    Ok(exit::OK)
}
