//! `bprof proxy PROFILE`: one tunnel session on stdin/stdout, for ssh's ProxyCommand (the
//! blocks `bprof ssh-config` writes use it).

use clap_complete::engine::ArgValueCandidates;

use super::{Cli, Error, Out, completions, exit, load_set};
use crate::plan::{self, Os, PlanOptions};
use crate::process::Signals;
use crate::profile::load::ProfileSet;
use crate::profile::resolve::{self, Profile};
use crate::session::{self, RunError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (`bprof list` shows them); its VM port (22 for ssh) is the far end.
    #[arg(add = ArgValueCandidates::new(completions::ssh_profiles))]
    pub profile: String,
}

/// The plan of a profile's tunnel (as `run --tunnel-only` would open it).
fn tunnel_plan(
    settings: &super::Settings,
    set: &ProfileSet,
    p: &Profile,
) -> Result<plan::Plan, Error> {
    // no az at all is said as that, not as a sign-in to do
    crate::process::resolve_program("az", settings.azure().az.as_deref())
        .map_err(RunError::from)?;
    let az = crate::azure::signin::AzProfile::read(settings.azure());
    if !az.knows(&p.bastion.subscription) {
        return Err(RunError::NotSignedIn {
            subscription: p.bastion.subscription.clone(),
            tenant: p.tenant.id.clone(),
        }
        .into());
    }
    // `proxy` is the native engine's: an inherited BPROF_TUNNEL_ENGINE=az does not change
    // what the ProxyCommand that `run` or `ssh-config` wrote connects to
    let opts = PlanOptions {
        tunnel_only: true,
        engine: Some(crate::profile::raw::TunnelEngine::Native),
        host: settings.host.clone(),
        ..PlanOptions::for_os(Os::current())
    };
    Ok(plan::build(set, p, &opts)?)
}

/// `bprof proxy PROFILE`.
pub(super) fn run(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    let set = load_set(cli, out)?;
    let p = resolve::resolve(&set, &args.profile)?;
    out.elsewhere(&set);
    let plan = tunnel_plan(&cli.settings, &set, &p)?;
    super::leave(set);
    let signals = Signals::install();
    session::proxy(&plan, &signals)?;
    Ok(exit::OK)
}
