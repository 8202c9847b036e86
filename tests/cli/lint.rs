//! Lints in `validate`: warnings (exit 0), errors with `--strict`; the bundled examples are
//! clean under `--strict`.

use crate::harness::{Test, one_profile};

fn warned(yaml: &str, needle: &str) {
    let t = Test::new().file("profiles/p.yaml", yaml);
    let r = t.run_with(&["validate", "--format", "json"]);
    r.code(0);
    let problems = r.json()["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        problems
            .iter()
            .any(|p| p["severity"] == "warning"
                && p["message"].as_str().unwrap_or("").contains(needle)),
        "no warning {needle:?}: {problems:?}"
    );
    t.run_with(&["validate", "--strict"])
        .code(65)
        .stderr_has(needle);
}

#[test]
fn lints_warn_and_fail_only_with_strict() {
    warned(
        &one_profile("  p:\n    bastion: b\n    vm: v\n    username: alice@contoso.com\n"),
        "The login attempt failed",
    );
    warned(
        &one_profile(
            "  p:\n    bastion: b\n    vm: v\n    enable_mfa: true\n    username: alice@contoso.com\n",
        ),
        "every teammate would sign in as this person",
    );
    warned(
        &one_profile(
            "  p:\n    bastion: b\n    vm: v\n    enable_mfa: true\n    disable_gateway: true\n",
        ),
        "`enable_mfa` does nothing with `disable_gateway`",
    );
    warned(
        &(one_profile("  p:\n    bastion: b\n    vm: v\n") + "defaults:\n  configure: true\n"),
        "every connection would open the RDP client's settings",
    );
    warned(
        &one_profile("  p:\n    bastion: b\n    vm: lin\n"),
        "declared `os: linux`",
    );
}

#[test]
fn a_personal_user_name_is_not_a_lint_and_the_examples_are_clean() {
    let t = Test::new()
        .file(
            "profiles/p.yaml",
            one_profile("  p:\n    bastion: b\n    vm: v\n    enable_mfa: true\n"),
        )
        .file(
            "profiles/me.local.yaml",
            "version: 1\nprofiles:\n  p:\n    username: alice@contoso.com\n",
        );
    t.run_with(&["validate", "--strict"]).code(0);
    Test::examples()
        .args(&["validate", "--strict"])
        .run()
        .code(0);
}
