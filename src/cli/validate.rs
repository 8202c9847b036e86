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
        Ok(set) => plan::validate_all(&set),
        Err(LoadError::Invalid(p)) => p,
        Err(e) => return Err(e.into()),
    };
    if out.format == Format::Json {
        let list: Vec<Value> = problems.iter().map(Problem::to_json).collect();
        print_json(&json!({"valid": problems.is_empty(), "problems": list}))?;
    } else if problems.is_empty() {
        out.note(&format!(
            "{count} file{} valid",
            if count == 1 { "" } else { "s" }
        ));
    } else {
        out.problems(&problems);
        crate::terminal::eprintln(&format!(
            "{} problem{} in {count} file{}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            if count == 1 { "" } else { "s" }
        ));
    }
    Ok(if problems.is_empty() {
        exit::OK
    } else {
        exit::DATA
    })
}
