//! Where trust comes from. Every file of a profile directory (`*.local.yaml` included) is
//! other people's input: it describes connections and grants nothing. Only the person's own
//! user config file (`$XDG_CONFIG_HOME/bprof/local.yaml`), while it is theirs alone and outside
//! every git work tree, may grant capabilities. Shared content that asks for one (a template
//! that runs another az command, an ssh option outside the allow-list...) runs only with the
//! person's consent, pinned to its exact content in a machine-written file beside the user
//! config (`trust.json`): a change to the content makes the consent lapse.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::profile::diag::Problem;
use crate::profile::load::SourceFile;

/// Whether a file may grant capabilities: Ok, or why not (said as a warning).
pub fn may_grant(path: &Path) -> Result<(), String> {
    let canonical = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve it: {e}"))?;
    if let Some(repo) = canonical
        .ancestors()
        .skip(1)
        .find(|a| a.join(".git").exists())
    {
        return Err(format!(
            "it is inside the git work tree {}: files in a repository can come from other people",
            repo.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let mut check = vec![canonical.clone()];
        check.extend(canonical.parent().map(Path::to_path_buf));
        for p in check {
            let meta = std::fs::metadata(&p).map_err(|e| format!("cannot read it: {e}"))?;
            if meta.uid() != uid {
                return Err(format!("{} is owned by another user", p.display()));
            }
            if meta.mode() & 0o022 != 0 {
                return Err(format!(
                    "{} is writable by others (mode {:o}); fix: chmod go-w {}",
                    p.display(),
                    meta.mode() & 0o777,
                    p.display()
                ));
            }
        }
    }
    Ok(())
}

/// Shared content that asks for a capability: what it is, where it is written, its exact
/// content, and why it is outside the allow-lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// What it is, for people: "template `x`", "`ssh_args` of profile `p`".
    pub what: String,
    /// `file:line`, as shown in messages.
    pub location: String,
    /// The file's absolute path: consent is pinned to where the content came from.
    pub source: String,
    /// The JSON pointer of the content in the file.
    pub pointer: String,
    /// The content as written.
    pub content: Value,
    /// Why it needs consent.
    pub reasons: Vec<String>,
    /// Where it is written, as a problem to report (message filled in by the reporter).
    pub at: Problem,
}

impl Request {
    /// A request for the content at `pointer` of `file`.
    pub fn new(file: &SourceFile, pointer: &str, what: String, reasons: Vec<String>) -> Request {
        let source = std::fs::canonicalize(&file.path)
            .unwrap_or_else(|_| file.path.clone())
            .display()
            .to_string();
        Request {
            what,
            location: file.location(pointer),
            source,
            pointer: pointer.to_string(),
            content: file.value.pointer(pointer).cloned().unwrap_or(Value::Null),
            reasons,
            at: file.problem(pointer, true, String::new()),
        }
    }

    /// SHA-256 of where the content is and what it says.
    pub fn digest(&self) -> String {
        let text = serde_json::json!([self.source, self.pointer, self.content]).to_string();
        let hash = Sha256::digest(text.as_bytes());
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A short id to name it on the command line.
    pub fn id(&self) -> String {
        self.digest()[..10].to_string()
    }
}

/// What the person said about a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Consent {
    Approved,
    /// Never approved.
    Missing,
    /// Approved once, but the content has changed since: the approved content.
    Changed(Value),
}

/// One recorded consent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Approval {
    pub source: String,
    pub pointer: String,
    pub what: String,
    pub sha256: String,
    pub content: Value,
    /// Seconds since the Unix epoch.
    pub approved_at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    approved: Vec<Approval>,
}

/// The consents recorded in `trust.json`, and whether that file may be believed.
#[derive(Debug, Default, Clone)]
pub struct Consents {
    pub path: Option<PathBuf>,
    pub approved: Vec<Approval>,
    /// Why the file on disk is not believed (then no consent counts).
    pub ignored: Option<String>,
}

/// The largest `trust.json` bprof reads.
const MAX_STORE_BYTES: u64 = 4 * 1024 * 1024;

impl Consents {
    /// Reads the consent file at `path` (missing: no consents).
    pub fn load(path: Option<PathBuf>) -> Consents {
        let mut c = Consents {
            path: path.clone(),
            ..Default::default()
        };
        let Some(path) = path else { return c };
        if !path.exists() {
            return c;
        }
        if let Err(why) = may_grant(&path) {
            c.ignored = Some(why);
            return c;
        }
        use std::io::Read;
        let mut text = String::new();
        let read = std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_STORE_BYTES).read_to_string(&mut text));
        match read.map(|_| serde_json::from_str::<StoreFile>(&text)) {
            Ok(Ok(s)) => c.approved = s.approved,
            Ok(Err(e)) => c.ignored = Some(format!("it is not bprof's consent file: {e}")),
            Err(e) => c.ignored = Some(format!("it cannot be read: {e}")),
        }
        c
    }

    pub fn status(&self, r: &Request) -> Consent {
        if self.ignored.is_some() {
            return Consent::Missing;
        }
        match self
            .approved
            .iter()
            .find(|a| a.source == r.source && a.pointer == r.pointer)
        {
            Some(a) if a.sha256 == r.digest() => Consent::Approved,
            Some(a) => Consent::Changed(a.content.clone()),
            None => Consent::Missing,
        }
    }

    /// Records consent for these requests (replacing older consents of the same content).
    pub fn approve(&mut self, requests: &[Request]) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for r in requests {
            self.approved
                .retain(|a| !(a.source == r.source && a.pointer == r.pointer));
            self.approved.push(Approval {
                source: r.source.clone(),
                pointer: r.pointer.clone(),
                what: r.what.clone(),
                sha256: r.digest(),
                content: r.content.clone(),
                approved_at: now,
            });
        }
    }

    /// Removes the consents that `keep` says no to; returns how many went.
    pub fn revoke(&mut self, mut drop: impl FnMut(&Approval) -> bool) -> usize {
        let before = self.approved.len();
        self.approved.retain(|a| !drop(a));
        before - self.approved.len()
    }

    /// Writes the file (atomically, readable by the person only).
    pub fn save(&self) -> Result<PathBuf, crate::write::WriteError> {
        let Some(path) = &self.path else {
            return Err(crate::write::WriteError::Write {
                path: "trust.json".into(),
                source: std::io::Error::other(
                    "no config directory (set XDG_CONFIG_HOME or HOME; APPDATA on Windows)",
                ),
            });
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| crate::write::WriteError::Write {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let store = StoreFile {
            version: 1,
            approved: self.approved.clone(),
        };
        let mut text = serde_json::to_string_pretty(&store).unwrap_or_default();
        text.push('\n');
        crate::write::write_atomic(path, text.as_bytes(), true, true)?;
        Ok(path.clone())
    }
}

/// Every string (and key) of a file that carries a control character: each is a problem.
pub fn check_text(file: &SourceFile) -> Vec<Problem> {
    let mut problems = Vec::new();
    walk(&file.value, &mut String::new(), &mut |ptr, key, s| {
        if let Some(c) = crate::profile::allow::control_char(s) {
            let what = if key { "a key" } else { "a value" };
            problems.push(
                file.problem(
                    ptr,
                    key,
                    format!(
                        "{what} contains the control character U+{:04X}",
                        u32::from(c)
                    ),
                )
                .with_help(
                    "control characters (escape sequences, line breaks, NUL, bidi overrides) can spoof a terminal, an argv or an .rdp line; remove it",
                ),
            );
        }
    });
    problems
}

fn walk(v: &Value, ptr: &mut String, f: &mut impl FnMut(&str, bool, &str)) {
    match v {
        Value::String(s) => f(ptr, false, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = ptr.len();
                ptr.push('/');
                let _ = std::fmt::Write::write_fmt(ptr, format_args!("{i}"));
                walk(item, ptr, f);
                ptr.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = ptr.len();
                ptr.push('/');
                crate::profile::yaml::push_segment(ptr, k);
                f(ptr, true, k);
                walk(item, ptr, f);
                ptr.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(content: Value) -> Request {
        Request {
            what: "t".into(),
            location: "a.yaml:1".into(),
            source: "/x/a.yaml".into(),
            pointer: "/templates/t".into(),
            content,
            reasons: vec![],
            at: Problem::file_level("a.yaml", ""),
        }
    }

    #[test]
    fn consent_is_pinned_to_the_content() {
        let mut c = Consents::default();
        let r = req(serde_json::json!([["az", "ssh", "config"]]));
        assert_eq!(c.status(&r), Consent::Missing);
        c.approve(std::slice::from_ref(&r));
        assert_eq!(c.status(&r), Consent::Approved);
        let changed = req(serde_json::json!([["az", "ssh", "config", "--file", "x"]]));
        assert_eq!(c.status(&changed), Consent::Changed(r.content.clone()));
        assert_eq!(c.revoke(|a| a.pointer == "/templates/t"), 1);
        assert_eq!(c.status(&r), Consent::Missing);
    }

    #[test]
    fn a_file_in_a_git_work_tree_grants_nothing() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(".git")).unwrap();
        let f = d.path().join("local.yaml");
        std::fs::write(&f, "version: 1\n").unwrap();
        assert!(may_grant(&f).unwrap_err().contains("git work tree"));
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_may_write_grants_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("local.yaml");
        std::fs::write(&f, "version: 1\n").unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(may_grant(&f), Ok(()));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(may_grant(&f).unwrap_err().contains("writable by others"));
    }
}
