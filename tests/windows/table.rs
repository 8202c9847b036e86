//! What every Windows user runs first, on the bundled examples: validate, list, plan, show,
//! the .rdp file as mstsc reads it, and trust in %APPDATA%.

use crate::WinTest;

#[test]
fn validate_list_plan_and_show_read_the_examples() {
    let t = WinTest::examples();
    t.run(&["validate"]).code(0).stderr_has("3 files valid");
    t.run(&["list"])
        .code(0)
        .stdout_has("prod-jumpbox")
        .stdout_has("fabrikam-web-ssh");
    // the plan for Windows, in PowerShell's quoting, with Windows paths in its notes
    t.run(&["plan", "prod-jumpbox"])
        .code(0)
        .stdout_has("on windows (PowerShell)")
        .stdout_has("profiles\\contoso.yaml")
        .stdout_has("# gateway-file: GET https://<the bastion's dnsName from ARM>/api/rdpfile?resourceId=/subscriptions/")
        .stdout_has("\nmstsc C:\\");
    let json = t.run(&["plan", "prod-db-tunnel", "--format", "json"]);
    json.code(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan JSON");
    assert_eq!(v["steps"][0]["argv"][1], "account", "{v}");
    assert_eq!(v["steps"][1]["name"], "tunnel", "{v}");
    t.run(&["show", "prod-jumpbox"])
        .code(0)
        .stdout_has("vm-jumpbox-01");
    // a broken file names the file, the line and the field, with Windows' separator
    let bad = WinTest::empty().file(
        "profiles/p.yaml",
        "version: 1\nprofiles:\n  x:\n    vm: nowhere\n    mode: rdpp\n",
    );
    bad.run(&["validate"])
        .code(65)
        .stderr_has("profiles\\p.yaml:5");
}

#[test]
fn the_rdp_file_is_utf16le_with_a_bom_and_crlf() {
    let t = WinTest::examples();
    t.run(&["rdp", "prod-jumpbox", "-o", "jump.rdp"]).code(0);
    let bytes = std::fs::read(t.path().join("jump.rdp")).expect("jump.rdp");
    assert_eq!(bytes[..2], [0xff, 0xfe], "a UTF-16LE byte order mark");
    let units: Vec<u16> = bytes[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]))
        .collect();
    let text = String::from_utf16(&units).expect("UTF-16");
    assert!(text.contains("full address:s:"), "{text}");
    assert!(text.contains("smart sizing:i:1"), "{text}");
    assert!(
        text.ends_with("\r\n") && text.split('\n').all(|l| l.is_empty() || l.ends_with('\r')),
        "every line ends in CRLF: {text:?}"
    );
}

#[test]
fn trust_allow_list_and_revoke_live_in_appdata() {
    let t = WinTest::examples().file(
        "profiles/zz.local.yaml",
        "version: 1\nprofiles:\n  extra:\n    vm: jumpbox\n    mode: rdp\n    extra_args: ['--debug']\n    tunnel_engine: az\n",
    );
    // Wine sets %APPDATA% from its prefix whatever the environment says; this is the one test
    // that writes there, and it leaves it as it found it
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let appdata = crate::needed("WINEPREFIX").join(format!("drive_c/users/{user}/AppData/Roaming"));
    let _ = std::fs::remove_dir_all(appdata.join("bprof"));
    t.run(&["plan", "extra"])
        .code(77)
        .stderr_has("bprof trust allow extra");
    t.run(&["trust", "allow", "extra", "--yes"]).code(0);
    let trust = appdata.join("bprof").join("trust.json");
    let recorded = std::fs::read_to_string(&trust).expect("trust.json in %APPDATA%\\bprof");
    assert!(recorded.contains("extra_args"), "{recorded}");
    t.run(&["plan", "extra"]).code(0).stdout_has("--debug");
    t.run(&["trust", "list"])
        .code(0)
        .stdout_has("approved")
        .stdout_has("profiles.extra.extra_args");
    t.run(&["trust", "revoke", "extra"]).code(0);
    t.run(&["plan", "extra"]).code(77);
    std::fs::remove_dir_all(appdata.join("bprof")).expect("clean %APPDATA%\\bprof");
}
