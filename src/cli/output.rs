//! How output is printed: results on stdout (text or one JSON document), diagnostics on
//! stderr, color only on a terminal.

use std::io::Write;

use serde_json::Value;

use super::exit::child_note;
use super::{ColorChoice, Error, Format};
use crate::plan::PlanError;
use crate::profile::diag::Problem;
use crate::profile::resolve::ResolveError;
use crate::profile::trust::{Consent, Request};
/// How diagnostics are printed.
pub struct Out {
    pub color: bool,
    pub quiet: bool,
    pub verbose: bool,
    pub format: Format,
}

impl Out {
    /// A line for people: no color of bprof's own, so every escape sequence in it (data from
    /// files, programs or the network) is shown escaped.
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            crate::terminal::eprint(&format!("{msg}\n"), false);
        }
    }

    /// After a profile resolved: the set's other problems are one line, not a stop.
    pub fn elsewhere(&self, set: &crate::profile::load::ProfileSet) {
        let n = set.problems.iter().filter(|p| p.is_error()).count()
            + crate::profile::resolve::dangling_references(set);
        if n > 0 {
            self.note(&format!(
                "bprof: warning: {n} problem{} elsewhere in the profile set (none in what this uses): bprof validate",
                if n == 1 { "" } else { "s" }
            ));
        }
    }

    pub fn problems(&self, problems: &[Problem]) {
        for p in problems {
            crate::terminal::eprint(&p.render(self.color), self.color);
        }
    }

    /// What shared content asks for, where it is written, and how to review and approve it.
    fn consent(&self, profile: &str, requests: &[(Request, Consent)], e: &Error) {
        let palette = crate::terminal::Palette::new(self.color);
        let (red, bold, reset) = (&palette.error, &palette.bold, &palette.reset);
        // data escaped first, bprof's own color added after: no sequence from a file passes
        let mut text = format!(
            "{red}error{reset}{bold}: {}{reset}\n",
            clean(&e.to_string())
        );
        let mut body = String::new();
        for (r, status) in requests {
            let changed = match status {
                Consent::Changed { .. } => format!(" ({})", status.word(r)),
                _ => String::new(),
            };
            body.push_str(&format!("  - {} at {}{changed}\n", r.what, r.location));
            for why in &r.reasons {
                body.push_str(&format!("      {why}\n"));
            }
            if let Consent::Changed {
                destination: Some(old),
                ..
            } = status
            {
                for (name, was, now) in old.beside(&r.destination) {
                    if was != now {
                        body.push_str(&format!("      {name} was {was}, is now {now}\n"));
                    }
                }
            }
        }
        text.push_str(&clean(&body));
        text.push_str(&format!(
            "  {bold}help{reset}: review it with `bprof trust show {profile}`, then approve it with `bprof trust allow {profile}`\n  note: nothing was run\n"
        ));
        crate::terminal::eprint(&text, self.color);
    }

    pub fn error(&self, e: &Error) {
        let palette = crate::terminal::Palette::new(self.color);
        let (red, bold, reset) = (&palette.error, &palette.bold, &palette.reset);
        match e {
            Error::Plan(PlanError::Consent { profile, requests }) => {
                self.consent(profile, requests, e);
            }
            Error::Resolve(ResolveError::Unusable { because, own, .. }) => {
                self.problems(because);
                self.problems(own);
                crate::terminal::eprint(
                    &format!(
                        "{red}error{reset}{bold}: {}{reset}; nothing was run\n  {bold}help{reset}: the rest of the profile set is usable; `bprof validate` lists every problem\n",
                        clean(&e.to_string())
                    ),
                    self.color,
                );
            }
            Error::ImportInvalid { problems } => {
                self.problems(problems);
                crate::terminal::eprint(
                    &format!(
                        "{red}error{reset}{bold}: {}{reset}\n  {bold}help{reset}: this is a bug in bprof import or an answer from Azure it did not expect: please report it\n",
                        clean(&e.to_string())
                    ),
                    self.color,
                );
            }
            Error::Resolve(ResolveError::Invalid { problems, .. })
            | Error::Plan(PlanError::Invalid { problems, .. }) => {
                self.problems(problems);
                crate::terminal::eprint(
                    &(format!(
                        "{red}error{reset}{bold}: {}{reset}; nothing was run",
                        clean(&e.to_string())
                    ) + "\n"),
                    self.color,
                );
            }
            other => {
                crate::terminal::eprint(
                    &(format!(
                        "{red}error{reset}{bold}: {}{reset}",
                        clean(&other.to_string())
                    ) + "\n"),
                    self.color,
                );
                let hint = match other {
                    Error::Load(l) => l.hint().map(str::to_string),
                    Error::Resolve(ResolveError::UnknownProfile { suggestions, .. })
                        if !suggestions.is_empty() =>
                    {
                        Some(format!(
                            "did you mean {}?",
                            suggestions
                                .iter()
                                .map(|s| format!("`{s}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }
                    Error::Resolve(ResolveError::UnknownProfile { .. }) => {
                        Some("`bprof list` shows the profiles".into())
                    }
                    Error::Plan(e) => e.hint(),
                    Error::Run(r) => r.hint(),
                    Error::Write(r) => Some(r.hint().to_string()),
                    Error::Import(i) => i.hint(),
                    Error::NotImported { .. } => Some("import replaces only files it wrote (their first line is `# generated by bprof import`): choose another -o FILE, or pass --force to replace this one".into()),
                    Error::ImportedUnreadable { .. } => Some("fix or remove it; or pass --force to replace it (its names are then not kept)".into()),
                    _ => None,
                };
                if let Some(h) = hint {
                    crate::terminal::eprint(
                        &(format!("  {bold}help{reset}: {}", clean(&h)) + "\n"),
                        self.color,
                    );
                }
                if let Some(note) = match other {
                    Error::Run(r) => r.child_exit().and_then(child_note),
                    _ => None,
                } {
                    crate::terminal::eprint(&format!("  note: {note}\n"), false);
                }
            }
        }
    }
}

/// Data for a line people read: every control character escaped (line breaks and tabs kept).
fn clean(s: &str) -> String {
    crate::terminal::text(s, false)
}

pub(super) fn color_enabled(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        // anstream's rule: NO_COLOR wins, CLICOLOR_FORCE colors a pipe too, CLICOLOR=0 turns
        // it off, else a terminal that supports it has it; TERM=dumb is no color even in CI
        // (where anstream assumes color)
        ColorChoice::Auto => {
            let forced =
                std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0");
            let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
            (forced || !dumb)
                && anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never
        }
    }
}

/// Rows as aligned columns, one line each (no line break): each cell escaped for a terminal
/// first, then padded by its display width (a wide character takes two columns), two spaces
/// between columns, the last column not padded.
pub(super) fn table<const N: usize>(rows: &[[&str; N]]) -> Vec<String> {
    let shown: Vec<[std::borrow::Cow<str>; N]> =
        rows.iter().map(|r| r.map(crate::terminal::value)).collect();
    let mut widths = [0usize; N];
    for r in &shown {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(crate::text::width(c));
        }
    }
    shown
        .iter()
        .map(|r| {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                line.push_str(c);
                if i + 1 < N {
                    let pad = widths[i].saturating_sub(crate::text::width(c)) + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.truncate(line.trim_end().len());
            line
        })
        .collect()
}

/// Text for people on stdout, through the one output rule ([`crate::terminal::text`]).
pub(super) fn print(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(crate::terminal::text(text, false).as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// One JSON document on stdout, exact (JSON escapes what it must itself).
pub(super) fn print_json(v: &Value) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(
        serde_json::to_string_pretty(v)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn columns_line_up_by_display_width_with_data_escaped() {
        let lines = table(&[
            ["NAME", "TENANT", "DESCRIPTION"],
            ["東京", "t", "wide"],
            ["a\u{1b}[2Kb", "tenant", "x"],
        ]);
        assert_eq!(
            lines,
            [
                "NAME     TENANT  DESCRIPTION",
                "東京     t       wide",
                "a\\e[2Kb  tenant  x",
            ]
        );
    }
}
