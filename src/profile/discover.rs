//! Where profile files come from: `--profiles`, `BPROF_PROFILES` or the nearest `profiles/`
//! that is yours alone (git's `safe.directory` rule), the directories' YAML files in name order,
//! the personal overrides and the user config; `~` expansion and paths as shown.

use std::path::{Path, PathBuf};

use super::load::*;
use crate::files::Special;

/// Expands a leading `~` to the home directory.
pub fn expand_tilde(path: &str, home: Option<&Path>) -> String {
    if (path == "~" || path.starts_with("~/") || path.starts_with("~\\"))
        && let Some(home) = home
    {
        return format!("{}{}", home.display(), &path[1..]);
    }
    path.to_string()
}

pub(crate) fn is_yaml(p: &Path) -> bool {
    // hidden files (editor backups, bprof's own temp files) are not part of a set
    let hidden = p
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    !hidden && has_yaml_extension(p)
}

pub(crate) fn has_yaml_extension(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

pub(crate) fn is_override(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".local.yaml") || name.ends_with(".local.yml")
}

/// The entries of a directory named like YAML files, not recursive, in name order, each with
/// the directory's canonical path. Entries that are not regular files are listed too: reading
/// them reports what they are.
pub(crate) fn yaml_files_in(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, LoadError> {
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
pub fn nearest_profiles_dir(cwd: &Path, home: Option<&Path>) -> Result<Option<PathBuf>, LoadError> {
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
                path: display_path(&dir, cwd, home),
            })
        }
        Some(dir) => match yours_alone(&dir) {
            Ok(()) => Ok(Some(dir)),
            Err(why) => Err(LoadError::UnsafeDiscovered {
                path: display_path(&dir, cwd, home),
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
    // Windows: the owner rule only, on the directory itself, as Git for Windows checks a
    // repository (`C:\` lets Authenticated Users write in the folders made under it)
    #[cfg(windows)]
    crate::owner::check(dir, crate::owner::Rule::Owner)?;
    #[cfg(not(any(unix, windows)))]
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
        match nearest_profiles_dir(&src.cwd, src.home.as_deref())? {
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
pub(crate) fn discover_in(src: &Sources, roots: &[PathBuf]) -> Result<Vec<Found>, LoadError> {
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

pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// How a path is shown in messages: relative to `cwd` when it is below it; under the person's
/// `home`, as `~/...`; relative when below one of cwd's two nearest ancestors
/// (`../../profiles/a.yaml`); else as it is. (Without `home`, the result is a usable path.)
pub fn display_path(path: &Path, cwd: &Path, home: Option<&Path>) -> String {
    if path.is_relative() {
        return path.display().to_string();
    }
    if let Ok(rest) = path.strip_prefix(cwd)
        && cwd.parent().is_some()
    {
        return rest.display().to_string();
    }
    // the person's own files (their config, a profile set in their home) read as `~/...`
    if let Some(home) = home
        && home.parent().is_some()
        && let Ok(rest) = path.strip_prefix(home)
    {
        return format!("~{}{}", std::path::MAIN_SEPARATOR, rest.display());
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
