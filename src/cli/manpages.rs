//! `bprof manpages DIR`: man pages generated from the clap definitions, one per command
//! (`bprof.1`, `bprof-run.1`, `bprof-trust-allow.1`, ...), so they say what `--help` says.

use std::path::{Path, PathBuf};

use clap::CommandFactory as _;

use super::{Cli, Error, Out};
use crate::write::{WriteError, write_atomic};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory (created if needed); existing pages are replaced.
    pub dir: PathBuf,
}

/// `bprof manpages DIR`.
pub(super) fn run(args: &Args, out: &Out) -> Result<i32, Error> {
    for page in write(&args.dir)? {
        out.note(&format!("wrote {}", page.display()));
    }
    Ok(super::exit::OK)
}

/// Writes every page into `dir`; returns the paths written.
fn write(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut written = Vec::new();
    page(&cmd, "bprof", dir, &mut written)?;
    Ok(written)
}

fn page(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone().bin_name(name.replace('-', " ")))
        .title(name)
        .render(&mut buf)?;
    let path = dir.join(format!("{name}.1"));
    write_atomic(&path, &buf, true, false)?;
    written.push(path);
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        page(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
