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
