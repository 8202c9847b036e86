//! The ARM access token, from `az account get-access-token --subscription SUB -o json`: az
//! stays the identity broker, bprof stores nothing. The token lives in memory only ([`Secret`]
//! prints as `<redacted>`), is never put in an argv or a file, and is fetched again by the same
//! call when it is close to its end.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::AzureError;
use crate::process::{Signals, Spawn, spawn};

/// A token is fetched again when it has less than this left (tokens last 60-90 minutes; a
/// session opened with it must not be refused for an expired one).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The background refresh starts this long before the token's end (az's cache hands out the
/// same token until about five minutes before it).
pub const REFRESH_AHEAD: Duration = Duration::from_secs(10 * 60);
/// With a refresher running, a held token is used until this long before its end (a session
/// opened with it must not be refused for an expired one).
pub const LAST_USE: Duration = Duration::from_secs(60);
/// A refresh that failed or did not move `expires_on` is tried again after this, doubling...
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// ... up to this.
const LAST_RETRY: Duration = Duration::from_secs(60);

/// az's output for the token is read up to this size (a token is a few kB).
const MAX_OUTPUT: usize = 256 * 1024;

/// A bearer credential. Shown nowhere: Debug prints `<redacted>`, there is no Display, and
/// the text is overwritten when dropped.
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The token's text, for the one request that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Clone for Secret {
    fn clone(&self) -> Secret {
        Secret(self.0.clone())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(std::mem::take(&mut self.0).into_bytes());
    }
}

/// Overwrites bytes that held a secret before their allocation is freed (best effort).
pub fn wipe(mut bytes: Vec<u8>) {
    bytes.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&bytes);
}

/// An access token and when it ends.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub secret: Secret,
    /// Seconds since the epoch.
    pub expires_on: u64,
}

/// What the token says about who holds it (read from the JWT's payload; not verified: only
/// for messages and checks that ARM enforces anyway).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub oid: Option<String>,
    #[serde(default)]
    pub tid: Option<String>,
    #[serde(default)]
    pub upn: Option<String>,
    #[serde(default)]
    pub unique_name: Option<String>,
    #[serde(default)]
    pub exp: Option<u64>,
}

#[derive(Deserialize)]
struct AzOutput {
    #[serde(rename = "accessToken")]
    access_token: String,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl AccessToken {
    /// Parses az's JSON. The token must look like one (printable ASCII, no spaces): it goes
    /// into a form field and a header.
    pub fn parse(stdout: &[u8]) -> Result<AccessToken, AzureError> {
        let bad = |why: &str| AzureError::TokenOutput(why.to_string());
        let out: AzOutput = serde_json::from_slice(stdout)
            .map_err(|_| bad("it is not the JSON of `az account get-access-token`"))?;
        if out.access_token.is_empty() || !out.access_token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("its accessToken is empty or not a token"));
        }
        let secret = Secret::new(out.access_token);
        // az prints expires_on as a number (2.54+) or a string of one; older az only has the
        // local-time expiresOn: then the JWT's exp, else half an hour
        let expires_on = match out.expires_on {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .or_else(|| claims_of(secret.expose()).and_then(|c| c.exp))
        .unwrap_or_else(|| now() + 30 * 60);
        Ok(AccessToken { secret, expires_on })
    }

    /// Whether it is too close to its end to open a session with.
    pub fn stale(&self, now: u64) -> bool {
        now + REFRESH_MARGIN.as_secs() >= self.expires_on
    }

    pub fn claims(&self) -> Option<Claims> {
        claims_of(self.secret.expose())
    }
}

/// How long the refresher waits before asking az again, for a token held until `held` (None:
/// none held): until [`REFRESH_AHEAD`] before its end; a token shorter-lived than that, just
/// refreshed, half of what it has left (never a loop of az calls).
fn refresh_wait(held: Option<u64>, now: u64, just_refreshed: bool) -> Duration {
    let Some(end) = held else {
        return Duration::ZERO;
    };
    let left = end.saturating_sub(now);
    if left > REFRESH_AHEAD.as_secs() {
        Duration::from_secs(left - REFRESH_AHEAD.as_secs())
    } else if just_refreshed {
        Duration::from_secs(left / 2).max(FIRST_RETRY)
    } else {
        Duration::ZERO
    }
}

/// The payload of a JWT (its middle part, base64url), when it has one.
pub fn claims_of(jwt: &str) -> Option<Claims> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(payload.trim_end_matches('=').as_bytes())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whose token az is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFor {
    /// A subscription's (its tenant's token): `--subscription SUB`.
    Subscription(String),
    /// A tenant's, without naming a subscription: `--tenant TENANT`.
    Tenant(String),
    /// az's default subscription's: neither.
    Default,
}

impl TokenFor {
    /// The az command line that prints this token.
    pub fn argv(&self) -> Vec<String> {
        let mut argv: Vec<String> = vec!["az".into(), "account".into(), "get-access-token".into()];
        match self {
            TokenFor::Subscription(s) => argv.extend(["--subscription".to_string(), s.clone()]),
            TokenFor::Tenant(t) => argv.extend(["--tenant".to_string(), t.clone()]),
            TokenFor::Default => {}
        }
        argv.extend(["-o".to_string(), "json".to_string()]);
        argv
    }
}

/// Runs az for a token: one process, stdin closed, stdout captured, stderr the person's (az's
/// own message when it is not signed in).
pub fn fetch(
    subscription: &str,
    signals: &Signals,
    az: Option<&std::path::Path>,
) -> Result<AccessToken, AzureError> {
    fetch_for(
        &TokenFor::Subscription(subscription.to_string()),
        signals,
        az,
    )
}

/// [`fetch`] for a subscription, a tenant, or az's default.
pub fn fetch_for(
    whose: &TokenFor,
    signals: &Signals,
    az: Option<&std::path::Path>,
) -> Result<AccessToken, AzureError> {
    run_az(whose, signals, az, false)
}

/// [`fetch`] with az's stderr read by bprof rather than shown: a failure carries az's own
/// message (its first lines, bounded), for a report that stands on its own (`doctor`).
pub fn fetch_quietly(
    subscription: &str,
    signals: &Signals,
    az: Option<&std::path::Path>,
) -> Result<AccessToken, AzureError> {
    let whose = TokenFor::Subscription(subscription.to_string());
    run_az(&whose, signals, az, true)
}

/// How much of az's stderr is kept: its first lines, up to this many bytes.
const MAX_SAID: usize = 4096;

fn run_az(
    whose: &TokenFor,
    signals: &Signals,
    az: Option<&std::path::Path>,
    read_stderr: bool,
) -> Result<AccessToken, AzureError> {
    let argv = whose.argv();
    let mut child = spawn(Spawn {
        argv: &argv,
        background: true,
        pipe_stderr: read_stderr,
        capture_stdout: true,
        az,
    })?;
    let said = if read_stderr {
        child.take_stderr().map(read_bounded)
    } else {
        None
    };
    let exit = child.wait(signals)?;
    if !exit.success() {
        let said = said.as_deref().and_then(first_lines);
        return Err(AzureError::TokenFailed { exit, said });
    }
    let mut out = child.stdout().unwrap_or_default();
    if out.len() > MAX_OUTPUT {
        out.truncate(0);
    }
    let token = AccessToken::parse(&out);
    out.iter_mut().for_each(|b| *b = 0);
    token
}

/// A stream read to its end, keeping the first [`MAX_SAID`] bytes.
fn read_bounded(mut from: impl std::io::Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = MAX_SAID.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    kept
}

/// az's message in one line: its first three non-empty lines, each bounded, joined by ` / `.
fn first_lines(said: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(said);
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .map(|l| crate::azure::http::bounded(l, 300))
        .collect();
    (!lines.is_empty()).then(|| lines.join(" / "))
}

/// The token of one subscription for a session: fetched once, again when it gets stale.
pub struct TokenSource {
    subscription: String,
    signals: Signals,
    az: Option<std::path::PathBuf>,
    current: Mutex<Option<AccessToken>>,
    /// A refresher runs ([`TokenSource::refresh_ahead`]): a held token serves to its end.
    refresher: std::sync::atomic::AtomicBool,
}

impl TokenSource {
    /// `first`: a token already fetched for this subscription.
    pub fn new(
        subscription: &str,
        signals: Signals,
        first: Option<AccessToken>,
        az: Option<std::path::PathBuf>,
    ) -> TokenSource {
        TokenSource {
            subscription: subscription.to_string(),
            signals,
            az,
            current: Mutex::new(first),
            refresher: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A token with time left: the one held while it lasts (the refresher, when running,
    /// replaces it ahead of its end), or a fresh one (blocks on az) when none is held, when
    /// it is about to expire, or when no refresher runs and it is near its end.
    pub fn get(&self) -> Result<AccessToken, AzureError> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let refreshed = self.refresher.load(std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = current.as_ref() {
            let usable = if refreshed {
                now() + LAST_USE.as_secs() < t.expires_on
            } else {
                !t.stale(now())
            };
            if usable {
                return Ok(t.clone());
            }
        }
        let fresh = fetch(&self.subscription, &self.signals, self.az.as_deref())?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Keeps the token fresh in the background, on a thread of its own, until `stop` is set
    /// (or sent): from [`REFRESH_AHEAD`] before its end, az is asked again, and again with
    /// backoff until `expires_on` moves forward (az's cache hands out the same token until
    /// about five minutes before its end). A failed refresh is said once (`say`), and the held
    /// token serves on while it lasts. Connections then never wait for az.
    pub fn refresh_ahead(
        self: &std::sync::Arc<Self>,
        stop: std::sync::mpsc::Receiver<()>,
        say: fn(&str),
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        use std::sync::mpsc::RecvTimeoutError;
        self.refresher
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let me = std::sync::Arc::clone(self);
        std::thread::Builder::new()
            .name("token".into())
            .spawn(move || {
                let mut backoff = FIRST_RETRY;
                let mut said = false;
                let mut just_refreshed = false;
                loop {
                    let held = me.held_until();
                    let wait = refresh_wait(held, now(), just_refreshed);
                    match stop.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    match fetch(&me.subscription, &me.signals, me.az.as_deref()) {
                        Ok(fresh) if held.is_none_or(|end| fresh.expires_on > end) => {
                            me.replace(fresh);
                            backoff = FIRST_RETRY;
                            said = false;
                            just_refreshed = true;
                            continue;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            if !said {
                                say(&format!(
                                    "the access token could not be refreshed ({e}); connections go on with the current one while it lasts, and bprof keeps trying"
                                ));
                                said = true;
                            }
                        }
                    }
                    just_refreshed = false;
                    // not moved yet, or failed: again after a while
                    match stop.recv_timeout(backoff) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    backoff = (backoff * 2).min(LAST_RETRY);
                }
            })
    }

    /// When the held token ends (None: none held).
    fn held_until(&self) -> Option<u64> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|t| t.expires_on)
    }

    fn replace(&self, fresh: AccessToken) {
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fresh);
    }

    /// How many seconds the held token has left (None: none held).
    pub fn left(&self) -> Option<u64> {
        let current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        current.as_ref().map(|t| t.expires_on.saturating_sub(now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJub25lIn0.{}.sig",
            data_encoding::BASE64URL_NOPAD.encode(payload.as_bytes())
        )
    }

    #[test]
    fn az_output_is_read_in_all_its_forms() {
        let t = AccessToken::parse(
            br#"{"accessToken": "abc.def", "expires_on": 1700000000, "tokenType": "Bearer"}"#,
        )
        .unwrap();
        assert_eq!((t.secret.expose(), t.expires_on), ("abc.def", 1700000000));
        let t = AccessToken::parse(br#"{"accessToken": "x", "expires_on": "1700000001"}"#).unwrap();
        assert_eq!(t.expires_on, 1700000001);
        let token = jwt(r#"{"exp": 1700000002, "oid": "o-1", "tid": "t-1"}"#);
        let t = AccessToken::parse(
            format!(r#"{{"accessToken": "{token}", "expiresOn": "2026-01-01 10:00:00.000000"}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(t.expires_on, 1700000002);
        assert_eq!(t.claims().unwrap().oid.as_deref(), Some("o-1"));
        for bad in [
            &b"not json"[..],
            br#"{"accessToken": ""}"#,
            br#"{"accessToken": "a b"}"#,
            br#"{"accessToken": "a\nb"}"#,
            b"",
        ] {
            assert!(
                AccessToken::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn the_secret_is_never_printed() {
        let t = AccessToken::parse(br#"{"accessToken": "s3cr3t", "expires_on": 1}"#).unwrap();
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("<redacted>"),
            "{shown}"
        );
        let e = AccessToken::parse(br#"{"accessToken": "s3 cr3t"}"#)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3"), "{e}");
    }

    #[test]
    fn the_refresh_starts_ten_minutes_ahead_and_never_spins() {
        let ahead = REFRESH_AHEAD.as_secs();
        assert_eq!(refresh_wait(None, 0, false), Duration::ZERO);
        assert_eq!(
            refresh_wait(Some(10_000), 10_000 - ahead - 30, false),
            Duration::from_secs(30)
        );
        assert_eq!(
            refresh_wait(Some(10_000), 10_000 - 100, false),
            Duration::ZERO
        );
        // a short-lived token just refreshed: half its time, at least the first retry
        assert_eq!(
            refresh_wait(Some(10_000), 10_000 - 100, true),
            Duration::from_secs(50)
        );
        assert_eq!(refresh_wait(Some(10_000), 10_000, true), FIRST_RETRY);
    }

    #[test]
    fn stale_near_the_end() {
        let t = AccessToken {
            secret: Secret::new("x".into()),
            expires_on: 10_000,
        };
        assert!(!t.stale(10_000 - REFRESH_MARGIN.as_secs() - 1));
        assert!(t.stale(10_000 - REFRESH_MARGIN.as_secs()));
        assert!(t.stale(20_000));
    }
}
