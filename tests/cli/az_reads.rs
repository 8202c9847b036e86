//! What az itself reads from bprof's argv: before parsing, az replaces every argument that
//! begins with `@` (or whose value after `=` does) by a local file's content, after ssh's `--`
//! too, so a shared value `@~/.ssh/id_ed25519` would send the person's private key to the VM as
//! a user name or a remote command. Such values are refused where they are written (65), a
//! shared template's own text needs consent (77), and nothing runs.

use crate::harness::{Test, one_profile};

const SUB: &str = "22222222-2222-2222-2222-222222222222";

/// (profile fields under `p:`, the line of the value, what the message names)
const REFUSED: &[(&str, u32, &str)] = &[
    (
        "    mode: ssh\n    auth_type: password\n    username: \"@~/.ssh/id_ed25519\"\n",
        25,
        "@~/.ssh/id_ed25519",
    ),
    (
        "    mode: ssh\n    auth_type: ssh-key\n    username: azureuser\n    ssh_key: \"@/etc/shadow\"\n",
        26,
        "@/etc/shadow",
    ),
    (
        "    mode: ssh\n    auth_type: aad\n    ssh_args: [uptime, \"@~/.ssh/id_ed25519\"]\n",
        25,
        "@~/.ssh/id_ed25519",
    ),
    (
        "    mode: ssh\n    auth_type: aad\n    ssh_args: [uptime, \"x=@/etc/passwd\"]\n",
        25,
        "x=@/etc/passwd",
    ),
    (
        "    mode: ssh\n    auth_type: aad\n    ssh_args: [-L, \"8080:localhost:80\", echo, \"@-\"]\n",
        25,
        "@-",
    ),
];

#[test]
fn values_az_would_read_as_files_are_refused_where_written() {
    for (fields, line, named) in REFUSED {
        let yaml = one_profile(&format!(
            "  p:\n    bastion: b\n    vm: lin\n    tunnel_engine: az\n{fields}"
        ));
        let t = Test::new().file("profiles/p.yaml", &yaml).signed_in(&[SUB]);
        for os in ["linux", "windows"] {
            for args in [&["plan", "p", "--os", os][..], &["run", "p"]] {
                let r = t.run_with(args);
                r.code(65)
                    .stderr_has(&format!("profiles/p.yaml:{line}"))
                    .stderr_has(named)
                    .stderr_has("local file");
                assert!(r.calls.is_empty(), "{fields}: {args:?} ran {:?}", r.calls);
            }
        }
        t.run_with(&["validate"])
            .code(65)
            .stderr_has(&format!("profiles/p.yaml:{line}"));
    }
}

#[test]
fn a_shared_template_that_makes_az_read_a_file_needs_consent() {
    let yaml = one_profile(
        "  p:\n    bastion: b\n    vm: lin\n    mode: tunnel\n    resource_port: 22\n    template: t\ntemplates:\n  t:\n    - [az, network, bastion, tunnel, --name, \"{{bastion.name}}\", --resource-group, \"{{bastion.resource_group}}\", --target-resource-id, \"{{vm.resource_id}}\", --resource-port, \"22\", --port, \"{{port}}\", \"--subscription=@~/.azure/subscription\"]\n",
    );
    let t = Test::new().file("profiles/p.yaml", &yaml).signed_in(&[SUB]);
    let r = t.run_with(&["run", "p"]);
    r.code(77).stderr_has("local file");
    assert!(r.calls.is_empty(), "{:?}", r.calls);
    // and a value from a file, spliced by a template, is refused outright
    let yaml = one_profile(
        "  p:\n    description: \"@~/.ssh/id_ed25519\"\n    bastion: b\n    vm: lin\n    mode: tunnel\n    resource_port: 22\n    template: t\ntemplates:\n  t:\n    - [az, network, bastion, tunnel, --name, \"{{profile.description}}\", --resource-group, rg, --target-resource-id, \"{{vm.resource_id}}\", --resource-port, \"22\", --port, \"{{port}}\"]\n",
    );
    let t = Test::new().file("profiles/p.yaml", &yaml).signed_in(&[SUB]);
    let r = t.run_with(&["run", "p"]);
    r.code(65).stderr_has("local file");
    assert!(r.calls.is_empty(), "{:?}", r.calls);
}
