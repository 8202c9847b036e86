//! `bprof show PROFILE`.

use serde_json::{Value, json};

use super::completions;
use super::output::{print, print_json};
use super::{Cli, Error, Format, Out, exit, load_set};
use crate::profile::load::ProfileSet;
use crate::profile::resolve::{self, Profile};
use clap_complete::engine::ArgValueCandidates;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (`bprof list` shows them).
    #[arg(add = ArgValueCandidates::new(completions::profiles))]
    pub profile: String,
}

/// `bprof show PROFILE`.
pub(super) fn run(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    let set = load_set(cli, out)?;
    let p = resolve::resolve(&set, &args.profile)?;
    out.elsewhere(&set);
    show(&set, &p, out)
}

fn show(set: &ProfileSet, p: &Profile, out: &Out) -> Result<i32, Error> {
    let mut effective = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut effective {
        map.retain(|_, v| !v.is_null());
        if let Some(Value::Object(rdp)) = map.get_mut("rdp") {
            rdp.retain(|k, v| {
                !(v.is_null() || k == "properties" && v.as_object().is_some_and(|o| o.is_empty()))
            });
        }
        map.insert("bastion".into(), Value::String(p.bastion.key.clone()));
        map.insert("vm".into(), Value::String(p.vm.key.clone()));
        let target = if let Some(ip) = &p.vm.ip {
            ("vm_ip", Value::String(ip.clone()))
        } else {
            ("vm_resource_id", Value::String(p.vm.resource_id.clone()))
        };
        let mut resolved = json!({
            "tenant_id": p.tenant.id,
            "subscription": p.bastion.subscription,
            "bastion_name": p.bastion.name,
            "bastion_resource_group": p.bastion.resource_group,
        });
        resolved[target.0] = target.1;
        map.insert("resolved".into(), resolved);
    }
    if out.format == Format::Json {
        print_json(&effective)?;
        return Ok(exit::OK);
    }
    let mut text = format!("# profile `{}`, defined at {}\n", p.name, p.defined_at);
    let origin = |field: &str| p.origin(set, field);
    if let Value::Object(map) = &effective {
        for (k, v) in map {
            if k == "resolved" || k == "name" {
                continue;
            }
            match v {
                Value::Object(sub) if k == "rdp" => {
                    if sub.is_empty() {
                        continue;
                    }
                    text.push_str("rdp:\n");
                    for (sk, sv) in sub {
                        let path = format!("rdp.{sk}");
                        text.push_str(&format!("  {sk}: {}  # {}\n", inline(sv), origin(&path)));
                    }
                }
                _ => text.push_str(&format!("{k}: {}  # {}\n", inline(v), origin(k))),
            }
        }
        text.push_str("# resolved\n");
        if let Some(Value::Object(r)) = map.get("resolved") {
            for (k, v) in r {
                text.push_str(&format!("#   {k}: {}\n", inline(v)));
            }
        }
    }
    print(&text)?;
    Ok(exit::OK)
}

pub(super) fn inline(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
