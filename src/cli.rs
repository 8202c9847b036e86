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
        /// Plan as `run --configure` would.
        #[arg(long)]
        configure: bool,
        /// Plan as `run --port N` would.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        port: Option<u16>,
        /// Plan as `run --tunnel-only` would.
        #[arg(long)]
        tunnel_only: bool,
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
        /// Add --configure for this run (rdp: sign in as another Entra user).
        #[arg(long)]
        configure: bool,
        /// The local port of the tunnel.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        port: Option<u16>,
        /// Open the tunnel alone and wait for Ctrl-C.
        #[arg(long)]
        tunnel_only: bool,
        /// Appended to the connect step's az options (before ssh's `--`).
        #[arg(last = true, value_name = "EXTRA")]
        extra: Vec<String>,
    },
    /// Check profile files: every problem, not just the first.
    Validate {
        /// Files or directories (default: the discovered set).
        paths: Vec<PathBuf>,
    },
    /// Print the JSON schema of profile files.
    Schema,
    /// List the templates, or print one as YAML.
    Templates { name: Option<String> },
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
            Error::Load(_) | Error::Resolve(ResolveError::UnknownProfile { .. }) => exit::NO_INPUT,
            Error::Run(RunError::Missing { .. }) => exit::UNAVAILABLE,
            Error::Run(RunError::Spawn { .. }) => exit::UNAVAILABLE,
            Error::Run(RunError::StepFailed { code, .. }) => pass_through(*code),
            Error::Run(RunError::Interrupted { signal }) => interrupted_code(*signal),
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
        Command::Templates { name } => templates(name.as_deref(), out),
        Command::Validate { paths } => validate(cli, paths, out),
        Command::List => list(&load_set(cli)?, out),
        Command::Show { profile } => {
            let set = load_set(cli)?;
            show(&resolve::resolve(&set, profile)?, out)
        }
        Command::Plan {
            profile,
            os,
            configure,
            port,
            tunnel_only,
        } => {
            let set = load_set(cli)?;
            let p = resolve::resolve(&set, profile)?;
            let opts = plan_options(
                &p,
                os.unwrap_or_else(Os::current),
                *configure,
                *port,
                *tunnel_only,
                Vec::new(),
            )?;
            show_plan(&plan::build(&set, &p, &opts)?, out)
        }
        Command::Run {
            profile,
            dry_run,
            os,
            configure,
            port,
            tunnel_only,
            extra,
        } => {
            let set = load_set(cli)?;
            let p = resolve::resolve(&set, profile)?;
            let opts = plan_options(
                &p,
                os.unwrap_or_else(Os::current),
                *configure,
                *port,
                *tunnel_only,
                extra.clone(),
            )?;
            let plan = plan::build(&set, &p, &opts)?;
            if *dry_run {
                return show_plan(&plan, out);
            }
            run_plan(&plan, out)
        }
    }
}

fn plan_options(
    p: &Profile,
    os: Os,
    configure: bool,
    port: Option<u16>,
    tunnel_only: bool,
    extra: Vec<String>,
) -> Result<PlanOptions, Error> {
    if configure && p.mode != crate::raw::Mode::Rdp {
        return Err(Error::Usage(format!(
            "--configure is an rdp option, and profile `{}` has mode {}",
            p.name,
            resolve::mode_name(p.mode)
        )));
    }
    if port.is_some() && !plan::uses_tunnel(p, os, tunnel_only) {
        return Err(Error::Usage(format!(
            "--port sets the local end of a tunnel, and profile `{}` opens none on {} (add --tunnel-only to open one)",
            p.name,
            os.name()
        )));
    }
    Ok(PlanOptions {
        os,
        configure,
        port,
        extra,
        tunnel_only,
        signed_in: crate::signin::is_signed_in(&p.bastion.subscription),
    })
}

fn show_plan(plan: &plan::Plan, out: &Out) -> Result<i32, Error> {
    match out.format {
        Format::Json => print_json(&plan.to_json())?,
        Format::Text => print(&plan.to_text())?,
    }
    Ok(exit::OK)
}

fn run_plan(plan: &plan::Plan, out: &Out) -> Result<i32, Error> {
    let signals = Signals::install();
    if out.verbose {
        eprint!("{}", plan.to_text());
    }
    let code = run::execute(plan, &signals, &mut |_step, child| {
        // issue 3 puts the wait and the RDP client here; for now the tunnel runs in the
        // foreground until it ends or Ctrl-C
        child.wait(&signals)
    })?;
    if code != 0 {
        return Err(Error::Run(RunError::StepFailed {
            step: "connect".into(),
            code,
        }));
    }
    Ok(exit::OK)
}

fn templates(name: Option<&str>, out: &Out) -> Result<i32, Error> {
    match name {
        Some(n) => match crate::template::builtin_yaml(n) {
            Some(y) => print(&y)?,
            None => {
                return Err(Error::Usage(format!(
                    "no built-in template `{n}`; the built-in templates are rdp, ssh and tunnel"
                )));
            }
        },
        None => {
            if out.format == Format::Json {
                let list: Vec<Value> = crate::template::BUILTIN
                    .iter()
                    .map(|(n, about, steps)| json!({"name": n, "description": about, "steps": steps}))
                    .collect();
                print_json(&Value::Array(list))?;
            } else {
                let mut text = String::new();
                for (n, about, _) in crate::template::BUILTIN {
                    text.push_str(&format!("{n:<8} {about}\n"));
                }
                text.push_str("\n`bprof templates NAME` prints one as YAML.\n");
                print(&text)?;
            }
        }
    }
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
    let problems = match load::load(&src) {
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

fn show(p: &Profile, out: &Out) -> Result<i32, Error> {
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
    let origin = |field: &str| {
        p.origins
            .get(field)
            .cloned()
            .unwrap_or(resolve::Origin::BuiltIn)
    };
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
