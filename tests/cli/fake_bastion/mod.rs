//! A loopback fake Azure Bastion for the tests (and the bench): ARM's read of a bastion host,
//! the bastion's token endpoint and its websocket tunnel, all over HTTPS on one port with a
//! throwaway certificate, plus a plain TCP echo listener on another (a throughput baseline).
//!
//! It runs on a tokio runtime of its own (two worker threads), so a test drives it from plain
//! blocking code: start it, point the client under test at `arm_endpoint()` with `ca_file()` in
//! SSL_CERT_FILE, steer it with `set`, then look at `requests()` and the counters. Dropping it
//! shuts the runtime down, which ends every task and closes every socket.
//!
//! The protocol, as faked:
//! - `GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/bastionHosts/{name}
//!   ?api-version=2024-05-01` with `Authorization: Bearer ...`: the bastion host, whose `dnsName`
//!   is this server (`host()`).
//! - `POST /api/tokens` (a form, no Authorization): a session's authToken and nodeId, and a
//!   single-use websocketToken.
//! - `GET /webtunnelv2/{websocketToken}?X-Node-Id={nodeId}`: the websocket; binary frames carry
//!   the tunnel's bytes to and from the backend (an echo, or a TCP connection per websocket).
//! - `DELETE /api/tokens/{authToken}` with `X-Node-Id`: ends the session.
//! - `GET /api/rdpfile?resourceId={vm id}&format=rdp&rdpport={port}&enablerdsaad={True|False}`
//!   with `Authorization: Bearer ...`: an .rdp file for the bastion's RD gateway (this server),
//!   with a fresh gateway token in it (`gateway_tokens()`).
//!
//! The room: this file holds the types a test uses, the configuration and the [`FakeBastion`]
//! itself; `tls` the certificate, the acceptor and the tap on the client's records; `http` the
//! listeners and one request per connection; `routes` what each path answers; `websocket` the
//! tunnel's bytes; `tests` the fake's own tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, rustls};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

mod http;
mod routes;
mod tests;
mod tls;
mod websocket;

use http::*;
use routes::*;
use tls::*;
pub(crate) use tls::{make_certificate, tls_acceptor};
use websocket::*;

/// The api-version the client must ask ARM for.
pub const API_VERSION: &str = "2024-05-01";

/// A request head larger than this is refused (431).
const MAX_HEAD: usize = 64 * 1024;
/// A request body larger than this is refused (413).
const MAX_BODY: usize = 1024 * 1024;
/// How long a websocket that sent its close frame waits for the client's.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What a test's own route answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A status and a JSON body.
    Json(u16, serde_json::Value),
    /// A status, a content type and a body as it is (HTML pages, broken JSON).
    Raw(u16, &'static str, String),
    /// Say nothing, keep the connection open (a hanging call).
    Hang,
    /// These bytes as they are, status line and framing included, then close (a hostile or
    /// broken server or proxy).
    Bytes(Vec<u8>),
    /// The answer after a delay (ARM's latency, for timings).
    After(Duration, Box<Answer>),
}

/// A test's own route: requests with this method whose path (without the query, decoded)
/// starts with `prefix` are answered by `answer`, before the fake's own routes.
#[derive(Clone)]
pub struct Route {
    pub method: &'static str,
    pub prefix: String,
    pub answer: std::sync::Arc<dyn Fn(&Request) -> Answer + Send + Sync>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Route({} {})", self.method, self.prefix)
    }
}

impl Route {
    pub fn new(
        method: &'static str,
        prefix: &str,
        answer: impl Fn(&Request) -> Answer + Send + Sync + 'static,
    ) -> Route {
        Route {
            method,
            prefix: prefix.to_string(),
            answer: std::sync::Arc::new(answer),
        }
    }
}

/// One HTTP request as the fake received it (websocket upgrades included).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent: percent-encoded, with the query.
    pub path: String,
    /// The path without the query, each segment percent-decoded.
    pub decoded_path: String,
    /// Names lowercased, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The decoded form fields of `POST /api/tokens` (form content type only); else empty.
    pub form: Vec<(String, String)>,
    pub peer: SocketAddr,
}

impl Request {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first form field of that name (exact case).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The raw path without its query.
    fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(&self.path, |(p, _)| p)
    }

    fn query(&self) -> &str {
        self.path.split_once('?').map_or("", |(_, q)| q)
    }
}

/// What a websocket's bytes go to.
#[derive(Clone, Debug)]
pub enum Backend {
    /// Every byte that arrives is sent back.
    Echo,
    /// A TCP connection per websocket (a real sshd or xrdp), pumped both ways.
    Tcp(SocketAddr),
}

/// How `POST /api/tokens` fails when told to.
#[derive(Clone, Debug)]
pub enum Failure {
    /// That status with `{"message": message}`.
    Json { status: u16, message: String },
    /// That status with an HTML page (as a gateway in front of the service answers).
    Html { status: u16 },
    /// No answer at all; the connection stays open until the client gives up.
    Hang,
}

/// How the fake behaves; change it with `FakeBastion::set`. A websocket takes its backend,
/// pings and drop from the configuration in force when it is opened.
#[derive(Clone, Debug)]
pub struct Config {
    /// Routes of a test's own, tried first (more of ARM: VMs, Resource Graph, ...).
    pub routes: Vec<Route>,
    /// The bastion's SKU as ARM reports it.
    pub sku: String,
    /// `enableTunneling`; None leaves the key out.
    pub tunneling: Option<bool>,
    /// `enableIpConnect`.
    pub ip_connect: bool,
    /// The nodeId that `POST /api/tokens` hands out.
    pub node_id: String,
    pub backend: Backend,
    pub token_failure: Option<Failure>,
    /// None: every token request fails while `token_failure` is set; Some(n): only the next n.
    pub token_failures_left: Option<u32>,
    /// Every ARM GET answers this status and body (with `Retry-After` if given)...
    pub arm_failure: Option<(u16, String, Option<u32>)>,
    /// ...all of them (None) or only the next n (Some(n)).
    pub arm_failures_left: Option<u32>,
    /// The server pings each websocket this often (pongs are counted).
    pub ping_every: Option<Duration>,
    /// A websocket's TCP connection is cut (reset, no close frame, no TLS close_notify) once this
    /// many payload bytes, both directions added up, have crossed it; the frame that crosses the
    /// mark is cut at the mark.
    pub drop_after_bytes: Option<usize>,
    /// `/api/rdpfile` answers in UTF-16LE with a byte-order mark (else UTF-8).
    pub rdpfile_utf16: bool,
    /// Each websocket's TLS connection updates its keys, and asks the client to update its
    /// own (TLS 1.3), each time the server has written this many more bytes on it.
    pub rekey_every: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            routes: Vec::new(),
            sku: "Standard".to_string(),
            tunneling: Some(true),
            ip_connect: false,
            node_id: "node-7f3a".to_string(),
            backend: Backend::Echo,
            token_failure: None,
            token_failures_left: None,
            arm_failure: None,
            arm_failures_left: None,
            ping_every: None,
            drop_after_bytes: None,
            rdpfile_utf16: false,
            rekey_every: None,
        }
    }
}

struct Session {
    node_id: String,
    open: bool,
}

#[derive(Default)]
struct State {
    config: Config,
    requests: Vec<Request>,
    /// By authToken.
    sessions: HashMap<String, Session>,
    /// websocketToken → already used.
    websocket_tokens: HashMap<String, bool>,
    open_websockets: usize,
    pongs: usize,
    /// TLS handshakes and websocket handshakes that failed, and backends that could not be
    /// reached: shown when `wait_until` times out.
    errors: Vec<String>,
    /// The targets of `CONNECT` requests (the fake is also an HTTP proxy to itself).
    connects: Vec<String>,
    /// The gateway tokens `/api/rdpfile` handed out.
    gateway_tokens: Vec<String>,
    /// The TLS key updates the server sent on websockets.
    key_updates: usize,
    /// The TLS key updates clients sent (see [`Tap`]).
    client_key_updates: usize,
}

/// The TLS the server speaks: TLS 1.2 and 1.3 with rustls's default suites, unless a test
/// narrows it.
#[derive(Debug, Clone, Default)]
pub struct FakeTls {
    pub tls12_only: bool,
    /// Only this cipher suite.
    pub suite: Option<rustls::CipherSuite>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // a panicking test thread must not hide the recorded requests from the next assertion
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The fake bastion and ARM (one HTTPS port) and a plain TCP echo (another port).
pub struct FakeBastion {
    runtime: Option<tokio::runtime::Runtime>,
    state: Shared,
    addr: SocketAddr,
    echo: SocketAddr,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeBastion {
    /// Makes a certificate, binds both listeners on 127.0.0.1 and starts serving. Panics if any
    /// of that fails (a broken test machine).
    pub fn start() -> FakeBastion {
        FakeBastion::start_with(FakeTls::default())
    }

    /// [`FakeBastion::start`] speaking only the TLS that `choice` says.
    pub fn start_with(choice: FakeTls) -> FakeBastion {
        let dir = tempfile::tempdir().expect("a temp dir for the fake bastion's certificate");
        let (cert, key) = make_certificate(dir.path());
        let tls = tls_acceptor(&cert, &key, &choice)
            .unwrap_or_else(|e| panic!("the fake bastion's TLS configuration: {e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fake-bastion")
            .enable_io()
            .enable_time()
            .build()
            .expect("the fake bastion's runtime");
        let (https, echo) = runtime.block_on(async {
            (
                TcpListener::bind("127.0.0.1:0").await,
                TcpListener::bind("127.0.0.1:0").await,
            )
        });
        let https = https.expect("the fake bastion's HTTPS listener");
        let echo = echo.expect("the fake bastion's echo listener");
        let addr = https.local_addr().expect("the HTTPS listener's address");
        let echo_addr = echo.local_addr().expect("the echo listener's address");
        let state: Shared = Arc::default();
        runtime.spawn(serve(https, tls, state.clone(), addr.to_string()));
        runtime.spawn(serve_echo(echo));
        FakeBastion {
            runtime: Some(runtime),
            state,
            addr,
            echo: echo_addr,
            ca: cert,
            _dir: dir,
        }
    }

    /// "127.0.0.1:PORT": what ARM returns as the bastion's dnsName.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// "https://127.0.0.1:PORT": ARM, on the same server.
    pub fn arm_endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The certificate (PEM) that the server presents; trust it through SSL_CERT_FILE.
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// The plain TCP echo listener.
    pub fn echo_addr(&self) -> SocketAddr {
        self.echo
    }

    /// Changes the configuration; it applies to the requests that arrive afterwards.
    pub fn set(&self, f: impl FnOnce(&mut Config)) {
        f(&mut lock(&self.state).config);
    }

    /// `http://127.0.0.1:PORT`: the fake as an HTTP CONNECT proxy (HTTPS_PROXY) that leads
    /// every host to itself, so DNS names (the Developer SKU's) reach it on port 443.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `host:port` of every CONNECT, in arrival order.
    pub fn connects(&self) -> Vec<String> {
        lock(&self.state).connects.clone()
    }

    /// Every HTTP request, websocket upgrades included, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).requests.clone()
    }

    /// Sessions created by `POST /api/tokens` and not yet deleted.
    /// The gateway tokens `/api/rdpfile` handed out (secrets: a test looks for them where they
    /// must not be).
    pub fn gateway_tokens(&self) -> Vec<String> {
        lock(&self.state).gateway_tokens.clone()
    }

    /// The TLS key updates the server sent on websockets so far, and those clients sent.
    pub fn key_updates(&self) -> (usize, usize) {
        let s = lock(&self.state);
        (s.key_updates, s.client_key_updates)
    }

    pub fn open_sessions(&self) -> usize {
        lock(&self.state)
            .sessions
            .values()
            .filter(|s| s.open)
            .count()
    }

    /// Websockets connected now.
    pub fn open_websockets(&self) -> usize {
        lock(&self.state).open_websockets
    }

    /// Pongs received, on all websockets.
    pub fn pongs(&self) -> usize {
        lock(&self.state).pongs
    }

    /// Failed TLS or websocket handshakes and unreachable backends, one line each.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.state).errors.clone()
    }

    /// Polls `pred` every 10 ms; panics after `timeout`, naming `what` and showing the requests.
    pub fn wait_until(&self, what: &str, timeout: Duration, pred: impl Fn(&FakeBastion) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(self) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the fake bastion waited {timeout:?} for {what} in vain\nrequests:\n{}errors: {:?}",
                    self.raw_requests_log(),
                    self.errors()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// One line per request: method, raw path, headers (and form fields), with the values of
    /// `authorization` and `aztoken` replaced by `<redacted>`.
    pub fn raw_requests_log(&self) -> String {
        let redact = |name: &str, value: &str| {
            if name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("aztoken") {
                "<redacted>".to_string()
            } else {
                value.to_string()
            }
        };
        let mut log = String::new();
        for r in lock(&self.state).requests.iter() {
            let headers: Vec<String> = r
                .headers
                .iter()
                .map(|(n, v)| format!("{n}: {}", redact(n, v)))
                .collect();
            log.push_str(&format!("{} {} [{}]", r.method, r.path, headers.join("; ")));
            if !r.form.is_empty() {
                let form: Vec<String> = r
                    .form
                    .iter()
                    .map(|(n, v)| format!("{n}={}", redact(n, v)))
                    .collect();
                log.push_str(&format!(" form [{}]", form.join("; ")));
            }
            log.push('\n');
        }
        log
    }
}

impl Drop for FakeBastion {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
