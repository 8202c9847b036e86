//! `bprof validate [PATH]...`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::output::print_json;
use super::{Cli, Error, Format, Out, exit};
use crate::plan::{self};
use crate::profile::diag::Problem;
use crate::profile::load::{self, Sources};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to check (default: the discovered set, with your overrides).
    ///
    /// Each is checked in the context of its set (the other shared files of its
    /// directory), without personal overrides (`*.local.yaml`, your user config), as CI
    /// sees the repository; problems of the named files are reported.
    pub paths: Vec<PathBuf>,
    /// Warnings fail too (exit 65): lints, consent requests, a user config that grants
    /// nothing.
    #[arg(long)]
    pub strict: bool,
}

/// `bprof validate [PATH]...`.
pub(super) fn run(cli: &Cli, args: &Args, out: &Out) -> Result<i32, Error> {
    let (paths, strict) = (&args.paths, args.strict);
    let src = cli.settings.sources(cli.profiles.clone());
    // `validate PATH...`: each named file in its set (the shared files of its directory), the
    // way CI sees the repository: no personal files; problems of the named files only
    let named: Option<Vec<String>> = (!paths.is_empty()).then(|| {
        paths
            .iter()
            .map(|p| load::display_path(p, &src.cwd, src.home.as_deref()))
            .collect()
    });
    let mut files = if paths.is_empty() {
        load::discover(&src)?
    } else {
        let named_src = Sources {
            paths: paths.to_vec(),
            env: None,
            cwd: src.cwd.clone(),
            home: src.home.clone(),
            user_config: None,
            trust_store: src.trust_store.clone(),
        };
        let mut files = load::discover(&named_src)?;
        // the context: the other shared files of each named file's directory
        for p in paths.iter().filter(|p| p.is_file()) {
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let ctx = Sources {
                paths: vec![dir],
                ..named_src.clone()
            };
            let same =
                |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => a == b,
                };
            for f in load::discover(&ctx).unwrap_or_default() {
                if !files.iter().any(|g| same(&g.path, &f.path)) {
                    files.push(f);
                }
            }
        }
        files.retain(|f| f.kind == load::FileKind::Shared);
        files
    };
    files.sort_by_key(|f| f.kind);
    let in_scope = |display: &str| match &named {
        None => true,
        Some(list) => list
            .iter()
            .any(|n| display == n || display.starts_with(&format!("{}/", n.trim_end_matches('/')))),
    };
    let count = files
        .iter()
        .filter(|f| in_scope(&load::display_path(&f.path, &src.cwd, src.home.as_deref())))
        .count();
    let problems = match load::load_files(&files, &src.cwd, src.home.as_deref()) {
        Ok(mut set) => {
            set.home = src.home.clone();
            load::attach_consents(&mut set, &src);
            let problems = plan::validate_all(&set);
            super::leave(set);
            problems
        }
        Err(e) => return Err(e.into()),
    };
    let problems: Vec<Problem> = problems.into_iter().filter(|p| in_scope(&p.file)).collect();
    let errors = problems.iter().filter(|p| strict || p.is_error()).count();
    let warnings = problems.len() - errors;
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    if out.format == Format::Json {
        let list: Vec<Value> = problems.iter().map(Problem::to_json).collect();
        print_json(&json!({"valid": errors == 0, "problems": list}))?;
    } else if out.format == Format::Github {
        let mut text = String::new();
        for p in &problems {
            text.push_str(&annotation(p, strict));
        }
        super::output::print(&text)?;
        out.note(&format!(
            "{} problem{} ({errors} failing)",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ));
    } else {
        out.problems(&problems);
        let files = plural(count, "file");
        let summary = match (errors, warnings) {
            (0, 0) => format!("{files} valid"),
            (0, w) => format!("{files} valid, with {}", plural(w, "warning")),
            (e, 0) => format!("{} in {files}", plural(e, "problem")),
            (e, w) => format!(
                "{} and {} in {files}",
                plural(e, "problem"),
                plural(w, "warning")
            ),
        };
        if errors == 0 {
            out.note(&summary);
        } else {
            crate::terminal::eprintln(&summary);
        }
    }
    Ok(if errors == 0 { exit::OK } else { exit::DATA })
}

/// One problem as a GitHub Actions workflow command (`::error file=F,line=L,col=C::MESSAGE`),
/// which the Actions runner shows as an annotation on the file's line. Values are escaped as
/// the runner expects (`%`, CR, LF; and `,` `:` in properties).
fn annotation(p: &Problem, strict: bool) -> String {
    let data = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let prop = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    let level = if p.is_error() || strict {
        "error"
    } else {
        "warning"
    };
    let message = match &p.help {
        Some(h) => format!("{} ({h})", p.message),
        None => p.message.clone(),
    };
    format!(
        "::{level} file={},line={},col={},title=bprof::{}\n",
        prop(&p.file),
        p.line,
        p.column,
        data(&message)
    )
}
