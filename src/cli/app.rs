//! From argv to an exit code: parse the command line, read the settings once, dispatch, and
//! say what ended the command.

use super::output::{Out, color_enabled};
use super::{Cli, Command, Error, Format, Settings, completions, dispatch, exit, trust};
use std::path::Path;

use crate::profile::load::{self, ProfileSet};

/// Runs bprof with these arguments; returns the exit code.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    // a shell asking for completions (`BPROF_COMPLETE=SHELL`): answered, then bprof exits
    {
        clap_complete::CompleteEnv::with_factory(super::command)
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
    let parsed = super::command()
        .try_get_matches_from(args)
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let mut cli = match parsed {
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
        check_format(&cli)?;
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
    let sources = cli.settings.sources(cli.profiles.clone());
    let set = load::load(&sources)?;
    if out.verbose {
        out.note(&files_read(&sources, &set));
    }
    if !out.quiet {
        out.problems(&set.warnings);
    }
    Ok(set)
}

/// `-v`: which profile files were read, and why those: the flag, the variable, or the nearest
/// `profiles/` directory found upwards.
fn files_read(sources: &load::Sources, set: &ProfileSet) -> String {
    let why = if !sources.paths.is_empty() {
        "named by --profiles".to_string()
    } else if sources.env.is_some() {
        "named by BPROF_PROFILES".to_string()
    } else {
        format!(
            "the nearest profiles/ directory upwards from {}",
            load::display_path(&sources.cwd, Path::new("/"), sources.home.as_deref())
        )
    };
    let mut text = format!("bprof: profile files ({why}):");
    for f in &set.files {
        let kind = match f.kind {
            load::FileKind::Shared => "shared",
            load::FileKind::Override => "personal override, grants nothing",
            load::FileKind::User => "your config",
        };
        text.push_str(&format!("\n  {} ({kind})", f.display));
    }
    text
}

/// Whether a command has the output form `--format` asks for: JSON for the commands the spec
/// gives a JSON shape, GitHub annotations for `validate` only.
fn check_format(cli: &Cli) -> Result<(), Error> {
    let json = match &cli.command {
        Command::Run(run) => run.dry_run,
        Command::Init(_)
        | Command::Proxy(_)
        | Command::SshConfig(_)
        | Command::SshCert(_)
        | Command::Rdp(_)
        | Command::Completions(_)
        | Command::Import(_)
        | Command::Manpages(_) => false,
        Command::Templates(t) => t.name.is_none(),
        Command::Trust(t) => matches!(
            t.action,
            None | Some(trust::Action::List | trust::Action::Show { .. })
        ),
        _ => true,
    };
    let ok = match cli.format {
        Format::Text => true,
        Format::Json => json,
        Format::Github => matches!(cli.command, Command::Validate(_)),
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
