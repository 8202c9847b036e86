//! `bprof proxy` under a real OpenSSH client, against a real sshd on loopback behind the fake
//! bastion; ssh profiles run through it (a fake ssh that records its argv); a proxy hung up on;
//! `bprof ssh-config`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fake_bastion::{Backend, FakeBastion};
use crate::harness::Test;
use crate::session::free_port;

const SUB: &str = "22222222-2222-2222-2222-222222222222";

fn ssh_set(fake: &FakeBastion, extra: &str) -> Test {
    let yaml = format!(
        "version: 1
tenants:
  t:
    id: 11111111-1111-1111-1111-111111111111
    subscription: {SUB}
bastions:
  b:
    tenant: t
    resource_group: rg-net
    name: bas-1
vms:
  lin:
    resource_group: rg-vm
    name: lin-1
    os: linux
profiles:
  web:
    description: the web tier
    bastion: b
    vm: lin
    mode: ssh
    auth_type: ssh-key
    username: root
    ssh_key: ~/.ssh/id_test
{extra}"
    );
    Test::new()
        .file("profiles/p.yaml", yaml)
        .signed_in(&[SUB])
        .env("BPROF_ARM_ENDPOINT", &fake.arm_endpoint())
        .env("SSL_CERT_FILE", &fake.ca_file().display().to_string())
}

/// A throwaway sshd on a loopback port: its own host key, one authorized key, root only.
struct Sshd {
    child: Child,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client): run tests/e2e/with-xrdp.sh")
        .success();
    assert!(ok, "ssh-keygen");
}

fn sshd(dir: &Path, client_pub: &Path) -> Sshd {
    sshd_with(
        dir,
        &format!("AuthorizedKeysFile {}\n", client_pub.display()),
    )
}

/// An sshd that takes `auth` (its AuthorizedKeysFile or TrustedUserCAKeys line).
fn sshd_with(dir: &Path, auth: &str) -> Sshd {
    let sshd = Path::new("/usr/sbin/sshd");
    assert!(
        sshd.exists(),
        "no /usr/sbin/sshd: run the tests through `bash tests/e2e/with-xrdp.sh cargo test --locked` (it installs openssh-server)"
    );
    std::fs::create_dir_all(dir).unwrap();
    keygen(&dir.join("host_key"));
    let port = free_port();
    let config = format!(
        "ListenAddress 127.0.0.1:{port}\nHostKey {}\n{auth}PidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowUsers root\n",
        dir.join("host_key").display(),
    );
    std::fs::write(dir.join("sshd_config"), config).unwrap();
    // sshd wants its privilege-separation directory
    let _ = std::fs::create_dir_all("/run/sshd");
    let child = Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Sshd { child, port }
}

#[test]
fn a_real_ssh_session_runs_through_bprof_proxy() {
    let fake = FakeBastion::start();
    let t = ssh_set(&fake, "");
    let home = t.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let key = home.join(".ssh/id_test");
    keygen(&key);
    let server = sshd(&t.path().join("sshd"), &key.with_extension("pub"));
    fake.set(|c| c.backend = Backend::Tcp(([127, 0, 0, 1], server.port).into()));
    let bprof = crate::harness::BIN;
    let known = t.path().join("known_hosts");
    let out = t
        .command_of(Path::new("ssh"))
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .arg("-o")
        .arg(format!(
            "ProxyCommand={bprof} --profiles {} proxy web",
            t.path().join("profiles").display()
        ))
        .args(["-o", "HostKeyAlias=web.bprof", "-i"])
        .arg(&key)
        .args(["root@web.bprof", "echo", "through-the-bastion"])
        // inherited by the ProxyCommand: `proxy` stays the native engine the plan showed
        .env("BPROF_TUNNEL_ENGINE", "az")
        .stdin(Stdio::null())
        .output()
        .expect("ssh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "through-the-bastion",
        "ssh through bprof proxy:\n{stderr}\n{}",
        fake.raw_requests_log()
    );
    // the host key was pinned under the profile's alias, not a host name
    let pinned = std::fs::read_to_string(&known).unwrap();
    assert!(pinned.starts_with("web.bprof "), "{pinned}");
    fake.wait_until("the session deleted", Duration::from_secs(10), |f| {
        f.open_sessions() == 0
    });
    let posts: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "one session");
    assert_eq!(posts[0].field("workloadHostPort"), Some("22"));
    let calls = t.calls();
    assert_eq!(calls.len(), 1, "one az process: the token: {calls:?}");
    drop(server);
}

#[test]
fn proxy_says_what_it_cannot_do_on_stderr_only() {
    let fake = FakeBastion::start();
    let t = ssh_set(&fake, "  old:\n    extends: web\n    tunnel_engine: az\n");
    let r = t.run_with(&["proxy", "old"]);
    r.code(64).stderr_has("needs the native engine");
    assert!(r.stdout.is_empty());
    let r = Test::new()
        .file(
            "profiles/p.yaml",
            std::fs::read_to_string(t.path().join("profiles/p.yaml")).unwrap(),
        )
        .run_with(&["proxy", "web"]);
    r.code(69)
        .stderr_has("az login --tenant 11111111-1111-1111-1111-111111111111");
    assert!(r.stdout.is_empty());
    // a refused session: the status on stderr, nothing on stdout
    fake.set(|c| {
        c.token_failure = Some(crate::fake_bastion::Failure::Json {
            status: 403,
            message: "Forbidden".into(),
        })
    });
    let r = t.run_with(&["proxy", "web"]);
    assert_ne!(r.code, 0);
    r.stderr_has("403 Forbidden");
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn ssh_config_blocks_pin_host_keys_and_use_absolute_paths() {
    let fake = FakeBastion::start();
    let t = ssh_set(
        &fake,
        "  entra:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n  db:\n    bastion: b\n    vm: lin\n    mode: tunnel\n    resource_port: 5432\n  odd:\n    extends: web\n    username: \"a%h\"\n",
    )
    .cwd("elsewhere");
    let r = t.run_with(&["--profiles", "../profiles", "ssh-config"]);
    r.code(0);
    let out = &r.stdout;
    assert!(
        out.contains("Host web.bprof\n  HostKeyAlias web.bprof\n"),
        "{out}"
    );
    assert!(out.contains("  User root\n"), "{out}");
    assert!(
        out.contains("/home/.ssh/id_test") || out.contains("IdentityFile /"),
        "{out}"
    );
    let dir = std::fs::canonicalize(t.path().join("profiles")).unwrap();
    assert!(
        out.contains(&format!(
            "ProxyCommand {} --profiles {} proxy web",
            crate::harness::BIN,
            dir.display()
        )),
        "absolute paths: {out}"
    );
    assert!(
        out.contains("Host entra.bprof")
            && out.contains("Match originalhost entra.bprof exec \"")
            && out.contains(" ssh-cert entra\"\n  IdentityFile ")
            && out.contains("  CertificateFile "),
        "{out}"
    );
    assert!(!out.contains("db.bprof"), "not an ssh server: {out}");
    assert!(!out.contains("StrictHostKeyChecking"), "{out}");
    // a value ssh would expand is left out of its block, named
    assert!(out.contains("Host odd.bprof"), "{out}");
    let odd = &out[out.find("Host odd.bprof").unwrap()..];
    let odd = &odd[..odd.find("\n\n").unwrap_or(odd.len())];
    assert!(!odd.contains("  User "), "{odd}");
    assert!(odd.contains("# left out: `username`"), "{odd}");
    r.stderr_has("`odd`: left out of its Host block: `username`");
    t.run_with(&["--profiles", "../profiles", "ssh-config", "odd"])
        .code(0)
        .stderr_has("`username`");
    t.run_with(&["--profiles", "../profiles", "ssh-config", "db"])
        .code(64)
        .stderr_has("not an ssh server");
    t.run_with(&[
        "--profiles",
        "../profiles",
        "--format",
        "json",
        "ssh-config",
    ])
    .code(64);
}

#[test]
fn an_entra_profile_logs_in_with_a_certificate_that_is_renewed_only_near_its_end() {
    let fake = FakeBastion::start();
    let entra = "  ent:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n";
    let t = ssh_set(&fake, entra);
    keygen(&t.path().join("ca"));
    let ca = t.path().join("ca");
    let server = sshd_with(
        &t.path().join("sshd"),
        &format!(
            "AuthorizedKeysFile none\nTrustedUserCAKeys {}.pub\n",
            ca.display()
        ),
    );
    fake.set(|c| c.backend = Backend::Tcp(([127, 0, 0, 1], server.port).into()));
    // the host key, known under the profile's alias (OpenSSH reads the passwd entry's home,
    // not HOME: a wrapper first on PATH names this test's files)
    let host_pub = std::fs::read_to_string(t.path().join("sshd/host_key.pub")).unwrap();
    let known = t.path().join("known_hosts");
    std::fs::write(&known, format!("ent.bprof {host_pub}")).unwrap();
    let wrapper = format!(
        "#!/bin/sh\nexec /usr/bin/ssh -F /dev/null -o BatchMode=yes -o UserKnownHostsFile={} \"$@\"\n",
        known.display()
    );
    let t = t.file("wrap/ssh", wrapper);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let w = t.path().join("wrap/ssh");
        std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        t.path().join("wrap").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let state = t.path().join("state");
    let t = t
        .env("PATH", &path)
        .env("XDG_STATE_HOME", state.to_str().unwrap())
        .env("FAKE_AZ_SSH_CA", ca.to_str().unwrap())
        .env("FAKE_AZ_PRINCIPAL", "root");
    let certs = |t: &Test| {
        t.calls()
            .iter()
            .filter(|c| c.starts_with(&["ssh".to_string(), "cert".to_string()]))
            .count()
    };
    // the plan shows every step, the certificate's marked
    t.run_with(&["plan", "ent"])
        .code(0)
        .stdout_has("# ssh-cert: skipped while the certificate is valid")
        .stdout_has("az ssh cert --public-key-file");
    t.run_with(&["run", "ent"]).code(0);
    assert_eq!(certs(&t), 1, "a certificate made: {:?}", t.calls());
    let key = state.join("bprof/entra/ent/id_rsa");
    assert!(key.exists() && state.join("bprof/entra/ent/id_rsa-cert.pub").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key's directory is the person's alone");
    }
    // fresh: used as it is
    t.run_with(&["run", "ent"]).code(0);
    assert_eq!(certs(&t), 1, "a fresh certificate is not asked for again");
    // expired (signed for an hour that has passed): renewed, and the login works again
    // a certificate signed for an hour that has passed, in place of the one there
    let expire = || {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(&ca)
            .args(["-I", "old", "-n", "root", "-V", "-2h:-1h"])
            .arg(key.with_extension("pub"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen -s");
    };
    expire();
    t.run_with(&["run", "ent"]).code(0);
    assert_eq!(certs(&t), 2, "an expired certificate is renewed");
    // ssh-config: OpenSSH alone (VS Code's way), bprof at a path with a space; the Match
    // line's exec renews an expired certificate before ssh reads it
    let spaced = t.path().join("bin dir");
    std::fs::create_dir_all(&spaced).unwrap();
    std::fs::copy(crate::harness::BIN, spaced.join("bprof")).unwrap();
    let out = t
        .command_of(&spaced.join("bprof"))
        .args(["ssh-config", "ent"])
        .output()
        .unwrap();
    let config = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        config.contains("Match originalhost ent.bprof exec \"'")
            && config.contains("bin dir/bprof' "),
        "{config}"
    );
    assert!(
        config.contains("  User root\n"),
        "the certificate's principal: {config}"
    );
    std::fs::write(t.path().join("ssh_config"), &config).unwrap();
    expire();
    let login = t
        .command_of(Path::new("/usr/bin/ssh"))
        .arg("-F")
        .arg(t.path().join("ssh_config"))
        .args(["-o", "BatchMode=yes", "-o"])
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .args(["ent.bprof", "echo", "through-entra"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&login.stdout).trim(),
        "through-entra",
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert_eq!(
        certs(&t),
        3,
        "the Match exec renewed the expired certificate"
    );
    // fresh: ssh-cert asks nothing
    let again = t
        .command_of(&spaced.join("bprof"))
        .args(["ssh-cert", "ent"])
        .output()
        .unwrap();
    assert!(again.status.success() && again.stdout.is_empty());
    assert_eq!(certs(&t), 3);
    drop(server);
}

/// A fake `ssh`: records its argv, runs its ProxyCommand through `sh -c` as ssh does, sends a
/// banner through it and exits 0 when the banner comes back (the fake bastion echoes).
const FAKE_SSH: &str = r#"#!/usr/bin/env python3
import os, sys, subprocess
d = os.environ["FAKE_AZ_DIR"]
with open(os.path.join(d, "ssh-argv"), "wb") as f:
    f.write(b"\0".join(os.fsencode(a) for a in sys.argv[1:]))
args = sys.argv[1:]
proxy = [args[i + 1] for i, a in enumerate(args) if a == "-o" and args[i + 1].startswith("ProxyCommand=")][0]
p = subprocess.Popen(proxy.split("=", 1)[1], shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
banner = b"SSH-2.0-fake\r\n"
p.stdin.write(banner)
p.stdin.flush()
back = p.stdout.read(len(banner))
p.stdin.close()
p.wait()
sys.exit(0 if back == banner else 3)
"#;

#[test]
fn ssh_profiles_run_openssh_through_bprof_proxy_with_host_keys_per_profile() {
    let fake = FakeBastion::start();
    let t = crate::native::set(
        &fake,
        free_port(),
        "",
        "  web:\n    bastion: b\n    vm: v\n    mode: ssh\n    auth_type: ssh-key\n    username: azureuser\n    ssh_key: /keys/id\n    ssh_args: [-o, ServerAliveInterval=30]\n  entra:\n    bastion: b\n    vm: v\n    mode: ssh\n    auth_type: aad\n",
    )
    .program("ssh", FAKE_SSH);
    let r = t.run_with(&["run", "web"]);
    r.code(0);
    let argv = std::fs::read(t.path().join("ssh-argv")).unwrap();
    let argv: Vec<String> = argv
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let dir = std::fs::canonicalize(t.path().join("profiles")).unwrap();
    assert_eq!(
        argv,
        [
            "-o".to_string(),
            format!(
                "ProxyCommand={} --profiles {} proxy web",
                crate::harness::BIN,
                dir.display()
            ),
            "-o".into(),
            "HostKeyAlias=web.bprof".into(),
            "-l".into(),
            "azureuser".into(),
            "-i".into(),
            "/keys/id".into(),
            // shared values after the host, where ssh reads them as az's ssh does
            "web.bprof".into(),
            "-o".into(),
            "ServerAliveInterval=30".into(),
        ]
    );
    assert!(!argv.iter().any(|a| a.contains("StrictHostKeyChecking")));
    fake.wait_until(
        "the proxy's session deleted",
        Duration::from_secs(10),
        |f| f.open_sessions() == 0,
    );
    let calls = t.calls();
    assert_eq!(calls.len(), 1, "the proxy's token, no az ssh: {calls:?}");
    assert_eq!(calls[0][..2], ["account", "get-access-token"]);
    // Entra sign-in: az's ssh extension issues the certificate; OpenSSH connects through bprof
    let plan = t.run_with(&["plan", "entra", "--format", "json"]);
    let steps = plan.json()["steps"].clone();
    assert_eq!(steps[1]["argv"][1], "ssh");
    assert_eq!(steps[1]["argv"][2], "cert");
    assert_eq!(steps[2]["argv"][0], "ssh");
    assert!(
        !plan.stdout.contains("\"bastion\""),
        "no az network bastion ssh"
    );
}

/// ssh ends its ProxyCommand with SIGHUP when it exits: the proxy's session is still closed
/// and deleted before bprof exits (129).
#[test]
fn a_proxy_hung_up_on_deletes_its_session() {
    let fake = FakeBastion::start();
    let t = crate::native::set(&fake, free_port(), "", "");
    let mut child = t
        .command()
        .args(["proxy", "db"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bprof proxy");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    child
        .stdout
        .as_mut()
        .expect("stdout")
        .read_exact(&mut back)
        .unwrap();
    assert_eq!(&back, b"ping");
    fake.wait_until("the session open", Duration::from_secs(10), |f| {
        f.open_sessions() == 1
    });
    crate::run::unsafe_kill(child.id(), 1);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(129));
    assert_eq!(
        fake.open_sessions(),
        0,
        "deleted before exit:\n{}",
        fake.raw_requests_log()
    );
    drop(stdin);
}
