//! Windows' RDP through the bastion's gateway, driven through the session layer on Linux: a
//! plan for Windows (the token, bprof's own `GET /api/rdpfile`, the merged file, mstsc) run
//! against the fake bastion, with a fake az and a fake mstsc that record what they were given.
//! The Windows suite (tests/windows) runs the same path in bprof.exe under Wine.

use std::path::{Path, PathBuf};

use bprof::plan::{self, Os, PlanOptions};
use bprof::process::Signals;

use crate::fake_bastion::FakeBastion;

const VM_ID: &str = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/lin";

/// A script that prints az's token answer (a token ending `SECRET-GW`, valid an hour).
const FAKE_AZ: &str = r#"#!/bin/sh
echo "$@" >> "$(dirname "$0")/az-calls"
now=$(date +%s)
printf '{"accessToken": "eyJhbGciOiJub25lIn0.e30.SECRET-GW", "expires_on": %s, "tokenType": "Bearer"}\n' $((now + 3600))
"#;

/// A fake mstsc: records its argv and a copy of the file with its mode, exits with
/// FAKE_MSTSC_EXIT (as written into the script).
fn fake_mstsc(dir: &Path, exit: i32) -> PathBuf {
    let p = dir.join("mstsc");
    let text = format!(
        "#!/bin/sh\nd='{}'\nprintf '%s\\n' \"$@\" > \"$d/mstsc-argv\"\nfor f; do :; done\ncp \"$f\" \"$d/mstsc-file\"\nstat -c %a \"$f\" > \"$d/mstsc-mode\"\nstat -c %a \"$(dirname \"$f\")\" > \"$d/mstsc-dir-mode\"\nexit {exit}\n",
        dir.display()
    );
    write_exec(&p, &text);
    p
}

fn write_exec(p: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn profile_yaml(extra: &str) -> String {
    crate::harness::one_profile(&format!(
        "  desk:\n    bastion: b\n    vm: lin\n    enable_mfa: true\n    rdp:\n      screen: window\n      width: 1280\n      height: 800\n      clipboard: false\n{extra}"
    ))
}

/// The plan of `desk` for Windows, pointed at the fake (ARM and its CA), the fake az, and
/// the fake mstsc; the .rdp directory under `dir`.
fn windows_plan(fake: &FakeBastion, dir: &Path, yaml: &str, mstsc_exit: i32) -> plan::Plan {
    let set = bprof::profile::load::load_text(
        Path::new("profiles/p.yaml"),
        "profiles/p.yaml".into(),
        yaml.into(),
    );
    let profile = bprof::profile::resolve::resolve(&set, "desk").unwrap();
    let az = dir.join("az");
    write_exec(&az, FAKE_AZ);
    let mut opts = PlanOptions::for_os(Os::Windows);
    opts.host.rdp_dir = dir.join("rdp");
    opts.host.azure = bprof::machine::Azure {
        arm_endpoint: Some(fake.arm_endpoint()),
        bundles: vec![("SSL_CERT_FILE".into(), fake.ca_file().to_path_buf())],
        az: Some(az),
        ..Default::default()
    };
    let mut plan = plan::build(&set, &profile, &opts).unwrap();
    let mstsc = fake_mstsc(dir, mstsc_exit);
    let client = plan.steps.last_mut().unwrap();
    assert_eq!(client.argv[0], "mstsc", "{:?}", client.argv);
    client.argv[0] = mstsc.display().to_string();
    plan
}

fn read_utf16(bytes: &[u8]) -> String {
    assert_eq!(&bytes[..2], &[0xFF, 0xFE], "a byte-order mark");
    let units: Vec<u16> = bytes[2..]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).unwrap()
}

#[test]
fn the_gateway_file_is_fetched_merged_private_given_to_mstsc_and_removed() {
    let fake = FakeBastion::start();
    let dir = tempfile::tempdir().unwrap();
    let plan = windows_plan(&fake, dir.path(), &profile_yaml(""), 0);
    let code = bprof::session::execute(&plan, &Signals::unraised(), true).unwrap();
    assert_eq!(code, 0);
    // the request: the bastion's host from ARM, the VM, the port, Entra, the token as a bearer
    let requests = fake.requests();
    let arm = requests
        .iter()
        .position(|r| r.path.contains("/bastionHosts/bas-1"))
        .expect("ARM's read of the bastion");
    let get = requests
        .iter()
        .position(|r| r.path.starts_with("/api/rdpfile"))
        .expect("the gateway file's request");
    assert!(arm < get, "the host comes from ARM first");
    let r = &requests[get];
    assert_eq!(r.method, "GET");
    assert_eq!(
        r.path,
        format!("/api/rdpfile?resourceId={VM_ID}&format=rdp&rdpport=3389&enablerdsaad=True")
    );
    assert_eq!(
        r.header("authorization"),
        Some("Bearer eyJhbGciOiJub25lIn0.e30.SECRET-GW")
    );
    assert_eq!(
        requests.len(),
        2,
        "ARM and the file, nothing else: {requests:#?}"
    );
    // mstsc got the file, private, in a private directory, with the gateway's connection and
    // the profile's display settings
    let argv = std::fs::read_to_string(dir.path().join("mstsc-argv")).unwrap();
    let given = PathBuf::from(argv.trim());
    assert!(given.starts_with(dir.path().join("rdp")), "{argv}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mstsc-mode"))
            .unwrap()
            .trim(),
        "600"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mstsc-dir-mode"))
            .unwrap()
            .trim(),
        "700"
    );
    let text = read_utf16(&std::fs::read(dir.path().join("mstsc-file")).unwrap());
    let token = fake
        .gateway_tokens()
        .pop()
        .expect("a gateway token handed out");
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "full address:s:lin:3389".to_string(),
        format!("gatewayhostname:s:{}", fake.host()),
        format!("gatewayaccesstoken:s:{token}"),
        "enablerdsaadauth:i:1".into(),
        "screen mode id:i:1".into(),
        "desktopwidth:i:1280".into(),
        "desktopheight:i:800".into(),
        "redirectclipboard:i:0".into(),
    ] {
        assert!(lines.contains(&want.as_str()), "{want}: {text}");
    }
    assert!(
        !text.contains("screen mode id:i:2"),
        "the profile's window wins: {text}"
    );
    assert!(text.ends_with("\r\n"), "CRLF");
    // removed when mstsc ended; nothing of the token left anywhere under the directory
    assert!(!given.exists(), "the file is removed");
    assert!(!dir.path().join("rdp").exists(), "and its directory");
    std::fs::remove_file(dir.path().join("mstsc-file")).unwrap();
    for f in crate::harness::files_under(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&token),
            "{} holds the gateway token",
            f.display()
        );
    }
}

#[test]
fn a_utf16_gateway_file_reads_and_a_failing_mstsc_still_removes_the_file() {
    let fake = FakeBastion::start();
    fake.set(|c| c.rdpfile_utf16 = true);
    let dir = tempfile::tempdir().unwrap();
    let plan = windows_plan(&fake, dir.path(), &profile_yaml(""), 3);
    let err = bprof::session::execute(&plan, &Signals::unraised(), true).unwrap_err();
    assert_eq!(err.exit_code(), 3, "mstsc's status: {err}");
    let text = read_utf16(&std::fs::read(dir.path().join("mstsc-file")).unwrap());
    assert!(text.contains("gatewayaccesstoken:s:gw-"), "{text}");
    assert!(crate::harness::files_under(&dir.path().join("rdp")).is_empty());
}

#[test]
fn hostile_gateway_answers_are_refused_before_mstsc_starts() {
    use crate::fake_bastion::{Answer, Route};
    let cases: Vec<(&str, Answer, &str)> = vec![
        (
            "a gateway elsewhere",
            Answer::Raw(
                200,
                "application/x-rdp",
                "full address:s:vm:3389\r\ngatewayhostname:s:evil.example.com\r\ngatewayaccesstoken:s:t\r\n".into(),
            ),
            "neither the bastion's host",
        ),
        (
            "not an .rdp file",
            Answer::Raw(200, "text/plain", "hello".into()),
            "not an .rdp file",
        ),
        (
            "a refusal",
            Answer::Json(403, serde_json::json!({"message": "Forbidden"})),
            "403",
        ),
        (
            "an HTML page",
            Answer::Raw(502, "text/html", "<html><title>502 Bad Gateway</title></html>".into()),
            "502 Bad Gateway",
        ),
        (
            "not text",
            Answer::Bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\xC3\x28\xFF\xFE".to_vec()),
            "neither UTF-8 nor UTF-16",
        ),
    ];
    for (what, answer, says) in cases {
        let fake = FakeBastion::start();
        fake.set(|c| {
            c.routes
                .push(Route::new("GET", "/api/rdpfile", move |_| answer.clone()));
        });
        let dir = tempfile::tempdir().unwrap();
        let plan = windows_plan(&fake, dir.path(), &profile_yaml(""), 0);
        let err = bprof::session::execute(&plan, &Signals::unraised(), true).unwrap_err();
        let shown = format!("{err} {}", err.hint().unwrap_or_default());
        assert!(shown.contains(says), "{what}: {shown}");
        assert_eq!(err.exit_code(), 69, "{what}");
        assert!(
            !dir.path().join("mstsc-argv").exists(),
            "{what}: mstsc never started"
        );
        assert!(
            crate::harness::files_under(&dir.path().join("rdp")).is_empty(),
            "{what}"
        );
    }
}

#[test]
fn a_profile_dns_name_is_the_requests_host_in_the_plan() {
    // a profile's `dns_name` must be Azure's own bastion host: the fake cannot be named so, so
    // this shows that the host is the profile's (the request goes nowhere near the fake)
    let fake = FakeBastion::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = profile_yaml("").replace(
        "    name: bas-1\n",
        "    name: bas-1\n    dns_name: bst-00000000-0000-4000-8000-000000000000.bastion.azure.com\n",
    );
    let plan = windows_plan(&fake, dir.path(), &yaml, 0);
    let json = plan.to_json().to_string();
    assert!(
        json.contains(
            "https://bst-00000000-0000-4000-8000-000000000000.bastion.azure.com/api/rdpfile?"
        ),
        "{json}"
    );
    assert!(!json.contains("SECRET"), "{json}");
}
