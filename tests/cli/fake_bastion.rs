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

/// A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem).
pub(crate) fn make_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            // the Developer SKU's broker and data pods, reached through the fake as a proxy
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:*.test.bastionglobal.azure.com",
            // webpki refuses a CA certificate as the server's own (CaUsedAsEndEntity), and
            // openssl's req -x509 makes one by default
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl, to make the fake bastion's certificate");
    assert!(
        out.status.success(),
        "openssl failed to make the fake bastion's certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir.join("cert.pem"), dir.join("key.pem"))
}

pub(crate) fn tls_acceptor(
    cert: &Path,
    key: &Path,
    choice: &FakeTls,
) -> Result<TlsAcceptor, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(only) = choice.suite {
        provider.cipher_suites.retain(|s| s.suite() == only);
    }
    let versions: &[&rustls::SupportedProtocolVersion] = if choice.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

type Tls = tokio_rustls::server::TlsStream<Tap>;

/// The client's side of a connection, its TLS records' headers read as they pass: TLS 1.3
/// records of exactly 22 bytes after the handshake are the client's key updates (a 5-byte
/// message, its content type, a 16-byte tag; no websocket frame is that small: an empty one
/// takes 23), counted.
struct Tap {
    tcp: TcpStream,
    /// Header bytes of the record being read so far, and what is left of its body.
    header: Vec<u8>,
    body_left: usize,
    state: Shared,
}

impl Tap {
    fn new(tcp: TcpStream, state: Shared) -> Tap {
        Tap {
            tcp,
            header: Vec::with_capacity(5),
            body_left: 0,
            state,
        }
    }

    fn saw(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.header.len() == 5 {
                let len = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                if self.header[0] == 23 && len == 22 {
                    lock(&self.state).client_key_updates += 1;
                }
                self.header.clear();
                self.body_left = len;
            }
        }
    }
}

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            let fresh = buf.filled()[before..].to_vec();
            self.saw(&fresh);
        }
        read
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

async fn serve(listener: TcpListener, tls: TlsAcceptor, state: Shared, host: String) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // out of descriptors, say: let some close
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (tls, state, host) = (tls.clone(), state.clone(), host.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let mut tcp = tcp;
            if let Err(e) = proxy_connect(&mut tcp, &state).await {
                lock(&state).errors.push(format!("{peer}: CONNECT: {e}"));
                return;
            }
            match tls.accept(Tap::new(tcp, state.clone())).await {
                Ok(stream) => connection(stream, peer, state, host).await,
                Err(e) => lock(&state)
                    .errors
                    .push(format!("{peer}: TLS handshake: {e}")),
            }
        });
    }
}

/// A connection that starts with `CONNECT host:port` (a client using the fake as its proxy):
/// the request is read and recorded, `200` answered, and the TLS that follows is the fake's
/// own. Anything else is left as it is.
async fn proxy_connect(tcp: &mut TcpStream, state: &Shared) -> std::io::Result<()> {
    let mut first = [0u8; 8];
    let n = tcp.peek(&mut first).await?;
    if &first[..n] != b"CONNECT " {
        return Ok(());
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_HEAD || tcp.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        head.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&head);
    let target = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    lock(state).connects.push(target);
    tcp.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
}

async fn serve_echo(listener: TcpListener) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let (read, mut write) = tcp.into_split();
            let mut read = tokio::io::BufReader::with_capacity(64 * 1024, read);
            let _ = tokio::io::copy_buf(&mut read, &mut write).await;
            let _ = write.shutdown().await;
        });
    }
}

/// A response to write before closing the connection.
struct Reply {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            content_type: "application/json; charset=utf-8",
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// `{"message": ...}`, as the bastion's token endpoint says what went wrong.
    fn message(status: u16, message: &str) -> Reply {
        Reply::json(status, serde_json::json!({ "message": message }))
    }

    /// `{"error": {"code": ..., "message": ...}}`, as ARM does.
    fn arm_error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            serde_json::json!({ "error": { "code": code, "message": message } }),
        )
    }

    fn html(status: u16) -> Reply {
        let title = format!("{status} {}", reason(status));
        Reply {
            status,
            content_type: "text/html",
            headers: Vec::new(),
            body: format!(
                "<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center><hr><center>Microsoft-Azure-Application-Gateway/v2</center></body></html>"
            ),
        }
    }
}

/// What the router decided.
enum Outcome {
    Reply(Reply),
    /// Bytes as they are, then close.
    Bytes(Vec<u8>),
    /// Say nothing, keep the connection open.
    Hang,
    /// Upgrade to a websocket with this backend.
    Upgrade {
        backend: Backend,
        ping_every: Option<Duration>,
        drop_after_bytes: Option<usize>,
        rekey_every: Option<usize>,
    },
    /// This outcome after a delay.
    After(Duration, Box<Outcome>),
}

/// Why no request could be read: Some(reply) to send, or None (the connection is gone).
type Unread = Option<Reply>;

async fn connection(mut stream: Tls, peer: SocketAddr, state: Shared, host: String) {
    let (request, raw) = match read_request(&mut stream, peer).await {
        Ok(read) => read,
        Err(Some(reply)) => return write_reply(&mut stream, reply).await,
        Err(None) => return,
    };
    let mut outcome = {
        let mut state = lock(&state);
        state.requests.push(request.clone());
        route(&mut state, &request, &host)
    };
    while let Outcome::After(delay, then) = outcome {
        tokio::time::sleep(delay).await;
        outcome = *then;
    }
    match outcome {
        Outcome::Reply(reply) => write_reply(&mut stream, reply).await,
        Outcome::Bytes(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Outcome::Hang => {
            // until the client gives up (or the fake is dropped)
            let mut sink = [0u8; 4096];
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        }
        Outcome::Upgrade {
            backend,
            ping_every,
            drop_after_bytes,
            rekey_every,
        } => {
            let stream = Replay {
                prefix: raw,
                pos: 0,
                inner: stream,
                rekey: rekey_every.map(|every| Rekey {
                    every,
                    written: 0,
                    state: state.clone(),
                }),
            };
            match tokio_tungstenite::accept_async(stream).await {
                Ok(ws) => websocket(ws, backend, ping_every, drop_after_bytes, &state).await,
                Err(e) => lock(&state)
                    .errors
                    .push(format!("{peer}: websocket handshake: {e}")),
            }
        }
        // taken apart above
        Outcome::After(..) => {}
    }
}

/// Reads one request head (and its Content-Length body). Also returns every byte read, for the
/// websocket handshake to read again.
async fn read_request(stream: &mut Tls, peer: SocketAddr) -> Result<(Request, Vec<u8>), Unread> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let (head_len, method, path, headers) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut slots);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                break (
                    len,
                    parsed.method.unwrap_or_default().to_string(),
                    parsed.path.unwrap_or_default().to_string(),
                    headers,
                );
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Some(Reply::message(431, "too many headers")));
            }
            Err(e) => return Err(Some(Reply::message(400, &format!("bad request: {e}")))),
        }
        if buf.len() > MAX_HEAD {
            return Err(Some(Reply::message(431, "request head too large")));
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
    };
    if header("transfer-encoding").is_some() {
        return Err(Some(Reply::message(
            411,
            "the fake bastion reads Content-Length bodies only",
        )));
    }
    let body_len = match header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| Some(Reply::message(400, "bad Content-Length")))?,
    };
    if body_len > MAX_BODY {
        return Err(Some(Reply::message(413, "request body too large")));
    }
    while buf.len() < head_len + body_len {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_len..head_len + body_len]).into_owned();
    let path_only = path.split_once('?').map_or(path.as_str(), |(p, _)| p);
    let decoded_path = path_only
        .split('/')
        .map(|s| percent_decode(s, false))
        .collect::<Vec<_>>()
        .join("/");
    let is_form = header("content-type").is_some_and(|ct| {
        ct.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let form = if method == "POST" && path_only == "/api/tokens" && is_form {
        parse_form(&body)
    } else {
        Vec::new()
    };
    let request = Request {
        method,
        path,
        decoded_path,
        headers,
        body,
        form,
        peer,
    };
    Ok((request, buf))
}

async fn write_reply(stream: &mut Tls, reply: Reply) {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&reply.body);
    if stream.write_all(out.as_bytes()).await.is_ok() && stream.flush().await.is_ok() {
        // TLS close_notify, then FIN
        let _ = stream.shutdown().await;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn route(state: &mut State, request: &Request, host: &str) -> Outcome {
    let path = request.path_only();
    if let Some(r) = state
        .config
        .routes
        .iter()
        .find(|r| r.method == request.method && request.decoded_path.starts_with(&r.prefix))
    {
        return outcome_of((r.answer)(request));
    }
    match request.method.as_str() {
        "GET" if path.starts_with("/webtunnelv2/") || path.starts_with("/omni/webtunnel/") => {
            upgrade(state, request)
        }
        "GET" if path.starts_with("/subscriptions/") => Outcome::Reply(arm(state, request, host)),
        "POST" if path == "/api/tokens" => tokens(state, request),
        "GET" if path == "/api/rdpfile" => rdpfile(state, request, host),
        "DELETE" if path.starts_with("/api/tokens/") => Outcome::Reply(delete(state, request)),
        _ => Outcome::Reply(Reply::message(
            404,
            &format!("the fake bastion has no {} {path}", request.method),
        )),
    }
}

fn outcome_of(answer: Answer) -> Outcome {
    match answer {
        Answer::Json(status, body) => Outcome::Reply(Reply::json(status, body)),
        Answer::Raw(status, content_type, body) => Outcome::Reply(Reply {
            status,
            content_type,
            headers: Vec::new(),
            body,
        }),
        Answer::Hang => Outcome::Hang,
        Answer::Bytes(b) => Outcome::Bytes(b),
        Answer::After(delay, then) => Outcome::After(delay, Box::new(outcome_of(*then))),
    }
}

/// Takes one of the failures that are left: None when there is no failure or none left.
fn take<T: Clone>(failure: &Option<T>, left: &mut Option<u32>) -> Option<T> {
    let failure = failure.clone()?;
    match left {
        None => Some(failure),
        Some(0) => None,
        Some(n) => {
            *n -= 1;
            Some(failure)
        }
    }
}

fn arm(state: &mut State, request: &Request, host: &str) -> Reply {
    let config = &mut state.config;
    if let Some((status, body, retry_after)) =
        take(&config.arm_failure, &mut config.arm_failures_left)
    {
        let mut reply = Reply::json(status, serde_json::Value::Null);
        reply.body = body;
        if let Some(secs) = retry_after {
            reply.headers.push(("Retry-After", secs.to_string()));
        }
        return reply;
    }
    let bearer = request
        .header("authorization")
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()
        });
    if bearer.is_none() {
        return Reply::arm_error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        );
    }
    let query = parse_form(request.query());
    match query.iter().find(|(n, _)| n == "api-version") {
        None => {
            return Reply::arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            );
        }
        Some((_, v)) if v != API_VERSION => {
            return Reply::arm_error(
                400,
                "InvalidApiVersionParameter",
                &format!("The fake bastion serves api-version '{API_VERSION}' only, not '{v}'."),
            );
        }
        Some(_) => {}
    }
    let segments: Vec<String> = request
        .path_only()
        .split('/')
        .skip(1)
        .map(|s| percent_decode(s, false))
        .collect();
    let [
        subscriptions,
        sub,
        groups,
        rg,
        providers,
        namespace,
        kind,
        name,
    ] = segments.as_slice()
    else {
        return Reply::arm_error(
            404,
            "InvalidResourceType",
            "The fake ARM knows bastion hosts only.",
        );
    };
    let fixed = [
        (subscriptions, "subscriptions"),
        (groups, "resourceGroups"),
        (providers, "providers"),
        (namespace, "Microsoft.Network"),
        (kind, "bastionHosts"),
    ];
    if fixed.iter().any(|(s, want)| !s.eq_ignore_ascii_case(want))
        || [sub, rg, name].iter().any(|s| s.is_empty())
    {
        return Reply::arm_error(
            404,
            "InvalidResourceType",
            "The fake ARM knows bastion hosts only.",
        );
    }
    let mut properties = serde_json::json!({
        "dnsName": host,
        "enableIpConnect": config.ip_connect,
        "provisioningState": "Succeeded",
    });
    if let (Some(tunneling), Some(map)) = (config.tunneling, properties.as_object_mut()) {
        map.insert("enableTunneling".to_string(), tunneling.into());
    }
    Reply::json(
        200,
        serde_json::json!({
            "id": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/bastionHosts/{name}"),
            "name": name,
            "type": "Microsoft.Network/bastionHosts",
            "location": "westeurope",
            "sku": { "name": config.sku },
            "properties": properties,
        }),
    )
}

fn tokens(state: &mut State, request: &Request) -> Outcome {
    let content_type = request
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    // the real service answers both with a bare 500
    if request.header("authorization").is_some() || content_type.contains("json") {
        return Outcome::Reply(Reply::message(500, "An error has occurred."));
    }
    let config = &mut state.config;
    match take(&config.token_failure, &mut config.token_failures_left) {
        Some(Failure::Json { status, message }) => {
            return Outcome::Reply(Reply::message(status, &message));
        }
        Some(Failure::Html { status }) => return Outcome::Reply(Reply::html(status)),
        Some(Failure::Hang) => return Outcome::Hang,
        None => {}
    }
    let bad = |message: String| Outcome::Reply(Reply::message(400, &message));
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return bad(format!(
            "The request's content type must be application/x-www-form-urlencoded, not '{content_type}'."
        ));
    }
    for name in ["resourceId", "protocol", "workloadHostPort", "aztoken"] {
        if request.field(name).is_none_or(str::is_empty) {
            return bad(format!("The {name} field is required."));
        }
    }
    if request.field("protocol") != Some("tcptunnel") {
        return bad("The protocol must be tcptunnel.".to_string());
    }
    if request
        .field("workloadHostPort")
        .and_then(|p| p.parse::<u16>().ok())
        .is_none()
    {
        return bad("The workloadHostPort field must be a port number.".to_string());
    }
    // an overlapping session names an open one (and its node); each session gets its own
    // authToken (the service's sessions are deleted one by one: azure-cli-extensions#10137)
    let node_id = match request.field("token").filter(|t| !t.is_empty()) {
        Some(token) => match state.sessions.get(token) {
            Some(session)
                if session.open && request.header("x-node-id") == Some(&session.node_id) =>
            {
                session.node_id.clone()
            }
            Some(session) if session.open => {
                return bad("The X-Node-Id header does not match the session's node.".to_string());
            }
            _ => return bad("The token is not an open session's.".to_string()),
        },
        None => state.config.node_id.clone(),
    };
    let auth_token = random_hex(32);
    state.sessions.insert(
        auth_token.clone(),
        Session {
            node_id: node_id.clone(),
            open: true,
        },
    );
    let websocket_token = random_hex(40);
    state
        .websocket_tokens
        .insert(websocket_token.clone(), false);
    Outcome::Reply(Reply::json(
        200,
        serde_json::json!({
            "authToken": auth_token,
            "nodeId": node_id,
            "websocketToken": websocket_token,
        }),
    ))
}

fn upgrade(state: &mut State, request: &Request) -> Outcome {
    let token = percent_decode(
        request
            .path_only()
            .strip_prefix("/webtunnelv2/")
            .or_else(|| request.path_only().strip_prefix("/omni/webtunnel/"))
            .unwrap_or_default(),
        false,
    );
    match state.websocket_tokens.get_mut(&token) {
        Some(used) if !*used => {
            *used = true;
            Outcome::Upgrade {
                backend: state.config.backend.clone(),
                ping_every: state.config.ping_every,
                drop_after_bytes: state.config.drop_after_bytes,
                rekey_every: state.config.rekey_every,
            }
        }
        Some(_) => Outcome::Reply(Reply::message(404, "The websocket token was used already.")),
        None => Outcome::Reply(Reply::message(404, "The websocket token is unknown.")),
    }
}

/// The RD gateway's .rdp file for a VM, as the bastion serves it to az's Windows `rdp`.
fn rdpfile(state: &mut State, request: &Request, host: &str) -> Outcome {
    let bearer = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| !t.trim().is_empty());
    if !bearer {
        return Outcome::Reply(Reply::message(401, "Unauthorized"));
    }
    let query = parse_form(request.query());
    let get = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let (Some(id), Some("rdp"), Some(port), Some(aad)) = (
        get("resourceId"),
        get("format"),
        get("rdpport").and_then(|p| p.parse::<u16>().ok()),
        get("enablerdsaad"),
    ) else {
        return Outcome::Reply(Reply::message(400, "Bad rdpfile request."));
    };
    let aad = match aad {
        "True" => 1,
        "False" => 0,
        _ => return Outcome::Reply(Reply::message(400, "enablerdsaad is True or False.")),
    };
    let Some(vm) = id
        .strip_prefix("/subscriptions/")
        .and_then(|r| r.rsplit('/').next())
        .filter(|v| !v.is_empty())
    else {
        return Outcome::Reply(Reply::message(404, "No such VM."));
    };
    let token = format!("gw-{}", random_hex(48));
    state.gateway_tokens.push(token.clone());
    let text = format!(
        "full address:s:{vm}:{port}\r\ngatewayhostname:s:{host}\r\ngatewayusagemethod:i:1\r\ngatewaycredentialssource:i:5\r\ngatewayprofileusagemethod:i:1\r\ngatewayaccesstoken:s:{token}\r\nenablerdsaadauth:i:{aad}\r\nscreen mode id:i:2\r\nuse multimon:i:0\r\npromptcredentialonce:i:1\r\n"
    );
    if !state.config.rdpfile_utf16 {
        return Outcome::Reply(Reply {
            status: 200,
            content_type: "application/x-rdp",
            headers: Vec::new(),
            body: text,
        });
    }
    let mut body = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        body.extend_from_slice(&unit.to_le_bytes());
    }
    let mut bytes = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-rdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend(body);
    Outcome::Bytes(bytes)
}

fn delete(state: &mut State, request: &Request) -> Reply {
    let token = percent_decode(
        request
            .path_only()
            .strip_prefix("/api/tokens/")
            .unwrap_or_default(),
        false,
    );
    match state.sessions.get_mut(&token) {
        Some(session) if session.open && request.header("x-node-id") == Some(&session.node_id) => {
            session.open = false;
            Reply {
                status: 200,
                content_type: "application/json; charset=utf-8",
                headers: Vec::new(),
                body: String::new(),
            }
        }
        _ => Reply::message(404, "No open session with that token on that node."),
    }
}

/// %XX decoded (and `+` as a space if `plus`); a broken escape stays as it is.
fn percent_decode(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(b) = hex {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name, true), percent_decode(value, true))
        })
        .collect()
}

/// `len` random lowercase hex digits.
fn random_hex(len: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        // SipHash under a fresh random key
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out.truncate(len);
    out
}

/// The connection with the bytes already read put back in front, for the websocket handshake;
/// it updates its TLS keys as [`Config::rekey_every`] says.
struct Replay<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
    rekey: Option<Rekey>,
}

struct Rekey {
    every: usize,
    written: usize,
    state: Shared,
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replay<Tls> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            let me = &mut *self;
            if let Some(r) = &mut me.rekey {
                r.written += n;
                if r.written >= r.every {
                    r.written = 0;
                    // sent with the next record; the client must answer with its own
                    if me.inner.get_mut().1.refresh_traffic_keys().is_ok() {
                        lock(&r.state).key_updates += 1;
                    }
                }
            }
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Ws = WebSocketStream<Replay<Tls>>;

/// A backend's byte stream (a TCP connection, or one end of the in-memory echo).
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// For the writer half: a message to send, or the order to cut the connection (after the
/// messages before it have gone out).
enum Out {
    Msg(Message),
    Cut,
}

/// How a websocket ends.
enum End {
    /// Cut the TCP connection: no close frame, no close_notify, a reset.
    Cut,
    /// Close (this frame, if the close handshake is not under way yet), then shut TLS down.
    Close(Option<CloseFrame>),
    /// The close handshake is over (or given up): shut TLS down.
    Done,
}

/// The payload bytes a websocket may still carry before it is cut.
struct Budget(Option<AtomicUsize>);

impl Budget {
    /// How many of `len` bytes may go, and whether the connection is to be cut after them.
    fn take(&self, len: usize) -> (usize, bool) {
        let Some(left) = &self.0 else {
            return (len, false);
        };
        let before = left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| {
                Some(l.saturating_sub(len))
            })
            .unwrap_or_default();
        let n = before.min(len);
        (n, before - n == 0)
    }
}

/// Counts the websocket while it is open, however its task ends.
struct Open(Shared);

impl Drop for Open {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.open_websockets = state.open_websockets.saturating_sub(1);
    }
}

async fn websocket(
    ws: Ws,
    backend: Backend,
    ping_every: Option<Duration>,
    drop_after_bytes: Option<usize>,
    state: &Shared,
) {
    lock(state).open_websockets += 1;
    let _open = Open(state.clone());
    let (backend, mut echo_end): (Box<dyn Io>, _) = match backend {
        Backend::Echo => {
            let (near, far) = tokio::io::duplex(64 * 1024);
            (Box::new(near), Some(far))
        }
        Backend::Tcp(addr) => match TcpStream::connect(addr).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                (Box::new(tcp), None)
            }
            Err(e) => {
                lock(state)
                    .errors
                    .push(format!("websocket backend {addr}: {e}"));
                let mut ws = ws;
                let frame = CloseFrame {
                    code: CloseCode::Error,
                    reason: "backend unreachable".into(),
                };
                let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(Some(frame))).await;
                return;
            }
        },
    };
    let (mut back_read, mut back_write) = tokio::io::split(backend);
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(16);
    let budget = Budget(drop_after_bytes.map(AtomicUsize::new));

    let end = tokio::select! {
        end = client_to_backend(&mut stream, &mut back_write, &budget, state) => end,
        end = to_client(&mut sink, &mut out_rx) => end,
        end = backend_to_client(&mut back_read, &out_tx, &budget) => end,
        end = pinger(ping_every, &out_tx) => end,
        end = echo(&mut echo_end) => end,
    };
    let Ok(mut ws) = stream.reunite(sink) else {
        return;
    };
    match end {
        End::Cut => {
            // a reset, once the socket closes as `ws` drops
            let _ = ws.get_ref().inner.get_ref().0.tcp.set_zero_linger();
            return;
        }
        End::Close(frame) => {
            let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(frame)).await;
        }
        End::Done => {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.get_mut().inner.shutdown()).await;
}

async fn client_to_backend(
    stream: &mut futures_util::stream::SplitStream<Ws>,
    backend: &mut (impl AsyncWrite + Unpin),
    budget: &Budget,
    state: &Shared,
) -> End {
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Binary(payload)) => {
                let (n, cut) = budget.take(payload.len());
                if backend.write_all(&payload[..n]).await.is_err() {
                    return End::Close(Some(CloseFrame {
                        code: CloseCode::Error,
                        reason: "backend gone".into(),
                    }));
                }
                if cut {
                    let _ = backend.flush().await;
                    return End::Cut;
                }
            }
            Ok(Message::Pong(_)) => lock(state).pongs += 1,
            // answered by tungstenite itself
            Ok(Message::Ping(_)) => {}
            Ok(Message::Text(_)) => {
                return End::Close(Some(CloseFrame {
                    code: CloseCode::Unsupported,
                    reason: "binary frames only".into(),
                }));
            }
            // the client closed, or answered our close: send the reply that tungstenite queued
            Ok(Message::Close(_)) => return End::Close(None),
            Ok(Message::Frame(_)) => {}
            Err(_) => return End::Cut,
        }
    }
    End::Cut
}

async fn to_client(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    out: &mut mpsc::Receiver<Out>,
) -> End {
    while let Some(next) = out.recv().await {
        match next {
            Out::Msg(message) => {
                let closing = matches!(message, Message::Close(_));
                if sink.send(message).await.is_err() {
                    return End::Cut;
                }
                if closing {
                    // the client's close frame ends the websocket first, normally
                    tokio::time::sleep(CLOSE_WAIT).await;
                    return End::Done;
                }
            }
            Out::Cut => return End::Cut,
        }
    }
    std::future::pending().await
}

async fn backend_to_client(
    backend: &mut (impl AsyncRead + Unpin),
    out: &mpsc::Sender<Out>,
    budget: &Budget,
) -> End {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let code = match backend.read(&mut buf).await {
            Ok(0) => CloseCode::Normal,
            Err(_) => CloseCode::Error,
            Ok(n) => {
                let (n, cut) = budget.take(n);
                if n > 0 {
                    let payload = Bytes::copy_from_slice(&buf[..n]);
                    let _ = out.send(Out::Msg(Message::Binary(payload))).await;
                }
                if cut {
                    let _ = out.send(Out::Cut).await;
                    return std::future::pending().await;
                }
                continue;
            }
        };
        let frame = CloseFrame {
            code,
            reason: "".into(),
        };
        let _ = out.send(Out::Msg(Message::Close(Some(frame)))).await;
        return std::future::pending().await;
    }
}

async fn pinger(every: Option<Duration>, out: &mpsc::Sender<Out>) -> End {
    if let Some(every) = every {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            ticks.tick().await;
            let ping = Message::Ping(Bytes::from_static(b"fake-bastion"));
            if out.send(Out::Msg(ping)).await.is_err() {
                break;
            }
        }
    }
    std::future::pending().await
}

/// The far end of the in-memory echo backend: sends back what it reads.
async fn echo(far: &mut Option<tokio::io::DuplexStream>) -> End {
    if let Some(far) = far {
        let (mut read, mut write) = tokio::io::split(far);
        let _ = tokio::io::copy(&mut read, &mut write).await;
    }
    std::future::pending().await
}

// The fake's own tests: a tokio client speaking raw HTTP/1.1 and a websocket over TLS.

/// A current-thread runtime for a test's client.
fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the test's client")
}

/// A TLS connection to the fake that trusts nothing but its `ca_file()`.
async fn tls_connect(fake: &FakeBastion) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fake.ca_file()).expect("the fake's CA file") {
        roots
            .add(cert.expect("a certificate in the CA file"))
            .expect("the fake's certificate as a root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(fake.addr)
        .await
        .expect("connect to the fake");
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("a server name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("a TLS handshake with the fake")
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request, by hand, on a connection of its own.
async fn http(
    fake: &FakeBastion,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut stream = tls_connect(fake).await;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        fake.host(),
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .expect("read the response");
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut slots);
    let Ok(httparse::Status::Complete(head_len)) = parsed.parse(&raw) else {
        panic!("no complete response: {}", String::from_utf8_lossy(&raw));
    };
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let response = Response {
        status: parsed.code.unwrap_or_default(),
        body: String::from_utf8_lossy(&raw[head_len..]).into_owned(),
        headers,
    };
    assert_eq!(
        response.header("content-length"),
        Some(response.body.len().to_string().as_str()),
        "Content-Length"
    );
    response
}

const FORM: &str = "application/x-www-form-urlencoded";

fn token_form(resource_id: &str) -> String {
    format!(
        "resourceId={resource_id}&protocol=tcptunnel&workloadHostPort=22&aztoken=eyJ0eXAi%2Babc"
    )
}

async fn new_session(fake: &FakeBastion) -> serde_json::Value {
    let response = http(
        fake,
        "POST",
        "/api/tokens",
        &[("Content-Type", FORM)],
        &token_form("%2Fsubscriptions%2Fs%2FresourceGroups%2Frg%2Fproviders%2FMicrosoft.Compute%2FvirtualMachines%2Fvm"),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

#[test]
fn fake_bastion_arm_read_names_the_fake_as_the_bastion() {
    let fake = FakeBastion::start();
    client_runtime().block_on(async {
        let path = format!(
            "/subscriptions/sub-1/resourceGroups/my%20rg/providers/Microsoft.Network/bastionHosts/bas-1?api-version={API_VERSION}"
        );
        let ok = http(&fake, "GET", &path, &[("Authorization", "Bearer tok")], "").await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        let host = ok.json();
        assert_eq!(host["properties"]["dnsName"], fake.host().as_str());
        assert_eq!(host["properties"]["enableTunneling"], true);
        assert_eq!(host["properties"]["enableIpConnect"], false);
        assert_eq!(host["sku"]["name"], "Standard");
        assert_eq!(
            host["id"],
            "/subscriptions/sub-1/resourceGroups/my rg/providers/Microsoft.Network/bastionHosts/bas-1"
        );

        let anonymous = http(&fake, "GET", &path, &[], "").await;
        assert_eq!(anonymous.status, 401);
        assert_eq!(anonymous.json()["error"]["code"], "AuthenticationFailed");

        fake.set(|c| {
            c.tunneling = None;
            c.sku = "Basic".to_string();
            c.arm_failure = Some((429, r#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#.to_string(), Some(1)));
            c.arm_failures_left = Some(1);
        });
        let throttled = http(&fake, "GET", &path, &[("Authorization", "Bearer tok")], "").await;
        assert_eq!(throttled.status, 429);
        assert_eq!(throttled.header("retry-after"), Some("1"));
        let basic = http(&fake, "GET", &path, &[("Authorization", "Bearer tok")], "").await;
        assert_eq!(basic.status, 200, "{}", basic.body);
        let basic = basic.json();
        assert_eq!(basic["sku"]["name"], "Basic");
        assert!(basic["properties"].get("enableTunneling").is_none());
    });
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    assert!(requests[0].path.contains("my%20rg"));
    assert_eq!(
        requests[0].decoded_path,
        "/subscriptions/sub-1/resourceGroups/my rg/providers/Microsoft.Network/bastionHosts/bas-1"
    );
    let log = fake.raw_requests_log();
    assert!(
        log.contains("authorization: <redacted>") && !log.contains("Bearer"),
        "{log}"
    );
}

#[test]
fn fake_bastion_tunnels_a_websocket_to_the_echo_and_ends_the_session() {
    let fake = FakeBastion::start();
    client_runtime().block_on(async {
        let session = new_session(&fake).await;
        let auth_token = session["authToken"]
            .as_str()
            .expect("authToken")
            .to_string();
        let websocket_token = session["websocketToken"].as_str().expect("websocketToken");
        assert_eq!(session["nodeId"], "node-7f3a");
        assert_eq!((auth_token.len(), websocket_token.len()), (32, 40));
        assert_eq!(fake.open_sessions(), 1);
        let url = format!(
            "wss://{}/webtunnelv2/{websocket_token}?X-Node-Id=node-7f3a",
            fake.host()
        );

        let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tls_connect(&fake).await)
            .await
            .expect("the websocket handshake");
        fake.wait_until("the websocket counted", Duration::from_secs(1), |f| {
            f.open_websockets() == 1
        });
        let sent: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
        ws.send(Message::binary(sent.clone())).await.expect("send");
        let mut received = Vec::new();
        while received.len() < sent.len() {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => received.extend_from_slice(&b),
                other => panic!("instead of echoed bytes: {other:?}"),
            }
        }
        assert!(received == sent, "the echo differs");
        ws.close(None).await.expect("close");
        while let Some(Ok(_)) = ws.next().await {}

        // single use
        let again = tokio_tungstenite::client_async(url.as_str(), tls_connect(&fake).await).await;
        match again {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 404)
            }
            other => panic!(
                "a used websocket token was accepted: {:?}",
                other.map(|_| ())
            ),
        }

        let delete_path = format!("/api/tokens/{auth_token}");
        let wrong_node = http(&fake, "DELETE", &delete_path, &[("X-Node-Id", "other")], "").await;
        assert_eq!(wrong_node.status, 404);
        let deleted = http(
            &fake,
            "DELETE",
            &delete_path,
            &[("X-Node-Id", "node-7f3a")],
            "",
        )
        .await;
        assert_eq!(deleted.status, 200, "{}", deleted.body);
        assert_eq!(fake.open_sessions(), 0);
        let twice = http(
            &fake,
            "DELETE",
            &delete_path,
            &[("X-Node-Id", "node-7f3a")],
            "",
        )
        .await;
        assert_eq!(twice.status, 404);
    });
    fake.wait_until("the websocket closed", Duration::from_secs(1), |f| {
        f.open_websockets() == 0
    });
    let requests = fake.requests();
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        ["POST", "GET", "GET", "DELETE", "DELETE", "DELETE"]
    );
    assert_eq!(requests[0].field("aztoken"), Some("eyJ0eXAi+abc"));
    assert_eq!(
        requests[0].field("resourceId"),
        Some("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm")
    );
    assert_eq!(requests[1].header("upgrade"), Some("websocket"));
    assert!(requests[1].path.ends_with("?X-Node-Id=node-7f3a"));
    let log = fake.raw_requests_log();
    assert!(
        log.contains("aztoken=<redacted>") && !log.contains("eyJ0eXAi"),
        "{log}"
    );
}

#[test]
fn fake_bastion_token_endpoint_refuses_as_the_service_does() {
    let fake = FakeBastion::start();
    client_runtime().block_on(async {
        let form = token_form("x");
        let json = http(&fake, "POST", "/api/tokens", &[("Content-Type", "application/json")], "{}").await;
        assert_eq!(json.status, 500);
        let authorized = http(
            &fake,
            "POST",
            "/api/tokens",
            &[("Content-Type", FORM), ("Authorization", "Bearer tok")],
            &form,
        )
        .await;
        assert_eq!(authorized.status, 500);
        let missing = http(
            &fake,
            "POST",
            "/api/tokens",
            &[("Content-Type", FORM)],
            "resourceId=x&protocol=tcptunnel&workloadHostPort=22",
        )
        .await;
        assert_eq!(missing.status, 400);
        assert!(missing.json()["message"].as_str().is_some_and(|m| m.contains("aztoken")));

        // a second token for an open session needs that session's node
        let session = new_session(&fake).await;
        let auth_token = session["authToken"].as_str().expect("authToken");
        let reuse = format!("{form}&token={auth_token}");
        let no_node = http(&fake, "POST", "/api/tokens", &[("Content-Type", FORM)], &reuse).await;
        assert_eq!(no_node.status, 400);
        let same_node = http(
            &fake,
            "POST",
            "/api/tokens",
            &[("Content-Type", FORM), ("X-Node-Id", "node-7f3a")],
            &reuse,
        )
        .await;
        assert_eq!(same_node.status, 200, "{}", same_node.body);
        assert_ne!(same_node.json()["authToken"], auth_token);
        assert_eq!(same_node.json()["nodeId"], "node-7f3a");
        assert_eq!(fake.open_sessions(), 2);

        fake.set(|c| {
            c.token_failure = Some(Failure::Json {
                status: 401,
                message: "Unauthorized: the token is not valid".to_string(),
            })
        });
        let unauthorized = http(&fake, "POST", "/api/tokens", &[("Content-Type", FORM)], &form).await;
        assert_eq!(unauthorized.status, 401);
        assert_eq!(unauthorized.json()["message"], "Unauthorized: the token is not valid");

        fake.set(|c| c.token_failure = Some(Failure::Hang));
        let mut stream = tls_connect(&fake).await;
        let request = format!(
            "POST /api/tokens HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {FORM}\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut byte = [0u8; 1];
        let silent = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await;
        assert!(silent.is_err(), "a hanging token endpoint answered");
    });
}

#[test]
fn fake_bastion_502_html_then_recovers_and_echoes_plain_tcp() {
    let fake = FakeBastion::start();
    fake.set(|c| {
        c.token_failure = Some(Failure::Html { status: 502 });
        c.token_failures_left = Some(1);
    });
    client_runtime().block_on(async {
        let form = token_form("x");
        let gateway = http(
            &fake,
            "POST",
            "/api/tokens",
            &[("Content-Type", FORM)],
            &form,
        )
        .await;
        assert_eq!(gateway.status, 502);
        assert_eq!(gateway.header("content-type"), Some("text/html"));
        assert!(
            gateway
                .body
                .starts_with("<html><head><title>502 Bad Gateway</title></head><body>")
        );
        let recovered = http(
            &fake,
            "POST",
            "/api/tokens",
            &[("Content-Type", FORM)],
            &form,
        )
        .await;
        assert_eq!(recovered.status, 200, "{}", recovered.body);

        let mut tcp = TcpStream::connect(fake.echo_addr())
            .await
            .expect("connect to the echo");
        tcp.write_all(b"baseline").await.expect("send");
        let mut back = [0u8; 8];
        tcp.read_exact(&mut back).await.expect("echoed");
        assert_eq!(&back, b"baseline");
    });
}

#[test]
fn fake_bastion_pings_forwards_over_tcp_and_cuts_after_the_byte_budget() {
    let fake = FakeBastion::start();
    fake.set(|c| {
        c.backend = Backend::Tcp(fake.echo_addr());
        c.ping_every = Some(Duration::from_millis(20));
        c.drop_after_bytes = Some(1000);
    });
    client_runtime().block_on(async {
        let session = new_session(&fake).await;
        let url = format!(
            "wss://{}/webtunnelv2/{}?X-Node-Id=node-7f3a",
            fake.host(),
            session["websocketToken"].as_str().expect("websocketToken")
        );
        let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tls_connect(&fake).await)
            .await
            .expect("the websocket handshake");
        ws.send(Message::binary(vec![7u8; 300]))
            .await
            .expect("send");
        // 600 of the 1000 bytes: 300 out, 300 back; reading answers the pings meanwhile
        let mut received = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while received < 300 || fake.pongs() == 0 {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => received += b.len(),
                Ok(Some(Ok(Message::Ping(_)))) => {}
                other => panic!("instead of echo and pings: {other:?}"),
            }
        }
        assert_eq!(received, 300);
        // 400 more pass, then the connection is cut: no close frame
        ws.send(Message::binary(vec![7u8; 500]))
            .await
            .expect("send");
        loop {
            match tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
                Ok(Some(Ok(Message::Ping(_)))) => {}
                Ok(Some(Ok(Message::Close(frame)))) => panic!("a close frame: {frame:?}"),
                Ok(Some(Ok(Message::Binary(b)))) => panic!("bytes past the budget: {}", b.len()),
                Ok(Some(Err(_)) | None) => break,
                other => panic!("instead of a cut: {other:?}"),
            }
        }
    });
    fake.wait_until("the cut websocket gone", Duration::from_secs(1), |f| {
        f.open_websockets() == 0
    });
    assert!(fake.pongs() >= 1);
}

#[test]
fn fake_bastion_closes_the_websocket_with_1000_when_the_backend_ends() {
    let fake = FakeBastion::start();
    let backend = std::net::TcpListener::bind("127.0.0.1:0").expect("a backend listener");
    let backend_addr = backend.local_addr().expect("the backend's address");
    let server = std::thread::spawn(move || {
        let (mut conn, _) = backend.accept().expect("the fake's backend connection");
        std::io::Write::write_all(&mut conn, b"SSH-2.0-fake\r\n").expect("the banner");
    });
    fake.set(|c| c.backend = Backend::Tcp(backend_addr));
    client_runtime().block_on(async {
        let session = new_session(&fake).await;
        let url = format!(
            "wss://{}/webtunnelv2/{}?X-Node-Id=node-7f3a",
            fake.host(),
            session["websocketToken"].as_str().expect("websocketToken")
        );
        let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tls_connect(&fake).await)
            .await
            .expect("the websocket handshake");
        let mut received = Vec::new();
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => received.extend_from_slice(&b),
                Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| f.code),
                other => panic!("instead of the banner and a close: {other:?}"),
            }
        };
        assert_eq!(received, b"SSH-2.0-fake\r\n");
        assert_eq!(code, Some(CloseCode::Normal));
        // the client's reply to the close; the server ends the connection
        while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(1), ws.next()).await {}
    });
    server.join().expect("the backend thread");
    fake.wait_until("the websocket closed", Duration::from_secs(1), |f| {
        f.open_websockets() == 0
    });
}
