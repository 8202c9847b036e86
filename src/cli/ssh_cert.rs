//! `bprof ssh-cert PROFILE`: an Entra (aad) ssh profile's key pair and certificate, made or
//! renewed when needed (missing, or within 5 minutes of its end) and otherwise left alone:
//! quick and silent when the certificate is fresh. `ssh-config`'s `Match ... exec` line runs it
//! on every pass over the config, so that OpenSSH always reads a valid certificate.

use clap_complete::engine::ArgValueCandidates;

use super::{Cli, Error, Out, completions, exit, load_set};
use crate::plan::{self, Os, PlanOptions};
use crate::process::Signals;
use crate::profile::raw::{AuthType, Mode};
use crate::profile::resolve;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Entra (auth_type aad) ssh profile.
    #[arg(add = ArgValueCandidates::new(completions::ssh_profiles))]
    pub profile: String,
}

/// `bprof ssh-cert PROFILE`.
pub(super) fn run(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    let set = load_set(cli, out)?;
    let p = resolve::resolve(&set, &args.profile)?;
    if p.mode != Mode::Ssh || p.auth_type != Some(AuthType::Aad) {
        return Err(Error::Usage(format!(
            "profile `{}` is not an Entra ssh profile (mode ssh, auth_type aad): it has no certificate",
            p.name
        )));
    }
    let opts = PlanOptions {
        host: cli.settings.host.clone(),
        engine: Some(crate::profile::raw::TunnelEngine::Native),
        ..PlanOptions::for_os(Os::current())
    };
    let plan = plan::build(&set, &p, &opts)?;
    super::leave(set);
    let signals = Signals::install();
    crate::session::entra::ensure(&plan, &signals)?;
    Ok(exit::OK)
}
