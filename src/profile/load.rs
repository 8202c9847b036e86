//! Finding and reading the profile files: discovery, size and encoding checks, YAML parsing,
//! the JSON schema, and the set of global names (with personal overrides on top).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::profile::diag::{self, Problem};
use crate::profile::files::{self, EntryError, ReadError, Special};
use crate::profile::yaml::{self, SpanIndex};

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

fn unescape_segment(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}

/// The parts a file's text seems to define, read tolerantly line by line (for a file that is
/// not valid YAML): top-level keys, and the keys one level below the known sections.
pub fn seems_to_define(text: &str) -> Vec<Part> {
    let mut out = Vec::new();
    let mut section: Option<Section> = None;
    let mut indent: Option<usize> = None;
    for line in text.lines() {
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let depth = line.len() - trimmed.len();
        let key = trimmed
            .split_once(':')
            .map(|(k, _)| k.trim().trim_matches(['"', '\'']).to_string());
        if depth == 0 {
            indent = None;
            section = None;
            match key.as_deref() {
                Some("defaults") => out.push(Part::Defaults),
                Some(k) => section = Section::from_key(k),
                None => {}
            }
            continue;
        }
        let (Some(sec), Some(k)) = (section, key) else {
            continue;
        };
        let level = *indent.get_or_insert(depth);
        if depth == level && !k.is_empty() && !k.starts_with('-') {
            out.push(Part::Entry(sec, k));
        }
    }
    out
}

/// The parts a parsed value defines (for a file whose schema problems spoil it as a whole).
fn parts_of(value: &Value) -> Vec<Part> {
    let mut out = Vec::new();
    if value.get("defaults").is_some() {
        out.push(Part::Defaults);
    }
    for section in Section::ALL {
        if let Some(map) = value.get(section.key()).and_then(Value::as_object) {
            out.extend(map.keys().map(|k| Part::Entry(section, k.clone())));
        }
    }
    out
}

impl SourceFile {
    /// A problem at the key (`key = true`) or value written at `pointer` in this file.
    pub fn problem(&self, pointer: &str, key: bool, message: impl Into<String>) -> Problem {
        let pos = if key {
            self.index.key_pos(pointer)
        } else {
            self.index.value_pos(pointer)
        };
        let p = Problem::new(
            &self.display,
            &self.text,
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
    fn named(path: PathBuf, kind: FileKind) -> Found {
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

/// Expands a leading `~` to the home directory.
pub fn expand_tilde(path: &str, home: Option<&Path>) -> String {
    if (path == "~" || path.starts_with("~/") || path.starts_with("~\\"))
        && let Some(home) = home
    {
        return format!("{}{}", home.display(), &path[1..]);
    }
    path.to_string()
}

fn is_yaml(p: &Path) -> bool {
    // hidden files (editor backups, bprof's own temp files) are not part of a set
    let hidden = p
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    !hidden && has_yaml_extension(p)
}

fn has_yaml_extension(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

fn is_override(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".local.yaml") || name.ends_with(".local.yml")
}

/// The entries of a directory named like YAML files, not recursive, in name order, each with
/// the directory's canonical path. Entries that are not regular files are listed too: reading
/// them reports what they are.
fn yaml_files_in(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, LoadError> {
    let io = |source| LoadError::Io {
        path: dir.display().to_string(),
        source,
    };
    let canonical = std::fs::canonicalize(dir).map_err(io)?;
    let rd = std::fs::read_dir(dir).map_err(io)?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| is_yaml(p))
        .collect();
    files.sort();
    Ok(files.into_iter().map(|f| (f, canonical.clone())).collect())
}

/// The nearest `profiles/` directory from `cwd` upwards. A link found on the way up is not a
/// path the person named, and a directory another user could have put there is not the
/// person's ([`yours_alone`]): both refused.
pub fn nearest_profiles_dir(cwd: &Path) -> Result<Option<PathBuf>, LoadError> {
    let found = cwd
        .ancestors()
        .map(|d| d.join("profiles"))
        .find(|d| d.is_dir());
    match found {
        Some(dir)
            if dir
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink()) =>
        {
            Err(LoadError::DiscoveredLink {
                path: display_path(&dir, cwd),
            })
        }
        Some(dir) => match yours_alone(&dir) {
            Ok(()) => Ok(Some(dir)),
            Err(why) => Err(LoadError::UnsafeDiscovered {
                path: display_path(&dir, cwd),
                why,
            }),
        },
        None => Ok(None),
    }
}

/// git's `safe.directory` rule for a directory bprof found on its own: it and every directory
/// above it, up to the nearest one the person owns, are owned by the person or root and
/// writable by nobody else; a root-owned directory with the sticky bit (`/tmp`) above the
/// first one also ends the walk, since nobody else may replace what it holds. Ok, or why not.
pub fn yours_alone(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: getuid has no preconditions.
        let me = unsafe { libc::getuid() };
        let dir = std::fs::canonicalize(dir).map_err(|e| format!("cannot resolve it: {e}"))?;
        for (i, d) in dir.ancestors().enumerate() {
            let meta =
                std::fs::metadata(d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
            let (owner, mode) = (meta.uid(), meta.mode());
            let others_write = mode & 0o022 != 0;
            if i > 0 && owner == 0 && others_write && mode & 0o1000 != 0 {
                return Ok(()); // a sticky directory such as /tmp: what is in it stays its owner's
            }
            if owner != me && owner != 0 {
                return Err(format!("{} belongs to user {owner}", d.display()));
            }
            if others_write {
                return Err(format!(
                    "{} is writable by others (mode {:o})",
                    d.display(),
                    mode & 0o7777
                ));
            }
            if owner == me {
                return Ok(());
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The paths a set is selected by: `--profiles`, else `BPROF_PROFILES`, else the nearest
/// `profiles/`, else the person's own default set; `~` expanded.
pub fn roots(src: &Sources) -> Result<Vec<PathBuf>, LoadError> {
    let roots: Vec<PathBuf> = if !src.paths.is_empty() {
        src.paths.clone()
    } else if let Some(env) = &src.env {
        std::env::split_paths(env)
            .filter(|p| !p.as_os_str().is_empty())
            .collect()
    } else {
        match nearest_profiles_dir(&src.cwd)? {
            Some(dir) => vec![dir],
            // the person's own default set, so `bprof run X` works from any directory; a set
            // like any other: it grants nothing
            None => match src
                .user_config
                .as_deref()
                .and_then(Path::parent)
                .map(|d| d.join("profiles"))
                .filter(|d| d.is_dir())
            {
                Some(dir) => vec![dir],
                None => {
                    return Err(LoadError::NoProfiles {
                        start: src.cwd.display().to_string(),
                    });
                }
            },
        }
    };
    // `~` is expanded here too: shells leave `--profiles=~/x` and BPROF_PROFILES alone
    Ok(roots
        .into_iter()
        .map(|r| match r.to_str() {
            Some(t) if t.starts_with('~') => PathBuf::from(expand_tilde(t, src.home.as_deref())),
            _ => r,
        })
        .collect())
}

/// The files of the set, shared first, then personal overrides in precedence order.
pub fn discover(src: &Sources) -> Result<Vec<Found>, LoadError> {
    discover_in(src, &roots(src)?)
}

/// The files of the set selected by `roots` ([`roots`]).
fn discover_in(src: &Sources, roots: &[PathBuf]) -> Result<Vec<Found>, LoadError> {
    let mut files: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    let mut dirs_seen: Vec<PathBuf> = Vec::new();
    for root in roots {
        if root.is_dir() {
            let found = yaml_files_in(root)?;
            if found.is_empty() {
                return Err(LoadError::EmptyDir {
                    path: root.display().to_string(),
                });
            }
            files.extend(found.into_iter().map(|(f, d)| (f, Some(d))));
            dirs_seen.push(root.clone());
        } else if root.is_file() {
            files.push((root.clone(), None));
            let dir = root.parent().map(Path::to_path_buf).unwrap_or_default();
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            if !dirs_seen.contains(&dir) {
                // personal overrides beside a named file count too
                if let Ok(beside) = yaml_files_in(&dir) {
                    files.extend(
                        beside
                            .into_iter()
                            .filter(|(p, _)| is_override(p))
                            .map(|(f, d)| (f, Some(d))),
                    );
                }
                dirs_seen.push(dir);
            }
        } else if let Ok(meta) = std::fs::metadata(root) {
            return Err(LoadError::NotAFile {
                path: root.display().to_string(),
                what: Special::of(&meta.file_type()).unwrap_or(Special::Other),
            });
        } else {
            return Err(LoadError::NotFound {
                path: root.display().to_string(),
            });
        }
    }
    let mut out: Vec<Found> = Vec::new();
    for (path, listed_in) in files {
        let kind = if is_override(&path) {
            FileKind::Override
        } else {
            FileKind::Shared
        };
        if !out.iter().any(|f| f.path == path) {
            out.push(Found {
                path,
                kind,
                listed_in,
            });
        }
    }
    // shared files first, then overrides; the order within each group is kept
    out.sort_by_key(|f| f.kind == FileKind::Override);
    // whatever is there (a FIFO or a device too: reading it says what it is, at once)
    if let Some(user) = &src.user_config
        && user.symlink_metadata().is_ok()
        && !user.is_dir()
        && !out.iter().any(|f| same_file(&f.path, user))
    {
        // a user config inside a profile directory is just another file of that directory
        let kind = match crate::profile::trust::may_grant(user) {
            Ok(()) => FileKind::User,
            Err(_) => FileKind::Override,
        };
        out.push(Found::named(user.clone(), kind));
    }
    Ok(out)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// How a path is shown in messages: relative to `cwd` when it is below it or below one of its
/// ancestors (`../../profiles/a.yaml`), else as it is.
pub fn display_path(path: &Path, cwd: &Path) -> String {
    if path.is_relative() {
        return path.display().to_string();
    }
    for (up, ancestor) in cwd.ancestors().enumerate() {
        if let Ok(rest) = path.strip_prefix(ancestor) {
            if up > 2 || ancestor.parent().is_none() {
                break;
            }
            let mut shown = PathBuf::new();
            for _ in 0..up {
                shown.push("..");
            }
            shown.push(rest);
            return shown.display().to_string();
        }
    }
    path.display().to_string()
}

/// Reads, decodes and parses one file named by path; schema-checks it. Data problems go to
/// `problems`.
pub fn read_file(
    path: &Path,
    display: String,
    kind: FileKind,
    problems: &mut Vec<Problem>,
) -> Result<Option<SourceFile>, LoadError> {
    read_found(&Found::named(path.to_path_buf(), kind), display, problems)
}

/// Reads, decodes and parses one file of the set; schema-checks it. Data problems go to
/// `problems`. Problems of a file not named `*.yaml`/`*.yml` carry no excerpt of its lines.
pub fn read_found(
    found: &Found,
    display: String,
    problems: &mut Vec<Problem>,
) -> Result<Option<SourceFile>, LoadError> {
    let mut found_here = Vec::new();
    let excerpts = excerpts_allowed(&found.path);
    let file = read_checked(found, display, excerpts, &mut found_here);
    problems.extend(
        found_here
            .into_iter()
            .map(|p| if excerpts { p } else { p.without_excerpt() }),
    );
    file
}

/// Whether problems in the file at `path` may quote its lines: its name, and the name of what
/// it links to, end in `.yaml`/`.yml`.
fn excerpts_allowed(path: &Path) -> bool {
    has_yaml_extension(path)
        && std::fs::canonicalize(path).is_ok_and(|target| has_yaml_extension(&target))
}

/// A file that could not be read as a whole: kept, so that what may depend on it is refused
/// with its first problem rather than being "not defined".
fn unreadable(
    found: &Found,
    display: String,
    text: String,
    excerpts: bool,
    problems: &[Problem],
) -> SourceFile {
    let seems = seems_to_define(&text);
    let first = problems
        .first()
        .cloned()
        .unwrap_or_else(|| Problem::file_level(&display, "the file cannot be read"));
    SourceFile {
        path: found.path.clone(),
        display,
        text,
        value: Value::Object(serde_json::Map::new()),
        index: SpanIndex::default(),
        kind: found.kind,
        excerpts,
        broken: vec![(Part::Whole, first)],
        seems_to_define: seems,
    }
}

fn read_checked(
    found: &Found,
    display: String,
    excerpts: bool,
    problems: &mut Vec<Problem>,
) -> Result<Option<SourceFile>, LoadError> {
    let before = problems.len();
    let mut text = String::new();
    let file = read_parsed(found, display.clone(), excerpts, problems, &mut text)?;
    Ok(Some(match file {
        Some(f) => f,
        None => unreadable(found, display, text, excerpts, &problems[before..]),
    }))
}

fn read_parsed(
    found: &Found,
    display: String,
    excerpts: bool,
    problems: &mut Vec<Problem>,
    text_out: &mut String,
) -> Result<Option<SourceFile>, LoadError> {
    let path = found.path.as_path();
    let kind = found.kind;
    let io = |source| LoadError::Io {
        path: display.clone(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| display.clone());
    // an entry of a directory: a regular file, or a link to one inside the directory
    let open = match &found.listed_in {
        None => path.to_path_buf(),
        Some(dir) => match files::dir_entry(path, dir) {
            Ok(p) => p,
            Err(EntryError::Io(e)) => return Err(io(e)),
            Err(e) => {
                let help = match e {
                    EntryError::NotRegular(_) => {
                        "profile files are regular files; remove it or rename it so it does not end in .yaml/.yml"
                    }
                    _ => {
                        "profile files are read from the directory itself; replace the link with the file"
                    }
                };
                problems.push(
                    Problem::file_level(&display, format!("{name} is not read: {e}"))
                        .with_help(help),
                );
                return Ok(None);
            }
        },
    };
    let bytes = match files::read_regular(&open, MAX_FILE_BYTES) {
        Ok(b) => b,
        Err(ReadError::Io(e)) => return Err(io(e)),
        Err(ReadError::NotRegular(what)) => {
            problems.push(
                Problem::file_level(
                    &display,
                    format!("{name} is not read: it is {what}, not a regular file"),
                )
                .with_help("profile files are regular files; is this the right path?"),
            );
            return Ok(None);
        }
        Err(ReadError::TooLarge { limit }) => {
            problems.push(
                Problem::file_level(
                    &display,
                    format!("the file is larger than bprof reads ({} MiB)", limit / 1048576),
                )
                .with_help("profile files are small; is this the right file? split a large set into several files"),
            );
            return Ok(None);
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let bytes = e.into_bytes();
            let valid = std::str::from_utf8(&bytes)
                .map_err(|u| u.valid_up_to())
                .err()
                .unwrap_or(0);
            let prefix = String::from_utf8_lossy(&bytes[..valid]);
            let line = prefix.matches('\n').count() as u32 + 1;
            let column = prefix
                .rsplit('\n')
                .next()
                .map(|l| l.chars().count())
                .unwrap_or(0) as u32
                + 1;
            let looks_utf16 = bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]);
            let help = if looks_utf16 {
                "the file is UTF-16; save it as UTF-8"
            } else {
                "profile files are UTF-8 text; is this a binary file?"
            };
            // no excerpt: the line may be binary, or not from a profile file at all
            problems.push(
                Problem::new(
                    &display,
                    "",
                    yaml::Pos {
                        line,
                        column,
                        len: 1,
                    },
                    String::new(),
                    format!("the file is not UTF-8 text (byte {valid})"),
                )
                .with_help(help)
                .without_excerpt(),
            );
            return Ok(None);
        }
    };
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    };
    text_out.clone_from(&text);
    Ok(parse_text(path, display, kind, excerpts, text, problems))
}

/// A file's decoded text, parsed and checked (schema, control characters, keys YAML reads as
/// numbers). None when it cannot be parsed at all.
fn parse_text(
    path: &Path,
    display: String,
    kind: FileKind,
    excerpts: bool,
    text: String,
    problems: &mut Vec<Problem>,
) -> Option<SourceFile> {
    if let Some(i) = text.find('\0') {
        let prefix = &text[..i];
        let line = prefix.matches('\n').count() as u32 + 1;
        problems.push(
            Problem::file_level(
                &display,
                format!("the file contains a NUL byte on line {line}"),
            )
            .with_help("profile files are UTF-8 text; is this a binary file?"),
        );
        return None;
    }
    let (value, index, keys) = match yaml::parse_all(&text) {
        Ok(v) => v,
        Err(e) => {
            let tabs = yaml::indentation_tabs(&text);
            if tabs.is_empty() {
                problems.push(Problem::new(
                    &display,
                    &text,
                    e.pos,
                    String::new(),
                    format!("invalid YAML: {}", e.message),
                ));
            }
            for pos in tabs {
                problems.push(
                    Problem::new(
                        &display,
                        &text,
                        pos,
                        String::new(),
                        "tabs are not allowed in YAML indentation",
                    )
                    .with_help("indent with spaces"),
                );
            }
            return None;
        }
    };
    let mut file = SourceFile {
        path: path.to_path_buf(),
        display,
        text,
        value,
        index,
        kind,
        excerpts,
        broken: Vec::new(),
        seems_to_define: Vec::new(),
    };
    let mut found = crate::profile::schema::check(
        &file.display,
        &file.text,
        &file.value,
        &file.index,
        kind != FileKind::Shared,
    );
    found.extend(crate::profile::trust::check_text(&file));
    for k in keys {
        let p = Problem::new(
            &file.display,
            &file.text,
            k.pos,
            crate::profile::schema::human_path(&file.value, &k.pointer),
            k.message,
        )
        .at_pointer(&k.pointer)
        .with_help("names are text: `\"007\": ...`; otherwise `007` and `7` are the same key");
        found.push(p);
    }
    for p in &found {
        let Some(part) = p.pointer.as_deref().and_then(Part::of) else {
            continue;
        };
        if !file.broken.iter().any(|(q, _)| *q == part) {
            file.broken.push((part, p.clone()));
        }
    }
    if file.broken.iter().any(|(q, _)| *q == Part::Whole) {
        file.seems_to_define = parts_of(&file.value);
    }
    problems.extend(found);
    Some(file)
}

/// One shared file given as its text (a file bprof is about to write), read and checked
/// exactly as it would be from disk at `path`: the set it makes, with every problem.
pub fn load_text(path: &Path, display: String, text: String) -> ProfileSet {
    let mut problems = Vec::new();
    let found = Found::named(path.to_path_buf(), FileKind::Shared);
    let file = match parse_text(
        path,
        display.clone(),
        FileKind::Shared,
        true,
        text.clone(),
        &mut problems,
    ) {
        Some(f) => f,
        None => unreadable(&found, display, text, true, &problems),
    };
    let mut set = assemble(vec![file], &mut problems);
    diag::sort(&mut problems);
    set.problems = problems;
    set
}

/// A profile's parent: the last layer that sets `extends`, and where it does.
pub fn parent_of<'s>(set: &'s ProfileSet, name: &str) -> Option<(&'s str, Def)> {
    let (parent, d) = parent_layer(set, name)?;
    Some((
        parent,
        Def {
            file: d.file,
            pointer: format!("{}/extends", d.pointer),
        },
    ))
}

/// A profile's parent and the layer that names it (no allocation: walks run this per profile).
pub fn parent_layer<'s>(set: &'s ProfileSet, name: &str) -> Option<(&'s str, &'s Def)> {
    let entry = set.entry(Section::Profiles, name)?;
    entry
        .defs
        .iter()
        .rev()
        .find_map(|d| Some((set.value(d)?.get("extends")?.as_str()?, d)))
}

/// Every `extends` chain at once, in time linear in the number of profiles: the cycles (one
/// problem each, told from the smallest name, at its `extends`) and the chains deeper than
/// [`MAX_EXTENDS`] (one problem each, at the first profile too deep; the profiles below it
/// share that problem).
fn chains(set: &ProfileSet) -> BTreeMap<String, Problem> {
    #[derive(Clone)]
    enum State {
        Depth(usize, Option<String>),
        Cycle,
    }
    let mut state: BTreeMap<&str, State> = BTreeMap::new();
    let mut bad: BTreeMap<String, Problem> = BTreeMap::new();
    let names: Vec<&str> = set.names(Section::Profiles).collect();
    for start in names {
        let mut path: Vec<&str> = Vec::new();
        let mut cur = start;
        // walk up until a known profile, a root, a missing parent, or the path itself
        let base = loop {
            if let Some(s) = state.get(cur) {
                break Some(s.clone());
            }
            if let Some(i) = path.iter().position(|p| *p == cur) {
                let members = &path[i..];
                let first = members.iter().copied().min().unwrap_or(cur);
                let at = members.iter().position(|m| *m == first).unwrap_or(0);
                let mut cycle: Vec<&str> = members[at..]
                    .iter()
                    .chain(&members[..at])
                    .copied()
                    .collect();
                cycle.push(first);
                let shown = if cycle.len() > 12 {
                    format!(
                        "{} -> ... ({} profiles) ... -> {}",
                        cycle[..6].join(" -> "),
                        cycle.len() - 1,
                        cycle[cycle.len() - 3..].join(" -> ")
                    )
                } else {
                    cycle.join(" -> ")
                };
                if let Some((_, def)) = parent_of(set, first) {
                    let p = set
                        .file(&def)
                        .problem(
                            &def.pointer,
                            false,
                            format!("`extends` forms a cycle: {shown}"),
                        )
                        .with_help("remove `extends` from one of these profiles");
                    for m in members {
                        bad.insert(m.to_string(), p.clone());
                        state.insert(m, State::Cycle);
                    }
                }
                path.truncate(i);
                break Some(State::Cycle);
            }
            path.push(cur);
            match parent_layer(set, cur) {
                Some((parent, _)) if set.entry(Section::Profiles, parent).is_some() => cur = parent,
                _ => break None,
            }
        };
        // then down the path again, parents first
        let mut below = base;
        while let Some(name) = path.pop() {
            let next = match &below {
                None => State::Depth(1, None),
                Some(State::Cycle) => State::Cycle,
                Some(State::Depth(d, anchor)) => {
                    let depth = d + 1;
                    let anchor = if depth == MAX_EXTENDS + 1 {
                        if let Some((_, def)) = parent_of(set, name) {
                            let p = set
                                .file(&def)
                                .problem(&def.pointer, false, format!("the `extends` chain of profile `{name}` is longer than {MAX_EXTENDS} profiles"))
                                .with_help("profiles inherit a few levels deep; shorten the chain (`defaults` apply under every profile)");
                            bad.insert(name.to_string(), p);
                        }
                        Some(name.to_string())
                    } else {
                        anchor.clone()
                    };
                    if let Some(a) = &anchor
                        && a != name
                        && let Some(p) = bad.get(a).cloned()
                    {
                        bad.insert(name.to_string(), p);
                    }
                    State::Depth(depth, anchor)
                }
            };
            state.insert(name, next.clone());
            below = Some(next);
        }
    }
    bad
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

    fn spoil(&mut self, section: Section, name: &str, why: Problem) {
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
    let mut set = load_files(&discover_in(src, &roots)?, &src.cwd)?;
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
                &display_path(path, &src.cwd),
                format!("your recorded consents are ignored: {why}"),
            )
            .warning()
                .with_help("consents are read only from a file that is yours alone; `bprof trust allow` writes it"),
        );
    }
}

/// Loads these files (from [`discover`]); paths are shown relative to `cwd`.
pub fn load_files(paths: &[Found], cwd: &Path) -> Result<ProfileSet, LoadError> {
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
                            let display = display_path(&found.path, cwd);
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
    let mut set = assemble(files, &mut problems);
    diag::sort(&mut problems);
    set.problems = problems;
    Ok(set)
}

/// Builds the global name tables; reports names defined twice and overrides of nothing.
pub fn assemble(files: Vec<SourceFile>, problems: &mut Vec<Problem>) -> ProfileSet {
    let mut set = ProfileSet {
        files,
        ..Default::default()
    };
    let mut allow = Vec::new();
    let mut default_fields: BTreeMap<String, usize> = BTreeMap::new();
    let mut spoiled: Vec<(Section, String, Problem)> = Vec::new();
    let mut blockers: Vec<Problem> = Vec::new();
    for kind in [FileKind::Shared, FileKind::Override, FileKind::User] {
        for (fi, file) in set.files.iter().enumerate().filter(|(_, f)| f.kind == kind) {
            let personal = kind != FileKind::Shared;
            if let Some((_, why)) = file.broken.iter().find(|(p, _)| *p == Part::Whole) {
                // nothing of it is used; what it seems to define is refused with its reason
                for part in &file.seems_to_define {
                    match part {
                        Part::Entry(section, name) => {
                            spoiled.push((*section, name.clone(), why.clone()))
                        }
                        Part::Defaults => blockers.push(why.clone()),
                        Part::Whole => {}
                    }
                }
                if personal {
                    blockers.push(why.clone());
                }
                continue;
            }
            let broken = |part: &Part| file.broken.iter().find(|(p, _)| p == part).map(|(_, w)| w);
            for section in Section::ALL {
                let Some(map) = file.value.get(section.key()).and_then(Value::as_object) else {
                    continue;
                };
                if section == Section::Templates
                    && kind == FileKind::Override
                    && !is_override(&file.path)
                {
                    continue; // a user config that may not grant: said in a warning below
                }
                for name in map.keys() {
                    if !file.broken.is_empty()
                        && let Some(why) = broken(&Part::Entry(section, name.clone()))
                    {
                        spoiled.push((section, name.clone(), why.clone()));
                        continue;
                    }
                    let pointer = format!("/{}/{}", section.key(), yaml::escape_segment(name));
                    let table = set.sections.entry(section).or_default();
                    let exists = table.contains_key(name);
                    match (kind, exists) {
                        (FileKind::Shared, true) => {
                            let first = &table[name].defs[0];
                            let first_at = set.files[first.file].location(&first.pointer);
                            let p = file.problem(&pointer, true, format!("{} `{name}` is defined twice: here and at {first_at}", section.noun()))
                                .with_help(format!("{} names are global across all profile files; rename or remove one", section.noun()));
                            spoiled.push((section, name.clone(), p.clone()));
                            problems.push(p);
                            continue;
                        }
                        (FileKind::User, false) if section == Section::Templates => {}
                        (FileKind::Override | FileKind::User, false)
                            if section == Section::Profiles =>
                        {
                            // a new profile of one's own, unless it is a typo of a shared one
                            let known = table.keys().map(String::as_str);
                            if let Some(close) = diag::did_you_mean(name, known) {
                                let p = file
                                    .problem(&pointer, true, format!("this override adds a new profile `{name}`, which no shared file defines"))
                                    .with_help(format!("did you mean `{close}`? (to add a profile of your own, give it a name not this close to another)"));
                                spoiled.push((section, name.clone(), p.clone()));
                                problems.push(p);
                                continue;
                            }
                        }
                        (FileKind::Override | FileKind::User, false) => {
                            let known: Vec<&str> = table.keys().map(String::as_str).collect();
                            let mut p = file.problem(
                                &pointer,
                                true,
                                format!("this override changes {} `{name}`, which no shared file defines", section.noun()),
                            );
                            p = match diag::did_you_mean(name, known) {
                                Some(s) => p.with_help(format!("did you mean `{s}`?")),
                                None => p.with_help(format!(
                                    "a personal override may only change entries of the shared files, or add profiles; define the {} in a shared file",
                                    section.noun()
                                )),
                            };
                            problems.push(p);
                            continue;
                        }
                        _ => {}
                    }
                    table
                        .entry(name.clone())
                        .or_default()
                        .defs
                        .push(Def { file: fi, pointer });
                }
            }
            if let Some(why) = broken(&Part::Defaults) {
                blockers.push(why.clone());
            } else if let Some(d) = file.value.get("defaults").and_then(Value::as_object) {
                if kind == FileKind::Shared {
                    for field in d.keys() {
                        let ptr = format!("/defaults/{}", yaml::escape_segment(field));
                        if let Some(&other) = default_fields.get(field) {
                            let first_at = set.files[other].location(&ptr);
                            let p = file
                                .problem(
                                    &ptr,
                                    true,
                                    format!(
                                        "`defaults.{field}` is set twice: here and at {first_at}"
                                    ),
                                )
                                .with_help(
                                    "keep one `defaults` value per field across the shared files",
                                );
                            blockers.push(p.clone());
                            problems.push(p);
                        } else {
                            default_fields.insert(field.clone(), fi);
                        }
                    }
                }
                if d.contains_key("extends") {
                    problems.push(
                        file.problem(
                            "/defaults/extends",
                            true,
                            "`extends` has no meaning in `defaults`",
                        )
                        .with_help("move `extends` into the profiles that inherit"),
                    );
                }
                set.defaults.push(Def {
                    file: fi,
                    pointer: "/defaults".into(),
                });
            }
            if let Some(list) = file.value.get("allow_programs").and_then(Value::as_array) {
                let user = PathBuf::from("your user config (~/.config/bprof/local.yaml)");
                match kind {
                    FileKind::User => {
                        allow.extend(list.iter().filter_map(Value::as_str).map(str::to_string))
                    }
                    FileKind::Shared => problems.push(
                        file.problem("/allow_programs", true, "`allow_programs` in a shared file grants nothing: only your own user config file may allow programs")
                            .with_help(format!("move it to {}", user.display())),
                    ),
                    FileKind::Override if is_override(&file.path) => problems.push(
                        file.problem("/allow_programs", true, "`allow_programs` in a *.local.yaml grants nothing: anyone can commit such a file, so bprof treats it as shared")
                            .with_help(format!("move it to your user config file, {}", user.display())),
                    ),
                    FileKind::Override => {}
                }
            }
        }
    }
    set.allow_programs = allow;
    for (section, name, why) in spoiled {
        set.spoil(section, &name, why);
    }
    set.blockers = blockers;
    set.bad_chains = chains(&set);
    problems.extend(set.bad_chains.values().cloned());
    for file in &set.files {
        if file.kind == FileKind::Override
            && !is_override(&file.path)
            && let Err(why) = crate::profile::trust::may_grant(&file.path)
        {
            set.warnings.push(
                Problem::file_level(&file.display, format!("your user config grants nothing (its templates and allow_programs are ignored): {why}"))
                    .warning()
                    .with_help("bprof believes a user config only while it is yours alone and outside every git work tree"),
            );
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

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
