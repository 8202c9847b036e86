//! Files in a profile directory come from anyone who can commit to it: links that leave the
//! directory, FIFOs, devices, procfs files and huge files are refused without blocking and
//! without printing anything of what they point at.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{Run, Test, one_profile};

const CANARY: &str = "CANARY123";
/// Invalid YAML whose first error is on the line holding the secret.
const SECRET: &str = "[default]\naws_secret_access_key = CANARY123\naws_access_key_id = AKIA0000\n";
/// Longer than any of these runs takes; a run still going then is blocked.
const LIMIT: Duration = Duration::from_secs(5);

fn set() -> String {
    one_profile("  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n")
        + "defaults:\n  tunnel_engine: az\n"
}

/// Runs bprof like `run_with`, but fails the test (killing bprof) if it has not ended in time.
fn run_within(t: &Test, extra: &[&str]) -> Run {
    let mut child = t
        .command()
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bprof");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bprof {extra:?} did not end within {LIMIT:?}: it blocked on a file");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    t.finish(out.status.code().unwrap_or(-1), out.stdout, out.stderr)
}

fn link(target: impl AsRef<Path>, at: &Path) {
    std::fs::create_dir_all(at.parent().expect("parent")).expect("mkdir");
    symlink(target, at).expect("symlink");
}

fn mkfifo(at: &Path) {
    std::fs::create_dir_all(at.parent().expect("parent")).expect("mkdir");
    let c = std::ffi::CString::new(at.to_str().expect("utf-8 path")).expect("path");
    // SAFETY: a valid NUL-terminated path
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

#[track_caller]
fn assert_no_canary(r: &Run) {
    assert!(
        !r.stdout.contains(CANARY) && !r.stderr.contains(CANARY),
        "the secret was printed:\n--- stdout\n{}\n--- stderr\n{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn a_link_to_a_secret_outside_the_directory_is_refused_without_printing_it() {
    let t = Test::new()
        .file("profiles/p.yaml", set())
        .file("home/.aws/credentials", SECRET);
    link(
        t.path().join("home/.aws/credentials"),
        &t.path().join("profiles/x.yaml"),
    );
    let r = run_within(&t, &["validate"]);
    r.code(65)
        .stderr_has("x.yaml is not read: it is a symlink that leaves the directory")
        .stderr_has("profiles/x.yaml:1:1")
        .stderr_has("replace the link with the file");
    assert_no_canary(&r);
    let r = run_within(&t, &["validate", "--format", "json"]);
    r.code(65);
    assert_no_canary(&r);
    assert_eq!(r.json()["problems"][0]["file"], "profiles/x.yaml");
    // a relative link out of the directory, and through --profiles DIR and BPROF_PROFILES
    let t = Test::new()
        .file("team/p.yaml", set())
        .file("secret", SECRET);
    link("../secret", &t.path().join("team/y.yml"));
    let r = run_within(&t, &["--profiles", "team", "validate"]);
    r.code(65).stderr_has("y.yml is not read");
    assert_no_canary(&r);
    // the rest of the set stays usable, and the link is still not read
    let r = run_within(&t, &["--profiles", "team", "list"]);
    r.code(0).stderr_has("1 problem in the profile set");
    assert_no_canary(&r);
    let r = run_within(&t.env("BPROF_PROFILES", "team"), &["validate"]);
    r.code(65).stderr_has("leaves the directory");
    assert_no_canary(&r);
}

#[test]
fn a_link_inside_the_directory_to_a_profile_file_is_read() {
    let t = Test::new().file("profiles/team/shared.yaml", set());
    link("team/shared.yaml", &t.path().join("profiles/p.yaml"));
    run_within(&t, &["list"]).code(0).stdout_has("p ");
    run_within(&t, &["validate"])
        .code(0)
        .stderr_has("1 file valid");
}

#[test]
fn links_to_devices_and_procfs_in_a_directory_are_refused_at_once() {
    for target in ["/dev/zero", "/proc/self/pagemap", "/dev/stdin"] {
        let t = Test::new().file("profiles/p.yaml", set());
        link(target, &t.path().join("profiles/x.yaml"));
        run_within(&t, &["validate"])
            .code(65)
            .stderr_has("x.yaml is not read");
    }
    // a link inside the directory to a directory
    let t = Test::new().file("profiles/p.yaml", set());
    std::fs::create_dir(t.path().join("profiles/sub")).expect("mkdir");
    link("sub", &t.path().join("profiles/x.yaml"));
    run_within(&t, &["validate"])
        .code(65)
        .stderr_has("x.yaml is not read: it is a symlink to a directory, not to a regular file");
}

#[test]
fn a_fifo_named_yaml_never_blocks() {
    let t = Test::new().file("profiles/p.yaml", set());
    mkfifo(&t.path().join("profiles/x.yaml"));
    run_within(&t, &["validate"])
        .code(65)
        .stderr_has("x.yaml is not read: it is a FIFO (named pipe), not a regular file");
    // a link to it, and the FIFO named itself
    link("x.yaml", &t.path().join("profiles/y.yaml"));
    run_within(&t, &["validate"])
        .code(65)
        .stderr_has("y.yaml is not read: it is a symlink to a FIFO");
    run_within(&t, &["validate", "profiles/x.yaml"])
        .code(66)
        .stderr_has("is a FIFO (named pipe), not a regular file or directory");
    // a directory named like a profile file is named too
    let t = Test::new().file("profiles/p.yaml", set());
    std::fs::create_dir(t.path().join("profiles/d.yaml")).expect("mkdir");
    run_within(&t, &["validate"])
        .code(65)
        .stderr_has("d.yaml is not read: it is a directory");
}

#[test]
fn a_symlink_loop_is_named_as_a_loop() {
    let t = Test::new().file("profiles/p.yaml", set());
    link("b.yaml", &t.path().join("profiles/a.yaml"));
    link("a.yaml", &t.path().join("profiles/b.yaml"));
    let r = run_within(&t, &["validate"]);
    r.code(65)
        .stderr_has("a.yaml is not read: it is a symlink loop")
        .stderr_has("b.yaml is not read: it is a symlink loop");
    assert!(!r.stderr.contains("no such file"), "{}", r.stderr);
}

#[test]
fn a_discovered_profiles_link_is_refused_a_named_one_is_followed() {
    let t = Test::new().file("real/p.yaml", set());
    link("real", &t.path().join("profiles"));
    run_within(&t.cwd("a/b"), &["list"])
        .code(66)
        .stderr_has("profiles directory found here is a symlink")
        .stderr_has("--profiles");
    let t = Test::new().file("real/p.yaml", set());
    link("real", &t.path().join("profiles"));
    run_within(&t, &["--profiles", "profiles", "list"])
        .code(0)
        .stdout_has("p ");
    let t = Test::new().file("real/p.yaml", set());
    link("real", &t.path().join("profiles"));
    run_within(&t.env("BPROF_PROFILES", "profiles"), &["list"])
        .code(0)
        .stdout_has("p ");
    // a named file may be a link too
    let t = Test::new().file("real/p.yaml", set());
    link("real/p.yaml", &t.path().join("mine.yaml"));
    run_within(&t, &["--profiles", "mine.yaml", "list"])
        .code(0)
        .stdout_has("p ");
}

#[test]
fn a_named_link_to_a_device_is_not_a_regular_file() {
    let t = Test::new();
    link("/dev/zero", &t.path().join("z.yaml"));
    run_within(&t, &["--profiles", "z.yaml", "list"])
        .code(66)
        .stderr_has("z.yaml: is a character device, not a regular file or directory");
}

#[test]
fn size_is_by_the_bytes_read() {
    let limit = 16 * 1024 * 1024;
    let t = Test::new();
    let f = std::fs::File::create(t.path().join("big.yaml")).expect("create");
    f.set_len(limit + 1).expect("set_len");
    run_within(&t, &["validate", "big.yaml"])
        .code(65)
        .stderr_has("the file is larger than bprof reads (16 MiB)");
    // exactly the limit is read (and then refused for what it holds, not for its size)
    f.set_len(limit).expect("set_len");
    let r = run_within(&t, &["validate", "big.yaml"]);
    r.code(65).stderr_has("NUL byte");
    assert!(!r.stderr.contains("larger than"), "{}", r.stderr);
    // procfs says 0 bytes for files of any length
    if Path::new("/proc/self/pagemap").exists() {
        run_within(&t, &["validate", "/proc/self/pagemap"])
            .code(65)
            .stderr_has("larger than bprof reads");
    }
}

#[test]
fn no_excerpts_of_files_that_are_not_profile_files() {
    let t = Test::new().file("home/.aws/credentials", SECRET);
    let r = run_within(&t, &["validate", "home/.aws/credentials"]);
    r.code(65).stderr_has("home/.aws/credentials:2:");
    assert_no_canary(&r);
    // a named link with a profile's name to a file without one
    link("home/.aws/credentials", &t.path().join("x.yaml"));
    let r = run_within(&t, &["--profiles", "x.yaml", "validate"]);
    r.code(65).stderr_has("x.yaml:2:");
    assert_no_canary(&r);
    // a profile file is quoted (so the above can fail)
    let t = Test::new().file("profiles/p.yaml", SECRET);
    let r = run_within(&t, &["validate"]);
    r.code(65).stderr_has(CANARY);
    // nor of a file that is not UTF-8
    let t = Test::new().file("profiles/p.yaml", b"version: 1\nkey: CANARY123 \xff\xfe\n");
    let r = run_within(&t, &["validate"]);
    r.code(65)
        .stderr_has("not UTF-8")
        .stderr_has("profiles/p.yaml:2:");
    assert_no_canary(&r);
}

#[test]
fn init_appends_to_a_gitignore_keeping_every_byte() {
    let before: &[u8] = b"/target\n# caf\xe9 (latin-1)\nbuild";
    let t = Test::new().file("profiles/.gitignore", before);
    run_within(&t, &["init"]).code(0);
    let after = std::fs::read(t.path().join("profiles/.gitignore")).expect("read");
    assert!(after.starts_with(before), "{after:?}");
    assert_eq!(
        &after[before.len()..],
        b"\n# personal bprof overrides\n*.local.yaml\n*.local.yml\n"
    );
    run_within(&t, &["init", "--force"]).code(0);
    assert_eq!(
        std::fs::read(t.path().join("profiles/.gitignore")).expect("read"),
        after,
        "the lines are added once"
    );
    // a .gitignore that is a link is not written through
    let t = Test::new().file("elsewhere", "keep\n");
    link("../elsewhere", &t.path().join("profiles/.gitignore"));
    run_within(&t, &["init"])
        .code(73)
        .stderr_has(".gitignore is a symlink: bprof does not write through it");
    assert_eq!(
        std::fs::read_to_string(t.path().join("elsewhere")).expect("read"),
        "keep\n"
    );
    // nor a FIFO (and it does not block)
    let t = Test::new();
    mkfifo(&t.path().join("profiles/.gitignore"));
    run_within(&t, &["init"])
        .code(73)
        .stderr_has(".gitignore is a FIFO (named pipe)");
}

#[test]
fn an_odd_azure_profile_is_no_subscriptions_known() {
    let sub = "22222222-2222-2222-2222-222222222222";
    let plan = ["plan", "p", "--format", "json"];
    // the control: signed in, no login step
    let t = Test::new().file("profiles/p.yaml", set()).signed_in(&[sub]);
    let r = run_within(&t, &plan);
    r.code(0);
    assert_eq!(r.json()["steps"][0]["when"], serde_json::Value::Null);
    // a FIFO
    let t = Test::new().file("profiles/p.yaml", set());
    mkfifo(&t.path().join("azure/azureProfile.json"));
    let r = run_within(&t, &plan);
    r.code(0);
    assert_eq!(r.json()["steps"][0]["name"], "login");
    // valid JSON naming the subscription, but larger than bprof reads
    let mut big = format!("{{\"subscriptions\": [{{\"id\": \"{sub}\"}}]}}").into_bytes();
    big.resize(16 * 1024 * 1024 + 1, b' ');
    let t = Test::new()
        .file("profiles/p.yaml", set())
        .file("azure/azureProfile.json", big);
    let r = run_within(&t, &plan);
    r.code(0);
    assert_eq!(r.json()["steps"][0]["name"], "login");
}

/// bprof's own state is read from regular files only, at once: a FIFO, a directory or a
/// device where `trust.json` or the user config should be is an error or ignored with a
/// warning, never a hang; an oversized `trust.json` is not believed.
#[test]
fn own_state_that_is_not_a_regular_file_never_hangs() {
    let asks = one_profile(
        "  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n    ssh_args: [-A]\n",
    ) + "defaults:\n  tunnel_engine: az\n";
    let fresh = || {
        let t = Test::new().file("profiles/p.yaml", &asks);
        std::fs::create_dir_all(t.path().join("config/bprof")).unwrap();
        t
    };
    // trust.json: a FIFO, a directory, a link to a device, too large
    let t = fresh();
    mkfifo(&t.path().join("config/bprof/trust.json"));
    for args in [
        &["plan", "p"][..],
        &["run", "p"],
        &["trust", "allow", "p", "--yes"],
    ] {
        let r = run_within(&t, args);
        assert!(r.code == 77 || r.code == 64, "{args:?}: {}", r.stderr);
        r.stderr_has("it is a FIFO");
        assert!(r.calls.is_empty());
    }
    let t = fresh();
    std::fs::create_dir(t.path().join("config/bprof/trust.json")).unwrap();
    run_within(&t, &["plan", "p"]).code(77);
    let t = fresh();
    link("/dev/zero", &t.path().join("config/bprof/trust.json"));
    run_within(&t, &["plan", "p"])
        .code(77)
        .stderr_has("your recorded consents are ignored");
    let t = fresh();
    std::fs::write(
        t.path().join("config/bprof/trust.json"),
        format!(
            "{{\"version\": 2, \"approved\": [], \"pad\": \"{}\"}}",
            "x".repeat(5 << 20)
        ),
    )
    .unwrap();
    run_within(&t, &["plan", "p"])
        .code(77)
        .stderr_has("your recorded consents are ignored");
    // the user config: a FIFO is a personal file that cannot be read (it could change
    // anything): every profile refused, at once
    let t = fresh();
    mkfifo(&t.path().join("config/bprof/local.yaml"));
    run_within(&t, &["plan", "p"])
        .code(65)
        .stderr_has("local.yaml is not read: it is a FIFO");
    run_within(&t, &["validate"]).code(65);
}

/// The user config grants only while nobody else can replace it or a directory above it, up
/// to the nearest directory that is yours alone (or a root-owned sticky one).
#[test]
fn a_user_config_another_user_could_replace_grants_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let own = "version: 1\nprofiles:\n  p:\n    ssh_args: [-A]\n";
    let t = Test::new()
        .file("profiles/p.yaml", set())
        .file("cfgroot/shared/bprof/local.yaml", own)
        .env("XDG_CONFIG_HOME", "");
    let base = t.path().join("cfgroot/shared");
    let t = t.env("XDG_CONFIG_HOME", base.to_str().unwrap());
    for d in ["cfgroot", "cfgroot/shared", "cfgroot/shared/bprof"] {
        std::fs::set_permissions(t.path().join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(
        base.join("bprof/local.yaml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // yours alone: its `ssh_args` pass as yours
    run_within(&t, &["plan", "p"])
        .code(0)
        .stdout_has("(your user config)");
    // its directory writable by others: another user could swap the file
    std::fs::set_permissions(base.join("bprof"), std::fs::Permissions::from_mode(0o777)).unwrap();
    run_within(&t, &["plan", "p"])
        .code(77)
        .stderr_has("is writable by others");
    // its directory yours alone again, but one above it writable by others and not sticky:
    // the directory itself is yours alone, which ends the walk
    std::fs::set_permissions(base.join("bprof"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
    run_within(&t, &["plan", "p"]).code(0);
}

/// A set larger than its budget (64 MiB, judged from the files' sizes before reading): the
/// largest files are left out, named in one error, and the rest still works, quickly.
#[test]
fn a_set_over_its_budget_leaves_out_its_largest_files_and_the_rest_works() {
    let t = Test::new().file("profiles/p.yaml", set());
    // each counts with what would be read of it (at most 16 MiB): 93 MiB in all
    for (name, mib) in [
        ("z1.yaml", 16),
        ("z2.yaml", 16),
        ("z3.yaml", 16),
        ("z4.yaml", 16),
        ("z5.yaml", 15),
        ("z6.yaml", 14),
    ] {
        // sparse: the size is what counts, nothing is written
        let f = std::fs::File::create(t.path().join("profiles").join(name)).unwrap();
        f.set_len(mib << 20).unwrap();
    }
    let start = Instant::now();
    let r = run_within(&t, &["plan", "p"]);
    r.code(0)
        .stderr_has("problems elsewhere in the profile set");
    let r = run_within(&t, &["validate"]);
    r.code(65)
        .stderr_has("2 files left out: the profile set is larger than 64.0 MiB in all")
        .stderr_has("profiles/z1.yaml (16.0 MiB), profiles/z2.yaml (16.0 MiB)")
        // what is left is read as any file is (these are NUL bytes)
        .stderr_has("profiles/z3.yaml:1:1");
    assert!(!r.stderr.contains("z3.yaml (16"), "{}", r.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}
