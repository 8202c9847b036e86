//! `bprof schema [--check FILE]`: the JSON schema of profile files, printed or compared.

use std::path::PathBuf;

use super::output::print;
use super::{Error, Out, exit};
use crate::files::ReadError;
use crate::profile::load::LoadError;
use crate::profile::schema::schema_text;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Say whether this copy is this bprof's schema (exit 65 when it is older or differs).
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
}

/// `bprof schema`: printed; with --check, compared byte for byte with a copy.
pub(super) fn run(args: &Args, out: &Out) -> Result<i32, Error> {
    let Some(file) = &args.check else {
        print(&schema_text())?;
        return Ok(exit::OK);
    };
    let copy = match crate::files::read_regular(file, 16 * 1024 * 1024) {
        Ok(c) => c,
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadError::NotFound {
                path: file.display().to_string(),
            }
            .into());
        }
        Err(e) => {
            return Err(Error::Usage(format!("cannot read {}: {e}", file.display())));
        }
    };
    if copy == schema_text().as_bytes() {
        out.note(&format!("{} is this bprof's schema", file.display()));
        Ok(exit::OK)
    } else {
        crate::terminal::eprintln(&format!(
            "{} is not this bprof's schema (older, or edited): refresh it with `bprof schema > {}`",
            file.display(),
            file.display()
        ));
        Ok(exit::DATA)
    }
}
