//! `bprof trust`: review, approve and revoke shared content that asks for more than a shared
//! file may (direnv's `allow` is the model). Consent is pinned to the exact content as written,
//! where it came from, and where the profile goes (tenant, bastion, target, port); a change to
//! any of them makes it lapse.

use std::io::{BufRead, IsTerminal};

use serde_json::{Value, json};

use super::output::{print, print_json};
use super::{Cli, Error, Format, Out, completions, exit, load_set};
use crate::plan::{self, Os, PlanOptions};
use crate::profile::load::{ProfileSet, Section};
use crate::profile::resolve;
use crate::profile::trust::{Consent, Request};
use clap_complete::engine::ArgValueCandidates;

/// What one profile asks consent for.
fn requests_of(set: &ProfileSet, name: &str) -> Result<Vec<Request>, Error> {
    let p = resolve::resolve(set, name)?;
    Ok(plan::requests(
        set,
        &p,
        &PlanOptions::for_os(Os::current()),
    )?)
}

fn describe(set: &ProfileSet, r: &Request, text: &mut String) {
    let status = set.consents.status(r);
    text.push_str(&format!(
        "{} at {} [{}] ({})\n",
        r.what,
        r.location,
        r.id(),
        status.word(r)
    ));
    for why in &r.reasons {
        text.push_str(&format!("  why: {why}\n"));
    }
    let show = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    match &status {
        Consent::Changed { content, .. } if *content != r.content => {
            text.push_str("  content (- what you approved, + what it says now):\n");
            for (mark, l) in line_diff(&show(content), &show(&r.content)) {
                text.push_str(&format!("  {mark} {l}\n"));
            }
        }
        _ => {
            text.push_str("  content:\n");
            for l in show(&r.content).lines() {
                text.push_str(&format!("    {l}\n"));
            }
        }
    }
    destination(r, &status, text);
}

/// The lines of `old` and `new` marked `-` (only in the old), `+` (only in the new) or ` `
/// (in both), in order: a longest-common-subsequence diff, so that one changed element of a
/// list shows as that element. Past a size where that costs too much, the whole of each.
fn line_diff<'a>(old: &'a str, new: &'a str) -> Vec<(char, &'a str)> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    if a.len().saturating_mul(b.len()) > 1_000_000 {
        let gone = a.iter().map(|l| ('-', *l));
        return gone.chain(b.iter().map(|l| ('+', *l))).collect();
    }
    // common[i][j]: the longest common subsequence of a[i..] and b[j..]
    let mut common = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push((' ', a[i]));
            (i, j) = (i + 1, j + 1);
        } else if j == b.len() || (i < a.len() && common[i + 1][j] >= common[i][j + 1]) {
            out.push(('-', a[i]));
            i += 1;
        } else {
            out.push(('+', b[j]));
            j += 1;
        }
    }
    out
}

/// Where the consent lets the content go; changed, what was approved (`-`) beside what it is
/// now (`+`), field by field.
fn destination(r: &Request, status: &Consent, text: &mut String) {
    let now = r.destination.fields();
    match status {
        Consent::Changed {
            destination: Some(old),
            ..
        } if *old != r.destination => {
            text.push_str("  destination (- what you approved it for, + where it goes now):\n");
            for (name, was, is) in old.beside(&r.destination) {
                if was == is {
                    text.push_str(&format!("      {name}: {is}\n"));
                } else {
                    text.push_str(&format!("    - {name}: {was}\n    + {name}: {is}\n"));
                }
            }
        }
        Consent::Changed {
            destination: None, ..
        } => {
            text.push_str("  destination (you approved it before consents were pinned to a destination; + where it goes now):\n");
            for (name, is) in now {
                text.push_str(&format!("    + {name}: {is}\n"));
            }
        }
        _ => {
            text.push_str("  destination:\n");
            for (name, is) in now {
                text.push_str(&format!("      {name}: {is}\n"));
            }
        }
    }
}

/// One of each consent: the same content at the same place for the same destination.
fn unique(list: Vec<Request>) -> Vec<Request> {
    let mut out: Vec<Request> = Vec::new();
    for r in list {
        if !out.iter().any(|o| o.same_consent(&r)) {
            out.push(r);
        }
    }
    out
}

/// The plan the profile's consents would allow, as `plan` builds it on this machine.
fn draft_of(
    settings: &super::Settings,
    set: &ProfileSet,
    name: &str,
    out: &Out,
) -> Result<plan::Draft, Error> {
    let p = resolve::resolve(set, name)?;
    let opts = super::run::plan_options(
        settings,
        &p,
        None,
        &super::run::SessionArgs {
            configure: false,
            port: None,
            tunnel_only: false,
        },
        Vec::new(),
        false,
        out,
    )?;
    Ok(plan::draft(set, &p, &opts)?)
}

/// `trust show PROFILE`: each request, its content and destination, and the plan.
fn show(
    settings: &super::Settings,
    set: &ProfileSet,
    profile: &str,
    out: &Out,
) -> Result<i32, Error> {
    let draft = draft_of(settings, set, profile, out);
    let reqs = match &draft {
        Ok(d) => d.consents.iter().map(|(r, _)| r.clone()).collect(),
        // no plan: what it asks for all the same
        Err(_) => requests_of(set, profile)?,
    };
    if out.format == Format::Json {
        let list: Vec<Value> = reqs.iter().map(|r| to_json(set, r, &[])).collect();
        let plan = match &draft {
            Ok(d) => d.to_json(),
            Err(e) => json!({"error": e.to_string()}),
        };
        print_json(&json!({"profile": profile, "requests": list, "plan": plan}))?;
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
    match &draft {
        Ok(d) if d.is_approved() => {
            text.push_str("\nthe plan (approved):\n");
            text.push_str(&d.to_text());
        }
        Ok(d) => {
            text.push_str("\nthe plan your consent would allow:\n");
            text.push_str(&d.to_text());
        }
        Err(e) => text.push_str(&format!("\nno plan: {e}\n")),
    }
    print(&text)?;
    Ok(exit::OK)
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
}

/// What `bprof trust` does (default: list).
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// What the profiles ask consent for, its status, and who uses it.
    List,
    /// What one profile asks for, exactly as written, and what changed since you approved it.
    Show {
        /// The profile (`bprof list` shows them).
        #[arg(add = ArgValueCandidates::new(completions::profiles))]
        profile: String,
    },
    /// Approve what these profiles ask for, pinned to the content as written.
    Allow {
        #[arg(required = true, value_name = "PROFILE", add = ArgValueCandidates::new(completions::profiles))]
        names: Vec<String>,
        /// Approve without asking (for scripts); what is approved is still printed.
        #[arg(long)]
        yes: bool,
    },
    /// Revoke consent for what these profiles use, or for everything.
    Revoke {
        #[arg(required_unless_present = "all", value_name = "PROFILE", add = ArgValueCandidates::new(completions::profiles))]
        names: Vec<String>,
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
}

/// `bprof trust [ACTION]`.
pub(super) fn run(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    let set = load_set(cli, out)?;
    match args.action.as_ref().unwrap_or(&Action::List) {
        Action::List => list(&set, out),
        Action::Show { profile } => show(&cli.settings, &set, profile, out),
        Action::Allow { names, yes } => allow(&set, names, *yes, out),
        Action::Revoke { names, all } => revoke(&set, names, *all, out),
    }
}

/// `bprof trust allow`: shows what is approved, asks (unless --yes), records it.
fn allow(set: &ProfileSet, names: &[String], yes: bool, out: &Out) -> Result<i32, Error> {
    {
        let mut reqs = Vec::new();
        for p in names {
            reqs.extend(requests_of(set, p)?);
        }
        // every profile's request is recorded (a consent names the profiles it is for);
        // each consent is shown once
        let pending: Vec<Request> = reqs
            .into_iter()
            .filter(|r| set.consents.status(r) != Consent::Approved)
            .collect();
        let shown = unique(pending.clone());
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
        for r in &shown {
            describe(set, r, &mut text);
        }
        crate::terminal::eprint(&text, false);
        if !yes {
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
                "approved {} item{}; recorded in {} (a change to them, or to where they go, makes bprof ask again)",
                shown.len(),
                if shown.len() == 1 { "" } else { "s" },
                path.display()
            ));
        Ok(exit::OK)
    }
}

/// `bprof trust revoke`: for these profiles' requests, or every consent.
fn revoke(set: &ProfileSet, names: &[String], all: bool, out: &Out) -> Result<i32, Error> {
    {
        let mut consents = set.consents.clone();
        let gone = if all {
            consents.revoke(|_| true)
        } else {
            let mut reqs = Vec::new();
            for p in names {
                reqs.extend(requests_of(set, p)?);
            }
            consents.revoke(|a| reqs.iter().any(|r| a.concerns(r)))
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

fn to_json(set: &ProfileSet, r: &Request, profiles: &[String]) -> Value {
    let status = set.consents.status(r);
    let mut v = json!({
        "id": r.id(),
        "what": r.what,
        "location": r.location,
        "status": status.word(r),
        "reasons": r.reasons,
        "content": r.content,
        "destination": r.destination,
        "profiles": profiles,
    });
    if let (
        Consent::Changed {
            content,
            destination,
        },
        Value::Object(map),
    ) = (&status, &mut v)
    {
        map.insert(
            "approved".into(),
            json!({"content": content, "destination": destination}),
        );
    }
    v
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
            match seen.iter_mut().find(|(o, _)| o.same_consent(&r)) {
                Some((_, users)) => users.push(name.to_string()),
                None => seen.push((r, vec![name.to_string()])),
            }
        }
    }
    let stale: Vec<_> = set
        .consents
        .approved
        .iter()
        .filter(|a| a.destination.is_none() || !seen.iter().any(|(r, _)| a.concerns(r)))
        .collect();
    if out.format == Format::Json {
        let list: Vec<Value> = seen.iter().map(|(r, p)| to_json(set, r, p)).collect();
        let stale: Vec<Value> = stale
            .iter()
            .map(|a| {
                json!({"what": a.what, "source": a.source, "pointer": a.pointer,
                       "destination": a.destination, "profiles": a.profiles})
            })
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
            set.consents.status(r).word(r),
            r.what,
            r.location,
            users.join(", ")
        ));
    }
    for a in stale {
        if a.destination.is_none() {
            text.push_str(&format!(
                "old consent: {} in {} was approved before consents were pinned to a destination; it counts for nothing (`bprof trust allow PROFILE` approves it again)\n",
                a.what, a.source
            ));
            continue;
        }
        text.push_str(&format!(
            "unused consent: {} in {} (its content is gone or moved; `bprof trust revoke --all` clears consents)\n",
            a.what, a.source
        ));
    }
    print(&text)?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::line_diff;

    #[test]
    fn one_changed_element_shows_as_that_element() {
        let d = line_diff(
            "[\n  \"a\",\n  \"b\",\n  \"c\"\n]",
            "[\n  \"a\",\n  \"x\",\n  \"c\"\n]",
        );
        let marked: Vec<String> = d.iter().map(|(m, l)| format!("{m}{l}")).collect();
        assert_eq!(
            marked,
            [
                "&[",
                "   \"a\",",
                "-  \"b\",",
                "+  \"x\",",
                "   \"c\"",
                " ]"
            ]
            .map(|s| s.replace('&', " "))
        );
        assert_eq!(line_diff("", "x"), [('+', "x")]);
        assert_eq!(line_diff("x", ""), [('-', "x")]);
    }
}
