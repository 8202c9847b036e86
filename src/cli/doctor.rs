//! `doctor [PROFILE]...`: preflight checks of this machine and of the profiles named, each ok,
//! warn, fail or skip with what was seen and the fix; exit 0 when none fails, 1 when one does.
//! The checks themselves are the library's (`doctor`); this prints them.

use std::cell::Cell;
use std::io::{IsTerminal, Write};

use clap_complete::engine::ArgValueCandidates;
use serde_json::{Value, json};

use super::output::{print, print_json};
use super::{Cli, Error, Format, Out, exit, load_set};
use crate::azure::AzureError;
use crate::doctor::{self, Check, Scope, Status};
use crate::plan::Os;
use crate::process::Signals;
use crate::profile::load::Section;
use crate::profile::resolve::{self, Profile};
use crate::session::RunError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profiles to check through Azure (default: none, only this machine).
    #[arg(value_name = "PROFILE", add = ArgValueCandidates::new(super::completions::profiles))]
    pub names: Vec<String>,
}

/// `bprof doctor [PROFILE]...`.
pub(super) fn run(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    let names = &args.names;
    let mut wanted: Vec<&str> = Vec::new();
    for n in names {
        if !wanted.contains(&n.as_str()) {
            wanted.push(n);
        }
    }
    let (profiles, considered) = if wanted.is_empty() {
        // this machine only; the set, when there is one, says what the machine needs
        match load_set(cli, out) {
            Ok(set) => {
                let all: Vec<Profile> = set
                    .names(Section::Profiles)
                    .filter_map(|n| resolve::resolve(&set, n).ok())
                    .collect();
                super::leave(set);
                (Vec::new(), all)
            }
            Err(e) => {
                out.note(&format!(
                    "bprof: note: no profile set ({e}); checking this machine only"
                ));
                (Vec::new(), Vec::new())
            }
        }
    } else {
        let set = load_set(cli, out)?;
        let mut ps = Vec::new();
        for n in &wanted {
            ps.push(resolve::resolve(&set, n)?);
        }
        out.elsewhere(&set);
        super::leave(set);
        (ps.clone(), ps)
    };
    let scope = Scope {
        profiles: &profiles,
        considered: &considered,
        whole_set: wanted.is_empty(),
        os: Os::current(),
        engine: cli.settings.engine,
        azure: cli.settings.azure(),
        home: cli.settings.home.as_deref(),
    };
    let signals = Signals::install();
    let progress = Progress::new(!out.quiet && std::io::stderr().is_terminal());
    let checks = doctor::run(&scope, &signals, &|s| progress.say(s));
    progress.clear();
    let checks = checks.map_err(|e| match e {
        AzureError::Process(p) => Error::Run(RunError::Process(p)),
        other => Error::Run(RunError::Azure(other)),
    })?;
    let several = profiles.len() > 1;
    match out.format {
        Format::Json => print_json(&to_json(&checks, several))?,
        Format::Text | Format::Github => print(&to_text(&checks))?,
    }
    Ok(if checks.iter().any(|c| c.status == Status::Fail) {
        1
    } else {
        exit::OK
    })
}

/// `{"checks": [{"name", "status", "detail", "fix"}]}`, with `profile` on every check when
/// several profiles are checked (null for this machine's).
fn to_json(checks: &[Check], several: bool) -> Value {
    let list: Vec<Value> = checks
        .iter()
        .map(|c| {
            let mut v = json!({
                "name": c.name,
                "status": c.status.name(),
                "detail": c.detail,
                "fix": c.fix,
            });
            if several {
                v["profile"] = json!(c.profile);
            }
            v
        })
        .collect();
    json!({ "checks": list })
}

/// One line per check (status, name, detail), its fix on the next; this machine first, then
/// each profile; a count at the end. Every value is escaped: a line break from Azure cannot
/// make a line of its own.
fn to_text(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut text = String::new();
    let mut section: Option<Option<&str>> = None;
    for c in checks {
        let this = c.profile.as_deref();
        if section != Some(this) {
            section = Some(this);
            match this {
                None => text.push_str("this machine\n"),
                Some(p) => text.push_str(&format!("profile {p}\n")),
            }
        }
        text.push_str(&format!(
            "  {:<4}  {:<width$}  {}\n",
            c.status.name(),
            c.name,
            crate::terminal::value(&c.detail)
        ));
        if let Some(fix) = &c.fix {
            text.push_str(&format!(
                "  {:<4}  {:<width$}  fix: {}\n",
                "",
                "",
                crate::terminal::value(fix)
            ));
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    text.push_str(&format!(
        "{} ok, {} warn, {} fail, {} skip\n",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail),
        count(Status::Skip)
    ));
    text
}

/// A progress line on stderr, rewritten in place, only on a terminal. Its text is bprof's own
/// (no value from Azure), so the carriage return is the only control character in it.
struct Progress {
    live: bool,
    width: Cell<usize>,
}

impl Progress {
    fn new(live: bool) -> Progress {
        Progress {
            live,
            width: Cell::new(0),
        }
    }

    fn say(&self, s: &str) {
        if !self.live {
            return;
        }
        let line = format!("bprof doctor: {s}...");
        let pad = self.width.get().saturating_sub(line.len());
        self.width.set(self.width.get().max(line.len()));
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}{}", " ".repeat(pad));
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.live && self.width.get() > 0 {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(self.width.get()));
            let _ = err.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: Status, detail: &str, fix: Option<&str>, profile: Option<&str>) -> Check {
        Check {
            name: "vm",
            status,
            detail: detail.into(),
            fix: fix.map(str::to_string),
            profile: profile.map(str::to_string),
        }
    }

    #[test]
    fn text_groups_by_profile_and_escapes_every_value() {
        let checks = [
            check(Status::Ok, "fine", None, None),
            check(
                Status::Fail,
                "EVIL\n  ok    vm  forged\u{1b}[2K",
                Some("do\rthis"),
                Some("p"),
            ),
        ];
        let t = to_text(&checks);
        assert_eq!(
            t,
            "this machine\n  ok    vm  fine\nprofile p\n  fail  vm  EVIL\\x0a  ok    vm  forged\\e[2K\n            fix: do\\rthis\n1 ok, 0 warn, 1 fail, 0 skip\n"
        );
        let j = to_json(&checks, true);
        assert_eq!(j["checks"][1]["profile"], "p");
        assert_eq!(j["checks"][0]["profile"], Value::Null);
        assert_eq!(j["checks"][0]["fix"], Value::Null);
        assert!(
            to_json(&checks, false)["checks"][1]
                .get("profile")
                .is_none()
        );
    }
}
