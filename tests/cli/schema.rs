use std::path::Path;

use crate::harness::Test;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_schema_is_fresh() {
    let r = Test::new().args(&["schema"]).run();
    r.code(0);
    let committed =
        std::fs::read_to_string(root().join("schema/bprof.schema.json")).unwrap_or_default();
    assert!(
        committed == r.stdout,
        "schema/bprof.schema.json is stale: regenerate it with `cargo run -- schema > schema/bprof.schema.json`"
    );
}

#[test]
fn every_bundled_example_validates_against_the_committed_schema() {
    let text = std::fs::read_to_string(root().join("schema/bprof.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(root().join("profiles")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("yaml") {
            continue;
        }
        let (value, _) =
            bprof::profile::yaml::parse(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", p.display());
        n += 1;
    }
    assert!(n >= 3);
}

#[test]
fn the_schema_really_constrains() {
    let text = std::fs::read_to_string(root().join("schema/bprof.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let bad = [
        serde_json::json!({"tenants": {}}),
        serde_json::json!({"version": 1, "extra": 1}),
        serde_json::json!({"version": 1, "tenants": {"t": {"id": "x", "subscription": "y"}}}),
        serde_json::json!({"version": 1, "profiles": {"p": {"resource_port": 0}}}),
        serde_json::json!({"version": 1, "profiles": {"p": {"mode": "vnc"}}}),
        serde_json::json!({"version": 1, "profiles": {"UPPER": {}}}),
        serde_json::json!({"version": 1, "profiles": {"p": {"enable_mfa": "yes"}}}),
        serde_json::json!({"version": 1, "bastions": {"b": {"tenant": "t", "name": "n"}}}),
    ];
    for b in bad {
        assert!(!validator.is_valid(&b), "the schema accepts {b}");
    }
}
