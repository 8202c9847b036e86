//! Finding and reading the profile files: discovery, size and encoding checks, YAML parsing,
//! the JSON schema, and the set of global names (with personal overrides on top).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::files::Special;
use crate::profile::diag::{self, Problem};
use crate::profile::yaml::SpanIndex;

pub use super::discover::*;
pub use super::extends::*;
pub use super::names::*;
pub use super::read::*;

/// Profile files larger than this are refused (by the bytes read: at most one more is read).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Errors of this layer. Data problems are collected, not returned one at a time.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "no profiles found: no --profiles, no BPROF_PROFILES, no `profiles/` directory in {start} or above, and no profiles/ beside your user config"
    )]
    NoProfiles { start: String },
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("reading the profile files failed unexpectedly (a bug: please report it)")]
    Panicked,
    #[error("{path}: is {what}, not a regular file or directory")]
    NotAFile { path: String, what: Special },
    #[error("{path}: the profiles directory found here is a symlink; bprof does not follow it")]
    DiscoveredLink { path: String },
    #[error("{path}: contains no .yaml or .yml files")]
    EmptyDir { path: String },
    #[error(
        "{path}: the profiles directory found here is not yours alone ({why}); bprof does not use it"
    )]
    UnsafeDiscovered { path: String, why: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl LoadError {
    /// bprof's exit code for it: 77 for a profile directory that is not the person's alone, 70
    /// for a bug, else 66 (the input is missing or cannot be read).
    pub fn exit_code(&self) -> i32 {
        match self {
            LoadError::Panicked => crate::exit::SOFTWARE,
            LoadError::UnsafeDiscovered { .. } => crate::exit::NO_PERMISSION,
            _ => crate::exit::NO_INPUT,
        }
    }

    pub fn hint(&self) -> Option<&'static str> {
        match self {
            LoadError::NoProfiles { .. } => Some(
                "point bprof at your profiles with --profiles DIR or BPROF_PROFILES, or create a profiles/ directory (bprof init)",
            ),
            LoadError::DiscoveredLink { .. } => Some(
                "bprof follows no link it finds on its own; if you trust it, name it with --profiles or BPROF_PROFILES",
            ),
            LoadError::UnsafeDiscovered { .. } => Some(
                "another user could have put it there (git refuses such directories too); if you mean it, name it with --profiles DIR",
            ),
            _ => None,
        }
    }
}

/// What a file is, and so what it may do. Shared files and `*.local.yaml` overrides arrive
/// through the repository (anyone can commit a `*.local.yaml`): they describe connections and
/// grant nothing. Only the user config file, while it is the person's own, grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    Shared,
    /// A `*.local.yaml` beside the shared files, or a user config file that may not grant.
    Override,
    /// The person's own config file (`$XDG_CONFIG_HOME/bprof/local.yaml`): it may define
    /// templates, list `allow_programs`, and its values are the person's own.
    User,
}

impl FileKind {
    /// Whether content of this file is the person's own (grants capabilities).
    pub fn trusted(self) -> bool {
        self == FileKind::User
    }
}

/// One profile file, read and parsed.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The path as shown in messages.
    pub display: String,
    pub text: String,
    pub value: Value,
    pub index: SpanIndex,
    pub kind: FileKind,
    /// Whether problems may quote its source lines: only for files named `*.yaml`/`*.yml`
    /// (and, for a link, its target too), so no line of another file is ever printed.
    pub excerpts: bool,
    /// The parts of the file that have problems, each with its first problem: what depends on
    /// them is refused, the rest of the file is used.
    pub broken: Vec<(Part, Problem)>,
    /// For a file that could not be read as a whole: the names it seems to define (its keys,
    /// read tolerantly), so that what may depend on it is refused with the reason.
    pub seems_to_define: Vec<Part>,
    /// Where its lines start, found at its first problem.
    pub lines: std::sync::OnceLock<crate::profile::diag::Lines>,
}

/// A part of a profile file: the whole of it, its `defaults`, or one named entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Whole,
    Defaults,
    Entry(Section, String),
}

impl Part {
    /// The part a problem at `pointer` spoils (None: nothing others depend on).
    pub fn of(pointer: &str) -> Option<Part> {
        let mut segs = pointer.split('/').skip(1).map(unescape_segment);
        match segs.next() {
            None => Some(Part::Whole),
            Some(top) => match top.as_str() {
                "defaults" => Some(Part::Defaults),
                "allow_programs" => None,
                other => match (Section::from_key(other), segs.next()) {
                    (Some(section), Some(name)) => Some(Part::Entry(section, name)),
                    _ => Some(Part::Whole),
                },
            },
        }
    }

    /// How the part is named in messages.
    pub fn describe(&self) -> String {
        match self {
            Part::Whole => "the file".into(),
            Part::Defaults => "`defaults`".into(),
            Part::Entry(section, name) => format!("{} `{name}`", section.noun()),
        }
    }
}

impl SourceFile {
    /// A problem at the key (`key = true`) or value written at `pointer` in this file.
    pub fn problem(&self, pointer: &str, key: bool, message: impl Into<String>) -> Problem {
        let pos = if key {
            self.index.key_pos(pointer)
        } else {
            self.index.value_pos(pointer)
        };
        let lines = self
            .lines
            .get_or_init(|| crate::profile::diag::Lines::of(&self.text));
        let p = Problem::in_lines(
            &self.display,
            &self.text,
            lines,
            pos,
            crate::profile::schema::human_path(&self.value, pointer),
            message,
        );
        let p = p.at_pointer(pointer);
        if self.excerpts {
            p
        } else {
            p.without_excerpt()
        }
    }

    /// `file:line` of the key at `pointer`.
    pub fn location(&self, pointer: &str) -> String {
        format!("{}:{}", self.display, self.index.key_pos(pointer).line)
    }
}

/// A file of the set, as discovery found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub kind: FileKind,
    /// The directory listing it came from (canonical), when it was not named itself: such an
    /// entry is read only when it is a regular file or a symlink to one inside the directory.
    pub listed_in: Option<PathBuf>,
}

impl Found {
    pub(crate) fn named(path: PathBuf, kind: FileKind) -> Found {
        Found {
            path,
            kind,
            listed_in: None,
        }
    }
}

/// Where profile files come from: the inputs of discovery.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--profiles` (or `validate PATH...`).
    pub paths: Vec<PathBuf>,
    /// `BPROF_PROFILES`.
    pub env: Option<std::ffi::OsString>,
    /// The directory to search upwards from for `profiles/`.
    pub cwd: PathBuf,
    /// The person's home directory (`~` in paths).
    pub home: Option<PathBuf>,
    /// The personal config file (`$XDG_CONFIG_HOME/bprof/local.yaml`), if any.
    pub user_config: Option<PathBuf>,
    /// The consent file beside it (`trust.json`), if any.
    pub trust_store: Option<PathBuf>,
}

/// The five kinds of named entries; names are global within each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Tenants,
    Bastions,
    Vms,
    Profiles,
    Templates,
}

impl Section {
    /// The section a top-level key names.
    pub fn from_key(key: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.key() == key)
    }

    pub const ALL: [Section; 5] = [
        Section::Tenants,
        Section::Bastions,
        Section::Vms,
        Section::Profiles,
        Section::Templates,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Section::Tenants => "tenants",
            Section::Bastions => "bastions",
            Section::Vms => "vms",
            Section::Profiles => "profiles",
            Section::Templates => "templates",
        }
    }

    /// Singular, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Section::Tenants => "tenant",
            Section::Bastions => "bastion",
            Section::Vms => "vm",
            Section::Profiles => "profile",
            Section::Templates => "template",
        }
    }
}

/// Where something is written: a file of the set and a JSON pointer in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Def {
    pub file: usize,
    pub pointer: String,
}

/// A named entry: its shared definition and the personal overrides on top, in order.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub defs: Vec<Def>,
}

/// The loaded set: files, names, defaults, and what overrides allow.
#[derive(Debug, Default)]
pub struct ProfileSet {
    pub files: Vec<SourceFile>,
    /// The paths the set was selected by ([`roots`]), absolute: `bprof proxy` in a
    /// ProxyCommand is given the same (empty for a set loaded from named files).
    pub selection: Vec<PathBuf>,
    /// The person's home directory (`~` in `ssh_key`), from the sources.
    pub home: Option<PathBuf>,
    pub sections: BTreeMap<Section, BTreeMap<String, Entry>>,
    /// `defaults` layers, shared first, then overrides.
    pub defaults: Vec<Def>,
    /// Programs the person's own user config allows besides `az`, for their own templates.
    pub allow_programs: Vec<String>,
    /// The consents the person has recorded (`bprof trust`).
    pub consents: crate::profile::trust::Consents,
    /// Problems that do not stop anything (a user config that grants nothing, and why).
    pub warnings: Vec<Problem>,
    /// Every problem found while loading, sorted by file and line (`validate` reports them;
    /// other commands use what does not depend on them).
    pub problems: Vec<Problem>,
    /// Names that cannot be used, each with the problems that spoil it: a broken entry, a
    /// name defined twice, a name a file that could not be read seems to define.
    pub broken: BTreeMap<(Section, String), Vec<Problem>>,
    /// Problems that refuse every profile: broken `defaults` (every profile inherits them), a
    /// personal file that could not be read (it may change anything).
    pub blockers: Vec<Problem>,
    /// Profiles whose `extends` chain is a cycle or deeper than [`MAX_EXTENDS`], each with the
    /// one problem that says so (one per cycle, one per chain).
    pub bad_chains: BTreeMap<String, Problem>,
    /// Bastions and vms as resolved for the profiles so far (many profiles share each).
    pub(crate) resolved: crate::profile::resolve::Cache,
}

/// `Value::pointer` (RFC 6901, the same rules), without allocating for segments that need no
/// unescaping: entries are looked up this way for every profile resolved.
pub fn pointer<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(value);
    }
    let rest = pointer.strip_prefix('/')?;
    let mut target = value;
    for token in rest.split('/') {
        let unescaped;
        let token = if token.contains('~') {
            unescaped = token.replace("~1", "/").replace("~0", "~");
            unescaped.as_str()
        } else {
            token
        };
        target = match target {
            Value::Object(map) => map.get(token)?,
            Value::Array(list) => {
                if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
                    return None;
                }
                list.get(token.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(target)
}

/// How deep an `extends` chain may go: a profile and at most this many ancestors' links.
pub const MAX_EXTENDS: usize = 32;

impl ProfileSet {
    pub fn value(&self, def: &Def) -> Option<&Value> {
        pointer(&self.files.get(def.file)?.value, &def.pointer)
    }

    pub fn file(&self, def: &Def) -> &SourceFile {
        &self.files[def.file]
    }

    pub fn names(&self, section: Section) -> impl Iterator<Item = &str> {
        self.sections
            .get(&section)
            .into_iter()
            .flat_map(|m| m.keys().map(String::as_str))
    }

    pub fn entry(&self, section: Section, name: &str) -> Option<&Entry> {
        self.sections.get(&section)?.get(name)
    }

    /// Why `name` cannot be used, when it cannot: the problems of its definition.
    pub fn unusable(&self, section: Section, name: &str) -> Option<&[Problem]> {
        self.broken
            .get(&(section, name.to_string()))
            .map(Vec::as_slice)
    }

    pub(crate) fn spoil(&mut self, section: Section, name: &str, why: Problem) {
        self.broken
            .entry((section, name.to_string()))
            .or_default()
            .push(why);
    }

    /// The set as the shared files alone say it: no `*.local.yaml`, no user config (what
    /// teammates have too). Entries only personal files define are gone.
    pub fn shared_only(mut self) -> ProfileSet {
        let files = &self.files;
        let shared = |d: &Def| {
            files
                .get(d.file)
                .is_some_and(|f| f.kind == FileKind::Shared)
        };
        for table in self.sections.values_mut() {
            for entry in table.values_mut() {
                entry.defs.retain(shared);
            }
            table.retain(|_, e| !e.defs.is_empty());
        }
        self.defaults.retain(shared);
        self.allow_programs.clear();
        self.resolved = Default::default();
        self
    }
}

/// One file read: the file (None when it has problems) and its problems.
type FileResult = (Option<SourceFile>, Vec<Problem>);

/// Loads every file of the set; all problems at once.
pub fn load(src: &Sources) -> Result<ProfileSet, LoadError> {
    let roots = roots(src)?;
    let mut set = load_files(&discover_in(src, &roots)?, &src.cwd, src.home.as_deref())?;
    // absolute, so that a ProxyCommand run from any directory selects the same set
    set.selection = roots
        .iter()
        .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| src.cwd.join(r)))
        .collect();
    set.home = src.home.clone();
    attach_consents(&mut set, src);
    Ok(set)
}

/// Reads the person's recorded consents into the set (a file that is not theirs alone is
/// ignored, with a warning).
pub fn attach_consents(set: &mut ProfileSet, src: &Sources) {
    set.consents = crate::profile::trust::Consents::load(src.trust_store.clone());
    if let (Some(why), Some(path)) = (&set.consents.ignored, &set.consents.path) {
        set.warnings.push(
            Problem::file_level(
                &display_path(path, &src.cwd, src.home.as_deref()),
                format!("your recorded consents are ignored: {why}"),
            )
            .warning()
                .with_help("consents are read only from a file that is yours alone; `bprof trust allow` writes it"),
        );
    }
}

/// Loads these files (from [`discover`]); paths are shown relative to `cwd`.
pub fn load_files(
    paths: &[Found],
    cwd: &Path,
    home: Option<&Path>,
) -> Result<ProfileSet, LoadError> {
    let left_out = &over_budget(paths, cwd, home);
    // files are parsed on all cores; their order (and so precedence) is kept
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(paths.len().max(1));
    let chunk = paths.len().div_ceil(threads).max(1);
    let results: Vec<Result<FileResult, LoadError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|found| {
                            let mut problems = Vec::new();
                            let display = display_path(&found.path, cwd, home);
                            if let Some(why) = left_out.iter().find(|(p, _)| *p == found.path) {
                                // not read at all: broken, defining nothing, named in one problem
                                let f = unreadable(
                                    found,
                                    display,
                                    String::new(),
                                    false,
                                    std::slice::from_ref(&why.1),
                                );
                                problems.push(why.1.clone());
                                return Ok((Some(f), problems));
                            }
                            let f = read_found(found, display, &mut problems)?;
                            Ok((f, problems))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| vec![Err(LoadError::Panicked)]))
            .collect()
    });
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for r in results {
        let (f, p) = r?;
        problems.extend(p);
        files.extend(f);
    }
    problems.extend(cap_nodes(&mut files, MAX_SET_NODES));
    let mut set = assemble(files, &mut problems);
    diag::sort(&mut problems);
    set.problems = problems;
    Ok(set)
}

/// The whole set is read up to this many bytes (each file up to [`MAX_FILE_BYTES`]).
pub const MAX_SET_BYTES: u64 = 64 * 1024 * 1024;

/// The whole set holds at most this many YAML nodes (each file at most 500,000): far above a
/// legitimate set of 100,000 profiles.
pub const MAX_SET_NODES: usize = 4_000_000;

/// Past `cap` nodes in all (counted in the files' order, so the outcome does not depend on
/// which thread read what), the files that follow are left out as broken: one problem names
/// them, and what does not use them works.
fn cap_nodes(files: &mut [SourceFile], cap: usize) -> Vec<Problem> {
    let mut total: usize = 0;
    let mut left_out: Vec<usize> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        total = total.saturating_add(f.index.len());
        if total > cap {
            left_out.push(i);
        }
    }
    let Some(&first) = left_out.first() else {
        return Vec::new();
    };
    let names: Vec<String> = left_out.iter().map(|&i| files[i].display.clone()).collect();
    let problem = Problem::file_level(
        &files[first].display,
        format!(
            "{} file{} left out: the profile set holds more than {cap} YAML nodes in all: {}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        ),
    )
    .with_help("a profile set of 100,000 profiles holds far fewer; remove what is not a profile file, or name the files you mean with --profiles");
    for &i in &left_out {
        let f = &mut files[i];
        f.value = Value::Object(serde_json::Map::new());
        f.index = SpanIndex::default();
        f.seems_to_define = Vec::new();
        f.broken = vec![(Part::Whole, problem.clone())];
    }
    vec![problem]
}

/// The files left out of a set larger than [`MAX_SET_BYTES`] (judged by their sizes before
/// anything is read): the largest first, until the rest fits; each with the one problem that
/// names them all. The rest of the set is read and works.
fn over_budget(paths: &[Found], cwd: &Path, home: Option<&Path>) -> Vec<(PathBuf, Problem)> {
    // a file counts with what would be read of it: past its own limit it is refused unread
    let mut sized: Vec<(u64, &Found)> = paths
        .iter()
        .map(|f| {
            let len = std::fs::metadata(&f.path).map_or(0, |m| m.len());
            (len.min(MAX_FILE_BYTES.saturating_add(1)), f)
        })
        .collect();
    let mut total: u64 = sized.iter().map(|(n, _)| *n).fold(0, u64::saturating_add);
    if total <= MAX_SET_BYTES {
        return Vec::new();
    }
    sized.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.path.cmp(&b.1.path)));
    let mut out: Vec<(u64, &Found)> = Vec::new();
    for (n, f) in sized {
        if total <= MAX_SET_BYTES {
            break;
        }
        total = total.saturating_sub(n);
        out.push((n, f));
    }
    let mib = |n: u64| format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0));
    let names: Vec<String> = out
        .iter()
        .map(|(n, f)| format!("{} ({})", display_path(&f.path, cwd, home), mib(*n)))
        .collect();
    let first = out
        .first()
        .map(|(_, f)| display_path(&f.path, cwd, home))
        .unwrap_or_default();
    let problem = Problem::file_level(
        &first,
        format!(
            "{} file{} left out: the profile set is larger than {} in all: {}",
            out.len(),
            if out.len() == 1 { "" } else { "s" },
            mib(MAX_SET_BYTES),
            names.join(", ")
        ),
    )
    .with_help("profile files are small; remove what is not a profile file from the directory, or name the files you mean with --profiles");
    out.into_iter()
        .map(|(_, f)| (f.path.clone(), problem.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_past_its_node_cap_leaves_out_the_files_that_follow() {
        let mut files: Vec<SourceFile> = ["a.yaml", "b.yaml", "c.yaml"]
            .iter()
            .map(|n| {
                let text = "version: 1\ntenants:\n  t:\n    id: x\n".to_string();
                let set = load_text(Path::new(n), n.to_string(), text);
                set.files.into_iter().next().unwrap()
            })
            .collect();
        let each = files[0].index.len();
        assert!(each > 0);
        assert!(cap_nodes(&mut files, each * 3).is_empty());
        let problems = cap_nodes(&mut files, each * 2);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("1 file left out"),
            "{:?}",
            problems[0]
        );
        assert!(problems[0].message.ends_with("c.yaml"));
        assert!(files[2].broken.iter().any(|(p, _)| *p == Part::Whole));
        assert!(!files[1].broken.iter().any(|(p, _)| *p == Part::Whole));
    }

    fn write(dir: &Path, name: &str) {
        std::fs::write(dir.join(name), "version: 1\n").unwrap();
    }

    #[test]
    fn shared_files_in_name_order_then_overrides_then_the_user_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("profiles");
        std::fs::create_dir(&p).unwrap();
        for n in [
            "b.yaml",
            "a.yml",
            "me.local.yaml",
            ".hidden.yaml",
            "notes.txt",
        ] {
            write(&p, n);
        }
        let user = d.path().join("local.yaml");
        write(d.path(), "local.yaml");
        let src = Sources {
            paths: Vec::new(),
            env: None,
            cwd: d.path().join("profiles"),
            home: None,
            user_config: Some(user.clone()),
            trust_store: None,
        };
        let found = discover(&src).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.yml", "b.yaml", "me.local.yaml", "local.yaml"]);
        assert_eq!(found[2].kind, FileKind::Override);
        assert!(found[2].listed_in.is_some());
        assert_eq!(
            found[3],
            Found::named(user, FileKind::User),
            "the person's own, outside git"
        );
    }

    #[test]
    fn env_paths_when_no_flag() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "x.yaml");
        let env = std::env::join_paths([d.path().join("x.yaml")]).unwrap();
        let src = Sources {
            paths: Vec::new(),
            env: Some(env),
            cwd: PathBuf::from("/"),
            home: None,
            user_config: None,
            trust_store: None,
        };
        assert_eq!(discover(&src).unwrap().len(), 1);
        let src = Sources {
            paths: vec![d.path().join("nope")],
            ..src
        };
        assert!(matches!(discover(&src), Err(LoadError::NotFound { .. })));
    }

    #[test]
    fn tilde() {
        let home = Some(Path::new("/home/alice"));
        assert_eq!(expand_tilde("~/.ssh/k", home), "/home/alice/.ssh/k");
        assert_eq!(expand_tilde("~", home), "/home/alice");
        assert_eq!(expand_tilde("/abs/~x", home), "/abs/~x");
        assert_eq!(expand_tilde("~bob/x", home), "~bob/x");
        assert_eq!(expand_tilde("~/x", None), "~/x");
    }
}
