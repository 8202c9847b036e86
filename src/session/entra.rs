//! An Entra (aad) ssh profile's key and certificate, made when `run` (or `bprof ssh-cert`)
//! needs them: the key pair when it is missing, the certificate from `az ssh cert` when it is
//! missing or near its end; and the principal it names, for OpenSSH's `-l`.

use std::path::{Path, PathBuf};

use crate::entra::{self, Paths, Status};
use crate::plan::{Plan, Step};
use crate::process::Signals;

use super::{RunError, foreground};

/// The key pair of `key`'s profile, made by the step's `ssh-keygen` when it is missing, in a
/// directory readable by the person alone.
pub(super) fn ensure_key(
    plan: &Plan,
    step: &Step,
    key: &str,
    signals: &Signals,
) -> Result<(), RunError> {
    let key = Path::new(key);
    if key.exists() {
        return Ok(());
    }
    if let Some(dir) = key.parent() {
        private_dir(dir)?;
    }
    foreground(plan, step, signals)
}

/// The certificate of `key`, asked of az by the step when it is missing or near its end; its
/// principal.
pub(super) fn ensure_cert(
    plan: &Plan,
    step: &Step,
    key: &str,
    signals: &Signals,
) -> Result<String, RunError> {
    let paths = Paths {
        key: PathBuf::from(key),
    };
    if let Status::Valid(c) = entra::status(&paths, entra::now()) {
        return principal(c, &paths);
    }
    foreground(plan, step, signals)?;
    match entra::status(&paths, entra::now()) {
        Status::Valid(c) => principal(c, &paths),
        _ => Err(RunError::NoCertificate {
            path: paths.cert().display().to_string(),
        }),
    }
}

fn principal(c: entra::Cert, paths: &Paths) -> Result<String, RunError> {
    c.principals
        .into_iter()
        .next()
        .filter(|p| !p.is_empty() && !p.starts_with('-') && !p.chars().any(char::is_control))
        .ok_or_else(|| RunError::NoCertificate {
            path: paths.cert().display().to_string(),
        })
}

/// `dir` and its parents made; `dir` itself readable by the person alone (0700).
fn private_dir(dir: &Path) -> Result<(), RunError> {
    let write_err = |source| crate::write::WriteError::Write {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(write_err)?;
    }
    Ok(())
}

/// The connect step with the certificate's principal where the plan left its place.
pub(super) fn with_principal(step: &Step, principal: &str) -> Step {
    let mut s = step.clone();
    for a in &mut s.argv {
        if a == crate::plan::PRINCIPAL {
            *a = principal.to_string();
        }
    }
    s
}

/// `bprof ssh-cert`: the plan's key and certificate steps only (nothing else runs); the
/// certificate's principal.
pub fn ensure(plan: &Plan, signals: &Signals) -> Result<String, RunError> {
    let mut principal = None;
    for step in &plan.steps {
        match &step.kind {
            crate::plan::StepKind::SshKey { key } => ensure_key(plan, step, key, signals)?,
            crate::plan::StepKind::SshCert { key } => {
                principal = Some(ensure_cert(plan, step, key, signals)?)
            }
            _ => {}
        }
    }
    principal.ok_or_else(|| RunError::NoCertificate {
        path: "(the profile is not an Entra ssh profile)".into(),
    })
}
