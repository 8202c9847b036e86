//! `bprof templates [NAME]`.

use serde_json::{Value, json};

use super::output::{print, print_json};
use super::{Cli, Error, Format, Out, exit, load_set};
use crate::profile::load::Section;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A template to print as YAML (built-in: rdp, ssh, tunnel; or the set's own).
    pub name: Option<String>,
}

/// `bprof templates [NAME]`: the built-in templates and, when a profile set is found, its own.
pub(super) fn run(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    let name = args.name.as_deref();
    // templates need no profile set; a set that cannot be loaded only hides its own templates
    let set = load_set(cli, out).ok();
    let user: Vec<&str> = set
        .iter()
        .flat_map(|s| s.names(Section::Templates))
        .collect();
    if let Some(n) = name {
        let text = set
            .as_ref()
            .and_then(|s| crate::plan::template::user_yaml(s, n))
            .or_else(|| crate::plan::template::builtin_yaml(n));
        return match text {
            Some(y) => {
                print(&y)?;
                Ok(exit::OK)
            }
            None => {
                let mut known = vec!["rdp", "ssh", "tunnel"];
                known.extend(&user);
                Err(Error::Unknown(format!(
                    "no template `{n}`; the templates are {}",
                    known.join(", ")
                )))
            }
        };
    }
    if out.format == Format::Json {
        let mut list: Vec<Value> = crate::plan::template::BUILTIN
            .iter()
            .map(|(n, about, steps)| json!({"name": n, "description": about, "builtin": true, "steps": steps}))
            .collect();
        if let Some(set) = &set {
            for n in &user {
                let steps = crate::plan::template::user_template(set, n).unwrap_or_default();
                list.push(
                    json!({"name": n, "description": null, "builtin": false, "steps": steps}),
                );
            }
        }
        print_json(&Value::Array(list))?;
        return Ok(exit::OK);
    }
    let mut text = String::new();
    for (n, about, _) in crate::plan::template::BUILTIN {
        text.push_str(&format!("{n:<12} built-in: {about}\n"));
    }
    if let Some(set) = &set {
        for n in &user {
            let at = set
                .entry(Section::Templates, n)
                .and_then(|e| e.defs.last())
                .map(|d| set.file(d).location(&d.pointer))
                .unwrap_or_default();
            text.push_str(&format!("{n:<12} {at}\n"));
        }
    }
    text.push_str("\n`bprof templates NAME` prints one as YAML.\n");
    print(&text)?;
    Ok(exit::OK)
}
