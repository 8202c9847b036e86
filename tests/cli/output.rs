//! Output conventions: `--format` only where a command has that form, GitHub annotations for
//! `validate`, color only when asked or on a terminal.

use crate::harness::{Test, one_profile};

#[test]
fn a_command_without_a_json_form_refuses_it() {
    for args in [
        &["--format", "json", "init", "x"][..],
        &["--format", "json", "rdp", "prod-jumpbox", "-o", "-"],
        &["--format", "json", "run", "prod-jumpbox"],
        &["--format", "json", "templates", "rdp"],
        &["--format", "github", "list"],
    ] {
        let r = Test::examples().args(args).run();
        r.code(64).stderr_has("leave out --format");
        assert!(r.calls.is_empty() && r.stdout.is_empty(), "{args:?}");
    }
    Test::examples()
        .args(&["--format", "json", "run", "prod-jumpbox", "--dry-run"])
        .run()
        .code(0);
}

#[test]
fn validate_writes_github_annotations() {
    let t = Test::new().file(
        "profiles/p.yaml",
        one_profile("  p:\n    bastion: nope\n    vm: v\n    username: alice@contoso.com\n"),
    );
    let r = t.run_with(&["--format", "github", "validate"]);
    r.code(65).stdout_has(
        "::error file=profiles/p.yaml,line=20,col=14,title=bprof::bastion `nope` is not defined",
    );
    // a comma or colon in a file name is escaped in the property
    let t = Test::new().file("profiles/a,b:c.yaml", "version: 1\nbogus: 1\n");
    t.run_with(&["--format", "github", "validate"])
        .code(65)
        .stdout_has("file=profiles/a%2Cb%3Ac.yaml,line=2");
}

#[test]
fn color_only_when_asked_or_forced() {
    let bad = one_profile("  p:\n    bastion: nope\n    vm: v\n");
    let t = || Test::new().file("profiles/p.yaml", &bad);
    let plain = t().args(&["validate"]).run();
    assert!(!plain.stderr.contains('\u{1b}'), "no terminal, no color");
    let forced = t().env("CLICOLOR_FORCE", "1").args(&["validate"]).run();
    assert!(
        forced.stderr.contains("\u{1b}[1m\u{1b}[31merror"),
        "{}",
        forced.stderr
    );
    let off = t()
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .args(&["validate"])
        .run();
    assert!(!off.stderr.contains('\u{1b}'), "NO_COLOR wins");
    let never = t()
        .env("CLICOLOR_FORCE", "1")
        .args(&["--color", "never", "validate"])
        .run();
    assert!(!never.stderr.contains('\u{1b}'), "--color never wins");
    // on a terminal: color, unless TERM=dumb, CLICOLOR=0 or NO_COLOR say otherwise
    for (k, v, colored) in [
        ("TERM", "xterm-256color", true),
        ("TERM", "dumb", false),
        ("CLICOLOR", "0", false),
        ("NO_COLOR", "1", false),
    ] {
        let t = t().env("TERM", "xterm-256color").env(k, v);
        let (shown, _) = on_a_terminal(&t, "validate", &[]);
        assert!(shown.contains("error"), "{shown}");
        assert_eq!(shown.contains('\u{1b}'), colored, "{k}={v}: {shown:?}");
    }
}

#[test]
fn completions_name_commands_flags_and_the_profiles_found() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        Test::new()
            .args(&["completions", shell])
            .run()
            .code(0)
            .stdout_has("BPROF_COMPLETE");
    }
    let t = Test::examples();
    let ask = |words: &[&str]| {
        let out = t
            .command()
            .env("BPROF_COMPLETE", "fish")
            .arg("--")
            .arg("bprof")
            .args(words)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let names = ask(&["run", "prod"]);
    assert!(
        names.contains("prod-jumpbox\tProduction jump box"),
        "{names}"
    );
    assert!(!names.contains("fabrikam"), "only what matches: {names}");
    assert!(ask(&["plan", "prod-jumpbox", "--os", ""]).contains("macos"));
    assert!(ask(&["tr"]).contains("trust"));
    // per command: rdp offers rdp profiles, proxy and ssh-config the ones that reach ssh
    let rdp = ask(&["rdp", ""]);
    assert!(
        rdp.contains("prod-jumpbox")
            && !rdp.contains("prod-app-ssh")
            && !rdp.contains("prod-db-tunnel"),
        "{rdp}"
    );
    for cmd in ["proxy", "ssh-config"] {
        let ssh = ask(&[cmd, ""]);
        assert!(
            ssh.contains("prod-app-ssh") && !ssh.contains("prod-jumpbox"),
            "{cmd}: {ssh}"
        );
    }
    let all = ask(&["run", ""]);
    assert!(
        all.contains("prod-jumpbox") && all.contains("prod-app-ssh"),
        "{all}"
    );
    assert!(t.calls().is_empty(), "completing runs nothing");
}

#[test]
fn help_paths_exit_0_and_man_pages_are_one_per_command() {
    for args in [
        &["help", "--help"][..],
        &["help", "run", "-h"],
        &["run", "--help"],
        &["trust", "allow", "--help"],
    ] {
        let r = Test::new().args(args).run();
        r.code(0);
        assert!(r.stdout.contains("Usage:"), "{args:?}: {}", r.stdout);
    }
    let run_help = Test::new().args(&["run", "--help"]).run();
    run_help
        .code(0)
        .stdout_has("Global options:")
        .stdout_has("Examples:\n  bprof run prod-jumpbox\n");
    let t = Test::new();
    t.run_with(&["manpages", "man1"]).code(0);
    for page in [
        "bprof.1",
        "bprof-run.1",
        "bprof-trust-allow.1",
        "bprof-validate.1",
    ] {
        let text = std::fs::read_to_string(t.path().join("man1").join(page)).unwrap();
        assert!(text.contains(".TH"), "{page} is a man page");
    }
}

#[test]
fn editors_get_the_schema_and_a_stale_copy_is_said() {
    let t = Test::new();
    t.run_with(&["init", "--vscode"]).code(0);
    let settings = std::fs::read_to_string(t.path().join(".vscode/settings.json")).unwrap();
    assert!(
        settings.contains("\"./profiles/bprof.schema.json\""),
        "{settings}"
    );
    let example = std::fs::read_to_string(t.path().join("profiles/example.yaml")).unwrap();
    assert!(example.starts_with("# yaml-language-server: $schema=./bprof.schema.json"));
    // an existing settings file is never rewritten: what to add is said
    t.run_with(&["init", "other", "--vscode"])
        .code(0)
        .stderr_has("kept .vscode/settings.json as it is (bprof does not rewrite it); add to it:")
        .stderr_has("\"./other/bprof.schema.json\"");
    assert_eq!(
        std::fs::read_to_string(t.path().join(".vscode/settings.json")).unwrap(),
        settings
    );
    t.run_with(&["init", "--vscode"])
        .code(0)
        .stderr_has(".vscode/settings.json has it already");
    // one without a `yaml.schemas` key gets it, every other byte kept
    std::fs::write(
        t.path().join(".vscode/settings.json"),
        "{\n  \"editor.tabSize\": 2\n}\n",
    )
    .unwrap();
    t.run_with(&["init", "--vscode"])
        .code(0)
        .stderr_has("added to .vscode/settings.json");
    let added = std::fs::read_to_string(t.path().join(".vscode/settings.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&added).unwrap();
    assert_eq!(v["editor.tabSize"], 2, "{added}");
    assert_eq!(
        v["yaml.schemas"]["./profiles/bprof.schema.json"][0], "profiles/*.yaml",
        "{added}"
    );
    t.run_with(&["schema", "--check", "profiles/bprof.schema.json"])
        .code(0);
    std::fs::write(t.path().join("old.json"), "{}\n").unwrap();
    t.run_with(&["schema", "--check", "old.json"])
        .code(65)
        .stderr_has("refresh it with `bprof schema > old.json`");
    t.run_with(&["schema", "--check", "missing.json"]).code(66);
}

/// `bprof ARGS` on a terminal (a pty from util-linux `script`), typing `input` line by line.
fn on_a_terminal(t: &Test, args: &str, input: &[&str]) -> (String, Vec<Vec<String>>) {
    use std::io::Write;
    let base = t.command();
    let mut cmd = std::process::Command::new("script");
    cmd.args([
        "-qec",
        &format!("{} {args}", crate::harness::BIN),
        "/dev/null",
    ])
    .current_dir(base.get_current_dir().unwrap_or(t.path()))
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut child = cmd.spawn().expect("script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    for line in input {
        std::thread::sleep(std::time::Duration::from_millis(400));
        let _ = writeln!(stdin, "{line}");
    }
    std::thread::sleep(std::time::Duration::from_millis(800));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).replace('\r', ""),
        t.calls(),
    )
}

#[test]
fn run_without_a_profile_picks_one_on_a_terminal_only() {
    Test::examples()
        .args(&["run"])
        .run()
        .code(64)
        .stderr_has("name a profile");
    let t = Test::examples().signed_in_all();
    // declined: the plan is shown, nothing runs
    let (screen, calls) = on_a_terminal(&t, "run", &["app-ssh", "1", "n"]);
    assert!(screen.contains("prod-app-ssh"), "{screen}");
    assert!(
        screen.contains("az ssh cert"),
        "the plan is shown: {screen}"
    );
    assert!(calls.is_empty(), "{calls:?}");
    // accepted: the chosen profile runs
    let (screen, calls) = on_a_terminal(&t, "run", &["app-ssh", "1", "y"]);
    assert_eq!(calls.len(), 1, "{screen}");
    // Entra: the certificate first (the fake az here has no CA to sign with: the run ends there)
    assert_eq!(&calls[0][..2], ["ssh", "cert"]);
}

#[test]
fn the_version_names_the_commit_when_built_from_git() {
    let r = Test::new().args(&["--version"]).run();
    r.code(0);
    let v = r.stdout.trim();
    let commit = v
        .strip_prefix(&format!("bprof {} (commit ", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{v}"));
    assert!(
        commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{v}"
    );
}
