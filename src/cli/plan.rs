//! `bprof plan PROFILE`: the exact steps `run` would execute; nothing is executed.

use clap_complete::engine::ArgValueCandidates;

use super::run::{SessionArgs, make_plan, show_plan};
use super::{Cli, Error, Out, completions};
use crate::plan::Os;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (`bprof list` shows them).
    #[arg(add = ArgValueCandidates::new(completions::profiles))]
    pub profile: String,
    /// Plan for another system (default: this one).
    #[arg(long, value_enum)]
    pub os: Option<Os>,
    #[command(flatten)]
    pub session: SessionArgs,
}

/// `bprof plan PROFILE`.
pub(super) fn run(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    let draft = make_plan(
        cli,
        &args.profile,
        args.os,
        &args.session,
        Vec::new(),
        false,
        out,
    )?;
    show_plan(&draft, out)
}
