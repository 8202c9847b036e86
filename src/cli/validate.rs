//! `bprof validate [PATH]...`.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::output::print_json;
use super::{Cli, Error, Format, Out, exit};
use crate::plan::{self};
use crate::profile::diag::Problem;
use crate::profile::load::{self, LoadError, Sources};
pub(super) fn validate(cli: &Cli, paths: &[PathBuf], out: &Out) -> Result<i32, Error> {
    let mut src = Sources::from_env(if paths.is_empty() {
        cli.profiles.clone()
    } else {
        paths.to_vec()
    });
    if !paths.is_empty() {
        src.env = None;
    }
    let files = load::discover(&src)?;
    let count = files.len();
    let problems = match load::load_files(&files, &src.cwd) {
        Ok(mut set) => {
            load::attach_consents(&mut set, &src);
            plan::validate_all(&set)
        }
        Err(LoadError::Invalid(p)) => p,
        Err(e) => return Err(e.into()),
    };
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems.len() - errors;
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    if out.format == Format::Json {
        let list: Vec<Value> = problems.iter().map(Problem::to_json).collect();
        print_json(&json!({"valid": errors == 0, "problems": list}))?;
    } else {
        out.problems(&problems);
        let files = plural(count, "file");
        let summary = match (errors, warnings) {
            (0, 0) => format!("{files} valid"),
            (0, w) => format!("{files} valid, with {}", plural(w, "warning")),
            (e, 0) => format!("{} in {files}", plural(e, "problem")),
            (e, w) => format!(
                "{} and {} in {files}",
                plural(e, "problem"),
                plural(w, "warning")
            ),
        };
        if errors == 0 {
            out.note(&summary);
        } else {
            crate::terminal::eprintln(&summary);
        }
    }
    Ok(if errors == 0 { exit::OK } else { exit::DATA })
}
