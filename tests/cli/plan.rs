use crate::harness::{Test, one_profile};

const SUBS: [&str; 3] = [
    "55555555-5555-5555-5555-555555555555",
    "44444444-4444-4444-4444-444444444444",
    "22222222-2222-2222-2222-222222222222",
];

fn bundled_profiles() -> Vec<String> {
    let r = Test::examples().args(&["list", "--format", "json"]).run();
    r.code(0);
    r.json()
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn every_bundled_profile_plans_on_every_os() {
    let names = bundled_profiles();
    assert!(names.len() >= 6, "{names:?}");
    for os in ["windows", "linux", "macos"] {
        let mut all = String::new();
        for name in &names {
            let r = Test::examples()
                .signed_in(&SUBS)
                .fake_client("xfreerdp3")
                .env("HOME", "/home/alice")
                .env("USER", "alice")
                .env("TMPDIR", "/tmp/t")
                .args(&["plan", name, "--os", os, "--format", "json"])
                .run();
            r.code(0);
            let plan = r.json();
            assert_eq!(plan["profile"], name.as_str());
            for step in plan["steps"].as_array().expect("steps") {
                if let Some(url) = step["request"]["url"].as_str() {
                    assert!(step.get("argv").is_none(), "{step}");
                    let step_name = step["name"].as_str().unwrap_or("");
                    all.push_str(&format!("{name} [{step_name}]: GET {url}\n"));
                    continue;
                }
                let argv: Vec<&str> = step["argv"]
                    .as_array()
                    .expect("argv")
                    .iter()
                    .map(|a| a.as_str().expect("str"))
                    .collect();
                let step_name = step["name"].as_str().unwrap_or("");
                if argv.first() != Some(&"az") {
                    let what = if argv.is_empty() {
                        step["detail"].as_str().unwrap_or("").to_string()
                    } else {
                        argv.join(" ")
                    };
                    all.push_str(&format!("{name} [{step_name}]: {what}\n"));
                    continue;
                }
                // `az ssh cert` signs for the signed-in user and takes no subscription
                assert!(
                    argv.contains(&"--subscription") || argv[1..3] == ["ssh", "cert"],
                    "{name} on {os}: every az step carries --subscription: {argv:?}"
                );
                check_az_accepts(&argv);
                all.push_str(&format!("{name} [{step_name}]:\n  {}\n", argv.join("\n  ")));
            }
        }
        // the native ssh step names bprof's own path and the set's (temporary) directory
        let all = all.replace(crate::harness::BIN, "BPROF");
        let all = regex_free_tmp(&all);
        insta::assert_snapshot!(format!("plans_{os}"), all);
    }
}

/// `/tmp/.tmpXXXXXX/profiles` (a test's directory) as `DIR/profiles`.
fn regex_free_tmp(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/.tmp") {
        let start = rest[..i].rfind(' ').map_or(0, |j| j + 1);
        out.push_str(&rest[..start]);
        out.push_str("DIR");
        let after = &rest[i + 5..];
        let end = after.find('/').unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The rules of az's own parser (see the reference): known options only, --configure bare,
/// tunnel ports present, every option before ssh's `--`, rdp never planned off Windows.
fn check_az_accepts(argv: &[&str]) {
    if argv[1..3] == ["ssh", "cert"] {
        // the ssh extension's `cert`: the key to sign and where the certificate goes
        assert_eq!(argv.len(), 7, "{argv:?}");
        assert_eq!((argv[3], argv[5]), ("--public-key-file", "--file"));
        return;
    }
    if argv[1..3] == ["account", "get-access-token"] {
        // the native engine's one az call
        assert_eq!(argv.len(), 7, "{argv:?}");
        assert_eq!(
            (argv[3], argv[5], argv[6]),
            ("--subscription", "-o", "json")
        );
        return;
    }
    let sub = argv[3];
    let common = [
        "--name",
        "--resource-group",
        "--subscription",
        "--target-resource-id",
        "--target-ip-address",
        "--resource-port",
    ];
    let own: &[&str] = match sub {
        "rdp" => &[
            "--enable-mfa",
            "--disable-gateway",
            "--configure",
            "--auth-type",
        ],
        "ssh" => &["--auth-type", "--username", "--ssh-key"],
        "tunnel" => &["--port", "--timeout"],
        other => panic!("unknown az subcommand {other}"),
    };
    let end = argv.iter().position(|a| *a == "--").unwrap_or(argv.len());
    let mut i = 4;
    while i < end {
        let a = argv[i];
        assert!(a.starts_with("--"), "stray value {a:?} in {argv:?}");
        assert!(
            common.contains(&a) || own.contains(&a),
            "az would refuse {a} in {argv:?}"
        );
        let bare = ["--configure", "--enable-mfa", "--disable-gateway"].contains(&a);
        if bare {
            assert!(
                i + 1 >= end || argv[i + 1].starts_with("--"),
                "{a} must be bare: {argv:?}"
            );
            i += 1;
        } else {
            assert!(
                i + 1 < end && !argv[i + 1].starts_with("--"),
                "{a} needs a value: {argv:?}"
            );
            i += 2;
        }
    }
    if sub == "tunnel" {
        assert!(
            argv.contains(&"--port") && argv.contains(&"--resource-port"),
            "{argv:?}"
        );
    }
    if sub == "ssh" {
        assert!(argv.contains(&"--auth-type"), "{argv:?}");
    }
    assert_eq!(
        argv.iter().filter(|a| a.starts_with("--target-")).count(),
        1,
        "{argv:?}"
    );
}

/// The argv of the first step of `plan PROFILE --format json ARGS...` on the examples.
fn first_argv(profile: &str, args: &[&str]) -> Vec<String> {
    first_argv_with(profile, args, None)
}

/// The first step's argv, with `BPROF_TUNNEL_ENGINE` set when given.
fn first_argv_with(profile: &str, args: &[&str], engine: Option<&str>) -> Vec<String> {
    let mut t = Test::examples().signed_in(&SUBS);
    if let Some(e) = engine {
        t = t.env("BPROF_TUNNEL_ENGINE", e);
    }
    let r = t
        .args(&["plan", profile, "--format", "json"])
        .args(args)
        .run();
    r.code(0);
    r.json()["steps"][0]["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|a| a.as_str().expect("str").to_string())
        .collect()
}

/// The JSON steps of prod-jumpbox's plan for Windows, with `extra` flags.
fn windows_steps(extra: &[&str]) -> serde_json::Value {
    let r = Test::examples()
        .signed_in(&SUBS)
        .args(&[
            "plan",
            "prod-jumpbox",
            "--format",
            "json",
            "--os",
            "windows",
        ])
        .args(extra)
        .run();
    r.code(0);
    r.json()["steps"].clone()
}

#[test]
fn rdp_is_the_gateway_on_windows_and_a_tunnel_elsewhere() {
    // Windows: the token, then bprof's own request for the gateway's file, then mstsc
    let steps = windows_steps(&[]);
    assert_eq!(steps[0]["argv"][2], "get-access-token", "{steps}");
    assert_eq!(steps[1]["name"], "gateway-file");
    assert!(
        steps[1].get("argv").is_none(),
        "a request has no argv: {steps}"
    );
    assert_eq!(steps[1]["request"]["method"], "GET");
    assert_eq!(
        steps[1]["request"]["url"],
        "https://<the bastion's dnsName from ARM>/api/rdpfile?resourceId=/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-prod-mgmt/providers/Microsoft.Compute/virtualMachines/vm-jumpbox-01&format=rdp&rdpport=3389&enablerdsaad=True"
    );
    assert_eq!(steps[2]["name"], "write-rdp");
    assert_eq!(steps[3]["argv"][0], "mstsc");
    assert_eq!(steps.as_array().unwrap().len(), 4, "{steps}");
    // the text plan: the request on one comment line, what it is for under it, the name once
    let r = Test::examples()
        .signed_in(&SUBS)
        .args(&["plan", "prod-jumpbox", "--os", "windows"])
        .run();
    r.code(0);
    let out = &r.stdout;
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("# gateway-file: GET https://"))
        .unwrap_or_else(|| panic!("the request line: {out}"));
    assert!(
        lines[at + 1].starts_with("#   the bastion's RD gateway file"),
        "{out}"
    );
    assert_eq!(out.matches("gateway-file").count(), 1, "{out}");
    // `tunnel_engine: az` keeps az's rdp
    let argv = first_argv_with("prod-jumpbox", &["--os", "windows"], Some("az"));
    assert_eq!(argv[3], "rdp");
    assert!(argv.iter().any(|a| a == "--enable-mfa"));
    for os in ["linux", "macos"] {
        // the native engine: the token is the one az call, then bprof's own tunnel
        assert_eq!(
            first_argv("prod-jumpbox", &["--os", os])[..3],
            ["az", "account", "get-access-token"],
            "{os}"
        );
        assert_eq!(
            first_argv("prod-jumpbox", &["--os", os])
                .get(3)
                .map(String::as_str),
            Some("--subscription"),
            "{os}"
        );
        let r = Test::examples()
            .signed_in(&SUBS)
            .env("BPROF_TUNNEL_ENGINE", "az")
            .args(&["plan", "prod-jumpbox", "--format", "json", "--os", os])
            .run();
        assert_eq!(
            r.json()["steps"][0]["argv"][3],
            "tunnel",
            "{os}: BPROF_TUNNEL_ENGINE=az"
        );
    }
}

#[test]
fn configure_flag_is_bare_and_for_this_run_only() {
    let with = first_argv_with(
        "prod-jumpbox",
        &["--os", "windows", "--configure"],
        Some("az"),
    );
    assert_eq!(
        with.last().map(String::as_str),
        Some("--configure"),
        "{with:?}"
    );
    let without = first_argv_with("prod-jumpbox", &["--os", "windows"], Some("az"));
    assert!(!without.iter().any(|a| a == "--configure"));
    // the gateway path: mstsc /edit
    let client = windows_steps(&["--configure"])[3]["argv"].clone();
    assert_eq!(client[0], "mstsc");
    assert_eq!(client[1], "/edit");
    Test::examples()
        .args(&["plan", "prod-app-ssh", "--configure"])
        .run()
        .code(64)
        .stderr_has("rdp option");
}

#[test]
fn login_step_only_when_not_signed_in() {
    let r = Test::examples()
        .args(&["plan", "prod-app-ssh", "--format", "json"])
        .run();
    let steps = r.json()["steps"].clone();
    assert_eq!(steps[0]["name"], "login");
    assert_eq!(steps[0]["when"], "not-signed-in");
    assert_eq!(
        steps[0]["argv"],
        serde_json::json!([
            "az",
            "login",
            "--tenant",
            "11111111-1111-1111-1111-111111111111"
        ])
    );
    let r = Test::examples()
        .signed_in(&SUBS)
        .args(&["plan", "prod-app-ssh", "--format", "json"])
        .run();
    let steps = r.json()["steps"].clone();
    let steps = steps.as_array().unwrap();
    assert!(steps.iter().all(|s| s["name"] != "login"), "{steps:?}");
    assert_eq!(steps.last().unwrap()["when"], serde_json::Value::Null);
    // the tenant's `login` argv is appended
    let r = Test::examples()
        .args(&["plan", "fabrikam-web-ssh", "--format", "json"])
        .run();
    assert_eq!(r.json()["steps"][0]["argv"][4], "--use-device-code");
}

#[test]
fn text_plan_is_quoted_for_the_target_shell() {
    let yaml = one_profile(
        "  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n    ssh_args: [\"-v\", \"echo it's $x\"]\n",
    );
    let t = || {
        // az's ssh: the values as az and, on Windows, cmd.exe read them
        Test::new()
            .file("profiles/p.yaml", &yaml)
            .signed_in(&["22222222-2222-2222-2222-222222222222"])
            .az_tunnel()
    };
    let sh = t().args(&["plan", "p", "--os", "linux"]).run();
    sh.code(0).stdout_has(" -- -v 'echo it'\\''s $x'\n");
    let ps = t().args(&["plan", "p", "--os", "windows"]).run();
    ps.code(0).stdout_has(" '--' -v 'echo it''s $x'\n");
}

#[test]
fn dry_run_is_the_plan() {
    let a = Test::examples()
        .args(&["plan", "prod-db-tunnel", "--format", "json"])
        .run();
    let b = Test::examples()
        .args(&["run", "prod-db-tunnel", "--dry-run", "--format", "json"])
        .run();
    assert_eq!(a.stdout, b.stdout);
    assert!(b.calls.is_empty(), "dry run must not call az");
}

#[test]
fn unknown_profile_suggests_the_closest() {
    Test::examples()
        .args(&["plan", "prod-jumbox"])
        .run()
        .code(66)
        .stderr_has("did you mean `prod-jumpbox`");
}

#[test]
fn templates_are_shown_and_user_templates_render() {
    Test::new()
        .args(&["templates"])
        .run()
        .code(0)
        .stdout_has("rdp")
        .stdout_has("tunnel");
    Test::new()
        .args(&["templates", "ssh"])
        .run()
        .code(0)
        .stdout_has("{{profile.auth_type}}");
    let yaml = one_profile(
        "  p:\n    bastion: b\n    vm: v\n    template: mine\n    extra_args: [--only-show-errors]\n",
    ) + "templates:\n  mine:\n    - [az, network, bastion, rdp, --name, \"{{bastion.name}}\", --subscription, \"{{bastion.subscription}}\", --target-resource-id, \"{{vm.resource_id}}\", \"{{...extra_args}}\"]\n";
    let r = Test::new()
        .file("profiles/p.yaml", &yaml)
        .signed_in(&["22222222-2222-2222-2222-222222222222"])
        .args(&["plan", "p", "--format", "json"])
        .run();
    r.code(0);
    assert_eq!(r.json()["steps"][0]["argv"][5], "bas-1");
    assert_eq!(r.json()["steps"][0]["argv"][10], "--only-show-errors");
}

#[test]
fn unknown_template_variable_names_template_step_and_token() {
    let yaml = one_profile("  p:\n    bastion: b\n    vm: v\n    template: mine\n")
        + "templates:\n  mine:\n    - [az, version, \"{{bastion.nmae}}\"]\n";
    Test::new()
        .file("profiles/p.yaml", &yaml)
        .args(&["plan", "p"])
        .run()
        .code(65)
        .stderr_has("template `mine`, step 1, token 3")
        .stderr_has("bastion.nmae");
}

#[test]
fn other_programs_need_the_persons_own_consent() {
    let yaml = one_profile("  p:\n    bastion: b\n    vm: v\n    template: mine\n")
        + "templates:\n  mine:\n    - [pwsh, -c, hello]\n";
    let t = || Test::new().file("profiles/p.yaml", &yaml);
    // a shared template that runs another program needs the person's pinned consent
    t().args(&["plan", "p"])
        .run()
        .code(77)
        .stderr_has("runs `pwsh`")
        .stderr_has("bprof trust allow p");
    // a *.local.yaml can be committed by anyone: it grants nothing
    let local = || {
        t().file(
            "profiles/me.local.yaml",
            "version: 1\nallow_programs: [pwsh]\n",
        )
    };
    local()
        .args(&["validate"])
        .run()
        .code(65)
        .stderr_has("grants nothing");
    local()
        .args(&["plan", "p"])
        .run()
        .code(77)
        .stderr_has("1 problem elsewhere");
    // a shared file cannot give that consent either
    t().file("profiles/z.yaml", "version: 1\nallow_programs: [pwsh]\n")
        .args(&["validate"])
        .run()
        .code(65)
        .stderr_has("only your own user config file may allow programs");
    // the person's own config: their own template, and the programs it may run
    let own = "version: 1\nallow_programs: [pwsh]\ntemplates:\n  me:\n    - [pwsh, -c, hi]\nprofiles:\n  p:\n    template: me\n";
    t().file("config/bprof/local.yaml", own)
        .args(&["plan", "p"])
        .run()
        .code(0)
        .stdout_has("pwsh -c hi");
    // without allow_programs, even the person's own template runs only az
    t().file(
        "config/bprof/local.yaml",
        own.replace("allow_programs: [pwsh]\n", ""),
    )
    .args(&["plan", "p"])
    .run()
    .code(65)
    .stderr_has("allow_programs");
}

#[test]
fn a_copied_builtin_template_plans_the_same() {
    for builtin in ["ssh", "tunnel"] {
        let shown = Test::new().args(&["templates", builtin]).run();
        shown.code(0);
        let body: String = shown
            .stdout
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("  {}\n", l.replace(&format!("{builtin}:"), "mine:")))
            .collect();
        let profile = "  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n    extra_args: [--only-show-errors]\n    ssh_args: [-v]\n";
        let own = one_profile(&format!("{profile}    template: mine\n")) + "templates:\n" + &body;
        let t = Test::new()
            .file("profiles/p.yaml", &own)
            .signed_in(&["22222222-2222-2222-2222-222222222222"]);
        let mine = t.run_with(&["plan", "p", "--format", "json"]);
        mine.code(0);
        let t2 = Test::new()
            .file(
                "profiles/p.yaml",
                one_profile(&format!("{profile}    template: {builtin}\n")),
            )
            .signed_in(&["22222222-2222-2222-2222-222222222222"]);
        let theirs = t2.run_with(&["plan", "p", "--format", "json"]);
        assert_eq!(
            mine.json()["steps"][0]["argv"],
            theirs.json()["steps"][0]["argv"],
            "{builtin}"
        );
        t.run_with(&["templates"])
            .code(0)
            .stdout_has("mine")
            .stdout_has("profiles/p.yaml:");
        t.run_with(&["templates", "mine"])
            .code(0)
            .stdout_has("mine:\n  - [az, network, bastion");
    }
}
