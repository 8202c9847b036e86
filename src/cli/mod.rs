//! The command line: flags (clap), dispatch, output (text or JSON on stdout, diagnostics on
//! stderr) and exit codes.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCandidates;

use crate::plan::Os;
use crate::plan::PlanError;
use crate::process::ProcessError;
use crate::profile::load::{self, LoadError, ProfileSet};
use crate::profile::resolve::{self, ResolveError};
use crate::session::RunError;

mod completions;
mod doctor;
pub mod settings;
pub use settings::Settings;
pub mod exit;
mod import;
pub mod init;
mod list;
mod manpages;
mod output;
mod pick;
mod proxy;
mod rdp;
mod run;
mod show;
mod templates;
mod trust;
mod validate;

use exit::{child_code, interrupted_code};
use output::{Out, color_enabled, print};

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
    List,
    /// Show a profile's effective values, each with the file:line it came from.
    #[command(
        after_help = "Examples:\n  bprof show prod-jumpbox\n  bprof --format json show prod-jumpbox"
    )]
    Show {
        /// The profile (`bprof list` shows them).
        #[arg(add = ArgValueCandidates::new(completions::profiles))]
        profile: String,
    },
    /// Print the exact steps `run` would execute; nothing is executed.
    #[command(
        after_help = "Examples:\n  bprof plan prod-jumpbox\n  bprof plan prod-jumpbox --os windows\n  bprof --format json plan prod-db-tunnel --port 15432"
    )]
    Plan {
        /// The profile (`bprof list` shows them).
        #[arg(add = ArgValueCandidates::new(completions::profiles))]
        profile: String,
        /// Plan for another system (default: this one).
        #[arg(long, value_enum)]
        os: Option<Os>,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Execute a profile's plan.
    #[command(
        after_help = "Examples:\n  bprof run prod-jumpbox\n  bprof run prod-jumpbox --dry-run\n  bprof run prod-db-tunnel prod-cache-tunnel --tunnel-only   (both tunnels, one bprof)\n  bprof run prod-jumpbox --configure      (sign in as another Entra user)\n  bprof run prod-db-tunnel --tunnel-only --port 15432\n  bprof run prod-app-ssh -- --only-show-errors"
    )]
    Run {
        /// The profile (`bprof list` shows them); on a terminal, without one, a picker opens.
        /// Several with --tunnel-only: one bprof holds all their tunnels.
        #[arg(value_name = "PROFILE", add = ArgValueCandidates::new(completions::profiles))]
        names: Vec<String>,
        /// Print the plan instead of running it.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: the plan for another system.
        #[arg(long, value_enum, requires = "dry_run")]
        os: Option<Os>,
        #[command(flatten)]
        session: SessionArgs,
        /// Appended to the connect step's az options (before ssh's `--`).
        #[arg(last = true, value_name = "EXTRA")]
        extra: Vec<String>,
    },
    /// Carry one tunnel session on stdin/stdout: ssh's ProxyCommand, VS Code Remote-SSH.
    ///
    /// Nothing but the tunnel's bytes goes to stdout; messages go to stderr. `bprof ssh-config`
    /// writes the ssh_config blocks that use it.
    #[command(
        after_help = "Examples:\n  ssh -o ProxyCommand='bprof proxy prod-app-ssh' -o HostKeyAlias=prod-app-ssh.bprof azureuser@prod-app-ssh.bprof\n  bprof ssh-config >> ~/.ssh/config"
    )]
    Proxy {
        /// The profile (`bprof list` shows them); its VM port (22 for ssh) is the far end.
        #[arg(add = ArgValueCandidates::new(completions::profiles))]
        profile: String,
    },
    /// Print ssh_config `Host` blocks (NAME.bprof) that reach ssh profiles through `bprof proxy`.
    #[command(
        after_help = "Examples:\n  bprof ssh-config\n  bprof ssh-config prod-app-ssh > ~/.ssh/bprof.conf   (and `Include bprof.conf` in ~/.ssh/config)"
    )]
    SshConfig {
        /// The profiles (default: every ssh profile).
        #[arg(value_name = "PROFILE", add = ArgValueCandidates::new(completions::profiles))]
        names: Vec<String>,
    },
    /// Write .rdp files for teammates (the local end of the profile's tunnel; never a secret).
    #[command(
        after_help = "Examples:\n  bprof rdp prod-jumpbox\n  bprof rdp prod-jumpbox -o - > jumpbox.rdp\n  bprof rdp --all -o rdp/"
    )]
    Rdp {
        /// The profile (not with --all).
        #[arg(required_unless_present = "all", conflicts_with = "all", add = ArgValueCandidates::new(completions::profiles))]
        profile: Option<String>,
        /// One file per rdp profile, into the directory given by -o.
        #[arg(long, requires = "output")]
        all: bool,
        /// The file (default ./PROFILE.rdp; - for stdout), or the directory with --all.
        #[arg(short, long, value_name = "FILE|DIR")]
        output: Option<PathBuf>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
        /// Include your personal values (user name, port) from `*.local.yaml` and your config.
        ///
        /// By default the file holds only what the shared files say, as for every teammate.
        #[arg(long)]
        personal: bool,
    },
    /// Check profile files: every problem, not just the first.
    #[command(
        after_help = "Examples:\n  bprof validate\n  bprof validate profiles/team.yaml --strict\n  bprof --format github validate profiles/"
    )]
    Validate {
        /// Files or directories to check (default: the discovered set, with your overrides).
        ///
        /// Each is checked in the context of its set (the other shared files of its
        /// directory), without personal overrides (`*.local.yaml`, your user config), as CI
        /// sees the repository; problems of the named files are reported.
        paths: Vec<PathBuf>,
        /// Warnings fail too (exit 65): lints, consent requests, a user config that grants
        /// nothing.
        #[arg(long)]
        strict: bool,
    },
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
    Doctor {
        /// The profiles to check through Azure (default: none, only this machine).
        #[arg(value_name = "PROFILE", add = ArgValueCandidates::new(completions::profiles))]
        names: Vec<String>,
    },
    /// Scaffold a profile directory: a commented example, the schema, the .gitignore line.
    #[command(after_help = "Examples:\n  bprof init\n  bprof init team/profiles")]
    Init {
        /// The directory (default: ./profiles).
        dir: Option<PathBuf>,
        /// Replace an existing example.yaml (and, with --vscode, .vscode/settings.json).
        #[arg(long)]
        force: bool,
        /// Also write .vscode/settings.json here, mapping the schema to the folder's files.
        #[arg(long)]
        vscode: bool,
    },
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
    Import {
        /// A subscription to read (repeatable; default: every subscription of the tenant).
        #[arg(long = "subscription", value_name = "S")]
        subscriptions: Vec<String>,
        /// The tenant to read, its id or domain (default: the tenant of az's default
        /// subscription).
        #[arg(long, value_name = "T")]
        tenant: Option<String>,
        /// Only the VMs of this resource group (bastions and networks are read from the whole
        /// scope).
        #[arg(long, value_name = "RG")]
        resource_group: Option<String>,
        /// This bastion for every VM, whatever the networks say (its Azure name or resource id).
        #[arg(long, value_name = "NAME")]
        bastion: Option<String>,
        /// The file (default: imported.yaml in the profile directory; - for stdout).
        #[arg(short, long, value_name = "FILE|-")]
        output: Option<PathBuf>,
        /// Print the file that would be written; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keep the existing file's VMs that this run's scope (--subscription, --tenant,
        /// --resource-group) did not read.
        #[arg(long)]
        merge: bool,
        /// Replace a file that bprof import did not write.
        #[arg(long)]
        force: bool,
    },
    /// Print the JSON schema of profile files, or check a copy of it.
    #[command(
        after_help = "Examples:\n  bprof schema > profiles/bprof.schema.json\n  bprof schema --check profiles/bprof.schema.json"
    )]
    Schema {
        /// Say whether this copy is this bprof's schema (exit 65 when it is older or differs).
        #[arg(long, value_name = "FILE")]
        check: Option<PathBuf>,
    },
    /// List the templates, or print one as YAML.
    #[command(after_help = "Examples:\n  bprof templates\n  bprof templates ssh")]
    Templates {
        /// A template to print as YAML (built-in: rdp, ssh, tunnel; or the set's own).
        name: Option<String>,
    },
    /// Print the shell code that completes commands, flags and profile names.
    ///
    /// Add it to the shell's startup, e.g. `source <(bprof completions bash)` in ~/.bashrc;
    /// see the README for each shell.
    #[command(
        after_help = "Examples:\n  source <(bprof completions bash)\n  bprof completions fish | source"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: completions::Shell,
    },
    /// Write the man pages (one per command: bprof.1, bprof-run.1, ...) into a directory.
    #[command(after_help = "Examples:\n  bprof manpages /usr/local/share/man/man1")]
    Manpages {
        /// The directory (created if needed); existing pages are replaced.
        dir: PathBuf,
    },
    /// Review, approve and revoke what shared files ask for beyond their allow-lists.
    ///
    /// Consent is pinned to the exact content where it is written; a change makes bprof ask
    /// again.
    #[command(
        after_help = "Examples:\n  bprof trust\n  bprof trust show prod-app-ssh\n  bprof trust allow prod-app-ssh\n  bprof trust revoke --all"
    )]
    Trust {
        #[command(subcommand)]
        action: Option<TrustAction>,
    },
}

/// What `bprof trust` does (default: list).
#[derive(Debug, Subcommand)]
pub enum TrustAction {
    /// What the profiles ask consent for, its status, and who uses it.
    List,
    /// What one profile asks for, exactly as written, and what changed since you approved it.
    Show {
        /// The profile (`bprof list` shows them).
        #[arg(add = ArgValueCandidates::new(completions::profiles))]
        profile: String,
    },
    /// Approve what these profiles ask for, pinned to the content as written.
    Allow {
        #[arg(required = true, value_name = "PROFILE", add = ArgValueCandidates::new(completions::profiles))]
        names: Vec<String>,
        /// Approve without asking (for scripts); what is approved is still printed.
        #[arg(long)]
        yes: bool,
    },
    /// Revoke consent for what these profiles use, or for everything.
    Revoke {
        #[arg(required_unless_present = "all", value_name = "PROFILE", add = ArgValueCandidates::new(completions::profiles))]
        names: Vec<String>,
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
}

/// What `run` (and `plan`, to show it) adds to a profile for one session.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct SessionArgs {
    /// Add --configure for this run (rdp: sign in as another Entra user).
    #[arg(long)]
    pub configure: bool,
    /// The local port of the tunnel.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Open the tunnel alone (any profile) and wait for Ctrl-C.
    #[arg(long)]
    pub tunnel_only: bool,
}

/// Everything that can end a command, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
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
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Resolve(ResolveError::Invalid { .. } | ResolveError::Unusable { .. })
            | Error::Plan(PlanError::Template(_) | PlanError::Invalid { .. }) => exit::DATA,
            Error::Plan(PlanError::Consent { .. }) => exit::NO_PERMISSION,
            Error::Plan(PlanError::Native { usage: true, .. }) => exit::USAGE,
            Error::Plan(PlanError::Native { .. }) => exit::DATA,
            Error::Load(LoadError::Panicked) => exit::SOFTWARE,
            Error::Load(LoadError::UnsafeDiscovered { .. }) => exit::NO_PERMISSION,
            Error::Load(_) | Error::Resolve(ResolveError::UnknownProfile { .. }) => exit::NO_INPUT,
            Error::Run(RunError::Process(
                ProcessError::Missing { .. } | ProcessError::Spawn { .. },
            )) => exit::UNAVAILABLE,
            Error::Run(RunError::Process(ProcessError::Interrupted { signal })) => {
                interrupted_code(*signal)
            }
            Error::Run(
                e @ (RunError::StepFailed { .. }
                | RunError::TunnelExited { .. }
                | RunError::TunnelDied { .. }
                | RunError::ClientFailed { .. }),
            ) => e.child_exit().map_or(1, child_code),
            Error::Run(
                RunError::TunnelTimeout { .. }
                | RunError::PortBusy { .. }
                | RunError::PortSquatted { .. }
                | RunError::ListenerCheck { .. }
                | RunError::Azure(_)
                | RunError::Listen { .. }
                | RunError::NotSignedIn { .. },
            ) => exit::UNAVAILABLE,
            Error::Run(RunError::NotNative { .. }) => exit::USAGE,
            Error::Write(_) | Error::Run(RunError::Write(_)) => exit::CANT_CREATE,
            Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
            Error::Output(_) => exit::CANT_CREATE,
            Error::Import(e) => {
                use crate::azure::AzureError;
                use crate::import::ImportError;
                match e {
                    ImportError::Usage(_) => exit::USAGE,
                    ImportError::Azure(AzureError::Process(ProcessError::Interrupted {
                        signal,
                    })) => interrupted_code(*signal),
                    _ => exit::UNAVAILABLE,
                }
            }
            Error::NotImported { .. } => exit::CANT_CREATE,
            Error::ImportedUnreadable { .. } | Error::ImportInvalid { .. } => exit::DATA,
        }
    }
}

/// Runs bprof with these arguments; returns the exit code.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    // a shell asking for completions (`BPROF_COMPLETE=SHELL`): answered, then bprof exits
    {
        use clap::CommandFactory as _;
        clap_complete::CompleteEnv::with_factory(Cli::command)
            .var(completions::VAR)
            .complete();
    }
    // a panic is a bug in bprof: say so, and exit 70 as documented (not Rust's 101)
    std::panic::set_hook(Box::new(|info| {
        crate::terminal::eprintln(&format!(
            "error: internal error in bprof (a bug: please report it): {info}"
        ));
    }));
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    std::panic::catch_unwind(|| run_cli(args)).unwrap_or(exit::SOFTWARE)
}

fn run_cli(args: Vec<std::ffi::OsString>) -> i32 {
    // `bprof help --help` (or `help run -h`) is a request for help: the help of what follows
    let asks_help = |a: &std::ffi::OsString| a == "--help" || a == "-h";
    let args = if args.get(1).is_some_and(|a| a == "help") && args.iter().any(asks_help) {
        let mut rest: Vec<std::ffi::OsString> = args
            .iter()
            .enumerate()
            .filter(|(i, a)| *i != 1 && !asks_help(a))
            .map(|(_, a)| a.clone())
            .collect();
        rest.push("--help".into());
        rest
    } else {
        args
    };
    let mut cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            if let Some(clap::error::ContextValue::String(word)) =
                e.get(clap::error::ContextKind::InvalidSubcommand)
            {
                profile_as_command(word);
            }
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::OK
                }
                _ => exit::USAGE,
            };
        }
    };
    let out = Out {
        color: color_enabled(cli.color),
        quiet: cli.quiet,
        verbose: cli.verbose,
        format: cli.format,
    };
    let settings = Settings::read();
    let run = settings.and_then(|settings| {
        cli.settings = settings;
        dispatch(&cli, &out)
    });
    match run {
        Ok(code) => code,
        Err(e) => {
            let code = e.exit_code();
            if !matches!(&e, Error::Output(io) if io.kind() == std::io::ErrorKind::BrokenPipe) {
                out.error(&e);
            }
            code
        }
    }
}

/// `bprof NAME`, where NAME is a profile: say how to run it (never run it: a typo must not
/// connect anywhere).
fn profile_as_command(word: &str) {
    let Ok(set) = Settings::read().and_then(|s| Ok(load::load(&s.sources(Vec::new()))?)) else {
        return;
    };
    let known = set.entry(load::Section::Profiles, word).is_some()
        || set.unusable(load::Section::Profiles, word).is_some();
    if known {
        crate::terminal::eprintln(&format!(
            "  tip: `{word}` is a profile; did you mean `bprof run {word}`?"
        ));
    }
}

/// Lets go of a loaded set without freeing it, when the process ends right after: freeing
/// every tree of a large set costs time and gives nothing back.
pub(crate) fn leave(set: ProfileSet) {
    std::mem::forget(set);
}

/// Loads the profile set; its warnings (a user config that grants nothing, ignored consents)
/// are said on stderr.
pub(crate) fn load_set(cli: &Cli, out: &Out) -> Result<ProfileSet, Error> {
    let set = load::load(&cli.settings.sources(cli.profiles.clone()))?;
    if !out.quiet {
        out.problems(&set.warnings);
    }
    Ok(set)
}

/// Whether a command has the output form `--format` asks for: JSON for the commands the spec
/// gives a JSON shape, GitHub annotations for `validate` only.
fn check_format(cli: &Cli) -> Result<(), Error> {
    let json = match &cli.command {
        Command::Run { dry_run, .. } => *dry_run,
        Command::Init { .. }
        | Command::Proxy { .. }
        | Command::SshConfig { .. }
        | Command::Rdp { .. }
        | Command::Completions { .. }
        | Command::Import { .. }
        | Command::Manpages { .. } => false,
        Command::Templates { name } => name.is_none(),
        Command::Trust { action } => matches!(
            action,
            None | Some(TrustAction::List | TrustAction::Show { .. })
        ),
        _ => true,
    };
    let ok = match cli.format {
        Format::Text => true,
        Format::Json => json,
        Format::Github => matches!(cli.command, Command::Validate { .. }),
    };
    if ok {
        return Ok(());
    }
    let what = if cli.format == Format::Json {
        "has no JSON form"
    } else {
        "has no GitHub annotations (only `validate` has)"
    };
    Err(Error::Usage(format!(
        "this command {what}; leave out --format"
    )))
}

fn dispatch(cli: &Cli, out: &Out) -> Result<i32, Error> {
    check_format(cli)?;
    match &cli.command {
        Command::Schema { check: None } => {
            print(&crate::profile::schema::schema_text())?;
            Ok(exit::OK)
        }
        Command::Schema { check: Some(file) } => {
            use crate::files::ReadError;
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
            if copy == crate::profile::schema::schema_text().as_bytes() {
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
        Command::Templates { name } => templates::templates(cli, name.as_deref(), out),
        Command::Validate { paths, strict } => validate::validate(cli, paths, *strict, out),
        Command::List => {
            let set = load_set(cli, out)?;
            let code = list::list(&set, out);
            leave(set);
            code
        }
        Command::Completions { shell } => completions::script(*shell),
        Command::Manpages { dir } => {
            for page in manpages::write(dir)? {
                out.note(&format!("wrote {}", page.display()));
            }
            Ok(exit::OK)
        }
        Command::Trust { action } => trust::trust(
            &cli.settings,
            &load_set(cli, out)?,
            action.as_ref().unwrap_or(&TrustAction::List),
            out,
        ),
        Command::Init { dir, force, vscode } => {
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from("profiles"));
            for written in crate::cli::init::scaffold(&dir, *force)? {
                out.note(&format!("wrote {}", written.display()));
            }
            if *vscode {
                let path = crate::cli::init::vscode(&dir, *force)?;
                out.note(&format!("wrote {}", path.display()));
            }
            // from here, bprof finds `./profiles` by itself; any other directory is named
            let flag = if dir == std::path::Path::new("profiles") {
                String::new()
            } else {
                format!(
                    "--profiles {} ",
                    crate::plan::shell::sh_quote(&dir.display().to_string())
                )
            };
            out.note(&format!(
                "next: edit {}, then `bprof {flag}validate` and `bprof {flag}run my-jumpbox --dry-run`",
                dir.join("example.yaml").display()
            ));
            Ok(exit::OK)
        }
        Command::Rdp {
            profile,
            all,
            output,
            force,
            personal,
        } => rdp::rdp_files(
            cli.settings.engine,
            load_set(cli, out)?,
            rdp::Which {
                profile: profile.as_deref(),
                all: *all,
                personal: *personal,
            },
            output.as_ref(),
            *force,
            out,
        ),
        Command::Import {
            subscriptions,
            tenant,
            resource_group,
            bastion,
            output,
            dry_run,
            merge,
            force,
        } => import::import(
            cli,
            import::Args {
                subscriptions,
                tenant: tenant.as_deref(),
                resource_group: resource_group.as_deref(),
                bastion: bastion.as_deref(),
                output: output.as_ref(),
                dry_run: *dry_run,
                merge: *merge,
                force: *force,
            },
            out,
        ),
        Command::Proxy { profile } => proxy::proxy(cli, profile, out),
        Command::Doctor { names } => doctor::doctor(cli, names, out),
        Command::SshConfig { names } => proxy::ssh_config(cli, names, out),
        Command::Show { profile } => {
            let set = load_set(cli, out)?;
            let p = resolve::resolve(&set, profile)?;
            out.elsewhere(&set);
            show::show(&set, &p, out)
        }
        Command::Plan {
            profile,
            os,
            session,
        } => {
            let draft = run::make_plan(cli, profile, *os, session, Vec::new(), false, out)?;
            run::show_plan(&draft, out)
        }
        Command::Run {
            names: profiles,
            dry_run,
            os,
            session,
            extra,
        } => {
            if profiles.len() > 1 {
                return run::run_several(cli, profiles, *dry_run, *os, session, extra, out);
            }
            let picked = profiles.is_empty();
            let profile = match profiles.first() {
                Some(p) => p.clone(),
                None if pick::available() => match pick::choose(&load_set(cli, out)?, out)? {
                    Some(p) => p,
                    None => return Ok(exit::OK),
                },
                None => {
                    return Err(Error::Usage(
                        "name a profile: bprof run PROFILE (`bprof list` shows them; on a terminal, `bprof run` alone opens a picker)".into(),
                    ));
                }
            };
            let draft = run::make_plan(cli, &profile, *os, session, extra.clone(), !*dry_run, out)?;
            if *dry_run {
                return run::show_plan(&draft, out);
            }
            let plan = draft.approved()?;
            if picked {
                // the person sees what will run before it runs
                crate::terminal::eprint(&plan.to_text(), false);
                if !pick::confirm() {
                    out.note("nothing was run");
                    return Ok(exit::OK);
                }
            }
            run::run_plan(&plan, out)
        }
    }
}

#[cfg(test)]
mod definition_tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
