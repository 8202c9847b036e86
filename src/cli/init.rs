//! `bprof init [DIR]`: a new profile directory with a commented example that validates, the
//! JSON schema beside it (editors validate and complete through the first line of the
//! example), and the `.gitignore` line that keeps personal overrides out of git.

use std::path::{Path, PathBuf};

use crate::write::{WriteError, write_atomic};

/// The example profile file `init` writes. Every GUID in it is a placeholder.
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

/// Writes the example, the schema and the `.gitignore` lines into `dir` (created if needed).
/// The example is not overwritten without `force`; the schema is refreshed; `.gitignore` is
/// appended to when it lacks the line.
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
    let existing = std::fs::read_to_string(&ignore).unwrap_or_default();
    if !existing.lines().any(|l| l.trim() == "*.local.yaml") {
        let mut text = existing;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("# personal bprof overrides\n");
        text.push_str(GITIGNORE);
        write_atomic(&ignore, text.as_bytes(), true, false)?;
    }
    Ok(vec![example, schema, ignore])
}
