//! Property: any YAML-ish document assembled from profile-shaped fragments (the schema's field
//! names, scalars of every kind with control characters, tabs and odd numbers, deep nesting)
//! goes through load, validate and plan for every OS without a panic, and ends in a loaded set
//! or a list of problems. In-process, through the fuzz targets' pipeline (`fuzz/src/lib.rs`).

use proptest::prelude::*;

use crate::fuzz_pipeline::{self, Outcome};

/// A YAML node, written in block style or (`flow`) in flow style.
#[derive(Debug, Clone)]
enum Node {
    Scalar(String),
    Map {
        flow: bool,
        entries: Vec<(String, Node)>,
    },
    List {
        flow: bool,
        items: Vec<Node>,
    },
}

const FIELDS: &[&str] = &[
    "version",
    "tenants",
    "bastions",
    "vms",
    "profiles",
    "defaults",
    "templates",
    "allow_programs",
    "id",
    "subscription",
    "description",
    "login",
    "tenant",
    "resource_group",
    "name",
    "sku",
    "ip_connect",
    "resource_id",
    "ip",
    "os",
    "computer_name",
    "bastion",
    "vm",
    "extends",
    "mode",
    "enable_mfa",
    "configure",
    "disable_gateway",
    "auth_type",
    "username",
    "ssh_key",
    "resource_port",
    "local_port",
    "timeout",
    "ssh_args",
    "extra_args",
    "client",
    "template",
    "rdp",
    "screen",
    "width",
    "height",
    "multimon",
    "clipboard",
    "drives",
    "audio",
    "properties",
    "t",
    "b",
    "v",
    "p",
    "q",
    "hub",
    "\"smart sizing:i\"",
    "\"selectedmonitors:s\"",
    "<<",
];

const WORDS: &[&str] = &[
    "1",
    "0",
    "-1",
    "65536",
    "3389",
    "22",
    "99999999999999999999",
    "1e400",
    "0x10",
    "0o7",
    "3.5",
    ".inf",
    "true",
    "false",
    "yes",
    "null",
    "~",
    "auto",
    "rdp",
    "ssh",
    "tunnel",
    "aad",
    "password",
    "ssh-key",
    "windows",
    "linux",
    "standard",
    "basic",
    "premium",
    "developer",
    "fullscreen",
    "window",
    "local",
    "remote",
    "none",
    "xfreerdp",
    "mstsc",
    "open",
    "t",
    "b",
    "v",
    "p",
    "q",
    "hub",
    "11111111-1111-1111-1111-111111111111",
    "22222222-2222-2222-2222-222222222222",
    "10.0.0.4",
    "::1",
    "rg-net",
    "bas-1",
    "--debug",
    "-oProxyCommand=sh",
    "-L",
    "8080:localhost:80",
    "\"{{bastion.name}}\"",
    "\"{{...extra_args}}\"",
    "\"{{#if vm.ip}}x{{/if}}\"",
    "\"{{> p}}\"",
    "&a x",
    "*a",
    "!!str 1",
    "|",
    ">-",
    "'q''s'",
    "\"\"",
    "[]",
    "{}",
    "\"a\\tb\"",
    "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/x",
];

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(str::to_string),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|n| n.to_string()),
        2 => "[a-z0-9._ -]{0,12}",
        // quoted: any character, control characters and tabs included
        2 => "[a-z\t\r\n\u{0}\u{7}\u{1b}\u{7f}\u{85}\u{202e}\u{feff} {}#:-]{0,10}"
            .prop_map(|s| serde_json::to_string(&s).unwrap()),
        1 => "[\t a-z:#-]{0,6}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(FIELDS).prop_map(str::to_string),
        1 => "[a-z0-9._-]{1,8}",
        1 => scalar(),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    scalar()
        .prop_map(Node::Scalar)
        .prop_recursive(40, 200, 5, |inner| {
            prop_oneof![
                (
                    any::<bool>(),
                    prop::collection::vec((key(), inner.clone()), 0..5)
                )
                    .prop_map(|(flow, entries)| Node::Map { flow, entries }),
                (any::<bool>(), prop::collection::vec(inner, 0..5))
                    .prop_map(|(flow, items)| Node::List { flow, items }),
            ]
        })
}

fn flow(n: &Node, out: &mut String) {
    match n {
        Node::Scalar(s) => out.push_str(s),
        Node::Map { entries, .. } => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                flow(v, out);
            }
            out.push('}');
        }
        Node::List { items, .. } => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(v, out);
            }
            out.push(']');
        }
    }
}

/// The entries of a block mapping (or the items of a block list) at `indent`.
fn block(n: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match n {
        Node::Map {
            flow: false,
            entries,
        } if !entries.is_empty() => {
            for (k, v) in entries {
                out.push_str(&format!("{pad}{k}:"));
                value(v, indent + 2, out);
            }
        }
        Node::List { flow: false, items } if !items.is_empty() => {
            for v in items {
                out.push_str(&format!("{pad}-"));
                value(v, indent + 2, out);
            }
        }
        other => {
            out.push_str(&pad);
            flow(other, out);
            out.push('\n');
        }
    }
}

/// A value after `key:` or `-`: on the same line (scalars, flow), or below it.
fn value(v: &Node, indent: usize, out: &mut String) {
    match v {
        Node::Map {
            flow: false,
            entries,
        } if !entries.is_empty() => {
            out.push('\n');
            block(v, indent, out);
        }
        Node::List { flow: false, items } if !items.is_empty() => {
            out.push('\n');
            block(v, indent, out);
        }
        other => {
            out.push(' ');
            flow(other, out);
            out.push('\n');
        }
    }
}

/// Profile fields with values that are often valid, so that plans get built too.
const PROFILE_FIELDS: &[(&str, &[&str])] = &[
    ("mode", &["rdp", "ssh", "tunnel", "Rdp"]),
    ("enable_mfa", &["true", "false", "yes"]),
    ("configure", &["true", "false"]),
    ("disable_gateway", &["true", "false"]),
    ("auth_type", &["aad", "password", "ssh-key"]),
    ("username", &["alice", "-x", "\"a b\"", "\"a\\u001bb\""]),
    ("ssh_key", &["~/.ssh/id", "\"C:\\\\k\""]),
    ("resource_port", &["22", "3389", "5432", "0", "70000"]),
    ("local_port", &["auto", "15432", "80", "0"]),
    ("timeout", &["3600", "-1"]),
    (
        "ssh_args",
        &[
            "[-N]",
            "[-L, \"8080:localhost:80\"]",
            "[-oProxyCommand=x]",
            "[]",
        ],
    ),
    (
        "extra_args",
        &["[--only-show-errors]", "[--debug]", "[-o, json]"],
    ),
    (
        "client",
        &["auto", "xfreerdp", "mstsc", "none", "open", "remmina"],
    ),
    ("description", &["hi", "\"a\\tb\"", "\"\\u202e\""]),
    (
        "rdp",
        &[
            "{screen: window, width: 1920, height: 1080}",
            "{drives: true}",
            "{properties: {\"smart sizing:i\": 1}}",
            "{width: 100}",
        ],
    ),
    ("vm", &["v", "lin", "nope"]),
    ("extends", &["q", "p", "nope"]),
    ("template", &["rdp", "ssh", "tunnel", "mine", "nope"]),
];

fn profile_field() -> impl Strategy<Value = (String, Node)> {
    prop_oneof![
        12 => prop::sample::select(PROFILE_FIELDS).prop_flat_map(|(k, values)| {
            prop::sample::select(values).prop_map(move |v| (k.to_string(), Node::Scalar(v.to_string())))
        }),
        1 => (prop::sample::select(FIELDS).prop_map(str::to_string), node()),
    ]
}

/// A document: the base set (or not), random top-level sections, and two profiles of
/// random fields (`q` may extend `p`, or the other way round).
fn document() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.8),
        prop_oneof![
            2 => Just(Vec::new()),
            1 => prop::collection::vec((key(), node()), 1..3),
        ],
        prop::collection::vec(profile_field(), 0..6),
        prop::collection::vec(profile_field(), 0..4),
        prop_oneof![3 => Just(0usize), 1 => 1usize..40],
    )
        .prop_map(|(base, sections, p, q, deep)| {
            // a valid set to start from, so that random fragments reach resolve and plan too (the
            // harness's set, less its `profiles:` line)
            let mut out = if base {
                crate::harness::one_profile("").replace("profiles:\n", "")
            } else {
                String::new()
            };
            for (k, v) in &sections {
                out.push_str(k);
                out.push(':');
                value(v, 2, &mut out);
            }
            out.push_str("templates:\n  mine:\n    - [az, network, bastion, tunnel, --port, \"{{port}}\", \"{{...extra_args}}\"]\n");
            out.push_str("profiles:\n");
            for (name, fields) in [("p", p), ("q", q)] {
                out.push_str(&format!("  {name}:\n    bastion: b\n"));
                if !fields.iter().any(|(k, _)| k == "vm") {
                    out.push_str("    vm: v\n");
                }
                let mut seen = Vec::new();
                for (k, v) in &fields {
                    if seen.contains(k) {
                        continue; // a duplicate key is refused before anything else
                    }
                    seen.push(k.clone());
                    out.push_str(&format!("    {k}:"));
                    value(v, 6, &mut out);
                }
            }
            if deep > 0 {
                out.push_str(&format!("  deep: {}{}\n", "[".repeat(deep), "]".repeat(deep)));
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_document_loads_or_is_a_list_of_problems(doc in document()) {
        let dir = tempfile::tempdir().unwrap();
        match fuzz_pipeline::load_validate_plan(dir.path(), doc.as_bytes()) {
            Outcome::Refused(n) => prop_assert!(n > 0),
            Outcome::Loaded { .. } => {}
        }
    }

    #[test]
    fn documents_split_into_a_set_load_or_are_a_list_of_problems(
        docs in prop::collection::vec(document(), 1..4)
    ) {
        let dir = tempfile::tempdir().unwrap();
        // 0xFF splits the input into files: a.yaml, b.yaml, c.local.yaml, local.yaml
        let mut bytes = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            if i > 0 {
                bytes.push(fuzz_pipeline::FILE_SEPARATOR);
            }
            bytes.extend_from_slice(d.as_bytes());
        }
        match fuzz_pipeline::load_validate_plan(dir.path(), &bytes) {
            Outcome::Refused(n) => prop_assert!(n > 0),
            Outcome::Loaded { .. } => {}
        }
    }
}
