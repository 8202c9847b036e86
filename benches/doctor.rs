//! `bprof doctor PROFILE` against the fake ARM of the tests (`cargo bench --bench doctor`;
//! Linux): wall time when ARM answers at once and when every read is 80 ms late, against the
//! number of sequential rounds its reads need. Prints a Markdown table (the README's).

#![allow(clippy::disallowed_methods)]

#[path = "../tests/cli/fake_bastion/mod.rs"]
mod fake_bastion;

#[path = "../tests/cli/fake_azure.rs"]
mod fake_azure;
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_azure::{Azure, SUB, TENANT, profiles_yaml};
use fake_bastion::FakeBastion;

/// The bench's az: a token with an `oid`, and a version with the extensions.
const FAKE_AZ: &str = r#"#!/bin/sh
case "$1" in
  version) printf '{"azure-cli": "2.67.0", "extensions": {"bastion": "1.4.4", "ssh": "2.0.6"}}\n' ;;
  *) printf '{"accessToken": "eyJhbGciOiJub25lIn0.eyJvaWQiOiIwMDAwLW9pZCIsInRpZCI6InQifQ.bench", "expires_on": %s, "tokenType": "Bearer"}\n' "$(( $(date +%s) + 3600 ))" ;;
esac
"#;

fn setup(dir: &Path, fake: &FakeBastion) -> Command {
    let az_profile = format!(
        "{{\"subscriptions\": [{{\"id\": \"{SUB}\", \"tenantId\": \"{TENANT}\", \"isDefault\": true}}]}}"
    );
    let mut c = support::sandbox(
        dir,
        fake,
        &profiles_yaml(),
        &az_profile,
        FAKE_AZ,
        &["--format", "json", "doctor", "prod-jumpbox"],
    );
    c.stderr(Stdio::null());
    c
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let fake = FakeBastion::start();
    let dir = tempfile::tempdir().unwrap();
    println!("| ARM latency per read | `bprof doctor prod-jumpbox` (median of 9) |");
    println!("| --- | --- |");
    let mut rows = Vec::new();
    for delay in [0u64, 80] {
        let mut azure = Azure::healthy();
        azure.delay = Duration::from_millis(delay);
        fake.set(|c| c.routes = azure.routes(fake.host()));
        let times: Vec<f64> = (0..9)
            .map(|_| {
                let start = Instant::now();
                let st = setup(dir.path(), &fake).status().unwrap();
                assert!(
                    st.success(),
                    "doctor found a problem in the healthy fake: {st:?}"
                );
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let m = median(times);
        rows.push(m);
        println!("| {delay} ms | {m:.0} ms |");
    }
    println!(
        "\nThe 80 ms reads add {:.0} ms: {:.1} rounds of 80 ms (its six ARM reads one after another would add 480 ms).",
        rows[1] - rows[0],
        (rows[1] - rows[0]) / 80.0
    );
}
