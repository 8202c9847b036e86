//! What the benches share: a directory with a profile set, az's profile file and a `#!/bin/sh`
//! az, and bprof's command pointed at them and at the fake bastion.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::fake_bastion::FakeBastion;

pub const BIN: &str = env!("CARGO_BIN_EXE_bprof");

/// `bprof ARGS` in `dir`: `yaml` as the set, `az_profile` as azureProfile.json, `az` as the az
/// script (`BENCH_DIR` names the directory for it), ARM and TLS pointed at `fake`.
pub fn sandbox(
    dir: &Path,
    fake: &FakeBastion,
    yaml: &str,
    az_profile: &str,
    az: &str,
    args: &[&str],
) -> Command {
    for d in ["profiles", "azure", "home", "config"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("profiles/p.yaml"), yaml).unwrap();
    std::fs::write(dir.join("azure/azureProfile.json"), az_profile).unwrap();
    let az_path = dir.join("az");
    std::fs::write(&az_path, az).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&az_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .args(args)
        .env("BPROF_AZ", &az_path)
        .env("BENCH_DIR", dir)
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("AZURE_CONFIG_DIR", dir.join("azure"))
        .env("BPROF_ARM_ENDPOINT", fake.arm_endpoint())
        .env("SSL_CERT_FILE", fake.ca_file())
        .env_remove("BPROF_TUNNEL_ENGINE")
        .env_remove("HTTPS_PROXY")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}
