//! What a newcomer trips over in the first hour: each case as a new user meets it.

use crate::harness::{Test, one_profile};

fn rdp_set() -> String {
    one_profile("  p:\n    bastion: b\n    vm: v\n    local_port: 50321\n")
}

#[test]
fn an_rdp_file_names_azs_tunnel_for_teammates_without_bprof_on_either_engine() {
    for engine in ["native", "az"] {
        let t = Test::new()
            .file("profiles/p.yaml", rdp_set())
            .env("BPROF_TUNNEL_ENGINE", engine);
        let r = t.run_with(&["rdp", "p", "-o", "p.rdp"]);
        r.code(0)
            .stderr_has("open its tunnel first: bprof run p --tunnel-only")
            .stderr_has("(or, without bprof: az network bastion tunnel ")
            .stderr_has("--port 50321");
        assert!(
            !r.stderr.contains("without bprof: )"),
            "{engine}: {}",
            r.stderr
        );
    }
}

#[test]
fn an_unknown_template_is_missing_input_like_an_unknown_profile() {
    let t = Test::new().file("profiles/p.yaml", rdp_set());
    t.run_with(&["templates", "nope"])
        .code(66)
        .stderr_has("no template `nope`; the templates are rdp, ssh, tunnel");
    t.run_with(&["show", "nope"]).code(66);
}

#[test]
fn the_plan_says_why_the_default_subscription_is_restored_once() {
    let other = "99999999-9999-9999-9999-999999999999";
    let t = Test::new().file("profiles/p.yaml", rdp_set()).file(
        "azure/azureProfile.json",
        format!(
            r#"{{"subscriptions": [{{"id": "{other}", "tenantId": "x", "isDefault": true}}]}}"#
        ),
    );
    let r = t.run_with(&["plan", "p", "--os", "windows"]);
    r.code(0).stdout_has("az account set --subscription");
    assert_eq!(
        r.stdout
            .matches("changed your default subscription")
            .count(),
        1,
        "{}",
        r.stdout
    );
}

#[test]
fn the_persons_own_files_read_as_home_relative_and_v_says_which_files_and_why() {
    let t = Test::new()
        .file("work/profiles/p.yaml", rdp_set())
        .file("home/.config/bprof/local.yaml", "version: 1\nbogus: 1\n")
        .cwd("work/sub");
    let home_config = t.path().join("home/.config");
    let t = t.env("XDG_CONFIG_HOME", home_config.to_str().unwrap());
    let r = t.run_with(&["validate"]);
    r.code(65).stderr_has(&format!(
        "~{}.config/bprof/local.yaml:2",
        std::path::MAIN_SEPARATOR
    ));
    assert!(!r.stderr.contains("../home"), "{}", r.stderr);
    t.run_with(&["-v", "list"])
        .stderr_has("bprof: profile files (the nearest profiles/ directory upwards from ")
        .stderr_has("../profiles/p.yaml (shared)")
        .stderr_has("~/.config/bprof/local.yaml (your config)");
    t.run_with(&["-v", "--profiles", "../profiles", "list"])
        .stderr_has("bprof: profile files (named by --profiles):");
}

#[test]
fn no_az_is_one_hint_wherever_it_is_missed() {
    const HINT: &str = "install the Azure CLI (https://learn.microsoft.com/cli/azure/install-azure-cli), or set BPROF_AZ to its path";
    let ssh = one_profile(
        "  s:\n    bastion: b\n    vm: lin\n    mode: ssh\n    auth_type: ssh-key\n    username: u\n    ssh_key: /k\n",
    );
    let t = Test::new().file("profiles/p.yaml", ssh).no_az();
    t.run_with(&["run", "s"]).code(69).stderr_has(HINT);
    t.run_with(&["import", "--dry-run"])
        .code(69)
        .stderr_has(HINT);
    // proxy: no az is said as that, not as a sign-in to do
    let r = t.run_with(&["proxy", "s"]);
    r.code(69).stderr_has(HINT);
    assert!(!r.stderr.contains("az login"), "{}", r.stderr);
    t.run_with(&["doctor"]).code(1).stdout_has(HINT);
}

#[test]
fn a_misindented_field_and_a_mistyped_required_key_lead_with_their_likely_cause() {
    let too_little = one_profile("  p:\n    bastion: b\n    vm: v\n  enable_mfa: true\n");
    let t = Test::new().file("profiles/p.yaml", too_little);
    let r = t.run_with(&["validate"]);
    r.code(65)
        .stderr_has(
            "error: `enable_mfa` is a field of a profile, not a profile: it is indented too little",
        )
        .stderr_has(
            "help: indent `enable_mfa:` to line up with the fields of profile `p` (line 19)",
        )
        .stderr_has("1 problem in 1 file");
    assert!(!r.stderr.contains("has no `bastion`"), "{}", r.stderr);
    let beside = one_profile(
        "  p:\n    bastion: b\n    vm: v\n    rdp:\n      height: 900\n    width: 1200\n",
    );
    let t = Test::new().file("profiles/p.yaml", beside);
    t.run_with(&["validate"])
        .code(65)
        .stderr_has("help: `width` is a field of `rdp`: indent it under `rdp:` (line 22)");
    let typo = one_profile("  p:\n    bastion: b\n    vm: v\n")
        .replace("    resource_group: rg-net\n", "    resource_grp: rg-net\n");
    let t = Test::new().file("profiles/p.yaml", typo);
    let r = t.run_with(&["validate"]);
    r.code(65)
        .stderr_has("error: unknown key `resource_grp` in bastion `b`")
        .stderr_has("did you mean `resource_group`? (bastion `b` has no `resource_group`, which is required)");
    assert!(!r.stderr.contains("which is required\n"), "{}", r.stderr);
}

#[test]
fn each_commands_help_shows_its_own_options_and_the_globals_once() {
    let own = Test::new().args(&["run", "--help"]).run();
    own.code(0)
        .stdout_has("--dry-run")
        .stdout_has("Global options: --profiles PATH, --format FORMAT, --color WHEN, -v, -q");
    assert!(!own.stdout.contains("--color <"), "{}", own.stdout);
    let top = Test::new().args(&["--help"]).run();
    top.code(0)
        .stdout_has("--color <COLOR>")
        .stdout_has("Environment:")
        .stdout_has("Exit status:");
    // still accepted after the command
    Test::examples()
        .args(&["list", "--format", "json"])
        .run()
        .code(0);
}

#[test]
fn man_pages_have_examples_environment_exit_status_and_a_synopsis_with_values() {
    let t = Test::new();
    t.run_with(&["manpages", "man1"]).code(0);
    let page = |n: &str| std::fs::read_to_string(t.path().join("man1").join(n)).unwrap();
    let run = page("bprof-run.1");
    for section in [
        ".SH EXAMPLES",
        ".SH ENVIRONMENT",
        ".SH EXIT STATUS",
        ".SH SYNOPSIS",
    ] {
        assert!(run.contains(section), "{section}");
    }
    assert!(!run.contains(".SH EXTRA"), "{run}");
    assert!(
        !run.contains("\\-\\-color <"),
        "the global options are bprof(1)'s: {run}"
    );
    let top = page("bprof.1");
    assert!(top.contains("[\\-\\-profiles PATH]"), "{top}");
    assert!(top.contains("\\-\\-color"), "{top}");
}
