//! Reading one profile file: size and encoding checks, YAML parsing, the schema, and what a
//! file that cannot be read seems to define (so what uses it is refused with its reason).

use std::path::Path;

use serde_json::Value;

use super::load::*;
use crate::files::{self, EntryError, ReadError};
use crate::profile::diag::{self, Problem};
use crate::profile::yaml::{self, SpanIndex};

pub(crate) fn unescape_segment(s: &str) -> String {
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
pub(crate) fn parts_of(value: &Value) -> Vec<Part> {
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
pub(crate) fn excerpts_allowed(path: &Path) -> bool {
    has_yaml_extension(path)
        && std::fs::canonicalize(path).is_ok_and(|target| has_yaml_extension(&target))
}

/// A file that could not be read as a whole: kept, so that what may depend on it is refused
/// with its first problem rather than being "not defined".
pub(crate) fn unreadable(
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
        lines: Default::default(),
    }
}

pub(crate) fn read_checked(
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

pub(crate) fn read_parsed(
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
pub(crate) fn parse_text(
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
        lines: Default::default(),
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
    // each broken part once, with its first problem (a set: many problems stay linear)
    let mut seen = std::collections::BTreeSet::new();
    for p in &found {
        let Some(part) = p.pointer.as_deref().and_then(Part::of) else {
            continue;
        };
        if seen.insert(part.clone()) {
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
