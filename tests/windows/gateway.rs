//! Windows' RDP through the bastion's gateway in bprof.exe: the token from az.cmd, bprof's own
//! `GET /api/rdpfile` to the fake bastion (rustls, the test CA), the merged file handed to
//! mstsc (a fake that records it), removed afterwards; the gateway token never printed.

use std::path::{Path, PathBuf};

use crate::fake_bastion::FakeBastion;
use crate::{WinTest, win};

fn set(fake: &FakeBastion) -> WinTest {
    let yaml = crate::harness::one_profile(
        "  desk:\n    bastion: b\n    vm: v\n    enable_mfa: true\n    rdp:\n      screen: window\n      width: 1280\n      clipboard: false\n",
    );
    WinTest::empty()
        .file("profiles/p.yaml", yaml)
        .env("BPROF_ARM_ENDPOINT", &fake.arm_endpoint())
        .env("SSL_CERT_FILE", &win(fake.ca_file()))
}

/// A Windows path as this machine sees it: `Z:\` is `/`, `C:\` the prefix's drive_c.
fn linux_path(p: &str) -> PathBuf {
    let rest = p.get(3..).unwrap_or_default().replace('\\', "/");
    match p.get(..3).map(str::to_ascii_uppercase).as_deref() {
        Some("Z:\\") => Path::new("/").join(rest),
        Some("C:\\") => crate::needed("WINEPREFIX").join("drive_c").join(rest),
        _ => panic!("not a drive path: {p}"),
    }
}

fn utf16(bytes: &[u8]) -> String {
    assert_eq!(bytes.get(..2), Some(&[0xFF, 0xFE][..]), "a byte-order mark");
    let units: Vec<u16> = bytes[2..]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).expect("UTF-16")
}

#[test]
fn mstsc_opens_the_gateway_file_bprof_fetched_and_it_is_gone_afterwards() {
    let fake = FakeBastion::start();
    fake.set(|c| c.rdpfile_utf16 = true);
    let t = set(&fake);
    let r = t.run(&["run", "desk"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // one az process (the token), then bprof's own requests: ARM's read and the file
    assert_eq!(r.calls.len(), 1, "{:?}", r.calls);
    assert_eq!(r.calls[0][..2], ["account", "get-access-token"]);
    let requests = fake.requests();
    let get = requests
        .iter()
        .find(|q| q.path.starts_with("/api/rdpfile"))
        .unwrap_or_else(|| panic!("no gateway request: {requests:#?}"));
    assert!(
        get.path
            .ends_with("&format=rdp&rdpport=3389&enablerdsaad=True"),
        "{}",
        get.path
    );
    assert!(
        get.header("authorization")
            .is_some_and(|a| a.starts_with("Bearer eyJ")),
        "the token as a bearer"
    );
    // mstsc got one argument, the file, with the gateway's connection and the profile's display
    let argv = std::fs::read_to_string(t.path().join("mstsc-argv")).expect("mstsc ran");
    let args: Vec<&str> = argv.lines().collect();
    assert_eq!(args.len(), 1, "{args:?}");
    assert!(args[0].to_ascii_lowercase().ends_with(".rdp"), "{args:?}");
    let text = utf16(&std::fs::read(t.path().join("mstsc-file")).expect("the copy"));
    let token = fake.gateway_tokens().pop().expect("a gateway token");
    for want in [
        format!("gatewayaccesstoken:s:{token}"),
        format!("gatewayhostname:s:{}", fake.host()),
        "full address:s:vm-1:3389".into(),
        "enablerdsaadauth:i:1".into(),
        "screen mode id:i:1".into(),
        "desktopwidth:i:1280".into(),
        "redirectclipboard:i:0".into(),
    ] {
        assert!(text.lines().any(|l| l == want), "{want}: {text}");
    }
    // removed when mstsc exited; the token on no output and in no file but the fake's copy
    let file = linux_path(args[0]);
    assert!(!file.exists(), "{} is still there", file.display());
    assert!(!r.stdout.contains(&token) && !r.stderr.contains(&token));
    assert!(!r.stderr.contains("SECRET"), "{}", r.stderr);
    std::fs::remove_file(t.path().join("mstsc-file")).expect("remove the copy");
    for e in crate::harness::files_under(t.path()) {
        let bytes = std::fs::read(&e).unwrap_or_default();
        let wide: Vec<u8> = token.bytes().flat_map(|b| [b, 0]).collect();
        assert!(
            !contains(&bytes, token.as_bytes()) && !contains(&bytes, &wide),
            "{} holds the gateway token",
            e.display()
        );
    }
}

#[test]
fn configure_is_mstsc_edit_and_mstscs_status_is_bprofs() {
    let fake = FakeBastion::start();
    let t = set(&fake).env("FAKE_MSTSC_EXIT", "5");
    let r = t.run(&["run", "desk", "--configure"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    let argv = std::fs::read_to_string(t.path().join("mstsc-argv")).expect("mstsc ran");
    let args: Vec<&str> = argv.lines().collect();
    assert_eq!(args.len(), 2, "{args:?}");
    assert_eq!(args[0], "/edit");
    assert!(!linux_path(args[1]).exists(), "removed after a failure too");
}

#[test]
fn ending_bprof_ends_mstsc_and_no_gateway_file_outlives_the_next_run() {
    let fake = FakeBastion::start();
    for (sig, code) in [("-INT", Some(130)), ("-KILL", None)] {
        let t = set(&fake).env("FAKE_MSTSC_SLEEP", "120");
        let mut cmd = t.command(&["run", "desk"]);
        let (_, err) = t.outputs(&mut cmd);
        let mut child = cmd.spawn().expect("start bprof.exe");
        crate::run::wait_for("mstsc has the file", || {
            let ended = child.try_wait().ok().flatten();
            assert!(
                ended.is_none(),
                "bprof.exe ended: {ended:?}: {}",
                crate::read(&err)
            );
            t.path().join("mstsc-file").exists()
        });
        let argv = std::fs::read_to_string(t.path().join("mstsc-argv")).expect("argv");
        let file = linux_path(argv.trim());
        assert!(file.exists(), "the file lives while mstsc runs");
        std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .expect("kill");
        let status = child.wait().expect("wait");
        if code.is_some() {
            assert_eq!(status.code(), code, "{sig}: {}", crate::read(&err));
        }
        crate::run::wait_for("mstsc is gone (its job closed)", || {
            crate::running("mstsc.exe", &t).is_empty()
        });
        if code.is_some() {
            assert!(!file.exists(), "{sig}: the guard removed it");
        } else {
            // a killed bprof runs no guard: the next run, finding its process gone and the
            // file older than a minute, removes it
            assert!(file.exists(), "{sig}: nothing could remove it");
            let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
            std::fs::File::options()
                .write(true)
                .open(&file)
                .and_then(|f| f.set_modified(an_hour_ago))
                .expect("age the file");
            let next = set(&fake).run(&["run", "desk"]);
            assert_eq!(next.code, 0, "{}", next.stderr);
            assert!(!file.exists(), "the next run swept it");
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
