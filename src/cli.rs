//! The command line: flags (clap), dispatch, output (text or JSON on stdout, diagnostics on
//! stderr) and exit codes.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::diag::Problem;
use crate::load::{self, LoadError, ProfileSet, Section, Sources};
use crate::plan::{self, Os, PlanOptions};
use crate::resolve::{self, Profile, ResolveError};
use crate::run::{self, RunError, Signals};
use crate::template::TemplateError;

/// Exit codes (see the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const USAGE: i32 = 64;
    pub const DATA: i32 = 65;
    pub const NO_INPUT: i32 = 66;
    pub const UNAVAILABLE: i32 = 69;
    pub const SOFTWARE: i32 = 70;
    pub const CANT_CREATE: i32 = 73;
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, Parser)]
#[command(
    name = "bprof",
    version,
    about = "Azure Bastion connection profiles: validated, planned and run",
    long_about = "Azure Bastion connection profiles: validated, planned and run.\n\n\
        Profiles are YAML files (tenants, bastions, vms, profiles) found through --profiles, \
        BPROF_PROFILES, or the nearest profiles/ directory. `bprof run NAME --dry-run` shows \
        exactly what would run."
)]
pub struct Cli {
    /// Profile files or directories (repeatable); default: BPROF_PROFILES, then the nearest
    /// profiles/ directory upwards.
    #[arg(long = "profiles", global = true, value_name = "PATH")]
    pub profiles: Vec<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// When to color diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Say more on stderr.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Say only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
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
    List,
    /// Show a profile's effective values, each with the file:line it came from.
    Show { profile: String },
    /// Print the exact steps `run` would execute; nothing is executed.
    Plan {
        profile: String,
        /// Plan for another system (default: this one).
        #[arg(long, value_enum)]
        os: Option<Os>,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Execute a profile's plan.
    Run {
        profile: String,
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
    /// Write .rdp files for teammates (the local end of the profile's tunnel; never a secret).
    Rdp {
        /// The profile (not with --all).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
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
    },
    /// Check profile files: every problem, not just the first.
    Validate {
        /// Files or directories (default: the discovered set).
        paths: Vec<PathBuf>,
    },
    /// Scaffold a profile directory: a commented example, the schema, the .gitignore line.
    Init {
        /// The directory (default: ./profiles).
        dir: Option<PathBuf>,
        /// Replace an existing example.yaml.
        #[arg(long)]
        force: bool,
    },
    /// Print the JSON schema of profile files.
    Schema,
    /// List the templates, or print one as YAML.
    Templates { name: Option<String> },
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
    Template(#[from] TemplateError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Write(#[from] crate::write::WriteError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Load(LoadError::Invalid(_))
            | Error::Resolve(ResolveError::Invalid { .. })
            | Error::Template(_) => exit::DATA,
            Error::Load(LoadError::Panicked) => exit::SOFTWARE,
            Error::Load(_) | Error::Resolve(ResolveError::UnknownProfile { .. }) => exit::NO_INPUT,
            Error::Run(RunError::Missing { .. }) => exit::UNAVAILABLE,
            Error::Run(RunError::Spawn { .. }) => exit::UNAVAILABLE,
            Error::Run(RunError::StepFailed { code, .. }) => pass_through(*code),
            Error::Run(RunError::Interrupted { signal }) => interrupted_code(*signal),
            Error::Run(RunError::TunnelExited { code } | RunError::TunnelDied { code, .. }) => {
                pass_through(*code)
            }
            Error::Run(RunError::TunnelTimeout { .. } | RunError::PortBusy { .. }) => {
                exit::UNAVAILABLE
            }
            Error::Write(_) | Error::Run(RunError::Write(_)) => exit::CANT_CREATE,
            Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
            Error::Output(_) => exit::CANT_CREATE,
        }
    }
}

/// az's failing status, passed on unchanged when it is in 1..=63; a status that would read as
/// one of bprof's own codes (64 and up) becomes 1, and is printed.
pub fn pass_through(code: i32) -> i32 {
    if (1..=63).contains(&code) { code } else { 1 }
}

fn interrupted_code(signal: i32) -> i32 {
    #[cfg(unix)]
    if signal != libc::SIGINT {
        return 128 + signal;
    }
    let _ = signal;
    exit::INTERRUPTED
}

/// How diagnostics are printed.
pub struct Out {
    pub color: bool,
    pub quiet: bool,
    pub verbose: bool,
    pub format: Format,
}

impl Out {
    fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    fn problems(&self, problems: &[Problem]) {
        for p in problems {
            eprint!("{}", p.render(self.color));
        }
    }

    fn error(&self, e: &Error) {
        let (red, bold, reset) = if self.color {
            ("\x1b[1;31m", "\x1b[1m", "\x1b[0m")
        } else {
            ("", "", "")
        };
        match e {
            Error::Load(LoadError::Invalid(problems))
            | Error::Resolve(ResolveError::Invalid { problems, .. }) => {
                self.problems(problems);
                eprintln!("{red}error{reset}{bold}: {e}{reset}; nothing was run");
            }
            other => {
                eprintln!("{red}error{reset}{bold}: {other}{reset}");
                let hint = match other {
                    Error::Load(l) => l.hint().map(str::to_string),
                    Error::Resolve(ResolveError::UnknownProfile { suggestions, .. })
                        if !suggestions.is_empty() =>
                    {
                        Some(format!(
                            "did you mean {}?",
                            suggestions
                                .iter()
                                .map(|s| format!("`{s}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }
                    Error::Resolve(ResolveError::UnknownProfile { .. }) => {
                        Some("`bprof list` shows the profiles".into())
                    }
                    Error::Template(t) => Some(t.hint()),
                    Error::Run(r) => r.hint(),
                    Error::Write(r) => Some(r.hint().to_string()),
                    _ => None,
                };
                if let Some(h) = hint {
                    eprintln!("  {bold}help{reset}: {h}");
                }
                if let Error::Run(RunError::StepFailed { code, .. }) = other
                    && pass_through(*code) != *code
                {
                    eprintln!(
                        "  note: bprof exits 1 for it, since {code} is one of bprof's own exit codes"
                    );
                }
            }
        }
    }
}

fn color_enabled(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    }
}

/// Runs bprof with these arguments; returns the exit code.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    // a panic is a bug in bprof: say so, and exit 70 as documented (not Rust's 101)
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error in bprof (a bug: please report it): {info}");
    }));
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    std::panic::catch_unwind(|| run_cli(args)).unwrap_or(exit::SOFTWARE)
}

fn run_cli(args: Vec<std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
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
    match dispatch(&cli, &out) {
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

fn print(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn print_json(v: &Value) -> Result<(), Error> {
    print(&format!(
        "{}\n",
        serde_json::to_string_pretty(v).unwrap_or_default()
    ))
}

fn load_set(cli: &Cli) -> Result<ProfileSet, Error> {
    Ok(load::load(&Sources::from_env(cli.profiles.clone()))?)
}

fn dispatch(cli: &Cli, out: &Out) -> Result<i32, Error> {
    match &cli.command {
        Command::Schema => {
            print(&crate::schema::schema_text())?;
            Ok(exit::OK)
        }
        Command::Templates { name } => templates(cli, name.as_deref(), out),
        Command::Validate { paths } => validate(cli, paths, out),
        Command::List => list(&load_set(cli)?, out),
        Command::Init { dir, force } => {
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from("profiles"));
            for written in crate::init::scaffold(&dir, *force)? {
                out.note(&format!("wrote {}", written.display()));
            }
            out.note(&format!(
                "next: edit {}, then `bprof validate` and `bprof run my-jumpbox --dry-run`",
                dir.join("example.yaml").display()
            ));
            Ok(exit::OK)
        }
        Command::Rdp {
            profile,
            all,
            output,
            force,
        } => rdp_files(
            &load_set(cli)?,
            profile.as_deref(),
            *all,
            output.as_ref(),
            *force,
            out,
        ),
        Command::Show { profile } => {
            let set = load_set(cli)?;
            show(&set, &resolve::resolve(&set, profile)?, out)
        }
        Command::Plan {
            profile,
            os,
            session,
        } => {
            let plan = make_plan(cli, profile, *os, session, Vec::new(), false, out)?;
            show_plan(&plan, out)
        }
        Command::Run {
            profile,
            dry_run,
            os,
            session,
            extra,
        } => {
            let plan = make_plan(cli, profile, *os, session, extra.clone(), !*dry_run, out)?;
            if *dry_run {
                return show_plan(&plan, out);
            }
            run_plan(&plan, out)
        }
    }
}

/// Loads the set, resolves the profile and builds its plan for `run` (`for_run`: check that
/// the local port is free) or `plan`.
fn make_plan(
    cli: &Cli,
    profile: &str,
    os: Option<Os>,
    session: &SessionArgs,
    extra: Vec<String>,
    for_run: bool,
    out: &Out,
) -> Result<plan::Plan, Error> {
    let set = load_set(cli)?;
    let p = resolve::resolve(&set, profile)?;
    let os = os.unwrap_or_else(Os::current);
    let SessionArgs {
        configure,
        port,
        tunnel_only,
    } = *session;
    if configure && p.mode != crate::raw::Mode::Rdp {
        return Err(Error::Usage(format!(
            "--configure is an rdp option, and profile `{}` has mode {}",
            p.name,
            resolve::mode_name(p.mode)
        )));
    }
    if port.is_some() && !plan::uses_tunnel(&p, os, tunnel_only) {
        return Err(Error::Usage(format!(
            "--port sets the local end of a tunnel, and profile `{}` opens none on {} (add --tunnel-only to open one)",
            p.name,
            os.name()
        )));
    }
    let opts = PlanOptions {
        os,
        configure,
        port: choose_port(&p, os, port, tunnel_only, for_run, out)?,
        extra,
        tunnel_only,
        signed_in: crate::signin::is_signed_in(&p.bastion.subscription),
    };
    Ok(plan::build(&set, &p, &opts)?)
}

fn show_plan(plan: &plan::Plan, out: &Out) -> Result<i32, Error> {
    match out.format {
        Format::Json => print_json(&plan.to_json())?,
        Format::Text => print(&plan.to_text())?,
    }
    Ok(exit::OK)
}

fn run_plan(plan: &plan::Plan, out: &Out) -> Result<i32, Error> {
    // a missing RDP client is found before the tunnel starts
    for step in plan
        .steps
        .iter()
        .filter(|s| s.kind == plan::StepKind::Client)
    {
        if let Some(program) = step.argv.first() {
            run::resolve_program(program)?;
        }
        if let Some(note) = &step.detail {
            out.note(&format!("bprof: note: {note}"));
        }
    }
    let signals = Signals::install();
    if out.verbose {
        eprint!("{}", plan.to_text());
    }
    Ok(run::execute(plan, &signals, out.quiet)?)
}

/// The local port of a tunnel: `--port`, the profile's, or (auto) the derived one, or a free
/// one when that is busy. On Linux and macOS a port below 1024 is refused (binding it needs
/// root). Busy ports are checked by `run` only.
fn choose_port(
    p: &Profile,
    os: Os,
    requested: Option<u16>,
    tunnel_only: bool,
    for_run: bool,
    out: &Out,
) -> Result<Option<u16>, Error> {
    if !plan::uses_tunnel(p, os, tunnel_only) {
        return Ok(requested);
    }
    let port = plan::local_port(p, requested);
    if os != Os::Windows && port < 1024 {
        return Err(Error::Usage(format!(
            "local port {port} is below 1024: binding it needs root on {}; use a port from 1024 up, or `auto`",
            os.name()
        )));
    }
    // plans show the configured (or derived) port; only a run checks that it is free
    if !for_run || port_is_free(port) {
        return Ok(Some(port));
    }
    let derived = requested.is_none() && matches!(p.local_port, crate::raw::LocalPort::Auto(_));
    if !derived || tunnel_only {
        return Err(RunError::PortBusy { port, derived }.into());
    }
    let free = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|_| RunError::PortBusy { port, derived })?;
    out.note(&format!(
        "bprof: port {port} (derived from the profile name) is busy; using {free} for this run"
    ));
    Ok(Some(free))
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// `bprof rdp`: one .rdp file (or stdout), or one per rdp profile with --all.
fn rdp_files(
    set: &ProfileSet,
    profile: Option<&str>,
    all: bool,
    output: Option<&PathBuf>,
    force: bool,
    out: &Out,
) -> Result<i32, Error> {
    let render = |p: &Profile| {
        let port = plan::local_port(p, None);
        crate::rdp::encode(&crate::rdp::lines(p, port))
    };
    let tunnel_hint = |set: &ProfileSet, p: &Profile| {
        let opts = PlanOptions {
            os: Os::current(),
            configure: false,
            port: None,
            extra: Vec::new(),
            tunnel_only: true,
            signed_in: true,
        };
        let raw = plan::build(set, p, &opts)
            .ok()
            .and_then(|pl| {
                pl.steps
                    .into_iter()
                    .find(|s| matches!(s.kind, plan::StepKind::Tunnel { .. }))
            })
            .map(|s| crate::shell::join(&s.argv, Os::current() == Os::Windows))
            .unwrap_or_default();
        format!(
            "  open its tunnel first: bprof run {} --tunnel-only
  (or, without bprof: {raw})",
            p.name
        )
    };
    if all {
        let Some(dir) = output else {
            return Err(Error::Usage("rdp --all needs -o DIR".into()));
        };
        if dir.exists() && !dir.is_dir() {
            return Err(Error::Usage(format!(
                "{}: not a directory (rdp --all -o DIR writes one file per rdp profile into DIR)",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|source| crate::write::WriteError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        let mut failed = None;
        let mut count = 0;
        for name in set.names(Section::Profiles) {
            let p = match resolve::resolve(set, name) {
                Ok(p) if p.mode == crate::raw::Mode::Rdp => p,
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("error: {name}: {e} (see `bprof validate`)");
                    failed.get_or_insert(exit::DATA);
                    continue;
                }
            };
            let path = dir.join(format!("{name}.rdp"));
            match crate::write::write_atomic(&path, &render(&p), force, false) {
                Ok(()) => {
                    count += 1;
                    out.note(&format!("wrote {}", path.display()));
                }
                Err(e) => {
                    eprintln!("error: {e}: {}", e.hint());
                    failed.get_or_insert(exit::CANT_CREATE);
                }
            }
        }
        out.note(&format!("{count} .rdp file{} written; each needs its profile's tunnel: bprof run PROFILE --tunnel-only", if count == 1 { "" } else { "s" }));
        return Ok(failed.unwrap_or(exit::OK));
    }
    let Some(name) = profile else {
        return Err(Error::Usage("name a profile, or use --all -o DIR".into()));
    };
    let p = resolve::resolve(set, name)?;
    if p.mode != crate::raw::Mode::Rdp {
        return Err(Error::Usage(format!(
            "profile `{name}` has mode {}: .rdp files are for rdp profiles",
            resolve::mode_name(p.mode)
        )));
    }
    let bytes = render(&p);
    match output.map(|o| o.as_os_str().to_string_lossy().into_owned()) {
        Some(ref dash) if dash == "-" => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes)?;
            stdout.flush()?;
        }
        other => {
            let path = other
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(format!("{name}.rdp")));
            crate::write::write_atomic(&path, &bytes, force, false)?;
            out.note(&format!("wrote {}", path.display()));
        }
    }
    out.note(&tunnel_hint(set, &p));
    Ok(exit::OK)
}

/// `bprof templates [NAME]`: the built-in templates and, when a profile set is found, its own.
fn templates(cli: &Cli, name: Option<&str>, out: &Out) -> Result<i32, Error> {
    // templates need no profile set; a set that cannot be loaded only hides its own templates
    let set = load_set(cli).ok();
    let user: Vec<&str> = set
        .iter()
        .flat_map(|s| s.names(Section::Templates))
        .collect();
    if let Some(n) = name {
        let text = set
            .as_ref()
            .and_then(|s| crate::template::user_yaml(s, n))
            .or_else(|| crate::template::builtin_yaml(n));
        return match text {
            Some(y) => {
                print(&y)?;
                Ok(exit::OK)
            }
            None => {
                let mut known = vec!["rdp", "ssh", "tunnel"];
                known.extend(&user);
                Err(Error::Usage(format!(
                    "no template `{n}`; the templates are {}",
                    known.join(", ")
                )))
            }
        };
    }
    if out.format == Format::Json {
        let mut list: Vec<Value> = crate::template::BUILTIN
            .iter()
            .map(|(n, about, steps)| json!({"name": n, "description": about, "builtin": true, "steps": steps}))
            .collect();
        if let Some(set) = &set {
            for n in &user {
                let steps = crate::template::user_template(set, n).unwrap_or_default();
                list.push(
                    json!({"name": n, "description": null, "builtin": false, "steps": steps}),
                );
            }
        }
        print_json(&Value::Array(list))?;
        return Ok(exit::OK);
    }
    let mut text = String::new();
    for (n, about, _) in crate::template::BUILTIN {
        text.push_str(&format!("{n:<12} built-in: {about}\n"));
    }
    if let Some(set) = &set {
        for n in &user {
            let at = set
                .entry(Section::Templates, n)
                .and_then(|e| e.defs.last())
                .map(|d| set.file(d).location(&d.pointer))
                .unwrap_or_default();
            text.push_str(&format!("{n:<12} {at}\n"));
        }
    }
    text.push_str("\n`bprof templates NAME` prints one as YAML.\n");
    print(&text)?;
    Ok(exit::OK)
}

fn validate(cli: &Cli, paths: &[PathBuf], out: &Out) -> Result<i32, Error> {
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
        Ok(set) => resolve::validate_all(&set),
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
        eprintln!(
            "{} problem{} in {count} file{}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            if count == 1 { "" } else { "s" }
        );
    }
    Ok(if problems.is_empty() {
        exit::OK
    } else {
        exit::DATA
    })
}

fn list(set: &ProfileSet, out: &Out) -> Result<i32, Error> {
    let mut rows = Vec::new();
    for name in set.names(Section::Profiles) {
        // list shows what each profile says (inherited values included), without failing on
        // another profile's problem: `validate` reports those
        let row = match resolve::resolve(set, name) {
            Ok(p) => json!({
                "name": p.name,
                "mode": resolve::mode_name(p.mode),
                "vm": p.vm.key,
                "bastion": p.bastion.key,
                "tenant": p.tenant.name,
                "description": p.description,
                "file": p.defined_at.rsplit_once(':').map(|(f, _)| f).unwrap_or(&p.defined_at),
            }),
            Err(_) => {
                let def = &set
                    .entry(Section::Profiles, name)
                    .map(|e| e.defs[0].clone());
                let file = def
                    .as_ref()
                    .map(|d| set.file(d).display.clone())
                    .unwrap_or_default();
                json!({"name": name, "mode": null, "vm": null, "bastion": null, "tenant": null, "description": "(invalid: see `bprof validate`)", "file": file})
            }
        };
        rows.push(row);
    }
    if out.format == Format::Json {
        print_json(&Value::Array(rows))?;
        return Ok(exit::OK);
    }
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let headers = ["NAME", "MODE", "VM", "BASTION", "TENANT", "DESCRIPTION"];
    let keys = ["name", "mode", "vm", "bastion", "tenant", "description"];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| keys.iter().map(|k| s(&r[*k])).collect())
        .collect();
    let widths: Vec<usize> = (0..keys.len())
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    text.push_str(&line(headers.to_vec()));
    for r in &table {
        text.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    print(&text)?;
    Ok(exit::OK)
}

fn show(set: &ProfileSet, p: &Profile, out: &Out) -> Result<i32, Error> {
    let mut effective = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut effective {
        map.retain(|_, v| !v.is_null());
        if let Some(Value::Object(rdp)) = map.get_mut("rdp") {
            rdp.retain(|k, v| {
                !(v.is_null() || k == "properties" && v.as_object().is_some_and(|o| o.is_empty()))
            });
        }
        map.insert("bastion".into(), Value::String(p.bastion.key.clone()));
        map.insert("vm".into(), Value::String(p.vm.key.clone()));
        let target = if let Some(ip) = &p.vm.ip {
            ("vm_ip", Value::String(ip.clone()))
        } else {
            ("vm_resource_id", Value::String(p.vm.resource_id.clone()))
        };
        let mut resolved = json!({
            "tenant_id": p.tenant.id,
            "subscription": p.bastion.subscription,
            "bastion_name": p.bastion.name,
            "bastion_resource_group": p.bastion.resource_group,
        });
        resolved[target.0] = target.1;
        map.insert("resolved".into(), resolved);
    }
    if out.format == Format::Json {
        print_json(&effective)?;
        return Ok(exit::OK);
    }
    let mut text = format!("# profile `{}`, defined at {}\n", p.name, p.defined_at);
    let origin = |field: &str| p.origin(set, field);
    if let Value::Object(map) = &effective {
        for (k, v) in map {
            if k == "resolved" || k == "name" {
                continue;
            }
            match v {
                Value::Object(sub) if k == "rdp" => {
                    if sub.is_empty() {
                        continue;
                    }
                    text.push_str("rdp:\n");
                    for (sk, sv) in sub {
                        let path = format!("rdp.{sk}");
                        text.push_str(&format!("  {sk}: {}  # {}\n", inline(sv), origin(&path)));
                    }
                }
                _ => text.push_str(&format!("{k}: {}  # {}\n", inline(v), origin(k))),
            }
        }
        text.push_str("# resolved\n");
        if let Some(Value::Object(r)) = map.get("resolved") {
            for (k, v) in r {
                text.push_str(&format!("#   {k}: {}\n", inline(v)));
            }
        }
    }
    print(&text)?;
    Ok(exit::OK)
}

fn inline(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
