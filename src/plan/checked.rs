//! The rendered steps checked ([`super::check::step`] on each) and what becomes a request for
//! consent or a refused value at the place it was written; and, for `plan`, who set each
//! capability-bearing value.

use super::*;

/// Checks every rendered step ([`check::step`]): what the template's own text asks for becomes
/// a request for consent (when the template comes from a file that grants nothing); a value
/// that would be read as an option, or interpreted by cmd.exe, is refused.
pub(super) fn check_steps(
    set: &ProfileSet,
    profile: &Profile,
    opts: &PlanOptions,
    template_name: &str,
    template_def: Option<&Def>,
    steps: &[Vec<String>],
    rendered: &[Vec<template::Arg>],
) -> Result<Vec<Request>, PlanError> {
    let trusted = template_def.is_some_and(|d| set.file(d).kind.trusted());
    let programs: &[String] = if trusted { &set.allow_programs } else { &[] };
    let mut reasons = Vec::new();
    let mut problems = Vec::new();
    for (si, step) in rendered.iter().enumerate() {
        for finding in check::step(step, opts.os, programs, &profile.tenant.id) {
            match finding {
                check::Finding::Template(reason) if trusted => {
                    if let Some(program) = step.first().filter(|p| p.value != "az") {
                        return Err(TemplateError::ProgramNotAllowed {
                            template: template_name.to_string(),
                            step: si + 1,
                            program: program.value.clone(),
                        }
                        .into());
                    }
                    let _ = reason; // the person's own template may pass what it likes to az
                }
                check::Finding::Template(reason) => {
                    reasons.push(format!("step {}: {reason}", si + 1))
                }
                check::Finding::Data { index, reason } => {
                    let arg = &step[index];
                    problems.push(data_problem(set, profile, template_def, steps, arg, reason));
                }
            }
        }
    }
    if !problems.is_empty() {
        crate::profile::diag::sort(&mut problems);
        return Err(PlanError::Invalid {
            profile: profile.name.clone(),
            problems,
        });
    }
    if reasons.is_empty() {
        return Ok(Vec::new());
    }
    match template_def {
        Some(def) => Ok(vec![Request::new(
            set.file(def),
            &def.pointer,
            format!("template `{template_name}`"),
            reasons,
            &profile.name,
            profile.destination(),
        )]),
        // a built-in template only says what bprof's own steps say
        None => Err(PlanError::Invalid {
            profile: profile.name.clone(),
            problems: vec![Problem::at_location(
                &profile.defined_at,
                reasons.join("; "),
            )],
        }),
    }
}

/// A refused value, at the place it was written: the template token of a user template, or
/// the field a built-in template's token reads.
pub(super) fn data_problem(
    set: &ProfileSet,
    profile: &Profile,
    template_def: Option<&Def>,
    steps: &[Vec<String>],
    arg: &template::Arg,
    reason: String,
) -> Problem {
    if let Some(def) = template_def {
        let ptr = format!("{}/{}/{}", def.pointer, arg.step, arg.token);
        return set
            .file(def)
            .problem(&ptr, false, reason)
            .with_help("a value from a profile file lands here; fix the value, or the template");
    }
    let token = steps
        .get(arg.step)
        .and_then(|s| s.get(arg.token))
        .map(String::as_str)
        .unwrap_or("");
    let field = match &arg.kind {
        template::ArgKind::Splice { path } => path.rsplit('.').next().unwrap_or("").to_string(),
        _ => token
            .split("profile.")
            .nth(1)
            .map(|r| {
                r.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .unwrap_or_default(),
    };
    match profile.origins.get(&field) {
        Some(def) => set.file(def).problem(&def.pointer, false, reason),
        None => {
            let mut p = Problem::at_location(&profile.defined_at, reason);
            p.path = format!("profiles.{}", profile.name);
            p
        }
    }
    .with_help(format!("fix the value of `{field}`"))
}

/// The capability-bearing values of a plan, each with where it was written and why it may run.
pub(super) fn sources(
    set: &ProfileSet,
    profile: &Profile,
    opts: &PlanOptions,
    template_def: Option<&Def>,
    statuses: &[(Request, Consent)],
) -> Vec<Source> {
    let trust = |def: &Def| {
        let file = set.file(def);
        let location = file.location(&def.pointer);
        let asked = statuses.iter().find(|(r, _)| r.location == location);
        let kind = match file.kind {
            crate::profile::load::FileKind::User => "your user config",
            crate::profile::load::FileKind::Override => "personal override (counts as shared)",
            crate::profile::load::FileKind::Shared => "shared",
        };
        let status = if file.kind.trusted() {
            ""
        } else if let Some((_, c)) = asked {
            if *c == Consent::Approved {
                ", approved by you"
            } else {
                ", NOT approved"
            }
        } else {
            ", within the allow-list"
        };
        (location, format!("{kind}{status}"))
    };
    let mut out = Vec::new();
    let mut push = |what: String, def: &Def| {
        let (from, trust) = trust(def);
        out.push(Source { what, from, trust });
    };
    if let Some(def) = template_def {
        push(
            format!(
                "template `{}`",
                profile.template.clone().unwrap_or_default()
            ),
            def,
        );
    }
    for field in ["ssh_args", "extra_args", "rdp.drives"] {
        let used = match field {
            "ssh_args" => !profile.ssh_args.is_empty(),
            "extra_args" => !profile.extra_args.is_empty(),
            _ => profile.rdp.drives == Some(true),
        };
        if used && let Some(def) = profile.origins.get(field) {
            push(format!("`{field}`"), def);
        }
    }
    for key in profile.rdp.properties.keys() {
        if let Some(def) = profile.origins.get(&format!("rdp.properties.{key}")) {
            push(format!("`rdp.properties.{key}`"), def);
        }
    }
    if !opts.signed_in
        && !profile.tenant.login.is_empty()
        && let Some(def) = &profile.tenant.login_at
    {
        push(format!("`login` of tenant `{}`", profile.tenant.name), def);
    }
    if !opts.extra.is_empty() {
        out.push(Source {
            what: format!("`-- {}`", opts.extra.join(" ")),
            from: "the command line".into(),
            trust: "yours".into(),
        });
    }
    out
}
