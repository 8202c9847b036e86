//! Every input the fuzz targets (`fuzz/`) found a crash, hang or blow-up with, replayed through
//! the same pipeline (`fuzz/src/lib.rs`, shared with the targets): it returns, quickly, and as
//! a data error. The inputs are in `tests/fuzz-regressions/TARGET/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fuzz_pipeline::{self, Outcome};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("the saved inputs")
        .map(|e| {
            let path = e.expect("an entry").path();
            let bytes = std::fs::read(&path).expect("a saved input");
            (path, bytes)
        })
        .collect();
    out.sort();
    out
}

/// Each saved input of `load_validate_plan`, and the problem it must end in.
const LOAD_VALIDATE_PLAN: &[(&str, &str)] = &[
    // an inline partial that includes itself, the check fooled by a space before `~>`:
    // `bprof validate` died of a stack overflow (SIGSEGV)
    (
        "shared-template-inline-partial-recursion.yaml",
        "partials, inline partials and decorators are not allowed",
    ),
    // `each` nested 8 deep over the profile's fields: 30^8 iterations, `validate` never ended
    ("shared-template-nested-each.yaml", "`each` is not allowed"),
];

#[test]
fn saved_load_validate_plan_inputs_end_in_a_data_error() {
    let saved = inputs("load_validate_plan");
    assert_eq!(
        saved.len(),
        LOAD_VALIDATE_PLAN.len(),
        "every saved input has a row"
    );
    for (path, bytes) in saved {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (_, want) = LOAD_VALIDATE_PLAN
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name}: no row in LOAD_VALIDATE_PLAN"));
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let outcome = fuzz_pipeline::load_validate_plan(dir.path(), &bytes);
        assert!(start.elapsed() < Duration::from_secs(5), "{name}: slow");
        assert!(
            matches!(outcome, Outcome::Loaded { problems, plans: 0 } if problems > 0),
            "{name}: {outcome:?}"
        );
        // and through the binary, as a teammate would meet it
        let r = crate::harness::Test::new()
            .file("profiles/p.yaml", bytes)
            .args(&["validate", "--color", "never"])
            .run();
        r.code(65).stderr_has(want);
        assert!(!r.stderr.contains("panicked"), "{name}");
    }
}

#[test]
fn saved_template_render_inputs_are_refused() {
    let contexts = fuzz_pipeline::contexts(&Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles"));
    let saved = inputs("template_render");
    assert!(!saved.is_empty());
    for (path, bytes) in saved {
        let start = Instant::now();
        let rendered = fuzz_pipeline::template_render(&contexts, &bytes);
        assert!(start.elapsed() < Duration::from_secs(5), "{path:?}: slow");
        assert!(!rendered, "{path:?} rendered");
    }
}

#[test]
fn a_long_list_spliced_into_every_token_is_refused_not_a_blow_up() {
    // the longest list the schema allows (128) spliced into 32 steps of 256 tokens: a million
    // arguments before templates were bounded (MAX_RENDERED_BYTES)
    let list = vec!["--only-show-errors"; 128].join(", ");
    let step = format!(
        "    - [{}]\n",
        vec!["\"{{...extra_args}}\""; 256].join(", ")
    );
    let yaml = format!(
        "version: 1\ntenants:\n  t:\n    id: 11111111-1111-1111-1111-111111111111\n    subscription: 22222222-2222-2222-2222-222222222222\nbastions:\n  b:\n    tenant: t\n    resource_group: rg-net\n    name: bas-1\nvms:\n  v:\n    resource_group: rg-vm\n    name: vm-1\ntemplates:\n  wide:\n{}profiles:\n  p:\n    bastion: b\n    vm: v\n    template: wide\n    extra_args: [{list}]\n",
        step.repeat(32)
    );
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let outcome = fuzz_pipeline::load_validate_plan(dir.path(), yaml.as_bytes());
    assert!(start.elapsed() < Duration::from_secs(5), "slow");
    assert!(
        matches!(outcome, Outcome::Loaded { problems, plans: 0 } if problems > 0),
        "{outcome:?}"
    );
}

/// The answers that crashed the HTTP client before its parser was checked (a chunk after data
/// whose size is near `u64::MAX` panicked), and hand-made hostile framing: through the fuzz
/// pipeline, never a panic.
#[test]
fn hostile_http_answers_through_the_fuzz_pipeline() {
    let answers: [&[u8]; 6] = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nFFFFFFFFFFFFFFF0\r\nx",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        b"HTTP/1.1 200 OK\r\n\r\nbody until the end",
        b"",
    ];
    for answer in answers {
        for first in [0u8, 1, 2, 255] {
            for cut in [0u8, 1, 7, 255] {
                let mut data = vec![first, cut];
                data.extend_from_slice(answer);
                let _ = fuzz_pipeline::http_response(&data);
            }
        }
    }
    assert!(fuzz_pipeline::http_response(
        b"\x02\x00HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    ));
}

/// Hand-made hostile gateway files through the fuzz pipeline: refused or merged safely.
#[test]
fn hostile_gateway_files_through_the_fuzz_pipeline() {
    let host = "bst-0b6c3c6e-0000-4000-8000-000000000001.bastion.azure.com";
    let files: Vec<Vec<u8>> = vec![
        format!("full address:s:vm\r\ngatewayhostname:s:{host}\r\n").into_bytes(),
        format!("full address:s:vm\r\ngatewayhostname:s:{host}\r\nfull address:s:evil\r\nalternate shell:s:calc\r\nwinposstr:s:\u{1b}[2J\r\n").into_bytes(),
        b"full address:s:vm\r\ngatewayhostname:s:evil.com\r\n".to_vec(),
        // found by the fuzzer: a gateway under the domain with a space after it passed the
        // check (which trimmed it) and reached the file as written
        b"full address:s:vm\r\ngatewayhostname:s:gw.bastion.azure.com \r\n".to_vec(),
        b"\xFF\xFEf\x00".to_vec(),
        b"\xFF\xFE".to_vec(),
        b"\xEF\xBB\xBF".to_vec(),
        b"::\r\n:\r\n\r\n".to_vec(),
        Vec::new(),
    ];
    let merged: Vec<bool> = files
        .iter()
        .map(|f| fuzz_pipeline::gateway_file(f))
        .collect();
    assert_eq!(
        merged,
        [true, true, false, false, false, false, false, false, false]
    );
}

/// The tunnel's TLS records through the fuzz pipeline: records of every type and size sealed in
/// every version and cipher open to what was sealed, whatever the reads; a byte changed
/// anywhere on the wire is refused (or, in a length, waits for more).
#[cfg(not(target_os = "macos"))]
#[test]
fn tls_records_through_the_fuzz_pipeline() {
    // application data, a key update, a session ticket, an alert, an empty record, one of
    // 16 KiB, and one past the limit (not sealed)
    let mut records = Vec::new();
    for (typ, plain) in [
        (23u8, b"hello".to_vec()),
        (22, vec![24, 0, 0, 1, 1]),
        (22, vec![4, 0, 0, 3, 1, 2, 3]),
        (21, vec![1, 0]),
        (23, Vec::new()),
        (23, vec![0x5a; 16 * 1024]),
        (23, vec![1; 16 * 1024 + 1]),
    ] {
        records.push(typ);
        records.extend_from_slice(&(plain.len() as u16).to_le_bytes());
        records.extend_from_slice(&plain);
    }
    for pick in 0..6u8 {
        for cut in [0u8, 4, 255] {
            let mut data = vec![pick, cut, 0, 0];
            data.extend_from_slice(&records);
            assert!(fuzz_pipeline::tls_records(&data), "pick {pick}, cut {cut}");
            for at in [0u8, 2, 4, 9, 100, 200, 255] {
                data[2] = at;
                data[3] = 0x20;
                assert!(
                    !fuzz_pipeline::tls_records(&data),
                    "pick {pick}, cut {cut}: a byte changed at {at}/256 passed"
                );
            }
        }
    }
}
