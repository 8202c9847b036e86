//! `bprof trust`: review, approve and revoke shared content that asks for more than a shared
//! file may (direnv's `allow` is the model). Consent is pinned to the exact content as written
//! and where it came from; a change makes it lapse.

use std::io::{BufRead, IsTerminal};

use serde_json::{Value, json};

use super::output::{print, print_json};
use super::{Error, Format, Out, TrustAction, exit};
use crate::plan::{self, Os, PlanOptions};
use crate::profile::load::{ProfileSet, Section};
use crate::profile::resolve;
use crate::profile::trust::{Consent, Request};

/// What one profile asks consent for.
fn requests_of(set: &ProfileSet, name: &str) -> Result<Vec<Request>, Error> {
    let p = resolve::resolve(set, name)?;
    Ok(plan::requests(
        set,
        &p,
        &PlanOptions::for_os(Os::current()),
    )?)
}

fn status_word(c: &Consent) -> &'static str {
    match c {
        Consent::Approved => "approved",
        Consent::Missing => "not approved",
        Consent::Changed(_) => "changed since you approved it",
    }
}

fn describe(set: &ProfileSet, r: &Request, text: &mut String) {
    let status = set.consents.status(r);
    text.push_str(&format!(
        "{} at {} [{}] ({})\n",
        r.what,
        r.location,
        r.id(),
        status_word(&status)
    ));
    for why in &r.reasons {
        text.push_str(&format!("  why: {why}\n"));
    }
    let show = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    match &status {
        Consent::Changed(old) => {
            text.push_str("  what you approved:\n");
            for l in show(old).lines() {
                text.push_str(&format!("  - {l}\n"));
            }
            text.push_str("  what it says now:\n");
            for l in show(&r.content).lines() {
                text.push_str(&format!("  + {l}\n"));
            }
        }
        _ => {
            text.push_str("  content:\n");
            for l in show(&r.content).lines() {
                text.push_str(&format!("    {l}\n"));
            }
        }
    }
}

fn unique(list: Vec<Request>) -> Vec<Request> {
    let mut out: Vec<Request> = Vec::new();
    for r in list {
        if !out
            .iter()
            .any(|o| o.source == r.source && o.pointer == r.pointer)
        {
            out.push(r);
        }
    }
    out
}

pub(super) fn trust(set: &ProfileSet, action: &TrustAction, out: &Out) -> Result<i32, Error> {
    match action {
        TrustAction::List => list(set, out),
        TrustAction::Show { profile } => {
            let reqs = requests_of(set, profile)?;
            if out.format == Format::Json {
                let list: Vec<Value> = reqs.iter().map(|r| to_json(set, r, &[])).collect();
                print_json(&json!({"profile": profile, "requests": list}))?;
                return Ok(exit::OK);
            }
            let mut text = String::new();
            if reqs.is_empty() {
                text.push_str(&format!(
                    "profile `{profile}` asks for nothing beyond what shared files may say\n"
                ));
            }
            for r in &reqs {
                describe(set, r, &mut text);
            }
            print(&text)?;
            Ok(exit::OK)
        }
        TrustAction::Allow { names, yes } => {
            let mut reqs = Vec::new();
            for p in names {
                reqs.extend(requests_of(set, p)?);
            }
            let pending: Vec<Request> = unique(reqs)
                .into_iter()
                .filter(|r| set.consents.status(r) != Consent::Approved)
                .collect();
            if pending.is_empty() {
                out.note("nothing to approve: everything these profiles use is approved or within the allow-lists");
                return Ok(exit::OK);
            }
            if let Some(why) = &set.consents.ignored {
                return Err(Error::Usage(format!(
                    "cannot record consent: your consent file is not believed: {why}"
                )));
            }
            let mut text = String::from("You are approving, exactly as written:\n");
            for r in &pending {
                describe(set, r, &mut text);
            }
            crate::terminal::eprint(&text, false);
            if !*yes {
                if !std::io::stdin().is_terminal() {
                    return Err(Error::Usage(
                        "not a terminal: add --yes to approve what is shown above".into(),
                    ));
                }
                crate::terminal::eprint("approve? [y/N] ", false);
                let mut answer = String::new();
                let _ = std::io::stdin().lock().read_line(&mut answer);
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    out.note("nothing approved");
                    return Ok(exit::NO_PERMISSION);
                }
            }
            let mut consents = set.consents.clone();
            consents.approve(&pending);
            let path = consents.save()?;
            out.note(&format!(
                "approved {} item{}; recorded in {} (a change to them makes bprof ask again)",
                pending.len(),
                if pending.len() == 1 { "" } else { "s" },
                path.display()
            ));
            Ok(exit::OK)
        }
        TrustAction::Revoke { names, all } => {
            let mut consents = set.consents.clone();
            let gone = if *all {
                consents.revoke(|_| true)
            } else {
                let mut reqs = Vec::new();
                for p in names {
                    reqs.extend(requests_of(set, p)?);
                }
                consents.revoke(|a| {
                    reqs.iter()
                        .any(|r| r.source == a.source && r.pointer == a.pointer)
                })
            };
            if gone > 0 {
                consents.save()?;
            }
            out.note(&format!(
                "revoked {gone} consent{}",
                if gone == 1 { "" } else { "s" }
            ));
            Ok(exit::OK)
        }
    }
}

fn to_json(set: &ProfileSet, r: &Request, profiles: &[String]) -> Value {
    json!({
        "id": r.id(),
        "what": r.what,
        "location": r.location,
        "status": status_word(&set.consents.status(r)),
        "reasons": r.reasons,
        "content": r.content,
        "profiles": profiles,
    })
}

/// Every request of every profile that resolves, with the profiles that use it; then the
/// recorded consents that no longer match anything.
fn list(set: &ProfileSet, out: &Out) -> Result<i32, Error> {
    let mut seen: Vec<(Request, Vec<String>)> = Vec::new();
    for name in set.names(Section::Profiles) {
        let Ok(reqs) = requests_of(set, name) else {
            continue; // `bprof validate` reports it
        };
        for r in reqs {
            match seen
                .iter_mut()
                .find(|(o, _)| o.source == r.source && o.pointer == r.pointer)
            {
                Some((_, users)) => users.push(name.to_string()),
                None => seen.push((r, vec![name.to_string()])),
            }
        }
    }
    let stale: Vec<_> = set
        .consents
        .approved
        .iter()
        .filter(|a| {
            !seen
                .iter()
                .any(|(r, _)| r.source == a.source && r.pointer == a.pointer)
        })
        .collect();
    if out.format == Format::Json {
        let list: Vec<Value> = seen.iter().map(|(r, p)| to_json(set, r, p)).collect();
        let stale: Vec<Value> = stale
            .iter()
            .map(|a| json!({"what": a.what, "source": a.source, "pointer": a.pointer}))
            .collect();
        print_json(&json!({"requests": list, "unused_consents": stale}))?;
        return Ok(exit::OK);
    }
    let mut text = String::new();
    if seen.is_empty() {
        text.push_str("no shared content asks for more than shared files may say\n");
    }
    for (r, users) in &seen {
        text.push_str(&format!(
            "{:<10}  {:<30}  {}  {}  (used by {})\n",
            r.id(),
            status_word(&set.consents.status(r)),
            r.what,
            r.location,
            users.join(", ")
        ));
    }
    for a in stale {
        text.push_str(&format!(
            "unused consent: {} in {} (its content is gone or moved; `bprof trust revoke --all` clears consents)\n",
            a.what, a.source
        ));
    }
    print(&text)?;
    Ok(exit::OK)
}
