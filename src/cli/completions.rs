//! Shell completions: `bprof completions SHELL` prints the shell code that asks bprof itself,
//! on each TAB, what may come next (clap_complete's dynamic protocol, `BPROF_COMPLETE=SHELL`):
//! commands, flags, values such as `--os`, and the names of the discovered profiles, each with
//! its description, escaped like all of bprof's output.

use clap::ValueEnum;
use clap_complete::engine::CompletionCandidate;

use super::Error;
use super::exit;
use crate::profile::load::{self, Section};
use crate::profile::resolve::{self, Profile};

/// The variable the shell code sets when it asks for completions.
pub const VAR: &str = "BPROF_COMPLETE";

/// The shells bprof writes completion code for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

impl Shell {
    fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
            Shell::Powershell => "powershell",
            Shell::Elvish => "elvish",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `bprof completions SHELL`.
pub(super) fn run(args: &Args) -> Result<i32, Error> {
    let shell = args.shell;
    let shells = clap_complete::env::Shells::builtins();
    let Some(completer) = shells.completer(shell.name()) else {
        return Err(Error::Usage(format!("no completions for {}", shell.name())));
    };
    // the shell runs this binary for every TAB: name it by its path when it is known
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(str::to_string))
        .unwrap_or_else(|| "bprof".into());
    let mut buf = Vec::new();
    completer.write_registration(VAR, "bprof", "bprof", &bin, &mut buf)?;
    super::output::print(&String::from_utf8_lossy(&buf))?;
    Ok(exit::OK)
}

/// The profiles of the set bprof finds from here (`BPROF_PROFILES`, or the nearest
/// `profiles/`), with their descriptions; none when there is no set.
pub(super) fn profiles() -> Vec<CompletionCandidate> {
    candidates(None)
}

/// The rdp profiles (what `bprof rdp` takes).
pub(super) fn rdp_profiles() -> Vec<CompletionCandidate> {
    candidates(Some(|p| p.mode == crate::profile::raw::Mode::Rdp))
}

/// The profiles that reach an ssh server (what `proxy` and `ssh-config` take).
pub(super) fn ssh_profiles() -> Vec<CompletionCandidate> {
    candidates(Some(super::ssh_config::ssh_capable))
}

/// The set's profiles (those that resolve and `keep` says, when it is given), each with its
/// description, escaped like all of bprof's output. Completion never fails: no set, none.
fn candidates(keep: Option<fn(&Profile) -> bool>) -> Vec<CompletionCandidate> {
    let Ok(settings) = super::Settings::read() else {
        return Vec::new();
    };
    let Ok(set) = load::load(&settings.sources(Vec::new())) else {
        return Vec::new();
    };
    let names: Vec<&str> = set.names(Section::Profiles).collect();
    let kept: Vec<&str> = match keep {
        None => names,
        Some(keep) => resolve::in_chunks(&names, |part| {
            part.iter()
                .filter(|n| resolve::resolve(&set, n).is_ok_and(|p| keep(&p)))
                .copied()
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect(),
    };
    kept.into_iter()
        .map(|name| {
            let about = set
                .entry(Section::Profiles, name)
                .and_then(|e| e.defs.first())
                .and_then(|d| set.value(d))
                .and_then(|v| v.get("description"))
                .and_then(|v| v.as_str())
                .map(|d| crate::terminal::value(d).into_owned());
            CompletionCandidate::new(name).help(about.map(Into::into))
        })
        .collect()
}
