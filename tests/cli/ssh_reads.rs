//! What OpenSSH itself reads from what bprof gives it: the argv of `run`'s ssh step and the
//! config `ssh-config` writes, parsed by the real `ssh -G` (a test tool; bprof never runs it)
//! inside a sandbox: its own config file and working directory, canary files for what `-G`
//! does not print (`Match exec` runs, `-E` creates its log, `Include` reads).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::harness::{Test, one_profile};

const SUB: &str = "22222222-2222-2222-2222-222222222222";

/// A set with one ssh profile `web` whose `ssh_args` (a YAML flow list), `username` and
/// `ssh_key` are the test's.
fn ssh_set(ssh_args: &str, username: &str, key: &str) -> Test {
    let yaml = one_profile(&format!(
        "  web:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: ssh-key\n    username: {username}\n    ssh_key: {key}\n    ssh_args: {ssh_args}\n"
    ));
    Test::new().file("profiles/p.yaml", yaml).signed_in(&[SUB])
}

/// The sandbox `ssh -G` runs in: an empty config of its own, a config that runs a canary if
/// anything reads it, and nothing else.
struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    fn new(t: &Test) -> Sandbox {
        let dir = t.path().join("sandbox");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config"), "").unwrap();
        std::fs::write(
            dir.join("corp.conf"),
            format!(
                "Match exec \"touch {}\"\n  ForwardAgent yes\n",
                dir.join("canary-match").display()
            ),
        )
        .unwrap();
        Sandbox { dir }
    }

    /// `ssh -G` on an argv (argv[0] is `ssh`), with the sandbox's config first: a later `-F`
    /// still wins, as it would. Its keys and values, or ssh's complaint.
    fn ssh_g(&self, argv: &[String]) -> Result<BTreeMap<String, String>, String> {
        assert_eq!(argv[0], "ssh");
        let out = Command::new("ssh")
            .arg("-G")
            .arg("-F")
            .arg(self.dir.join("config"))
            .args(&argv[1..])
            .current_dir(&self.dir)
            .env("HOME", &self.dir)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("ssh (openssh-client): run tests/e2e/with-xrdp.sh");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(parse_g(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Puts the sandbox's path where the test's profile says `SANDBOX`.
    fn fill_in(&self, t: &Test) {
        let p = t.path().join("profiles/p.yaml");
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace("SANDBOX", &self.dir.display().to_string())).unwrap();
    }

    /// Files in the sandbox besides its own two: what a hostile value made ssh create.
    fn canaries(&self) -> Vec<String> {
        let mut found: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("canary"))
            .collect();
        found.sort();
        found
    }
}

/// `ssh -G` output: `key value` lines (repeated keys joined with `\n`).
fn parse_g(text: &str) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        map.entry(k.to_string())
            .and_modify(|old| {
                old.push('\n');
                old.push_str(v);
            })
            .or_insert_with(|| v.to_string());
    }
    map
}

/// The argv of the plan's connect step (the ssh command line `run` starts).
fn ssh_argv(t: &Test) -> Vec<String> {
    let r = t.run_with(&["plan", "web", "--format", "json"]);
    r.code(0);
    let plan = r.json();
    let step = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "connect")
        .expect("a connect step")
        .clone();
    step["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The ssh_config keys that a shared file's allow-listed `ssh_args` may change; every other key
/// must read as it does without them.
const MAY_CHANGE: &[&str] = &[
    "localforward",
    "dynamicforward",
    "serveraliveinterval",
    "serveralivecountmax",
    "tcpkeepalive",
    "connecttimeout",
    "connectionattempts",
    "compression",
    "requesttty",
    "exitonforwardfailure",
    "loglevel",
    "ipqos",
    "addressfamily",
    "sessiontype",
];

/// Hostile `ssh_args` that the allow-list lets through, because what follows the first word
/// that is not an option is the remote command: OpenSSH must read them that way too.
const PASSING: &[&str] = &[
    r#"[uptime, -F, corp.conf]"#,
    r#"[x, -E, "SANDBOX/canary-log"]"#,
    r#"[x, -A, -o, StrictHostKeyChecking=no, -o, UserKnownHostsFile=/dev/null]"#,
    r#"["--", -F, corp.conf, "-oProxyCommand=touch SANDBOX/canary-pc"]"#,
    r#"[-N, -v, evil.example.com, -F, corp.conf]"#,
    r#"[user@evil.example.com, -p, "2222", -J, jump, -W, "h:22"]"#,
    r#"["-", "-oLocalCommand=touch SANDBOX/canary-lc", -oPermitLocalCommand=yes]"#,
    r#"[-L, "8080:localhost:80", -oServerAliveInterval=30, host, -R, "80:localhost:80"]"#,
    r#"[-oConnectTimeout=5, -4C, -D, "1080", cmd, "-oKnownHostsCommand=touch SANDBOX/canary-kh", -oControlPath=x, -oIdentityAgent=x, -oForwardAgent=yes]"#,
    r#"[-T, Include, corp.conf, "-oInclude=corp.conf"]"#,
    r#"[-q, "RemoteCommand=x", "-oRemoteCommand=touch SANDBOX/canary-rc"]"#,
];

#[test]
fn openssh_reads_passing_shared_ssh_args_as_options_then_the_remote_command() {
    let base = ssh_set("[]", "azureuser", "/keys/id");
    let sandbox = Sandbox::new(&base);
    let baseline = sandbox.ssh_g(&ssh_argv(&base)).expect("the plain plan");
    assert_eq!(baseline["hostname"], "web.bprof");
    assert!(
        baseline["proxycommand"].contains(" proxy web"),
        "{baseline:?}"
    );
    for case in PASSING {
        let t = ssh_set(case, "azureuser", "/keys/id");
        let sandbox = Sandbox::new(&t);
        sandbox.fill_in(&t);
        let argv = ssh_argv(&t);
        let read = sandbox
            .ssh_g(&argv)
            .unwrap_or_else(|e| panic!("{case}: ssh refused {argv:?}: {e}"));
        assert_eq!(read["hostname"], "web.bprof", "{case}");
        assert_eq!(read["user"], "azureuser", "{case}");
        for (key, value) in &baseline {
            if MAY_CHANGE.contains(&key.as_str()) || key == "proxycommand" {
                continue;
            }
            assert_eq!(read.get(key), Some(value), "{case}: `{key}` changed");
        }
        // the ProxyCommand names this test's directory: only its shape is compared
        assert!(
            read["proxycommand"].ends_with(" proxy web") && !read["proxycommand"].contains("touch"),
            "{case}: {}",
            read["proxycommand"]
        );
        assert!(!read.contains_key("remotecommand"), "{case}");
        assert_eq!(sandbox.canaries(), Vec::<String>::new(), "{case}");
        assert_eq!(t.calls(), Vec::<Vec<String>>::new(), "{case}: nothing runs");
    }
}

/// Hostile `ssh_args` the allow-list refuses: consent needed (77), nothing runs, nothing is
/// written, and the message names the file and line.
const REFUSED: &[&str] = &[
    r#"[-F, corp.conf]"#,
    r#"["-Fcorp.conf"]"#,
    r#"[-E, "SANDBOX/canary-log"]"#,
    r#"[-A]"#,
    r#"[-vA]"#,
    r#"[-vF, corp.conf]"#,
    r#"["-oProxyCommand=touch SANDBOX/canary-pc"]"#,
    r#"[-o, "proxycommand touch SANDBOX/canary-pc"]"#,
    r#"[-o, "Match exec true"]"#,
    r#"[-o, "Include corp.conf"]"#,
    r#"[-o, "ServerAliveInterval=30 -F corp.conf"]"#,
    r#"[-o, "ServerAliveInterval 30 ProxyCommand x"]"#,
    r#"[-J, jump]"#,
    r#"[-p, "2222"]"#,
    r#"[-W, "h:22"]"#,
    r#"[-S, ctl]"#,
    r#"[-oControlPath=x]"#,
    r#"[-oControlMaster=yes]"#,
    r#"[-G]"#,
    r#"[-i, /etc/shadow]"#,
    r#"[-R, "80:localhost:80"]"#,
    r#"[-L, "0.0.0.0:8080:h:80"]"#,
    r#"[-L, "8080:h:80 -F corp.conf"]"#,
    r#"[-oUserKnownHostsFile=/dev/null]"#,
    r#"[-oStrictHostKeyChecking=no]"#,
    r#"[-oKnownHostsCommand=x]"#,
    r#"[-oIdentityAgent=x]"#,
    r#"[-oHostname=evil]"#,
    r#"[-oRemoteCommand=x]"#,
    r#"[-oSendEnv=*]"#,
    r#"[-oSetEnv=A=1]"#,
];

#[test]
fn openssh_options_outside_the_allow_list_need_consent_and_nothing_runs() {
    for case in REFUSED {
        let t = ssh_set(case, "azureuser", "/keys/id");
        let sandbox = Sandbox::new(&t);
        sandbox.fill_in(&t);
        for args in [&["plan", "web"][..], &["run", "web"]] {
            let r = t.run_with(args);
            r.code(77).stderr_has("profiles/p.yaml:26");
            assert_eq!(r.calls, Vec::<Vec<String>>::new(), "{case}: {args:?}");
        }
        assert_eq!(sandbox.canaries(), Vec::<String>::new(), "{case}");
        assert!(!t.path().join("home/.ssh").exists(), "{case}");
    }
}

#[test]
fn user_and_key_values_stay_values_for_openssh() {
    for (user, key) in [
        (r#""x -F corp.conf""#, r#""SANDBOX/k -oProxyCommand=touch""#),
        (r#""a@evil.example.com""#, r#""SANDBOX/id -F corp.conf""#),
        (r#""ro ot#x""#, r#""SANDBOX/a b#c""#),
        (r#""root""#, r#""SANDBOX/a b -F corp.conf#c""#),
        (r#""x.y-z""#, r#""SANDBOX/-i""#),
    ] {
        let t = ssh_set("[]", user, key);
        let sandbox = Sandbox::new(&t);
        let key = key.replace("SANDBOX", &sandbox.dir.display().to_string());
        sandbox.fill_in(&t);
        // ssh reads `-i` only when the file exists
        std::fs::write(key.trim_matches('"'), "").unwrap();
        // ssh reads each as one value, or refuses the user name outright (it checks them)
        match sandbox.ssh_g(&ssh_argv(&t)) {
            Ok(read) => {
                assert_eq!(read["hostname"], "web.bprof", "{user}");
                assert_eq!(read["user"], user.trim_matches('"'), "{user}");
                assert_eq!(read["identityfile"], key.trim_matches('"'), "{key}");
                assert_eq!(read["forwardagent"], "no", "{user}");
            }
            Err(e) => assert!(
                e.contains("remote username contains invalid characters"),
                "{e}"
            ),
        }
        assert_eq!(sandbox.canaries(), Vec::<String>::new(), "{user}");
    }
    // a value that ssh would read as an option is refused where it is written
    let t = ssh_set("[]", "-oProxyCommand=x", "/keys/id");
    let r = t.run_with(&["plan", "web"]);
    r.code(65).stderr_has("profiles/p.yaml:24");
}

/// ssh-config's Host block, read back by `ssh -G -F FILE web.bprof`.
fn read_back(t: &Test, sandbox: &Sandbox) -> (BTreeMap<String, String>, String) {
    let r = t.run_with(&["ssh-config", "web"]);
    r.code(0);
    let file = sandbox.dir.join("from-bprof.conf");
    std::fs::write(&file, &r.stdout).unwrap();
    let out = Command::new("ssh")
        .arg("-G")
        .arg("-F")
        .arg(&file)
        .arg("web.bprof")
        .current_dir(&sandbox.dir)
        .env("HOME", &sandbox.dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        r.stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&file).unwrap();
    (
        parse_g(&String::from_utf8_lossy(&out.stdout)),
        r.stderr.clone(),
    )
}

#[test]
fn ssh_config_reads_back_as_exactly_what_bprof_meant() {
    // written faithfully, whatever they hold
    for (user, key) in [
        ("plain", "/keys/id_ed25519"),
        ("a b", "/keys/with space/id"),
        ("x#y", "/keys/#hash"),
        ("#lead", "/keys/a #b"),
        ("q\"uote", "/keys/it's"),
        ("back\\slash", "/keys/back\\slash\\"),
        ("ünï", "/keys/ключ"),
        ("a=b", "/keys/=x"),
    ] {
        let y = |s: &str| serde_json::to_string(s).unwrap();
        let t = ssh_set(
            r#"[-L, "8080:localhost:80", -D, "[::1]:1080", -oServerAliveInterval=30, -C, -N, uptime]"#,
            &y(user),
            &y(key),
        );
        let sandbox = Sandbox::new(&t);
        let (read, stderr) = read_back(&t, &sandbox);
        assert_eq!(read["hostname"], "web.bprof");
        assert_eq!(read["user"], user, "{user}");
        assert_eq!(read["identityfile"], key, "{key}");
        assert_eq!(read["hostkeyalias"], "web.bprof");
        assert!(read["proxycommand"].ends_with(" proxy web"));
        assert_eq!(read["localforward"], "8080 [localhost]:80");
        assert_eq!(read["dynamicforward"], "[::1]:1080");
        assert_eq!(read["serveraliveinterval"], "30");
        assert_eq!(read["compression"], "yes");
        assert!(!read.contains_key("remotecommand"));
        assert_eq!(read.get("sessiontype").map(String::as_str), Some("default"));
        // what a Host block would make every use of the host do is named, not written
        assert!(stderr.contains("`-N` (a session option)"), "{stderr}");
        assert!(stderr.contains("the remote command uptime"), "{stderr}");
        assert_eq!(sandbox.canaries(), Vec::<String>::new());
    }
    // expanded by ssh: left out, with a warning that names it
    for (user, key) in [
        ("%u", "/keys/%d/id"),
        ("${USER}", "${HOME}/id"),
        ("plain", "~other/id"),
    ] {
        let y = |s: &str| serde_json::to_string(s).unwrap();
        let t = ssh_set("[]", &y(user), &y(key));
        let sandbox = Sandbox::new(&t);
        let (read, stderr) = read_back(&t, &sandbox);
        assert!(stderr.contains("`ssh_key`"), "{key}: {stderr}");
        assert!(read["identityfile"] != key, "{key}");
        if user != "plain" {
            assert!(stderr.contains("`username`"), "{user}: {stderr}");
            assert!(read["user"] != user, "{user}");
        }
    }
}

#[test]
fn ssh_config_leaves_out_what_the_allow_list_refuses() {
    let t = ssh_set(
        r#"[-A, -oProxyCommand=x, -F, corp.conf, -L, "8080:localhost:80"]"#,
        "azureuser",
        "/keys/id",
    );
    let sandbox = Sandbox::new(&t);
    let (read, stderr) = read_back(&t, &sandbox);
    assert_eq!(read["forwardagent"], "no");
    assert!(read["proxycommand"].ends_with(" proxy web"));
    assert_eq!(read["localforward"], "8080 [localhost]:80");
    for named in ["`-A`", "`-oProxyCommand=x`", "`-F`"] {
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
    assert_eq!(sandbox.canaries(), Vec::<String>::new());
}

/// The ProxyCommand selects the set the plan was made from: a named file stays that file.
#[test]
fn the_proxy_command_selects_the_same_files() {
    let t = ssh_set("[]", "azureuser", "/keys/id")
        // beside it, a file that would change the bastion's port for the whole directory
        .file(
            "profiles/z.yaml",
            "version: 1\ndefaults:\n  resource_port: 2222\n",
        );
    let file = std::fs::canonicalize(t.path().join("profiles/p.yaml")).unwrap();
    let dir = std::fs::canonicalize(t.path().join("profiles")).unwrap();
    let proxy_of = |args: &[&str], env: Option<&str>| -> String {
        let mut cmd = t.command();
        cmd.args(args).args(["plan", "web", "--format", "json"]);
        if let Some(e) = env {
            cmd.env("BPROF_PROFILES", e);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["argv"].as_array().unwrap().clone())
            .filter_map(|a| a.as_str()?.strip_prefix("ProxyCommand=").map(String::from))
            .next()
            .expect("a ProxyCommand")
    };
    let by_file = proxy_of(&["--profiles", "profiles/p.yaml"], None);
    assert!(
        by_file.ends_with(&format!("--profiles {} proxy web", file.display())),
        "{by_file}"
    );
    let discovered = proxy_of(&[], None);
    assert!(
        discovered.ends_with(&format!("--profiles {} proxy web", dir.display())),
        "{discovered}"
    );
    let from_env = proxy_of(&[], Some("profiles/p.yaml"));
    assert!(
        from_env.ends_with(&format!("--profiles {} proxy web", file.display())),
        "{from_env}"
    );
}
