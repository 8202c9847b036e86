//! The Windows suite: the Windows build of bprof (`bprof.exe`, cross-built with mingw-w64) run
//! under Wine, against the same loopback fake bastion as the Linux tests and a fake `az.cmd`.
//! `tests/windows/run.sh` builds what it needs and runs it (`cargo test --test windows`); it
//! is not part of `cargo test`, and it fails, rather than skips, when Wine or the build is
//! missing.
//!
//! The environment run.sh hands over: BPROF_WINDOWS_EXE (bprof.exe, with the test-only
//! `bcryptprimitives.dll` beside it), BPROF_WINDOWS_BIN (a directory with `az.cmd` and its
//! `fake_az.exe`, and `mstsc.exe`, a fake that records the file it was given), WINEPREFIX (a
//! prefix of the suite's own).
// the tests start Wine and helper programs themselves
#![allow(clippy::disallowed_methods)]

#[path = "../cli/fake_bastion/mod.rs"]
mod fake_bastion;
mod gateway;
/// The Linux suite's harness: its `Run` (and checks) and its one-profile set.
#[path = "../cli/harness.rs"]
#[allow(dead_code)]
mod harness;
mod native;
mod run;
mod table;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What run.sh provides, or a failure that says how to get it.
fn needed(var: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!("{var} is not set: run the Windows suite with `bash tests/windows/run.sh`"),
    }
}

/// The Windows form of a path on this machine: Wine's drive Z: is `/`.
pub fn win(p: &Path) -> String {
    format!("Z:{}", p.display()).replace('/', "\\")
}

/// The set of the example profiles with the test's files, and bprof.exe run in it under Wine.
pub struct WinTest {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

pub use harness::Run;

/// The subscriptions the example profiles use: az's profile file says the person is signed
/// in to them (with the BOM az writes).
const SIGNED_IN: &str = "\u{feff}{\"subscriptions\": [\
{\"id\": \"55555555-5555-5555-5555-555555555555\", \"tenantId\": \"t\", \"name\": \"n\", \"state\": \"Enabled\", \"isDefault\": false},\
{\"id\": \"44444444-4444-4444-4444-444444444444\", \"tenantId\": \"t\", \"name\": \"n\", \"state\": \"Enabled\", \"isDefault\": false},\
{\"id\": \"22222222-2222-2222-2222-222222222222\", \"tenantId\": \"t\", \"name\": \"n\", \"state\": \"Enabled\", \"isDefault\": true}]}";

impl WinTest {
    /// A directory with `profiles/` (the bundled examples), az's profile (signed in) and a
    /// config directory of its own.
    pub fn examples() -> WinTest {
        let t = WinTest::empty();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let dst = t.path().join("profiles");
        std::fs::create_dir_all(&dst).expect("mkdir");
        for e in std::fs::read_dir(src).expect("profiles/").flatten() {
            std::fs::copy(e.path(), dst.join(e.file_name())).expect("copy");
        }
        t
    }

    pub fn empty() -> WinTest {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["calls", "azure", "appdata", "localappdata", "home", "tmp"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        std::fs::write(dir.path().join("azure/azureProfile.json"), SIGNED_IN).expect("write");
        WinTest {
            dir,
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(self, rel: &str, content: impl AsRef<[u8]>) -> WinTest {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> WinTest {
        self.env.push((k.into(), v.into()));
        self
    }

    /// `bprof.exe ARGS` under Wine, in the test's directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let bin = needed("BPROF_WINDOWS_BIN");
        let mut cmd = Command::new("wine");
        cmd.arg(needed("BPROF_WINDOWS_EXE"))
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .env("WINEPREFIX", needed("WINEPREFIX"))
            .env("WINEDEBUG", "-all")
            // az.cmd is found on PATH, as on Windows (Wine puts WINEPATH first)
            .env("WINEPATH", win(&bin))
            .env("FAKE_AZ_DIR", win(self.path()))
            .env("AZURE_CONFIG_DIR", win(&self.path().join("azure")))
            .env("CI", "1");
        for var in [
            "BPROF_PROFILES",
            "BPROF_AZ",
            "BPROF_TUNNEL_ENGINE",
            "BPROF_ARM_ENDPOINT",
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "HTTPS_PROXY",
            "https_proxy",
            "NO_COLOR",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs bprof.exe to its end. Its output goes to files, not pipes: a Wine service that
    /// starts on the way would hold a pipe open long after bprof.exe is gone.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        let (out, err) = self.outputs(&mut cmd);
        let status = cmd.status().expect("run wine");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: read(&out),
            stderr: read(&err),
            calls: self.calls(),
        }
    }

    /// Sends `cmd`'s stdout and stderr to two fresh files of the test's; their paths.
    pub fn outputs(&self, cmd: &mut Command) -> (PathBuf, PathBuf) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = self.path().join(format!("tmp/stdout-{n}"));
        let err = self.path().join(format!("tmp/stderr-{n}"));
        cmd.stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"));
        (out, err)
    }

    /// The argv of each az call, in order (fake_az.exe records them NUL-separated).
    pub fn calls(&self) -> Vec<Vec<String>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.path().join("calls"))
            .expect("calls/")
            .flatten()
            .map(|e| e.path())
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p).expect("call record");
                bytes
                    .split(|b| *b == 0)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .collect()
    }
}

/// A file's text, or nothing.
pub fn read(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
}

/// This test's processes still running whose command line names `image` (Wine runs each
/// Windows process as a Linux process; the test's own carry its FAKE_AZ_DIR).
pub fn running(image: &str, t: &WinTest) -> Vec<String> {
    let mark = format!("FAKE_AZ_DIR={}", win(t.path()));
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let (Ok(cmd), Ok(env)) = (
            std::fs::read(e.path().join("cmdline")),
            std::fs::read(e.path().join("environ")),
        ) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let ours = env.split(|b| *b == 0).any(|v| v == mark.as_bytes());
        if ours && cmd.to_ascii_lowercase().contains(image) {
            out.push(format!("{:?}: {cmd}", e.file_name()));
        }
    }
    out
}
