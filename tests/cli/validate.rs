use crate::harness::{Test, one_profile};

/// `validate` of one file exits 65 and says `needle`.
#[track_caller]
fn assert_invalid(file: &str, content: &str, case: &str, needle: &str) -> crate::harness::Run {
    let r = Test::new().file(file, content).args(&["validate"]).run();
    assert_eq!(r.code, 65, "{case}: {}", r.stderr);
    assert!(
        r.stderr.contains(needle),
        "{case}: want {needle:?}:\n{}",
        r.stderr
    );
    r
}

#[test]
fn bundled_examples_are_valid() {
    Test::examples()
        .args(&["validate"])
        .run()
        .code(0)
        .stderr_has("3 files valid");
    let r = Test::examples()
        .args(&["validate", "--format", "json"])
        .run();
    r.code(0);
    assert_eq!(r.json(), serde_json::json!({"valid": true, "problems": []}));
}

/// (name, file content, expected line, a piece of the message)
const BROKEN: &[(&str, &str, u32, &str)] = &[
    ("no-version", "tenants: {}\n", 1, "has no `version`"),
    ("version-2", "version: 2\n", 1, "unsupported version 2"),
    (
        "unknown-key",
        "version: 1\nprofiles:\n  p:\n    enable_mfaa: true\n    bastion: b\n    vm: v\n",
        4,
        "unknown key `enable_mfaa`",
    ),
    (
        "yes-bool",
        "version: 1\nprofiles:\n  p:\n    enable_mfa: yes\n",
        4,
        "must be a boolean",
    ),
    (
        "dup-key",
        "version: 1\nprofiles:\n  p:\n    mode: rdp\n    mode: ssh\n",
        5,
        "duplicate mapping key",
    ),
    (
        "bad-guid",
        "version: 1\ntenants:\n  t:\n    id: not-a-guid\n    subscription: 22222222-2222-2222-2222-222222222222\n",
        4,
        "not a GUID",
    ),
    (
        "bad-name",
        "version: 1\nprofiles:\n  Prod_Box:\n    mode: rdp\n",
        3,
        "not a valid name",
    ),
    (
        "port-range",
        "version: 1\nprofiles:\n  p:\n    resource_port: 70000\n",
        4,
        "outside 1..=65535",
    ),
    (
        "bad-mode",
        "version: 1\nprofiles:\n  p:\n    mode: rpd\n",
        4,
        "did you mean `rdp`",
    ),
    (
        "local-port",
        "version: 1\nprofiles:\n  p:\n    local_port: automatic\n",
        4,
        "port number (1-65535) or `auto`",
    ),
    ("syntax", "version: 1\nprofiles: [\n", 2, "invalid YAML"),
    ("not-a-map", "- a\n- b\n", 1, "not a mapping"),
    ("empty", "", 1, "the file is empty"),
    (
        "rdp-key",
        "version: 1\nprofiles:\n  p:\n    rdp:\n      properties:\n        \"smart sizing\": 1\n",
        6,
        "not an .rdp property key",
    ),
];

#[test]
fn broken_files_name_file_line_and_exit_65() {
    for (name, content, line, needle) in BROKEN {
        let file = format!("profiles/{name}.yaml");
        let r = Test::new().file(&file, content).args(&["validate"]).run();
        assert_eq!(r.code, 65, "{name}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("{file}:{line}:")),
            "{name}: want {file}:{line}:\n{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(needle),
            "{name}: want {needle:?}:\n{}",
            r.stderr
        );
        let j = Test::new()
            .file(&file, content)
            .args(&["validate", "--format", "json"])
            .run();
        assert_eq!(j.code, 65);
        let v = j.json();
        assert_eq!(v["valid"], false);
        // the problem the case is about (a profile that also lacks `bastion` or `vm` says so
        // too, at its own line)
        let p = v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["message"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("{name}: {v}"));
        assert_eq!(p["line"], *line, "{name}: {v}");
        assert_eq!(p["file"], file.as_str());
    }
}

/// (name, profiles YAML under `profiles:` of a valid set, expected message piece)
const SEMANTIC: &[(&str, &str, &str)] = &[
    (
        "unknown-bastion",
        "  p:\n    bastion: bb\n    vm: v\n",
        "did you mean `b`",
    ),
    (
        "unknown-vm",
        "  p:\n    bastion: b\n    vm: vv\n",
        "vm `vv` is not defined",
    ),
    ("no-bastion", "  p:\n    vm: v\n", "has no `bastion`"),
    (
        "ssh-no-auth",
        "  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n",
        "has no `auth_type`",
    ),
    (
        "ssh-password",
        "  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: password\n",
        "Please enter username with --username.",
    ),
    (
        "ssh-key",
        "  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: ssh-key\n    username: u\n",
        "Please enter username --username and ssh cert location --ssh-key.",
    ),
    (
        "mfa-on-ssh",
        "  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n    enable_mfa: true\n",
        "`enable_mfa` is an `az network bastion rdp` option",
    ),
    (
        "tunnel-no-port",
        "  p:\n    bastion: b\n    vm: v\n    mode: tunnel\n",
        "has no `resource_port`",
    ),
    (
        "aad-gateway",
        "  p:\n    bastion: b\n    vm: v\n    auth_type: aad\n    disable_gateway: true\n",
        "AAD login is not supported for Disable Gateway & IP Connect scenarios.",
    ),
    (
        "cycle",
        "  p:\n    extends: q\n    bastion: b\n    vm: v\n  q:\n    extends: p\n",
        "cycle: p -> q -> p",
    ),
    (
        "extends-unknown",
        "  p:\n    extends: base\n    bastion: b\n    vm: v\n",
        "extends `base`, which is not a profile",
    ),
    (
        "rdp-prop-type",
        "  p:\n    bastion: b\n    vm: v\n    rdp:\n      properties:\n        \"smart sizing:i\": big\n",
        "must be an integer",
    ),
    (
        "secret-prop",
        "  p:\n    bastion: b\n    vm: v\n    rdp:\n      properties:\n        \"password 51:b\": \"00ff\"\n",
        "would store a secret",
    ),
];

#[test]
fn semantic_problems_quote_the_rule_and_exit_65() {
    for (name, profiles, needle) in SEMANTIC {
        let r = assert_invalid("profiles/p.yaml", &one_profile(profiles), name, needle);
        assert!(
            r.stderr.contains("profiles/p.yaml:"),
            "{name}: {}",
            r.stderr
        );
    }
}

#[test]
fn vm_and_bastion_rules() {
    let set = |vms: &str, bastion_extra: &str, profile: &str| {
        format!(
            "version: 1\ntenants:\n  t:\n    id: 11111111-1111-1111-1111-111111111111\n    subscription: 22222222-2222-2222-2222-222222222222\nbastions:\n  b:\n    tenant: t\n    resource_group: rg\n    name: bas\n{bastion_extra}vms:\n{vms}profiles:\n  p:\n    bastion: b\n    vm: v\n{profile}"
        )
    };
    let cases: &[(&str, String, &str)] = &[
        (
            "two-targets",
            set(
                "  v:\n    ip: 10.0.0.4\n    resource_group: rg\n    name: x\n",
                "",
                "",
            ),
            "has 2 targets",
        ),
        (
            "no-target",
            set("  v:\n    os: linux\n", "", ""),
            "has no target",
        ),
        (
            "bad-id",
            set(
                "  v:\n    resource_id: /subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg/providers/Microsoft.Network/bastionHosts/x\n",
                "",
                "",
            ),
            "not `Microsoft.Compute/virtualMachines`",
        ),
        (
            "bad-ip",
            set("  v:\n    ip: 10.0.0.300\n", "", ""),
            "not an IP address",
        ),
        (
            "ip-port",
            set(
                "  v:\n    ip: 10.0.0.4\n",
                "",
                "    mode: tunnel\n    resource_port: 5432\n",
            ),
            "Custom ports are not allowed",
        ),
        (
            "ip-aad",
            set("  v:\n    ip: 10.0.0.4\n", "", "    auth_type: aad\n"),
            "AAD login is not supported",
        ),
        (
            "basic-sku",
            set("  v:\n    ip: 10.0.0.4\n", "    sku: basic\n", ""),
            "Bastion Host SKU must be Standard or Premium",
        ),
        (
            "ip-connect-off",
            set("  v:\n    ip: 10.0.0.4\n", "    ip_connect: false\n", ""),
            "IpConnect is not enabled",
        ),
    ];
    for (name, yaml, needle) in cases {
        assert_invalid("profiles/s.yaml", yaml, name, needle);
    }
}

#[test]
fn every_problem_at_once_sorted_by_file_and_line() {
    let r = Test::new()
        .file(
            "profiles/a.yaml",
            "version: 1\nprofiles:\n  p:\n    enable_mfa: yes\n    mode: rpd\n",
        )
        .file(
            "profiles/b.yaml",
            "version: 1\ntenants:\n  t:\n    id: nope\n",
        )
        .args(&["validate", "--format", "json"])
        .run();
    r.code(65);
    let problems = r.json()["problems"].as_array().unwrap().clone();
    let at: Vec<(String, u64)> = problems
        .iter()
        .map(|p| {
            (
                p["file"].as_str().unwrap().to_string(),
                p["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(at.len() >= 4, "{at:?}");
    let mut sorted = at.clone();
    sorted.sort();
    assert_eq!(at, sorted);
    assert!(
        at.contains(&("profiles/a.yaml".into(), 4))
            && at.contains(&("profiles/a.yaml".into(), 5))
            && at.contains(&("profiles/b.yaml".into(), 4)),
        "{at:?}"
    );
}

#[test]
fn hostile_inputs_get_a_clear_error_never_a_panic() {
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for i in 0..9u8 {
        let (p, n) = ((b'a' + i) as char, (b'b' + i) as char);
        bomb += &format!("{n}: &{n} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n");
    }
    let deep = "[".repeat(20_000) + &"]".repeat(20_000);
    let deep_block: String = (0..2_000)
        .map(|i| format!("{}a:\n", " ".repeat(i)))
        .collect();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bomb", bomb.into_bytes(), "aliases"),
        ("deep", deep.into_bytes(), "nested too deeply"),
        ("deepblock", deep_block.into_bytes(), "nested too deeply"),
        ("garbage", garbage, "not UTF-8"),
        ("utf16", b"\xff\xfev\x00e\x00".to_vec(), "UTF-16"),
        ("nul", b"version: 1\n\0\n".to_vec(), "NUL"),
    ];
    for (name, content, needle) in cases {
        let r = Test::new()
            .file(&format!("profiles/{name}.yaml"), content)
            .args(&["validate"])
            .run();
        assert_eq!(r.code, 65, "{name}: {}", r.stderr);
        assert!(
            r.stderr.contains(needle),
            "{name}: want {needle:?}:\n{}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{name}");
    }
    // a 100 MB file is refused before it is read
    let t = Test::new();
    let f = std::fs::File::create(t.path().join("huge.yaml")).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    let start = std::time::Instant::now();
    t.args(&["validate", "huge.yaml"])
        .run()
        .code(65)
        .stderr_has("larger than bprof reads");
    assert!(start.elapsed().as_secs() < 10);
}

#[test]
fn golden_stderr() {
    let cases = [
        (
            "unknown_key",
            "version: 1\nprofiles:\n  prod:\n    bastion: hub\n    enable_mfaa: true\n    vm: jump\n",
        ),
        (
            "yes_boolean",
            "version: 1\nprofiles:\n  prod:\n    enable_mfa: yes\n    bastion: hub\n    vm: jump\n",
        ),
    ];
    for (name, content) in cases {
        let r = Test::new()
            .file("profiles/p.yaml", content)
            .args(&["validate", "--color", "never"])
            .run();
        r.code(65);
        insta::assert_snapshot!(format!("stderr_{name}"), r.stderr);
    }
    let r = Test::new()
        .file(
            "profiles/p.yaml",
            one_profile("  p:\n    bastion: bb\n    vm: v\n"),
        )
        .args(&["plan", "p", "--color", "never"])
        .run();
    r.code(65);
    insta::assert_snapshot!("stderr_unknown_bastion", r.stderr);
}

/// Thousands of damaged versions of the bundled files (bytes flipped, dropped, repeated, cut):
/// every one is either valid or a list of problems with positions, never a panic.
#[test]
fn damaged_files_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let original = std::fs::read(entry.unwrap().path()).unwrap();
        for _ in 0..400 {
            let mut bytes = original.clone();
            for _ in 0..(1 + next() % 4) {
                let i = (next() as usize) % bytes.len().max(1);
                match next() % 5 {
                    0 => bytes[i] = (next() % 256) as u8,
                    1 => {
                        bytes.remove(i);
                    }
                    2 => {
                        let specials = b"-:[]{}&*!|>'\"%@`#,?\n ";
                        bytes.insert(i, specials[(next() as usize) % specials.len()]);
                    }
                    3 => bytes.truncate(i),
                    _ => {
                        let j = (next() as usize) % bytes.len().max(1);
                        let (a, b) = (i.min(j), i.max(j));
                        let chunk = bytes[a..b].to_vec();
                        bytes.splice(a..a, chunk);
                    }
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let path = tmp.path().join("f.yaml");
            std::fs::write(&path, &bytes).unwrap();
            let mut problems = Vec::new();
            let file = bprof::profile::load::read_file(
                &path,
                "f.yaml".into(),
                bprof::profile::load::FileKind::Shared,
                &mut problems,
            )
            .unwrap();
            assert!(
                file.is_some() || !problems.is_empty(),
                "a file refused without a problem"
            );
            for p in &problems {
                assert!(p.line >= 1 && p.column >= 1, "{p:?}");
            }
            if let Some(f) = file {
                // whatever parsed also resolves or reports, without panicking
                let set = bprof::profile::load::assemble(vec![f], &mut problems);
                let _ = bprof::plan::validate_all(&set);
            }
            checked += 1;
        }
    }
    assert!(checked >= 1200);
}

#[test]
fn a_bad_default_is_one_problem_however_many_profiles_inherit_it() {
    let profiles: String = (0..50).map(|i| format!("  p{i}:\n    vm: v\n")).collect();
    let yaml = one_profile(&profiles) + "defaults:\n  bastion: nope\n";
    let r = Test::new()
        .file("profiles/p.yaml", yaml)
        .args(&["validate", "--format", "json"])
        .run();
    r.code(65);
    let problems = r.json()["problems"].as_array().unwrap().clone();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["path"], "defaults.bastion");
}

/// One set whose profiles `run` refuses on some OS or engine: `validate` says so, the same way.
fn refused_somewhere() -> crate::harness::Test {
    crate::harness::Test::new().file(
        "profiles/p.yaml",
        crate::harness::one_profile(
            "  db:
    bastion: b
    vm: lin
    mode: tunnel
    resource_port: 5432
    extra_args: [--only-show-errors]
  desk:
    bastion: b
    vm: v
    extra_args: [--only-show-errors]
  entra:
    bastion: b
    vm: lin
    mode: ssh
    auth_type: aad
    ssh_args: [\"echo a&b\"]
    tunnel_engine: az
",
        ),
    )
}

#[test]
fn validate_reports_what_run_refuses_on_any_os_or_engine() {
    let t = refused_somewhere();
    let r = t.run_with(&["validate", "--format", "json"]);
    r.code(65);
    let problems = r.json()["problems"].as_array().unwrap().clone();
    let find = |line: u64| {
        problems
            .iter()
            .find(|p| p["line"] == line)
            .unwrap_or_else(|| panic!("a problem at line {line}: {problems:?}"))
            .clone()
    };
    // a tunnel runs on the native engine everywhere: an error, as `plan` says on every OS
    let db = find(24);
    assert!(
        db["message"].as_str().unwrap().contains("`extra_args`"),
        "{db}"
    );
    for os in ["linux", "macos", "windows"] {
        t.run_with(&["plan", "db", "--os", os])
            .code(65)
            .stderr_has("`extra_args`");
    }
    // rdp with `client: auto`: bprof's gateway path on Windows, the native tunnel elsewhere,
    // and neither runs az's command line: an error on every OS
    let desk = find(28);
    let msg = desk["message"].as_str().unwrap();
    assert!(
        msg.contains("`extra_args`") && !msg.starts_with("on "),
        "{msg}"
    );
    t.run_with(&["plan", "desk", "--os", "windows"]).code(65);
    t.run_with(&["plan", "desk", "--os", "linux"]).code(65);
    // cmd.exe reads az's ssh command line on Windows only
    let entra = find(34);
    let msg = entra["message"].as_str().unwrap();
    assert!(
        msg.starts_with("on windows: ") && msg.contains('&'),
        "{msg}"
    );
    t.run_with(&["plan", "entra", "--os", "windows"])
        .code(65)
        .stderr_has("profiles/p.yaml:34");
    t.run_with(&["plan", "entra", "--os", "linux"]).code(0);
    // warnings alone: exit 0, and --strict fails on them
    let t = refused_somewhere().file(
        "profiles/p.yaml",
        std::fs::read_to_string(refused_somewhere().path().join("profiles/p.yaml"))
            .unwrap()
            .replace("    extra_args: [--only-show-errors]\n", ""),
    );
    t.run_with(&["validate"]).code(0).stderr_has("on windows: ");
    t.run_with(&["validate", "--strict"]).code(65);
    // BPROF_TUNNEL_ENGINE of the shell that validates does not change what a teammate's run
    // (or CI) would refuse
    let t = refused_somewhere().env("BPROF_TUNNEL_ENGINE", "az");
    t.run_with(&["validate"])
        .code(65)
        .stderr_has("profiles/p.yaml:28")
        .stderr_has("`extra_args`");
    assert!(t.calls().is_empty(), "validate runs nothing");
}

#[test]
fn every_problem_of_one_entry_at_once() {
    let t = crate::harness::Test::new().file(
        "profiles/p.yaml",
        crate::harness::one_profile("  p:\n    vm: v\n    mode: RDP\n"),
    );
    let r = t.run_with(&["validate"]);
    r.code(65)
        .stderr_has("did you mean `rdp`?")
        .stderr_has("profile `p` has no `bastion`");
    t.run_with(&["plan", "p"])
        .code(65)
        .stderr_has("did you mean `rdp`?")
        .stderr_has("profile `p` has no `bastion`");
    // one that `extends` another may get it there: only its own problem
    let t = crate::harness::Test::new().file(
        "profiles/p.yaml",
        crate::harness::one_profile(
            "  base:\n    bastion: b\n  p:\n    extends: base\n    vm: v\n    mode: RDP\n",
        ),
    );
    let r = t.run_with(&["validate"]);
    r.code(65).stderr_has("did you mean `rdp`?");
    assert!(!r.stderr.contains("has no `bastion`"), "{}", r.stderr);
}

#[test]
fn run_of_a_healthy_profile_mentions_broken_references_elsewhere() {
    let t = crate::harness::Test::new().file(
        "profiles/p.yaml",
        crate::harness::one_profile(
            "  ok:\n    bastion: b\n    vm: v\n  gone:\n    bastion: nope\n    vm: v\n  tpl:\n    bastion: b\n    vm: v\n    template: missing\n",
        ),
    );
    let r = t.run_with(&["plan", "ok"]);
    r.code(0).stderr_has(
        "2 problems elsewhere in the profile set (none in what this uses): bprof validate",
    );
    assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
}
