//! The command line: flags (clap), one file per command (each owning its `Args` and its
//! `run`), output (text or JSON on stdout, diagnostics on stderr) and exit codes.
//!
//! The map: `app` (from argv to an exit code: parse, settings, dispatch, errors), `settings`
//! (what bprof reads from its environment, once), `output`; the commands `list`, `show`,
//! `plan`, `run`, `proxy`, `ssh_config`, `rdp`, `validate`, `doctor`, `init`, `import`,
//! `schema`, `templates`, `completions`, `manpages`, `trust`; `pick` (the profile picker) and
//! `completions` (profile names for the shells).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::exit;
use crate::plan::PlanError;
use crate::profile::load::LoadError;
use crate::profile::resolve::ResolveError;
use crate::session::RunError;

mod app;
mod completions;
mod doctor;
mod import;
pub mod init;
mod list;
mod manpages;
mod output;
mod pick;
mod plan;
mod proxy;
mod rdp;
mod run;
mod schema;
pub mod settings;
mod show;
mod ssh_cert;
mod ssh_config;
mod templates;
mod trust;
mod validate;

pub use app::main_with_args;
pub(crate) use app::{leave, load_set};
use output::Out;
pub use settings::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "bprof",
    version = env!("BPROF_LONG_VERSION"),
    about = "Azure Bastion connection profiles: validated, planned and run",
    long_about = "Azure Bastion connection profiles: validated, planned and run.\n\n\
        Profiles are YAML files (tenants, bastions, vms, profiles) found through --profiles, \
        BPROF_PROFILES, or the nearest profiles/ directory. `bprof run NAME --dry-run` shows \
        exactly what would run."
)]
pub struct Cli {
    /// Profile files or directories (repeatable); default: BPROF_PROFILES, then the nearest
    /// profiles/ directory upwards.
    #[arg(
        long = "profiles",
        global = true,
        value_name = "PATH",
        help_heading = "Global options"
    )]
    pub profiles: Vec<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text, help_heading = "Global options")]
    pub format: Format,
    /// When to color diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, help_heading = "Global options")]
    pub color: ColorChoice,
    /// Say more on stderr.
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "quiet",
        help_heading = "Global options"
    )]
    pub verbose: bool,
    /// Say only errors on stderr.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
    /// What bprof read from its environment, once, before the command runs.
    #[arg(skip)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// GitHub Actions annotations (`validate` only).
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the profiles: name, mode, target vm, bastion, tenant, description.
    #[command(
        after_help = "Examples:\n  bprof list\n  bprof --format json list\n  bprof --profiles ~/team/profiles list"
    )]
    List(list::Args),
    /// Show a profile's effective values, each with the file:line it came from.
    #[command(
        after_help = "Examples:\n  bprof show prod-jumpbox\n  bprof --format json show prod-jumpbox"
    )]
    Show(show::Args),
    /// Print the exact steps `run` would execute; nothing is executed.
    #[command(
        after_help = "Examples:\n  bprof plan prod-jumpbox\n  bprof plan prod-jumpbox --os windows\n  bprof --format json plan prod-db-tunnel --port 15432"
    )]
    Plan(plan::Args),
    /// Execute a profile's plan.
    #[command(
        after_help = "Examples:\n  bprof run prod-jumpbox\n  bprof run prod-jumpbox --dry-run\n  bprof run prod-db-tunnel prod-cache-tunnel --tunnel-only   (both tunnels, one bprof)\n  bprof run prod-jumpbox --configure      (sign in as another Entra user)\n  bprof run prod-db-tunnel --tunnel-only --port 15432\n  bprof run prod-app-ssh -- --only-show-errors"
    )]
    Run(run::Args),
    /// Carry one tunnel session on stdin/stdout: ssh's ProxyCommand, VS Code Remote-SSH.
    ///
    /// Nothing but the tunnel's bytes goes to stdout; messages go to stderr. `bprof ssh-config`
    /// writes the ssh_config blocks that use it.
    #[command(
        after_help = "Examples:\n  ssh -o ProxyCommand='bprof proxy prod-app-ssh' -o HostKeyAlias=prod-app-ssh.bprof azureuser@prod-app-ssh.bprof\n  bprof ssh-config >> ~/.ssh/config"
    )]
    Proxy(proxy::Args),
    /// Print ssh_config `Host` blocks (NAME.bprof) that reach ssh profiles through `bprof proxy`.
    #[command(
        after_help = "Examples:\n  bprof ssh-config\n  bprof ssh-config prod-app-ssh > ~/.ssh/bprof.conf   (and `Include bprof.conf` in ~/.ssh/config)"
    )]
    SshConfig(ssh_config::Args),
    /// Make or renew an Entra ssh profile's certificate (`az ssh cert`) when it is missing or
    /// near its end; quick and silent when it is fresh (ssh-config's `Match exec` runs it).
    #[command(after_help = "Examples:\n  bprof ssh-cert prod-app-ssh")]
    SshCert(ssh_cert::Args),
    /// Write .rdp files for teammates (the local end of the profile's tunnel; never a secret).
    #[command(
        after_help = "Examples:\n  bprof rdp prod-jumpbox\n  bprof rdp prod-jumpbox -o - > jumpbox.rdp\n  bprof rdp --all -o rdp/"
    )]
    Rdp(rdp::Args),
    /// Check profile files: every problem, not just the first.
    #[command(
        after_help = "Examples:\n  bprof validate\n  bprof validate profiles/team.yaml --strict\n  bprof --format github validate profiles/"
    )]
    Validate(validate::Args),
    /// Preflight checks: why a connection would fail, and the fix.
    ///
    /// This machine: az and its version, the az extensions a profile's path needs, the tenants
    /// az is signed in to, an RDP client, TLS to ARM. Each PROFILE, through ARM: sign-in and
    /// token, the bastion (SKU, native client support, IP connect, TLS to its host), the VM
    /// (running, computer name), the Entra extension and login role, the network path, the
    /// profile's settings against Azure. One az process for the token (per subscription), then
    /// two rounds of concurrent ARM reads. Each check prints ok, warn, fail or skip, what it
    /// saw, and the fix; exit 0 when no check fails, 1 when one does.
    #[command(after_help = "Examples:
  bprof doctor                    (this machine, for the profile set's needs)
  bprof doctor prod-jumpbox
  bprof --format json doctor prod-jumpbox prod-app-ssh")]
    Doctor(doctor::Args),
    /// Scaffold a profile directory: a commented example, the schema, the .gitignore line.
    #[command(after_help = "Examples:\n  bprof init\n  bprof init team/profiles")]
    Init(init::Args),
    /// Write a profile file from what exists in Azure: tenants, bastions, vms, one profile per VM.
    ///
    /// Reads Resource Graph through ARM (one az process for the token): VMs with their network
    /// interfaces, virtual networks and peerings, and bastions. Each VM gets the bastion of its
    /// own virtual network, else of a peered one (Developer SKU: not through peering); VMs that
    /// none reaches are listed, not guessed. Windows VMs get an rdp profile with Entra sign-in
    /// (enable_mfa), Linux VMs an ssh profile with Entra (auth_type aad). Names are kept from
    /// the existing file (matched by resource id), new ones come from Azure names, unique and
    /// sorted. The file is import's own (marked on its first line): a file without the mark is
    /// never replaced without --force; hand-written profiles go in other files and may extends
    /// these. The result is checked like any profile file before it is written.
    #[command(
        after_help = "Examples:\n  bprof import --dry-run\n  bprof import --subscription 22222222-2222-2222-2222-222222222222 --subscription 55555555-5555-5555-5555-555555555555\n  bprof import --tenant contoso.onmicrosoft.com -o profiles/contoso.yaml\n  bprof import --resource-group rg-prod --merge      (refresh one group, keep the rest)\n  bprof import --bastion bas-hub-weu -o -"
    )]
    Import(import::Args),
    /// Print the JSON schema of profile files, or check a copy of it.
    #[command(
        after_help = "Examples:\n  bprof schema > profiles/bprof.schema.json\n  bprof schema --check profiles/bprof.schema.json"
    )]
    Schema(schema::Args),
    /// List the templates, or print one as YAML.
    #[command(after_help = "Examples:\n  bprof templates\n  bprof templates ssh")]
    Templates(templates::Args),
    /// Print the shell code that completes commands, flags and profile names.
    ///
    /// Add it to the shell's startup, e.g. `source <(bprof completions bash)` in ~/.bashrc;
    /// see the README for each shell.
    #[command(
        after_help = "Examples:\n  source <(bprof completions bash)\n  bprof completions fish | source"
    )]
    Completions(completions::Args),
    /// Write the man pages (one per command: bprof.1, bprof-run.1, ...) into a directory.
    #[command(after_help = "Examples:\n  bprof manpages /usr/local/share/man/man1")]
    Manpages(manpages::Args),
    /// Review, approve and revoke what shared files ask for beyond their allow-lists.
    ///
    /// Consent is pinned to the exact content where it is written; a change makes bprof ask
    /// again.
    #[command(
        after_help = "Examples:\n  bprof trust\n  bprof trust show prod-app-ssh\n  bprof trust allow prod-app-ssh\n  bprof trust revoke --all"
    )]
    Trust(trust::Args),
}

/// What every command's help says of the global options, which only `bprof --help` lists.
const GLOBALS_LINE: &str = "Global options: --profiles PATH, --format FORMAT, --color WHEN, -v, -q (`bprof --help` says what they do)";

/// The command line as parsed, completed and documented: the derive's definition, with the
/// global options listed once (`bprof --help`) and each command's help its own options only.
/// A global option is still accepted after the command (`bprof list --format json`): each
/// command gets a hidden copy, which clap then does not propagate again.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    let cmd = Cli::command().after_long_help(manpages::reference_text());
    let hidden: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.clone().hide(true))
        .collect();
    own_options_only(cmd, &hidden)
}

fn own_options_only(cmd: clap::Command, hidden: &[clap::Arg]) -> clap::Command {
    cmd.mut_subcommands(|sc| {
        let after = sc
            .get_after_help()
            .map(|h| format!("{GLOBALS_LINE}\n\n{h}"))
            .unwrap_or_else(|| GLOBALS_LINE.to_string());
        let sc = hidden
            .iter()
            .fold(sc, |sc, a| sc.arg(a.clone()))
            .after_help(after);
        own_options_only(sc, hidden)
    })
}

/// Everything that can end a command, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    /// Something named on the command line that does not exist (a template, a file).
    #[error("{0}")]
    Unknown(String),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Write(#[from] crate::write::WriteError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
    #[error("{path} was not written by bprof import: it is left as it is")]
    NotImported { path: String },
    #[error("{path} was written by bprof import but cannot be read ({why}): it is left as it is")]
    ImportedUnreadable { path: String, why: String },
    #[error("the file import built is not a valid profile file: nothing was written")]
    ImportInvalid {
        problems: Vec<crate::profile::diag::Problem>,
    },
}

impl Error {
    /// The exit code (see the README): each layer's error knows its own.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Unknown(_) => exit::NO_INPUT,
            Error::Load(e) => e.exit_code(),
            Error::Resolve(e) => e.exit_code(),
            Error::Plan(e) => e.exit_code(),
            Error::Run(e) => e.exit_code(),
            Error::Write(e) => e.exit_code(),
            Error::Import(e) => e.exit_code(),
            // a reader that went away (`bprof list | head`) is not a failure
            Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
            Error::Output(_) | Error::NotImported { .. } => exit::CANT_CREATE,
            Error::ImportedUnreadable { .. } | Error::ImportInvalid { .. } => exit::DATA,
        }
    }
}

/// Runs the command: one line each.
fn dispatch(cli: &Cli, out: &Out) -> Result<i32, Error> {
    match &cli.command {
        Command::List(args) => list::run(cli, args, out),
        Command::Show(args) => show::run(cli, args, out),
        Command::Plan(args) => plan::run(cli, args, out),
        Command::Run(args) => run::run(cli, args, out),
        Command::Proxy(args) => proxy::run(cli, args, out),
        Command::SshConfig(args) => ssh_config::run(cli, args, out),
        Command::SshCert(args) => ssh_cert::run(cli, args, out),
        Command::Rdp(args) => rdp::run(cli, args, out),
        Command::Validate(args) => validate::run(cli, args, out),
        Command::Doctor(args) => doctor::run(cli, args, out),
        Command::Init(args) => init::run(args, out),
        Command::Import(args) => import::run(cli, args, out),
        Command::Schema(args) => schema::run(args, out),
        Command::Templates(args) => templates::run(cli, args, out),
        Command::Completions(args) => completions::run(args),
        Command::Manpages(args) => manpages::run(args, out),
        Command::Trust(args) => trust::run(cli, args, out),
    }
}

#[cfg(test)]
mod definition_tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        super::command().debug_assert();
    }
}
