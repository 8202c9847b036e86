//! Where trust comes from. Every file of a profile directory (`*.local.yaml` included) is
//! other people's input: it describes connections and grants nothing. Only the person's own
//! user config file (`$XDG_CONFIG_HOME/bprof/local.yaml`), while it is theirs alone and outside
//! every git work tree, may grant capabilities. Shared content that asks for one (a template
//! that runs another az command, an ssh option outside the allow-list...) runs only with the
//! person's consent, pinned to its exact content and to the destination it was given for
//! (tenant, subscription, bastion, target, port) in a machine-written file beside the user
//! config (`trust.json`): a change to either makes the consent lapse.

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
        let meta = std::fs::metadata(&canonical).map_err(|e| format!("cannot read it: {e}"))?;
        if meta.uid() != uid {
            return Err(format!("{} is owned by another user", canonical.display()));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{} is writable by others (mode {:o}); fix: chmod go-w {}",
                canonical.display(),
                meta.mode() & 0o777,
                canonical.display()
            ));
        }
    }
    // Windows: the file and its directory (`%APPDATA%\bprof`) are yours, and nobody else may
    // write either; the directories above are checked below, by owner
    #[cfg(windows)]
    for p in std::iter::once(canonical.as_path()).chain(canonical.parent()) {
        crate::owner::check(p, crate::owner::Rule::Private)?;
    }
    // every directory above it up to the nearest one that is yours alone: nobody else may
    // replace the file, or a directory on the way to it
    if let Some(dir) = canonical.parent() {
        crate::profile::load::yours_alone(dir)?;
    }
    Ok(())
}

/// Where a consent lets the content go: the resolved destination of the profile it was given
/// for. Content that hands the VM this machine (`-A`, drives) is only as safe as the VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// The tenant id az signs in to.
    pub tenant: String,
    /// The bastion's subscription.
    pub subscription: String,
    /// The bastion's resource id.
    pub bastion: String,
    /// The VM's resource id, or its IP address.
    pub target: String,
    /// The port on the target (the profile's `resource_port`).
    pub port: u16,
}

impl Destination {
    /// Its fields, named, in the order they are shown.
    pub fn fields(&self) -> [(&'static str, String); 5] {
        [
            ("tenant", self.tenant.clone()),
            ("subscription", self.subscription.clone()),
            ("bastion", self.bastion.clone()),
            ("target", self.target.clone()),
            ("port", self.port.to_string()),
        ]
    }

    /// Each field beside `now`'s: its name, this value, that value.
    pub fn beside(&self, now: &Destination) -> Vec<(&'static str, String, String)> {
        self.fields()
            .into_iter()
            .zip(now.fields())
            .map(|((name, was), (_, is))| (name, was, is))
            .collect()
    }
}

/// Shared content that asks for a capability: what it is, where it is written, its exact
/// content, why it is outside the allow-lists, and where the profile using it goes.
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
    /// The profile that uses it (to tell a destination that moved from another profile's).
    pub profile: String,
    /// Where that profile goes: consent is pinned to it too.
    pub destination: Destination,
}

impl Request {
    /// A request for the content at `pointer` of `file`, used by `profile` going to
    /// `destination`.
    pub fn new(
        file: &SourceFile,
        pointer: &str,
        what: String,
        reasons: Vec<String>,
        profile: &str,
        destination: Destination,
    ) -> Request {
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
            profile: profile.to_string(),
            destination,
        }
    }

    /// SHA-256 of where the content is, what it says and where it goes.
    pub fn digest(&self) -> String {
        let text = serde_json::json!([self.source, self.pointer, self.content, self.destination])
            .to_string();
        let hash = Sha256::digest(text.as_bytes());
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A short id to name it on the command line.
    pub fn id(&self) -> String {
        self.digest()[..10].to_string()
    }

    /// The same content for the same destination (what one consent covers).
    pub fn same_consent(&self, other: &Request) -> bool {
        self.source == other.source
            && self.pointer == other.pointer
            && self.destination == other.destination
    }
}

/// What the person said about a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Consent {
    Approved,
    /// Never approved (for this destination).
    Missing,
    /// Approved once, but the content or the destination has changed since: what was
    /// approved. `destination` is None for a consent recorded before consents were pinned to
    /// a destination.
    Changed {
        content: Value,
        destination: Option<Destination>,
    },
}

impl Consent {
    /// The status of `r` in a few words.
    pub fn word(&self, r: &Request) -> &'static str {
        match self {
            Consent::Approved => "approved",
            Consent::Missing => "not approved",
            Consent::Changed {
                destination: None, ..
            } => "approved before consents were pinned to a destination",
            Consent::Changed {
                content,
                destination: Some(d),
            } => match (*content == r.content, *d == r.destination) {
                (true, false) => "its destination changed since you approved it",
                (false, false) => "it and its destination changed since you approved it",
                _ => "changed since you approved it",
            },
        }
    }
}

/// One recorded consent: content at a place, for a destination.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Approval {
    pub source: String,
    pub pointer: String,
    pub what: String,
    pub sha256: String,
    pub content: Value,
    /// None: recorded by a bprof that did not pin consents to a destination (it counts as
    /// changed, never as approved).
    #[serde(default)]
    pub destination: Option<Destination>,
    /// The profiles it was approved for.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Seconds since the Unix epoch.
    pub approved_at: u64,
}

impl Approval {
    fn of(&self, r: &Request) -> bool {
        self.source == r.source && self.pointer == r.pointer
    }

    /// Whether it is about `r`: the same place, and `r`'s destination, no destination, or
    /// `r`'s profile (whose destination has moved since).
    pub fn concerns(&self, r: &Request) -> bool {
        self.of(r)
            && match &self.destination {
                Some(d) => *d == r.destination || self.profiles.contains(&r.profile),
                None => true,
            }
    }
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

/// `trust.json`'s format: 2 pins each consent to a destination (a version 1 entry has none,
/// and counts as changed).
const STORE_VERSION: u32 = 2;

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
        // a regular file only, opened without blocking (a FIFO there must not hang bprof), and
        // bounded
        let read = crate::files::read_regular(&path, MAX_STORE_BYTES);
        match read.map(|bytes| serde_json::from_slice::<StoreFile>(&bytes)) {
            Ok(Ok(s)) => c.approved = s.approved,
            Ok(Err(e)) => c.ignored = Some(format!("it is not bprof's consent file: {e}")),
            Err(e) => c.ignored = Some(format!("it cannot be read: {e}")),
        }
        c
    }

    /// Whether `r` is approved: the same content at the same place for the same destination.
    pub fn status(&self, r: &Request) -> Consent {
        if self.ignored.is_some() {
            return Consent::Missing;
        }
        let changed = |a: &Approval| Consent::Changed {
            content: a.content.clone(),
            destination: a.destination.clone(),
        };
        let here = self.approved.iter().filter(|a| a.of(r));
        if let Some(a) = here
            .clone()
            .find(|a| a.destination.as_ref() == Some(&r.destination))
        {
            return if a.sha256 == r.digest() {
                Consent::Approved
            } else {
                changed(a)
            };
        }
        // the destination of this profile moved (or was never recorded): show what was approved
        match here
            .clone()
            .find(|a| a.profiles.contains(&r.profile))
            .or_else(|| here.clone().find(|a| a.destination.is_none()))
        {
            Some(a) => changed(a),
            // approved for other destinations only
            None => Consent::Missing,
        }
    }

    /// Records consent for these requests, each for its destination. It replaces an older
    /// consent of the same place and destination, and one recorded without a destination; for
    /// another destination only the profile's own name is taken off (an approval no profile
    /// names any more goes): approving for one destination never drops another's.
    pub fn approve(&mut self, requests: &[Request]) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for r in requests {
            let mut profiles = vec![r.profile.clone()];
            self.approved.retain_mut(|a| {
                if !a.of(r) {
                    return true;
                }
                match &a.destination {
                    Some(d) if *d == r.destination => {
                        if a.sha256 == r.digest() {
                            profiles
                                .extend(a.profiles.iter().filter(|p| **p != r.profile).cloned());
                        }
                        false
                    }
                    Some(_) => {
                        let before = a.profiles.len();
                        a.profiles.retain(|p| *p != r.profile);
                        !(before > 0 && a.profiles.is_empty())
                    }
                    None => false,
                }
            });
            self.approved.push(Approval {
                source: r.source.clone(),
                pointer: r.pointer.clone(),
                what: r.what.clone(),
                sha256: r.digest(),
                content: r.content.clone(),
                destination: Some(r.destination.clone()),
                profiles,
                approved_at: now,
            });
        }
    }

    /// Removes the consents that `drop` says yes to; returns how many went.
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
            version: STORE_VERSION,
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

    fn dest(target: &str) -> Destination {
        Destination {
            tenant: "11111111-1111-1111-1111-111111111111".into(),
            subscription: "22222222-2222-2222-2222-222222222222".into(),
            bastion: "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg/providers/Microsoft.Network/bastionHosts/b".into(),
            target: target.into(),
            port: 22,
        }
    }

    fn req_for(profile: &str, content: Value, destination: Destination) -> Request {
        Request {
            what: "t".into(),
            location: "a.yaml:1".into(),
            source: "/x/a.yaml".into(),
            pointer: "/templates/t".into(),
            content,
            reasons: vec![],
            at: Problem::file_level("a.yaml", ""),
            profile: profile.into(),
            destination,
        }
    }

    fn req(content: Value) -> Request {
        req_for("p", content, dest("/vm/a"))
    }

    #[test]
    fn consent_is_pinned_to_the_content() {
        let mut c = Consents::default();
        let r = req(serde_json::json!([["az", "ssh", "config"]]));
        assert_eq!(c.status(&r), Consent::Missing);
        c.approve(std::slice::from_ref(&r));
        assert_eq!(c.status(&r), Consent::Approved);
        let changed = req(serde_json::json!([["az", "ssh", "config", "--file", "x"]]));
        assert_eq!(
            c.status(&changed),
            Consent::Changed {
                content: r.content.clone(),
                destination: Some(r.destination.clone())
            }
        );
        assert_eq!(
            c.status(&changed).word(&changed),
            "changed since you approved it"
        );
        assert_eq!(c.revoke(|a| a.pointer == "/templates/t"), 1);
        assert_eq!(c.status(&r), Consent::Missing);
    }

    #[test]
    fn consent_is_pinned_to_the_destination() {
        let content = serde_json::json!(["-A"]);
        let r = req(content.clone());
        let mut c = Consents::default();
        c.approve(std::slice::from_ref(&r));
        let base = r.destination.clone();
        let moves: [fn(&mut Destination); 5] = [
            |d| d.tenant = "33333333-3333-3333-3333-333333333333".into(),
            |d| d.subscription = "44444444-4444-4444-4444-444444444444".into(),
            |d| d.bastion.push('2'),
            |d| d.target = "10.0.0.4".into(),
            |d| d.port = 2222,
        ];
        for (i, change) in moves.iter().enumerate() {
            let mut d = base.clone();
            change(&mut d);
            let moved = req_for("p", content.clone(), d);
            assert_eq!(
                c.status(&moved),
                Consent::Changed {
                    content: content.clone(),
                    destination: Some(base.clone())
                },
                "change {i}"
            );
            assert_eq!(
                c.status(&moved).word(&moved),
                "its destination changed since you approved it"
            );
            assert_ne!(moved.id(), r.id(), "change {i}");
        }
        // approving the move replaces the profile's old destination
        let moved = req_for("p", content.clone(), dest("/vm/evil"));
        c.approve(std::slice::from_ref(&moved));
        assert_eq!(c.status(&moved), Consent::Approved);
        assert_eq!(c.approved.len(), 1);
        assert_eq!(
            c.status(&r),
            Consent::Changed {
                content,
                destination: Some(dest("/vm/evil"))
            }
        );
    }

    #[test]
    fn one_approval_per_destination_and_none_drops_another() {
        let content = serde_json::json!(["-A"]);
        let a = req_for("a", content.clone(), dest("/vm/a"));
        let b = req_for("b", content.clone(), dest("/vm/b"));
        let mut c = Consents::default();
        c.approve(std::slice::from_ref(&a));
        assert_eq!(c.status(&a), Consent::Approved);
        // approved for another profile's destination only: never approved for this one
        assert_eq!(c.status(&b), Consent::Missing);
        c.approve(std::slice::from_ref(&b));
        assert_eq!(c.status(&a), Consent::Approved);
        assert_eq!(c.status(&b), Consent::Approved);
        assert_eq!(c.approved.len(), 2);
        // a third profile to the same destination shares b's approval, and b keeps it
        let b2 = req_for("b2", content.clone(), dest("/vm/b"));
        assert_eq!(c.status(&b2), Consent::Approved);
        c.approve(std::slice::from_ref(&b2));
        assert_eq!(c.approved.len(), 2);
        assert_eq!(c.approved[1].profiles, ["b2", "b"]);
        // revoking one profile's consent leaves the other's
        assert_eq!(c.revoke(|x| x.concerns(&a)), 1);
        assert_eq!(c.status(&a), Consent::Missing);
        assert_eq!(c.status(&b), Consent::Approved);
    }

    #[test]
    fn a_consent_without_a_destination_is_changed_never_approved() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("trust.json");
        let r = req(serde_json::json!(["-A"]));
        // as a bprof before destinations wrote it (its sha256 was of the content alone)
        let old = serde_json::json!({"version": 1, "approved": [{
            "source": r.source, "pointer": r.pointer, "what": r.what,
            "sha256": r.digest(), "content": r.content, "approved_at": 1}]});
        std::fs::write(&path, old.to_string()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut c = Consents::load(Some(path.clone()));
        assert_eq!(c.ignored, None);
        let status = c.status(&r);
        assert_eq!(
            status,
            Consent::Changed {
                content: r.content.clone(),
                destination: None
            }
        );
        assert_eq!(
            status.word(&r),
            "approved before consents were pinned to a destination"
        );
        // approving again replaces it, pinned; the file says so
        c.approve(std::slice::from_ref(&r));
        assert_eq!(c.approved.len(), 1);
        c.save().unwrap();
        let c = Consents::load(Some(path.clone()));
        assert_eq!(c.status(&r), Consent::Approved);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"version\": 2"), "{text}");
        assert!(text.contains("\"target\": \"/vm/a\""), "{text}");
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
