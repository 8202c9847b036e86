//! `validate`: every problem of a set at once, and everything `run` or `plan` would refuse on
//! any OS: its entries, each profile resolved, templates, the native engine's refusals, values
//! cmd.exe would interpret on Windows, and unapproved shared content.

use super::{Os, PlanError, PlanOptions, native_ssh, requests, template, uses_tunnel};
use crate::profile::diag::Problem;
use crate::profile::load::{ProfileSet, Section};
use crate::profile::resolve::Profile;
use crate::profile::trust::{Consent, Request};

/// The OSes a plan is made for.
const EVERY_OS: [Os; 3] = [Os::Linux, Os::Macos, Os::Windows];

/// Every problem of the set, sorted by file and line: its entries, each profile resolved, its
/// templates, and as warnings what the profiles ask consent for and the person has not given
/// (a team's CI has no consents, and stays green). Each profile is planned for every OS (on the
/// engine it says, else the default native one): what `run` would refuse on every OS is an
/// error, what it would refuse on some is a warning that names them (`--strict` fails on it).
pub fn validate_all(set: &ProfileSet) -> Vec<Problem> {
    use crate::profile::resolve::{self, ResolveError};
    /// The problems of these profiles and what they ask consent for, in their order.
    fn check(set: &ProfileSet, names: &[&str]) -> (Vec<Problem>, Vec<Request>) {
        let mut problems = Vec::new();
        let mut asked: Vec<Request> = Vec::new();
        for name in names {
            let profile = match resolve::resolve(set, name) {
                Ok(p) => p,
                Err(ResolveError::Invalid { problems: p, .. }) => {
                    problems.extend(p);
                    continue;
                }
                // what it depends on is reported where that is written; its own problems here
                Err(ResolveError::Unusable { own, .. }) => {
                    problems.extend(own);
                    continue;
                }
                Err(ResolveError::UnknownProfile { .. }) => continue,
            };
            problems.extend(crate::profile::lint::profile(set, &profile));
            asked.extend(profile.requests.iter().cloned());
            let (refused, template_asks) = refusals(set, &profile);
            problems.extend(refused);
            asked.extend(template_asks);
        }
        (problems, asked)
    }
    let mut problems = set.problems.clone();
    problems.extend(resolve::validate_entries(set));
    problems.extend(set.warnings.iter().cloned());
    problems.extend(crate::profile::lint::defaults(set));
    // a profile spoiled by its own problems: what else it lacks, in the same run
    for (section, name) in set.broken.keys() {
        if *section == Section::Profiles {
            problems.extend(resolve::missing_required(set, name));
        }
    }
    let names: Vec<&str> = set.names(Section::Profiles).collect();
    let parts = resolve::in_chunks(&names, |part| check(set, part));
    let mut asked: Vec<Request> = Vec::new();
    for (p, r) in parts {
        problems.extend(p);
        asked.extend(r);
    }
    for r in asked {
        if set.consents.status(&r) == Consent::Approved {
            continue;
        }
        let mut p = r.at.clone().warning();
        p.message = format!(
            "{} asks for more than a shared file may: {}",
            r.what,
            r.reasons.join("; ")
        );
        problems.push(p.with_help(
            "`bprof plan` and `bprof run` refuse it (exit 77) until each person approves it with `bprof trust allow PROFILE`",
        ));
    }
    problems.extend(template::check_all(set));
    crate::profile::diag::sort(&mut problems);
    problems
}

/// What a plan of `profile` would refuse on each OS, each problem once: an error when every OS
/// refuses it, else a warning naming the OSes that do; and what its own template asks consent
/// for.
fn refusals(set: &ProfileSet, profile: &Profile) -> (Vec<Problem>, Vec<Request>) {
    let mut found: Vec<(Problem, Vec<Os>)> = Vec::new();
    let mut asked: Vec<Request> = Vec::new();
    fn add(found: &mut Vec<(Problem, Vec<Os>)>, p: Problem, os: Os) {
        match found
            .iter_mut()
            .find(|(q, _)| q.file == p.file && q.line == p.line && q.message == p.message)
        {
            Some((_, list)) => list.push(os),
            None => found.push((p, vec![os])),
        }
    }
    for os in EVERY_OS {
        // the profile's own engine, else the default: a team's CI and a teammate's shell agree
        let opts = PlanOptions {
            engine: None,
            ..PlanOptions::for_os(os)
        };
        if let Some(p) = native_refusal(set, profile, &opts) {
            add(&mut found, p, os);
        }
        let tunnel = uses_tunnel(profile, &opts);
        if let Err(e @ PlanError::Developer { .. }) = super::developer_path(profile, &opts, tunnel)
        {
            let hint = e.hint().unwrap_or_default();
            add(
                &mut found,
                Problem::at_location(&profile.defined_at, e.to_string()).with_help(hint),
                os,
            );
        }
        // the built-in steps pass only values resolve has checked, except ssh's on az (its
        // values, judged as az and, on Windows, cmd.exe read them): rendered only there
        if profile.template.is_none()
            && (profile.mode != crate::profile::raw::Mode::Ssh || native_ssh(profile, &opts))
        {
            continue;
        }
        // the built-in steps are the same on macOS as on Linux (both reach az without cmd.exe)
        if profile.template.is_none() && os == Os::Macos {
            let linux: Vec<Problem> = found
                .iter()
                .filter(|(_, oses)| oses.contains(&Os::Linux))
                .map(|(p, _)| p.clone())
                .collect();
            for p in linux {
                add(&mut found, p, os);
            }
            continue;
        }
        match requests(set, profile, &opts) {
            Ok(r) if profile.template.is_some() => asked.extend(
                r.into_iter()
                    .filter(|q| !profile.requests.iter().any(|o| o == q)),
            ),
            Ok(_) => {}
            Err(PlanError::Invalid { problems: p, .. }) => {
                for one in p {
                    add(&mut found, one, os);
                }
            }
            Err(PlanError::Template(e)) => add(
                &mut found,
                Problem::at_location(&profile.defined_at, e.to_string()).with_help(e.hint()),
                os,
            ),
            Err(
                PlanError::Consent { .. } | PlanError::Native { .. } | PlanError::Developer { .. },
            ) => {}
        }
    }
    let problems = found
        .into_iter()
        .map(|(p, oses)| {
            if oses.len() == EVERY_OS.len() {
                return p;
            }
            let names: Vec<&str> = oses.iter().map(|o| o.name()).collect();
            let mut w = p.warning();
            w.message = format!("on {}: {}", names.join(" and "), w.message);
            w
        })
        .collect();
    (problems, asked)
}

/// The native engine's refusal of a profile's az-only fields, where they are written (`run`
/// says the same through [`PlanError::Native`]).
fn native_refusal(set: &ProfileSet, profile: &Profile, opts: &PlanOptions) -> Option<Problem> {
    let native = super::native(profile, opts);
    if !native || profile.extra_args.is_empty() {
        return None;
    }
    let message = format!(
        "`extra_args` ({}) are az's options and mean nothing under the native tunnel engine: `run` refuses them",
        crate::terminal::value(&profile.extra_args.join(" "))
    );
    let problem = match profile.origins.get("extra_args") {
        Some(def) => set.file(def).problem(&def.pointer, false, message),
        None => Problem::at_location(&profile.defined_at, message),
    };
    Some(problem.with_help(
        "set `tunnel_engine: az` in the profile to keep az's tunnel (which reads them), or remove `extra_args`",
    ))
}
