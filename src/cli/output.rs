//! How output is printed: results on stdout (text or one JSON document), diagnostics on
//! stderr, color only on a terminal.

use std::io::{IsTerminal, Write};

use serde_json::Value;

use super::exit::pass_through;
use super::{ColorChoice, Error, Format};
use crate::profile::diag::Problem;
use crate::profile::load::LoadError;
use crate::profile::resolve::ResolveError;
use crate::session::RunError;
/// How diagnostics are printed.
pub struct Out {
    pub color: bool,
    pub quiet: bool,
    pub verbose: bool,
    pub format: Format,
}

impl Out {
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    pub fn problems(&self, problems: &[Problem]) {
        for p in problems {
            eprint!("{}", p.render(self.color));
        }
    }

    pub fn error(&self, e: &Error) {
        let (red, bold, reset) = if self.color {
            ("\x1b[1;31m", "\x1b[1m", "\x1b[0m")
        } else {
            ("", "", "")
        };
        match e {
            Error::Load(LoadError::Invalid(problems))
            | Error::Resolve(ResolveError::Invalid { problems, .. }) => {
                self.problems(problems);
                eprintln!("{red}error{reset}{bold}: {e}{reset}; nothing was run");
            }
            other => {
                eprintln!("{red}error{reset}{bold}: {other}{reset}");
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
                    Error::Template(t) => Some(t.hint()),
                    Error::Run(r) => r.hint(),
                    Error::Write(r) => Some(r.hint().to_string()),
                    _ => None,
                };
                if let Some(h) = hint {
                    eprintln!("  {bold}help{reset}: {h}");
                }
                if let Error::Run(RunError::StepFailed { code, .. }) = other
                    && pass_through(*code) != *code
                {
                    eprintln!(
                        "  note: bprof exits 1 for it, since {code} is one of bprof's own exit codes"
                    );
                }
            }
        }
    }
}

pub(super) fn color_enabled(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    }
}

pub(super) fn print(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

pub(super) fn print_json(v: &Value) -> Result<(), Error> {
    print(&format!(
        "{}\n",
        serde_json::to_string_pretty(v).unwrap_or_default()
    ))
}
