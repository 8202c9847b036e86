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

/// `bprof init [DIR]`: the scaffold, then what to do next.
pub(super) fn run(args: &Args, out: &super::Out) -> Result<i32, super::Error> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("profiles"));
    for written in scaffold(&dir, args.force)? {
        out.note(&format!("wrote {}", written.display()));
    }
    if args.vscode {
        let path = vscode(&dir, args.force)?;
        out.note(&format!("wrote {}", path.display()));
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

/// Writes the example, the schema and the `.gitignore` lines into `dir` (created if needed).
/// The example is not overwritten without `force`; the schema is refreshed; `.gitignore` is
/// appended to when it lacks the line (never rewritten).
/// Returns the files written.
pub fn scaffold(dir: &Path, force: bool) -> Result<Vec<PathBuf>, WriteError> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| WriteError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let example = dir.join("example.yaml");
    write_atomic(&example, EXAMPLE.as_bytes(), force, false)?;
    let schema = dir.join("bprof.schema.json");
    write_atomic(
        &schema,
        crate::profile::schema::schema_text().as_bytes(),
        true,
        false,
    )?;
    let ignore = dir.join(".gitignore");
    add_ignore_lines(&ignore)?;
    Ok(vec![example, schema, ignore])
}

/// `.vscode/settings.json` in the current directory (the workspace), mapping the schema to the
/// profile folder's YAML files, so VS Code's YAML extension validates and completes them even
/// without the first line. An existing settings file is not replaced without `force`: then the
/// lines to add are said.
pub fn vscode(dir: &Path, force: bool) -> Result<PathBuf, WriteError> {
    let rel = dir.display().to_string().replace('\\', "/");
    let rel = rel.trim_end_matches('/');
    let settings = serde_json::json!({
        "yaml.schemas": {
            format!("./{rel}/bprof.schema.json"): [format!("{rel}/*.yaml"), format!("{rel}/*.yml")]
        }
    });
    let path = PathBuf::from(".vscode").join("settings.json");
    std::fs::create_dir_all(".vscode").map_err(|source| WriteError::Write {
        path: ".vscode".into(),
        source,
    })?;
    let mut text = serde_json::to_string_pretty(&settings).unwrap_or_default();
    text.push('\n');
    write_atomic(&path, text.as_bytes(), force, false)?;
    Ok(path)
}

/// Appends the override lines to the `.gitignore` at `path` unless it has them, keeping every
/// byte that is there (whatever its encoding); creates it when missing. A link or anything but
/// a regular file is not written through.
fn add_ignore_lines(path: &Path) -> Result<(), WriteError> {
    let shown = path.display().to_string();
    let block = format!("# personal bprof overrides\n{GITIGNORE}");
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return write_atomic(path, block.as_bytes(), false, false);
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
        return Ok(());
    }
    let mut add = Vec::new();
    if !existing.is_empty() && !existing.ends_with(b"\n") {
        add.push(b'\n');
    }
    add.extend_from_slice(block.as_bytes());
    (&file)
        .write_all(&add)
        .and_then(|()| file.sync_all())
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
