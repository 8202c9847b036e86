//! Network input never crashes bprof: ARM (or a proxy in between) answering with hostile HTTP
//! framing gets a clear error, never a panic (exit 70), a hang or unbounded memory, and nothing
//! listens.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::fake_bastion::{Answer, FakeBastion, Route};
use crate::harness::Test;
use crate::session::free_port;

const SUB: &str = "22222222-2222-2222-2222-222222222222";

fn tunnel_set(fake: &FakeBastion, port: u16) -> Test {
    Test::new()
        .file(
            "profiles/p.yaml",
            crate::harness::one_profile(&format!(
                "  db:\n    bastion: b\n    vm: v\n    mode: tunnel\n    resource_port: 22\n    local_port: {port}\n"
            )),
        )
        .signed_in(&[SUB])
        .env("BPROF_ARM_ENDPOINT", &fake.arm_endpoint())
        .env("SSL_CERT_FILE", &fake.ca_file().display().to_string())
}

/// (the answer's bytes, a piece of bprof's message)
fn cases() -> Vec<(Vec<u8>, &'static str)> {
    let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
    while endless.len() < 200 * 1024 {
        endless.extend_from_slice(b"X-Filler: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n");
    }
    vec![
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nFFFFFFFFFFFFFFF0\r\nx"
                .to_vec(),
            "larger than",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n".to_vec(),
            "bad chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}".to_vec(),
            "bad Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n{}".to_vec(),
            "bad Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}".to_vec(),
            "Content-Length given twice",
        ),
        (
            "HTTP/1.1 100 Continue\r\n\r\n".repeat(50).into_bytes(),
            "interim",
        ),
        (endless, "too many headers"),
        (b"HTTP/1.1 2000 OK\r\n\r\n".to_vec(), "not HTTP"),
        (b"\x16\x03\x01\x00garbage\r\n\r\n".to_vec(), "not HTTP"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx".to_vec(),
            "Transfer-Encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc".to_vec(),
            "inside a chunk",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}".to_vec(),
            "before its Content-Length",
        ),
    ]
}

#[test]
fn hostile_http_answers_are_clear_errors_never_a_crash() {
    let fake = FakeBastion::start();
    for (bytes, want) in cases() {
        fake.set(|c| {
            c.routes = vec![Route {
                method: "GET",
                prefix: "/subscriptions/".into(),
                answer: std::sync::Arc::new({
                    let bytes = bytes.clone();
                    move |_| Answer::Bytes(bytes.clone())
                }),
            }]
        });
        let port = free_port();
        let t = tunnel_set(&fake, port);
        let start = Instant::now();
        let r = t.run_with(&["run", "db", "--tunnel-only"]);
        assert_ne!(r.code, 70, "{want}: a crash:\n{}", r.stderr);
        r.code(69).stderr_has(want);
        assert!(!r.stderr.contains("internal error"), "{}", r.stderr);
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{want}: it took {:?}",
            start.elapsed()
        );
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "{want}: nothing listens"
        );
    }
}

/// An escape sequence in an answer from Azure is shown escaped, even with color on: data is
/// escaped first, bprof's own color added after.
#[test]
fn escape_sequences_from_azure_never_reach_the_terminal_even_with_color() {
    let fake = FakeBastion::start();
    fake.set(|c| {
        c.routes = vec![Route {
            method: "GET",
            prefix: "/subscriptions/".into(),
            answer: std::sync::Arc::new(|_| {
                Answer::Json(
                    404,
                    serde_json::json!({"error": {"code": "ResourceNotFound",
                        "message": "gone \u{1b}[8mhidden\u{1b}[0m \u{1b}]52;c;eA==\u{7} \u{9b}31m"}}),
                )
            }),
        }]
    });
    let t = tunnel_set(&fake, free_port());
    let r = t.run_with(&["--color", "always", "run", "db", "--tunnel-only"]);
    assert_ne!(r.code, 0);
    for forged in ["\u{1b}[8m", "\u{1b}]52", "\u{9b}", "\u{7}"] {
        assert!(
            !r.stderr.contains(forged),
            "{forged:?} passed: {:?}",
            r.stderr
        );
    }
    assert!(r.stderr.contains("\\e[8mhidden"), "{:?}", r.stderr);
    assert!(
        r.stderr.contains("\u{1b}[1m\u{1b}[31merror"),
        "own color: {:?}",
        r.stderr
    );
}
