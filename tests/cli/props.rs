//! Property: any string in a field that reaches an argv or an .rdp file either becomes exactly
//! one argv element (or one .rdp value) and never adds a line, or is refused as invalid data
//! (exit 65). Run in-process through the library, on files written to a temp directory.

use bprof::plan::{self, Os, PlanError, PlanOptions, StepKind};
use bprof::profile::load::{self, Sources};
use bprof::profile::resolve::{self, ResolveError};
use proptest::prelude::*;

use crate::harness::one_profile;

/// What became of one value.
enum Outcome {
    /// Refused as invalid data (exit 65).
    Refused,
    /// The plan's steps and the .rdp lines it would write.
    Planned {
        argvs: Vec<Vec<String>>,
        rdp: Vec<String>,
    },
}

fn plan_of(profile_yaml: &str) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("p.yaml"), one_profile(profile_yaml)).expect("write");
    let src = Sources {
        paths: vec![dir.path().to_path_buf()],
        cwd: dir.path().to_path_buf(),
        ..Default::default()
    };
    let set = match load::load(&src) {
        Ok(s) => s,
        Err(e) => panic!("not a data error: {e}"),
    };
    // a problem of the file is a refusal (`validate` exits 65 on it)
    if set.problems.iter().any(|p| p.is_error()) {
        return Outcome::Refused;
    }
    let p = match resolve::resolve(&set, "p") {
        Ok(p) => p,
        Err(ResolveError::Invalid { .. } | ResolveError::Unusable { .. }) => {
            return Outcome::Refused;
        }
        Err(e) => panic!("not a data error: {e}"),
    };
    match plan::build(&set, &p, &PlanOptions::for_os(Os::Linux)) {
        Ok(plan) => Outcome::Planned {
            argvs: plan.steps.iter().map(|s| s.argv.clone()).collect(),
            rdp: plan
                .steps
                .iter()
                .find_map(|s| match &s.kind {
                    StepKind::WriteRdp { lines, .. } => Some(lines.clone()),
                    _ => None,
                })
                .unwrap_or_default(),
        },
        Err(
            PlanError::Invalid { .. }
            | PlanError::Template(_)
            | PlanError::Native { .. }
            | PlanError::Developer { .. },
        ) => Outcome::Refused,
        Err(e @ PlanError::Consent { .. }) => panic!("a plain value asked for consent: {e}"),
    }
}

/// Strings people and attackers write: any Unicode, and the characters that matter here.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-a-zA-Z0-9:=@./\\\\ \"'$;&|%^()!<>`\t\r\n\u{0}\u{1b}\u{7f}\u{85}\u{202e}]{0,16}",
    ]
}

fn q(s: &str) -> String {
    // a JSON string is a YAML double-quoted scalar
    serde_json::to_string(s).unwrap_or_default()
}

/// The .rdp file of a profile with no value under test has this many lines.
fn baseline_lines() -> usize {
    match plan_of("  p:\n    bastion: b\n    vm: v\n    client: xfreerdp\n    username: x\n") {
        Outcome::Planned { rdp, .. } => rdp.len(),
        Outcome::Refused => panic!("the baseline profile is valid"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn an_rdp_user_name_is_one_line_or_refused(s in value()) {
        let yaml = format!("  p:\n    bastion: b\n    vm: v\n    client: xfreerdp\n    username: {}\n", q(&s));
        if let Outcome::Planned { rdp, .. } = plan_of(&yaml) {
            prop_assert_eq!(rdp.len(), baseline_lines());
            prop_assert_eq!(rdp.iter().filter(|l| **l == format!("username:s:{s}")).count(), 1);
            let bytes = bprof::plan::rdp::encode(&rdp);
            let units: Vec<u16> = bytes[2..].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            let text = String::from_utf16_lossy(&units);
            prop_assert_eq!(text.split("\r\n").count(), rdp.len() + 1);
            prop_assert_eq!(text.matches('\n').count(), rdp.len());
        }
    }

    #[test]
    fn an_rdp_property_value_is_one_line_or_refused(s in value()) {
        let yaml = format!("  p:\n    bastion: b\n    vm: v\n    client: xfreerdp\n    username: x\n    rdp:\n      properties: {{\"selectedmonitors:s\": {}}}\n", q(&s));
        if let Outcome::Planned { rdp, .. } = plan_of(&yaml) {
            prop_assert_eq!(rdp.len(), baseline_lines() + 1);
            prop_assert!(rdp.iter().all(|l| !l.contains(['\r', '\n'])));
        }
    }

    #[test]
    fn an_ssh_user_name_and_key_are_one_argument_each_or_refused(s in value(), k in value()) {
        let yaml = format!(
            "  p:\n    bastion: b\n    vm: v\n    mode: ssh\n    auth_type: ssh-key\n    username: {}\n    ssh_key: {}\n",
            q(&s), q(&k)
        );
        if let Outcome::Planned { argvs, .. } = plan_of(&yaml) {
            // OpenSSH through the native engine: `ssh -o ProxyCommand=.. -o HostKeyAlias=..
            // -l USER -i KEY p.bprof`
            let argv = argvs.last().cloned().unwrap_or_default();
            let user = argv.iter().position(|a| a == "-l").map(|i| argv[i + 1].clone());
            prop_assert_eq!(user.as_deref(), Some(s.as_str()));
            prop_assert!(!s.starts_with('-'), "a value that reads as an option passed");
            prop_assert!(!k.starts_with('-'), "a value that reads as an option passed");
            let key = argv.iter().position(|a| a == "-i").map(|i| argv[i + 1].clone());
            prop_assert!(key.is_some());
            prop_assert_eq!(argv.len(), 10, "{:?}", argv);
            prop_assert_eq!(argv.last().map(String::as_str), Some("p.bprof"));
        }
    }

    #[test]
    fn a_description_with_a_control_character_is_refused(s in value()) {
        let yaml = format!("  p:\n    bastion: b\n    vm: v\n    description: {}\n", q(&s));
        if let Outcome::Planned { .. } = plan_of(&yaml) {
            prop_assert!(bprof::profile::allow::control_char(&s).is_none());
        }
    }
}

/// A gateway file as the network might send it: real properties, hostile ones, and junk.
fn gateway_file() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        value().prop_map(|v| format!("full address:s:{v}")),
        value().prop_map(|v| format!("gatewayhostname:s:{v}")),
        Just("gatewayhostname:s:gw.bastion.azure.com:443".to_string()),
        value().prop_map(|v| format!("gatewayaccesstoken:s:{v}")),
        value().prop_map(|v| format!("alternate shell:s:{v}")),
        value().prop_map(|v| format!("drivestoredirect:s:{v}")),
        value().prop_map(|v| format!("{v}:i:1")),
        value(),
    ];
    proptest::collection::vec(line, 0..12).prop_map(|l| l.join("\r\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Whatever the gateway sends: no panic; what is written has no control character, one
    /// address, a gateway under the bastion's domain, and no redirection turned on.
    #[test]
    fn a_gateway_file_from_the_network_is_merged_safely_or_refused(file in gateway_file(), settings in proptest::collection::vec(value(), 0..4)) {
        let host = "bst-0b6c3c6e-0000-4000-8000-000000000001.bastion.azure.com";
        let settings: Vec<String> = settings.into_iter().map(|s| format!("winposstr:s:{s}")).collect();
        if let Ok(m) = bprof::plan::gateway::merge(&file, &settings, host) {
            let key = |l: &str| bprof::profile::allow::rdp_key(l.splitn(3, ':').take(2).collect::<Vec<_>>().join(":").as_str());
            for l in &m.lines {
                prop_assert!(!l.chars().any(|c| c.is_control() && c != '\t') || settings.contains(l), "{:?}", l);
                prop_assert!(!key(l).starts_with("alternate shell"), "{:?}", l);
                if key(l) == "drivestoredirect:s" {
                    prop_assert!(matches!(l.splitn(3, ':').nth(2).map(str::trim), Some("" | "0")), "turned on: {:?}", l);
                }
            }
            prop_assert_eq!(m.lines.iter().filter(|l| key(l) == "full address:s").count(), 1);
            for g in m.lines.iter().filter(|l| key(l) == "gatewayhostname:s") {
                let v = g.splitn(3, ':').nth(2).unwrap_or("");
                let h = v.split(':').next().unwrap_or("").to_ascii_lowercase();
                prop_assert!(h.ends_with(".bastion.azure.com"), "{:?}", g);
            }
            prop_assert!(m.left_out.iter().all(|l| !l.chars().any(char::is_control)));
        }
    }
}
