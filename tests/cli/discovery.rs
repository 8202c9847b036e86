use crate::harness::{Test, one_profile};

fn set() -> String {
    one_profile("  p:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: aad\n")
}

#[test]
fn nearest_profiles_dir_upwards() {
    Test::new()
        .file("profiles/p.yaml", set())
        .cwd("a/b/c")
        .args(&["list"])
        .run()
        .code(0)
        .stdout_has("p ");
}

#[test]
fn no_profiles_is_66_with_a_hint() {
    Test::new()
        .args(&["list"])
        .run()
        .code(66)
        .stderr_has("no profiles found")
        .stderr_has("--profiles");
    Test::new()
        .args(&["--profiles", "nope", "list"])
        .run()
        .code(66)
        .stderr_has("nope: no such file");
}

#[test]
fn env_and_flag_choose_the_files() {
    let t = || {
        Test::new()
            .file("team/p.yml", set())
            .file("profiles/other.yaml", "version: 1\n")
    };
    t().env("BPROF_PROFILES", "team")
        .args(&["list"])
        .run()
        .code(0)
        .stdout_has("ssh");
    t().args(&["--profiles", "team/p.yml", "list"])
        .run()
        .code(0)
        .stdout_has("ssh");
    // --profiles wins over the environment
    t().env("BPROF_PROFILES", "profiles")
        .args(&["--profiles", "team", "list"])
        .run()
        .code(0)
        .stdout_has("ssh");
}

#[test]
fn bom_and_crlf_are_accepted() {
    let text = format!("\u{feff}{}", set().replace('\n', "\r\n"));
    Test::new()
        .file("profiles/p.yaml", text)
        .args(&["validate"])
        .run()
        .code(0);
}

#[test]
fn names_are_global_and_twice_names_both_places() {
    let r = Test::new()
        .file("profiles/a.yaml", set())
        .file(
            "profiles/b.yaml",
            "version: 1\nprofiles:\n  p:\n    mode: rdp\n",
        )
        .args(&["validate"])
        .run();
    r.code(65)
        .stderr_has("profile `p` is defined twice")
        .stderr_has("profiles/b.yaml:3")
        .stderr_has("profiles/a.yaml:");
}

#[test]
fn local_overrides_change_fields_and_show_says_where() {
    let t = Test::new()
        .file("profiles/p.yaml", set())
        .file(
            "profiles/me.local.yaml",
            "version: 1\nprofiles:\n  p:\n    username: alice@contoso.com\n",
        )
        .file(
            "config/bprof/local.yaml",
            "version: 1\nprofiles:\n  mine:\n    extends: p\n    ssh_args: [-v]\n",
        );
    let r = t.args(&["show", "p"]).run();
    r.code(0)
        .stdout_has("username: alice@contoso.com  # profiles/me.local.yaml:4");
    let r = Test::new()
        .file("profiles/p.yaml", set())
        .file(
            "config/bprof/local.yaml",
            "version: 1\nprofiles:\n  mine:\n    extends: p\n    ssh_args: [-v]\n",
        )
        .args(&["show", "mine", "--format", "json"])
        .run();
    r.code(0);
    let v = r.json();
    assert_eq!(v["ssh_args"], serde_json::json!(["-v"]));
    assert_eq!(v["mode"], "ssh");
    assert_eq!(
        v["resolved"]["tenant_id"],
        "11111111-1111-1111-1111-111111111111"
    );
    assert!(
        v["resolved"]["vm_resource_id"]
            .as_str()
            .unwrap()
            .ends_with("/virtualMachines/lin")
    );
}

#[test]
fn an_override_cannot_invent_a_tenant() {
    Test::new()
        .file("profiles/p.yaml", set())
        .file(
            "profiles/me.local.yaml",
            "version: 1\ntenants:\n  tt:\n    id: 11111111-1111-1111-1111-111111111111\n",
        )
        .args(&["validate"])
        .run()
        .code(65)
        .stderr_has("no shared file defines")
        .stderr_has("did you mean `t`");
}

#[test]
fn list_json_shape() {
    let r = Test::examples().args(&["list", "--format", "json"]).run();
    r.code(0);
    let first = &r.json()[0];
    for k in [
        "name",
        "mode",
        "vm",
        "bastion",
        "tenant",
        "description",
        "file",
    ] {
        assert!(first.get(k).is_some(), "list lacks {k}: {first}");
    }
}

/// The command-line reference is a snapshot: `--help` cannot drift from what is documented.
#[test]
fn help_texts() {
    let mut all = String::new();
    for cmd in [
        &[][..],
        &["list"],
        &["show"],
        &["plan"],
        &["run"],
        &["rdp"],
        &["validate"],
        &["doctor"],
        &["schema"],
        &["templates"],
    ] {
        let mut args: Vec<&str> = cmd.to_vec();
        args.push("--help");
        let r = Test::new().args(&args).run();
        r.code(0);
        all.push_str(&format!("$ bprof {}\n{}\n", args.join(" "), r.stdout));
    }
    insta::assert_snapshot!("help", all);
}

#[test]
fn usage_errors_are_64() {
    Test::new()
        .args(&["prod-jumpbox"])
        .run()
        .code(64)
        .stderr_has("unrecognized subcommand");
    Test::new().args(&["plan"]).run().code(64);
    Test::new()
        .args(&["run", "p", "--os", "linux"])
        .run()
        .code(64)
        .stderr_has("--dry-run");
    Test::new().args(&["rdp", "p", "--all"]).run().code(64);
}

#[test]
fn init_scaffolds_a_set_that_validates_and_plans() {
    let t = Test::new().file("profiles/.gitignore", "/target");
    t.run_with(&["init"])
        .code(0)
        .stderr_has("wrote profiles/example.yaml");
    t.run_with(&["validate", "--strict"]).code(0);
    t.run_with(&["plan", "my-jumpbox", "--os", "windows"])
        .code(0)
        .stdout_has("&enablerdsaad=True");
    let ignore = std::fs::read_to_string(t.path().join("profiles/.gitignore")).unwrap();
    assert!(
        ignore.starts_with("/target\n") && ignore.contains("\n*.local.yaml\n"),
        "{ignore}"
    );
    let schema = std::fs::read_to_string(t.path().join("profiles/bprof.schema.json")).unwrap();
    assert_eq!(schema, t.run_with(&["schema"]).stdout);
    // the example is never replaced without --force: init adds what is missing, keeps the rest
    std::fs::write(t.path().join("profiles/example.yaml"), "version: 1\n").unwrap();
    t.run_with(&["init", "--vscode"])
        .code(0)
        .stderr_has("kept profiles/example.yaml: it is yours (--force replaces it)")
        .stderr_has("wrote .vscode/settings.json");
    assert_eq!(
        std::fs::read_to_string(t.path().join("profiles/example.yaml")).unwrap(),
        "version: 1\n"
    );
    t.run_with(&["init", "--force"]).code(0);
    assert!(
        std::fs::read_to_string(t.path().join("profiles/.gitignore"))
            .unwrap()
            .matches("*.local.yaml")
            .count()
            == 1
    );
}

#[test]
fn a_personal_default_set_when_no_profiles_directory_is_found_upwards() {
    let t = Test::new()
        .file(
            "config/bprof/profiles/mine.yaml",
            crate::harness::one_profile("  mine:\n    bastion: b\n    vm: v\n"),
        )
        .cwd("elsewhere");
    t.run_with(&["list"]).code(0).stdout_has("mine");
    // a set like any other: a file there grants nothing
    let t = t.file(
        "config/bprof/profiles/grant.yaml",
        "version: 1\nallow_programs: [touch]\n",
    );
    t.run_with(&["validate"])
        .code(65)
        .stderr_has("only your own user config file may allow programs");
    // a `profiles/` found upwards still wins
    let t = t.file(
        "elsewhere/profiles/team.yaml",
        crate::harness::one_profile("  team:\n    bastion: b\n    vm: v\n"),
    );
    let r = t.run_with(&["list"]);
    r.code(0).stdout_has("team");
    assert!(!r.stdout.contains("mine"), "{}", r.stdout);
}

/// A discovered `profiles/` that another user could have put there is refused (git's
/// `safe.directory` rule), with the way to opt in; naming it works.
#[cfg(unix)]
#[test]
fn a_discovered_directory_that_is_not_yours_alone_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new()
        .file("shared/profiles/p.yaml", set())
        .cwd("shared/work");
    let profiles = t.path().join("shared/profiles");
    // writable by others: anyone could have written its files
    std::fs::set_permissions(&profiles, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = t.run_with(&["list"]);
    r.code(77)
        .stderr_has("is writable by others")
        .stderr_has("--profiles DIR");
    assert!(r.stdout.is_empty());
    t.run_with(&["--profiles", "../profiles", "list"]).code(0);
    // under a shared sticky directory (like /tmp), one of your own is fine
    std::fs::set_permissions(&profiles, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        t.path().join("shared"),
        std::fs::Permissions::from_mode(0o1777),
    )
    .unwrap();
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    t.run_with(&["list"]).code(0);
    // owned by another user (root can make one; elsewhere the mode case above stands for it)
    if root {
        let nobody = std::ffi::CString::new(profiles.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; 65534 is `nobody`.
        assert_eq!(unsafe { libc::chown(nobody.as_ptr(), 65534, 65534) }, 0);
        t.run_with(&["list"])
            .code(77)
            .stderr_has("belongs to user 65534")
            .stderr_has("--profiles DIR");
        t.run_with(&["--profiles", "../profiles", "list"]).code(0);
    }
}
