//! The native engine's token over a run: fetched again when it is near its end, refreshed in
//! the background ahead of it so that no connection waits for az.

use std::time::{Duration, Instant};

use crate::fake_bastion::FakeBastion;
use crate::native::{Running, connect, echo, set, tokens_of, wait_listening};
use crate::session::free_port;

#[test]
fn a_token_near_its_end_is_fetched_again_by_the_same_call() {
    let fake = FakeBastion::start();
    let port = free_port();
    // every token the fake az gives lasts 60 s: less than bprof's margin
    let t = set(&fake, port, "", "").env("FAKE_AZ_TOKEN_TTL", "60");
    let run = Running::start(&t, &["run", "db", "--tunnel-only"]);
    wait_listening(port);
    let mut c = connect(port);
    assert_eq!(echo(&mut c, b"x"), b"x");
    drop(c);
    // both sessions (the probe's and this one) asked for and ended: on a busy machine the
    // probe's may still be waiting for its token when this one has ended
    fake.wait_until("both sessions ended", Duration::from_secs(30), |f| {
        let asked = f
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/api/tokens")
            .count();
        f.open_sessions() == 0 && asked >= 2
    });
    let _ = run.stop(2);
    let calls = t.calls();
    assert!(calls.len() >= 3, "a fresh token per session: {calls:?}");
    assert!(
        calls
            .iter()
            .all(|c| c[..2] == ["account", "get-access-token"]),
        "{calls:?}"
    );
    let tokens = tokens_of(&fake);
    assert!(
        tokens.len() >= 2,
        "the sessions used fresh tokens: {}",
        tokens.len()
    );
}

#[test]
fn the_token_is_refreshed_ahead_until_it_moves_and_connections_never_wait_for_az() {
    let fake = FakeBastion::start();
    let port = free_port();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // the first token ends in 400 s (inside the refresh window, outside the margin that
    // fetches on demand); az's cache gives it again once, then a new one
    let ends = format!("{},{},{}", now + 400, now + 400, now + 3600);
    let t = set(&fake, port, "", "").env("FAKE_AZ_TOKEN_EXPIRES_ON", &ends);
    let run = Running::start(&t, &["run", "db", "--tunnel-only"]);
    wait_listening(port);
    let start = Instant::now();
    while t.calls().len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "refreshed: {:?}",
            t.calls()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // connections take the held token: no az call of their own
    for i in 0..3 {
        let mut c = connect(port);
        assert_eq!(echo(&mut c, b"x"), b"x", "connection {i}");
    }
    fake.wait_until("sessions ended", Duration::from_secs(30), |f| {
        f.open_sessions() == 0
    });
    let (_, err) = run.stop(2);
    assert_eq!(t.calls().len(), 3, "{:?}\n{err}", t.calls());
    let last = tokens_of(&fake).last().cloned().unwrap_or_default();
    assert!(last.contains("SECRET-0002"), "the newest token: {last}");
    assert!(!err.contains("could not be refreshed"), "{err}");
}
