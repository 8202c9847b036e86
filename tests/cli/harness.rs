//! A small builder that drives the real bprof binary in a temp directory, with a fake `az`
//! (written by the tests) that records each call's argv, NUL-separated, one file per call.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_bprof");

/// The fake az: records argv, then behaves as the environment says.
/// FAKE_AZ_EXIT: exit code of every call but login (FAKE_AZ_LOGIN_EXIT for login).
/// FAKE_AZ_TUNNEL: listen (default) | never-ready | die | die-after:SECONDS | squatted (says
/// it is ready, listens nowhere: as if its bind had gone unnoticed) | unavailable (az's failed
/// bind message, exit 1).
/// FAKE_AZ_TUNNEL_RESTARTED: the mode of a restarted tunnel (after `died-once`).
/// FAKE_AZ_WAIT_FOR: before binding, the tunnel creates `tunnel-started` and waits (at most
/// 10 s) until this file exists in FAKE_AZ_DIR (a test squats the port meanwhile); with
/// FAKE_AZ_WAIT_ON_RESTART only a restarted tunnel (after `died-once`) waits.
/// FAKE_AZ_FORWARD: forward tunnel connections to this port on 127.0.0.1.
/// FAKE_AZ_SLEEP: seconds to sleep before exiting (a long-running connect step).
/// FAKE_AZ_STDERR (FAKE_AZ_LOGIN_STDERR for login): a message for stderr (`\n` for newlines);
/// FAKE_AZ_STDERR_KB: that many KiB more on stderr (a full pipe).
/// FAKE_AZ_LOGIN_DEFAULT: `az login` makes this subscription az's default (as az's login does).
/// `account get-access-token` prints a token `...SECRET-NNNN-` (NNNN: the call's number;
/// FAKE_AZ_TOKEN_PAD more `x`s), lasting FAKE_AZ_TOKEN_TTL seconds (3600); FAKE_AZ_TOKEN_EXIT.
/// `version` prints az's `version -o json` (FAKE_AZ_VERSION, FAKE_AZ_EXTENSIONS `name=ver,...`)
/// and a warning on stderr, as az does when a newer version is out.
pub const FAKE_AZ: &str = r#"#!/usr/bin/env python3
import os, sys, socket, threading, time, signal
d = os.environ["FAKE_AZ_DIR"]
calls = os.path.join(d, "calls")
os.makedirs(calls, exist_ok=True)
# one file per call, numbered; concurrent calls (doctor runs two) each take their own number
n = len(os.listdir(calls))
while True:
    try:
        f = open(os.path.join(calls, "%04d" % n), "xb")
        break
    except FileExistsError:
        n += 1
with f:
    f.write(b"\0".join(os.fsencode(a) for a in sys.argv[1:]))
with open(os.path.join(d, "pids"), "a") as f:
    f.write("%d\n" % os.getpid())
args = sys.argv[1:]
signal.signal(signal.SIGINT, lambda *a: sys.exit(130))
signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
if args[:2] == ["account", "get-access-token"]:
    # a JWT-shaped token, different for every call (FAKE_AZ_TOKEN_TTL: seconds it lasts)
    import json, base64
    payload = base64.urlsafe_b64encode(json.dumps({"oid": "0000-oid", "tid": "t"}).encode()).decode().rstrip("=")
    token = "eyJhbGciOiJub25lIn0.%s.SECRET-%04d-%s" % (payload, n, "x" * int(os.environ.get("FAKE_AZ_TOKEN_PAD", "0")))
    if os.environ.get("FAKE_AZ_TOKEN_STDERR"):
        sys.stderr.write(os.environ["FAKE_AZ_TOKEN_STDERR"] + "\n")
    ttl = int(os.environ.get("FAKE_AZ_TOKEN_TTL", "3600"))
    # FAKE_AZ_TOKEN_EXPIRES_ON: the expires_on of call 0, 1, ... (the last one from then on)
    fixed = [int(x) for x in os.environ.get("FAKE_AZ_TOKEN_EXPIRES_ON", "").split(",") if x]
    sub = args[args.index("--subscription") + 1] if "--subscription" in args else None
    expires_on = fixed[min(n, len(fixed) - 1)] if fixed else int(time.time()) + ttl
    print(json.dumps({"accessToken": token, "expiresOn": "2026-12-01 10:00:00.000000", "expires_on": expires_on,
                      "subscription": sub, "tenant": "t", "tokenType": "Bearer"}))
    sys.exit(int(os.environ.get("FAKE_AZ_TOKEN_EXIT", "0")))
def say_stderr(var):
    msg = os.environ.get(var)
    if msg:
        sys.stderr.write(msg.replace("\\n", "\n") + "\n")
        sys.stderr.flush()
if args[:2] == ["ssh", "cert"]:
    # Entra's signature: the test's CA (FAKE_AZ_SSH_CA) signs the key for FAKE_AZ_PRINCIPAL
    import subprocess, shutil
    pub = args[args.index("--public-key-file") + 1]
    out = args[args.index("--file") + 1]
    subprocess.run(["ssh-keygen", "-q", "-s", os.environ["FAKE_AZ_SSH_CA"], "-I", "bprof-test",
                    "-n", os.environ.get("FAKE_AZ_PRINCIPAL", "root"),
                    "-V", os.environ.get("FAKE_AZ_CERT_VALIDITY", "-5m:+1h"), pub], check=True)
    made = pub[:-4] + "-cert.pub" if pub.endswith(".pub") else pub + "-cert.pub"
    if made != out:
        shutil.move(made, out)
    sys.exit(0)
if args[:1] == ["login"]:
    say_stderr("FAKE_AZ_LOGIN_STDERR")
    new_default = os.environ.get("FAKE_AZ_LOGIN_DEFAULT")
    if new_default:
        # az's login picks a default subscription itself
        with open(os.path.join(os.environ["AZURE_CONFIG_DIR"], "azureProfile.json"), "w", encoding="utf-8-sig") as f:
            f.write('{"subscriptions": [{"id": "%s", "isDefault": true}]}' % new_default)
    sys.exit(int(os.environ.get("FAKE_AZ_LOGIN_EXIT", "0")))
if args[:3] == ["network", "bastion", "tunnel"]:
    port = int(args[args.index("--port") + 1])
    mode = os.environ.get("FAKE_AZ_TUNNEL", "listen")
    if os.path.exists(os.path.join(d, "died-once")):
        mode = os.environ.get("FAKE_AZ_TUNNEL_RESTARTED", mode)
    if mode == "die":
        print("ERROR: fake tunnel failed", file=sys.stderr)
        say_stderr("FAKE_AZ_STDERR")
        sys.exit(1)
    if mode == "never-ready":
        time.sleep(3600)
        sys.exit(0)
    if mode == "unavailable":
        print("ERROR: Defined port is currently unavailable", file=sys.stderr)
        sys.exit(1)
    print("WARNING: Opening tunnel on port: %d" % port, file=sys.stderr, flush=True)
    wait_for = os.environ.get("FAKE_AZ_WAIT_FOR")
    if wait_for and (not os.environ.get("FAKE_AZ_WAIT_ON_RESTART")
                     or os.path.exists(os.path.join(d, "died-once"))):
        open(os.path.join(d, "tunnel-started"), "w").close()
        end = time.time() + 10
        while not os.path.exists(os.path.join(d, wait_for)) and time.time() < end:
            time.sleep(0.02)
    if mode == "squatted":
        print("WARNING: Tunnel is ready, connect on port %d" % port, file=sys.stderr, flush=True)
        time.sleep(3600)
        sys.exit(0)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        srv.bind(("127.0.0.1", port))
    except OSError:
        print("Defined port is currently unavailable", file=sys.stderr)
        sys.exit(1)
    srv.listen(16)
    print("WARNING: Tunnel is ready, connect on port %d" % port, file=sys.stderr, flush=True)
    if mode.startswith("die-after:"):
        delay = float(mode.split(":")[1])
        def die():
            time.sleep(delay)
            marker = os.path.join(d, "died-once")
            if not os.path.exists(marker) or os.environ.get("FAKE_AZ_DIE_ALWAYS"):
                open(marker, "w").close()
                os._exit(1)
        threading.Thread(target=die, daemon=True).start()
    fwd = os.environ.get("FAKE_AZ_FORWARD")
    def pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try: s.shutdown(socket.SHUT_RDWR)
                except OSError: pass
    while True:
        c, _ = srv.accept()
        if fwd:
            up = socket.create_connection(("127.0.0.1", int(fwd)))
            threading.Thread(target=pipe, args=(c, up), daemon=True).start()
            threading.Thread(target=pipe, args=(up, c), daemon=True).start()
        else:
            c.close()
if args[:1] == ["version"]:
    # FAKE_AZ_EXTENSIONS: "bastion=1.4.4,ssh=2.0.6" (default: none); FAKE_AZ_VERSION: az's own
    import json
    exts = dict(e.split("=", 1) for e in os.environ.get("FAKE_AZ_EXTENSIONS", "").split(",") if "=" in e)
    print("WARNING: a newer version of az is available", file=sys.stderr)
    print(json.dumps({"azure-cli": os.environ.get("FAKE_AZ_VERSION", "2.67.0"), "azure-cli-core": "2.67.0",
                      "azure-cli-telemetry": "1.1.0", "extensions": exts}))
    sys.exit(int(os.environ.get("FAKE_AZ_EXIT", "0")))
say_stderr("FAKE_AZ_STDERR")
for _ in range(int(os.environ.get("FAKE_AZ_STDERR_KB", "0"))):
    sys.stderr.write("x" * 1023 + "\n")
sys.stderr.flush()
time.sleep(float(os.environ.get("FAKE_AZ_SLEEP", "0")))
sys.exit(int(os.environ.get("FAKE_AZ_EXIT", "0")))
"#;

/// A fake RDP client: records its argv (NUL-separated) and a copy of the .rdp file it was
/// given, connects to the file's `full address` (so it checks the tunnel is up), then sleeps
/// FAKE_CLIENT_SLEEP seconds and exits with FAKE_CLIENT_EXIT.
pub const FAKE_CLIENT: &str = r#"#!/usr/bin/env python3
import os, sys, socket, time, signal
d = os.environ["FAKE_AZ_DIR"]
signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
signal.signal(signal.SIGINT, lambda *a: sys.exit(130))
with open(os.path.join(d, "client-argv"), "wb") as f:
    f.write(b"\0".join(os.fsencode(a) for a in sys.argv))
with open(os.path.join(d, "pids"), "a") as f:
    f.write("%d\n" % os.getpid())
rdp = [a for a in sys.argv[1:] if a.endswith(".rdp")]
if rdp:
    data = open(rdp[0], "rb").read()
    open(os.path.join(d, "client-file.rdp"), "wb").write(data)
    st = os.stat(rdp[0])
    open(os.path.join(d, "client-file-mode"), "w").write("%o" % (st.st_mode & 0o777))
    text = data[2:].decode("utf-16-le")
    addr = [l.split(":", 2)[2] for l in text.split("\r\n") if l.startswith("full address:s:")][0]
    host, port = addr.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        open(os.path.join(d, "client-connected"), "w").write(addr)
    except OSError as e:
        open(os.path.join(d, "client-connected"), "w").write("FAILED %s" % e)
time.sleep(float(os.environ.get("FAKE_CLIENT_SLEEP", "0")))
sys.exit(int(os.environ.get("FAKE_CLIENT_EXIT", "0")))
"#;

pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    az: bool,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// argv of each az call, in order.
    pub calls: Vec<Vec<String>>,
}

impl Test {
    pub fn new() -> Test {
        let dir = tempfile::tempdir().expect("temp dir");
        let cwd = dir.path().to_path_buf();
        for sub in ["home", "config", "azure", "bin"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        Test {
            dir,
            args: Vec::new(),
            env: Vec::new(),
            cwd,
            az: true,
        }
    }

    /// The bundled example profiles, copied into `profiles/`.
    pub fn examples() -> Test {
        let t = Test::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let dst = t.path().join("profiles");
        std::fs::create_dir_all(&dst).expect("mkdir");
        for e in std::fs::read_dir(src).expect("profiles/") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), dst.join(e.file_name())).expect("copy");
        }
        t
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(self, rel: &str, content: impl AsRef<[u8]>) -> Test {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
        self
    }

    pub fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Test {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn cwd(mut self, rel: &str) -> Test {
        self.cwd = self.path().join(rel);
        std::fs::create_dir_all(&self.cwd).expect("mkdir");
        self
    }

    /// A fake RDP client named `name` in this test's bin directory, first on PATH.
    pub fn fake_client(self, name: &str) -> Test {
        self.program(name, FAKE_CLIENT)
    }

    /// A program `name` (the `script`, executable) in this test's bin directory, first on PATH.
    pub fn program(mut self, name: &str, script: &str) -> Test {
        let p = self.path().join("bin").join(name);
        std::fs::write(&p, script).expect("a test's program");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let path = format!(
            "{}:{}",
            self.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        self.env.push(("PATH".into(), path));
        self
    }

    /// az's tunnel (`BPROF_TUNNEL_ENGINE=az`): the fake az's `network bastion tunnel`.
    pub fn az_tunnel(self) -> Test {
        self.env("BPROF_TUNNEL_ENGINE", "az")
    }

    /// No az anywhere: no BPROF_AZ, and a PATH without az.
    pub fn no_az(mut self) -> Test {
        self.az = false;
        self
    }

    /// Signed in to these subscriptions (az's profile file, with the BOM az writes).
    pub fn signed_in(self, subs: &[&str]) -> Test {
        let list: Vec<String> = subs
            .iter()
            .map(|s| format!(r#"{{"id": "{s}", "tenantId": "t", "name": "n", "state": "Enabled", "isDefault": false}}"#))
            .collect();
        let text = format!("\u{feff}{{\"subscriptions\": [{}]}}", list.join(","));
        self.file("azure/azureProfile.json", text)
    }

    /// Signed in to every subscription the bundled examples use.
    pub fn signed_in_all(self) -> Test {
        self.signed_in(&[
            "55555555-5555-5555-5555-555555555555",
            "44444444-4444-4444-4444-444444444444",
            "22222222-2222-2222-2222-222222222222",
        ])
    }

    /// bprof with this test's environment.
    pub fn command(&self) -> Command {
        self.command_of(Path::new(BIN))
    }

    /// `program` with this test's environment (ssh, which runs bprof as its ProxyCommand).
    pub fn command_of(&self, program: &Path) -> Command {
        let az = self.path().join("bin/az");
        if !az.exists() {
            std::fs::write(&az, FAKE_AZ).expect("fake az");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
        }
        let mut cmd = Command::new(program);
        if program == Path::new(BIN) {
            cmd.args(&self.args);
        }
        cmd.current_dir(&self.cwd)
            .env_remove("BPROF_PROFILES")
            .env_remove("NO_COLOR")
            .env_remove("BPROF_TUNNEL_ENGINE")
            .env_remove("BPROF_ARM_ENDPOINT")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .env("HOME", self.path().join("home"))
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("AZURE_CONFIG_DIR", self.path().join("azure"))
            .env("FAKE_AZ_DIR", self.path())
            .env("CI", "1");
        if self.az {
            cmd.env("BPROF_AZ", &az);
        } else {
            cmd.env_remove("BPROF_AZ")
                .env("PATH", self.path().join("home"));
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(self) -> Run {
        self.run_with(&[])
    }

    /// Runs bprof in this test's directory with `extra` arguments after the builder's.
    pub fn run_with(&self, extra: &[&str]) -> Run {
        let out: Output = self.command().args(extra).output().expect("run bprof");
        self.finish(out.status.code().unwrap_or(-1), out.stdout, out.stderr)
    }

    pub fn finish(&self, code: i32, stdout: Vec<u8>, stderr: Vec<u8>) -> Run {
        Run {
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            calls: self.calls(),
        }
    }

    pub fn calls(&self) -> Vec<Vec<String>> {
        let dir = self.path().join("calls");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p).expect("call record");
                if bytes.is_empty() {
                    return Vec::new();
                }
                bytes
                    .split(|b| *b == 0)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .collect()
    }
}

impl Run {
    #[track_caller]
    pub fn code(&self, want: i32) -> &Run {
        assert_eq!(
            self.code, want,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Minimal valid set with one profile: a tenant, a bastion, a vm and `extra` profile YAML
/// under `profiles:` (indented by the caller).
pub fn one_profile(profile_yaml: &str) -> String {
    format!(
        "version: 1
tenants:
  t:
    id: 11111111-1111-1111-1111-111111111111
    subscription: 22222222-2222-2222-2222-222222222222
bastions:
  b:
    tenant: t
    resource_group: rg-net
    name: bas-1
vms:
  v:
    resource_group: rg-vm
    name: vm-1
  lin:
    resource_id: /subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/lin
    os: linux
profiles:
{profile_yaml}"
    )
}

/// Every file under `dir`, recursively (nothing when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
