//! `bprof init [DIR]`: a new profile directory with a commented example that validates, the
//! JSON schema beside it (editors validate and complete through the first line of the
//! example), and the `.gitignore` line that keeps personal overrides out of git.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::files::{self, ReadError, Special};
use crate::write::{WriteError, write_atomic};

/// The example profile file `init` writes. Every GUID in it is a placeholder.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory (default: ./profiles).
    pub dir: Option<PathBuf>,
    /// Replace an existing example.yaml (and, with --vscode, .vscode/settings.json).
    #[arg(long)]
    pub force: bool,
    /// Also write .vscode/settings.json here, mapping the schema to the folder's files.
    #[arg(long)]
    pub vscode: bool,
}

/// `bprof init [DIR]`: what is missing of the scaffold, then what to do next. What a person
/// wrote is kept (replaced only with --force).
pub(super) fn run(args: &Args, out: &super::Out) -> Result<i32, super::Error> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("profiles"));
    let mut done = scaffold(&dir, args.force)?;
    if args.vscode {
        done.push(vscode(&dir, args.force)?);
    }
    for (path, what) in &done {
        out.note(&what.say(path));
    }
    // from here, bprof finds `./profiles` by itself; any other directory is named
    let flag = if dir == Path::new("profiles") {
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
    Ok(super::exit::OK)
}

/// What `init` did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Written (new, or replaced with --force, or bprof's own schema refreshed).
    Wrote,
    /// Left as it is: the person's (--force replaces it).
    Kept,
    /// Already has what init would add.
    Had,
    /// Added to, every byte that was there kept.
    Added,
    /// Left as it is; these lines are for the person to add.
    Add(String),
}

impl Done {
    /// The line `init` says for it.
    fn say(&self, path: &Path) -> String {
        let path = path.display();
        match self {
            Done::Wrote => format!("wrote {path}"),
            Done::Kept => format!("kept {path}: it is yours (--force replaces it)"),
            Done::Had => format!("{path} has it already"),
            Done::Added => format!("added to {path}"),
            Done::Add(lines) => {
                format!("kept {path} as it is (bprof does not rewrite it); add to it:\n{lines}")
            }
        }
    }
}

pub const EXAMPLE: &str = r#"# yaml-language-server: $schema=./bprof.schema.json
#
# bprof profiles: shared by the team, kept in git. Replace the placeholder GUIDs and names with
# your own (`az account show`, the portal), then: bprof validate; bprof run my-jumpbox --dry-run
# Personal values (your username) go in a *.local.yaml file beside this one: git ignores it.
version: 1

tenants:
  contoso:
    description: Contoso (Entra ID tenant)
    id: 00000000-0000-0000-0000-000000000001          # tenant id
    subscription: 00000000-0000-0000-0000-000000000002 # default subscription

bastions:
  hub:
    tenant: contoso
    resource_group: rg-hub-network
    name: bas-hub
    sku: standard      # native client (az network bastion rdp|ssh|tunnel) needs standard or premium

vms:
  jumpbox:
    resource_group: rg-prod
    name: vm-jumpbox-01
    os: windows
    # computer_name: JUMPBOX01   # the Windows name, when it differs (Entra sign-in needs it)

profiles:
  my-jumpbox:
    description: The jump box, Entra ID sign-in
    bastion: hub
    vm: jumpbox
    mode: rdp
    enable_mfa: true   # without it Entra sign-in fails with "The login attempt failed"
    rdp:
      screen: window
      width: 1920
      height: 1080
"#;

/// The `.gitignore` lines for personal overrides.
pub const GITIGNORE: &str = "*.local.yaml\n*.local.yml\n";

/// A `.gitignore` larger than this is left alone.
const MAX_GITIGNORE_BYTES: u64 = 16 * 1024 * 1024;

/// Writes what is missing of the example, the schema and the `.gitignore` lines into `dir`
/// (created if needed). An existing example is kept without `force`; the schema (bprof's own)
/// is refreshed; `.gitignore` is appended to when it lacks the line (never rewritten).
pub fn scaffold(dir: &Path, force: bool) -> Result<Vec<(PathBuf, Done)>, WriteError> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| WriteError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let example = dir.join("example.yaml");
    let example_done = if !force && std::fs::symlink_metadata(&example).is_ok() {
        Done::Kept
    } else {
        write_atomic(&example, EXAMPLE.as_bytes(), force, false)?;
        Done::Wrote
    };
    let schema = dir.join("bprof.schema.json");
    write_atomic(
        &schema,
        crate::profile::schema::schema_text().as_bytes(),
        true,
        false,
    )?;
    let ignore = dir.join(".gitignore");
    let ignore_done = add_ignore_lines(&ignore)?;
    Ok(vec![
        (example, example_done),
        (schema, Done::Wrote),
        (ignore, ignore_done),
    ])
}

/// `.vscode/settings.json` in the current directory (the workspace), mapping the schema to the
/// profile folder's YAML files, so VS Code's YAML extension validates and completes them even
/// without the first line. An existing settings file is never rewritten without `force`: one
/// without `yaml.schemas` gets the mapping inserted (every other byte kept); one that has the
/// mapping is left alone; for any other, the lines to add are said.
pub fn vscode(dir: &Path, force: bool) -> Result<(PathBuf, Done), WriteError> {
    let rel = dir.display().to_string().replace('\\', "/");
    let rel = rel.trim_end_matches('/');
    let schema = format!("./{rel}/bprof.schema.json");
    let globs = serde_json::json!([format!("{rel}/*.yaml"), format!("{rel}/*.yml")]);
    let mapping = format!(
        "\"yaml.schemas\": {{\n    {}: {}\n  }}",
        serde_json::Value::from(schema.clone()),
        globs
    );
    let path = PathBuf::from(".vscode").join("settings.json");
    std::fs::create_dir_all(".vscode").map_err(|source| WriteError::Write {
        path: ".vscode".into(),
        source,
    })?;
    let existing = match files::read_regular(&path, MAX_GITIGNORE_BYTES) {
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Ok(_) if force => None,
        Ok(bytes) => Some(bytes),
        Err(e) => {
            return Err(WriteError::Write {
                path: path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            });
        }
    };
    let Some(bytes) = existing else {
        write_atomic(
            &path,
            format!("{{\n  {mapping}\n}}\n").as_bytes(),
            force,
            false,
        )?;
        return Ok((path, Done::Wrote));
    };
    let text = String::from_utf8_lossy(&bytes);
    if text.contains(&format!("\"{schema}\"")) {
        return Ok((path, Done::Had));
    }
    match with_mapping(&bytes, &mapping) {
        Some(new) => {
            write_atomic(&path, &new, true, false)?;
            Ok((path, Done::Added))
        }
        None => Ok((path, Done::Add(format!("  {mapping}")))),
    }
}

/// `bytes` (a settings file) with the `yaml.schemas` mapping inserted after its opening brace,
/// when it is a plain JSON object without that key; `None` for anything else (comments, the
/// key already there, not an object), which is left to the person.
fn with_mapping(bytes: &[u8], mapping: &str) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let object = value.as_object()?;
    if object.contains_key("yaml.schemas") {
        return None;
    }
    let brace = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let mut new = bytes[..=brace].to_vec();
    new.extend_from_slice(format!("\n  {mapping}").as_bytes());
    if !object.is_empty() {
        new.push(b',');
    } else {
        new.push(b'\n');
    }
    let rest = &bytes[brace + 1..];
    if object.is_empty() {
        // `{ }` becomes the mapping alone
        let close = rest.iter().position(|b| *b == b'}')?;
        new.extend_from_slice(&rest[close..]);
    } else {
        new.extend_from_slice(rest);
    }
    Some(new)
}

/// Appends the override lines to the `.gitignore` at `path` unless it has them, keeping every
/// byte that is there (whatever its encoding); creates it when missing. A link or anything but
/// a regular file is not written through.
fn add_ignore_lines(path: &Path) -> Result<Done, WriteError> {
    let shown = path.display().to_string();
    let block = format!("# personal bprof overrides\n{GITIGNORE}");
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return write_atomic(path, block.as_bytes(), false, false).map(|()| Done::Wrote);
        }
        Err(source) => {
            return Err(WriteError::Write {
                path: shown,
                source,
            });
        }
        Ok(meta) => {
            if let Some(what) = Special::of(&meta.file_type()) {
                return Err(WriteError::NotRegular {
                    path: shown,
                    what: what.describe(),
                });
            }
        }
    }
    let refused = |e: ReadError| match e {
        ReadError::NotRegular(what) => WriteError::NotRegular {
            path: shown.clone(),
            what: what.describe(),
        },
        ReadError::TooLarge { limit } => WriteError::TooLarge {
            path: shown.clone(),
            limit,
        },
        ReadError::Io(source) => WriteError::Write {
            path: shown.clone(),
            source,
        },
    };
    let file = files::open_regular(
        path,
        std::fs::OpenOptions::new().read(true).append(true),
        false,
    )
    .map_err(refused)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let existing = files::read_limited(&file, MAX_GITIGNORE_BYTES, len).map_err(refused)?;
    if has_ignore_line(&existing) {
        return Ok(Done::Had);
    }
    let mut add = Vec::new();
    if !existing.is_empty() && !existing.ends_with(b"\n") {
        add.push(b'\n');
    }
    add.extend_from_slice(block.as_bytes());
    (&file)
        .write_all(&add)
        .and_then(|()| file.sync_all())
        .map(|()| Done::Added)
        .map_err(|source| WriteError::Write {
            path: shown,
            source,
        })
}

/// Whether a `.gitignore` (any bytes) has the `*.local.yaml` line.
fn has_ignore_line(text: &[u8]) -> bool {
    text.split(|b| *b == b'\n')
        .any(|line| line.trim_ascii() == b"*.local.yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_goes_into_a_plain_object_only() {
        let m = "\"yaml.schemas\": {}";
        let add = |t: &str| with_mapping(t.as_bytes(), m).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(add("{}").unwrap(), "{\n  \"yaml.schemas\": {}\n}");
        assert_eq!(add(" { }\n").unwrap(), " {\n  \"yaml.schemas\": {}\n}\n");
        assert_eq!(
            add("{\"a\": 1}").unwrap(),
            "{\n  \"yaml.schemas\": {},\"a\": 1}"
        );
        for kept in ["// comment\n{}", "{\"yaml.schemas\": {}}", "[]", "", "{"] {
            assert_eq!(add(kept), None, "{kept}");
        }
        for t in ["{}", " { }\n", "{\"a\": 1}"] {
            let v: serde_json::Value = serde_json::from_str(&add(t).unwrap()).unwrap();
            assert!(v.get("yaml.schemas").is_some(), "{t}");
        }
    }

    #[test]
    fn the_line_is_found_in_any_bytes() {
        assert!(has_ignore_line(b"\xff\xfe junk\r\n  *.local.yaml \r\n"));
        assert!(!has_ignore_line(b"*.local.yaml.bak\n#*.local.yaml"));
    }

    #[test]
    fn appends_keeping_every_byte() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".gitignore");
        std::fs::write(&p, b"/target\n\xff\xfeold").unwrap();
        add_ignore_lines(&p).unwrap();
        let after = std::fs::read(&p).unwrap();
        assert!(
            after.starts_with(b"/target\n\xff\xfeold\n# personal"),
            "{after:?}"
        );
        add_ignore_lines(&p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), after, "added once");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_is_not_written_through() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("elsewhere"), b"x").unwrap();
        std::os::unix::fs::symlink("elsewhere", d.path().join(".gitignore")).unwrap();
        assert!(matches!(
            add_ignore_lines(&d.path().join(".gitignore")),
            Err(WriteError::NotRegular { .. })
        ));
        assert_eq!(std::fs::read(d.path().join("elsewhere")).unwrap(), b"x");
    }
}
