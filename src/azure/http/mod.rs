//! A small HTTPS/1.1 client: one request per connection (`Connection: close`), no redirects
//! followed (a redirect could carry a bearer token elsewhere), bounded heads and bodies,
//! timeouts on every step, `HTTPS_PROXY`/`NO_PROXY` through an HTTP CONNECT proxy. Everything
//! that goes into a request line or a header is checked: a value from Azure with a CR or LF
//! can never add a header.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::AzureError;
use super::tls::{Stream, Tls};

pub mod response;
pub use response::Response;

/// Connecting (TCP, the proxy's CONNECT, TLS) takes at most this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
use response::MAX_HEAD;

/// An HTTPS server: host (DNS name or IP) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// `host[:port]` as a URL authority (443 left out; IPv6 in brackets).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Parses `host[:port]`: a DNS name (letters, digits, `-`, `.`) or an IP address, nothing
    /// else (no user info, path, query or spaces).
    pub fn parse_authority(s: &str) -> Result<Endpoint, String> {
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or("an unclosed `[`")?;
            h.parse::<std::net::Ipv6Addr>()
                .map_err(|_| "not an IPv6 address in `[...]`")?;
            match after {
                "" => (h, None),
                p => (h, Some(p.strip_prefix(':').ok_or("junk after `]`")?)),
            }
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let port = match port {
            None => 443,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(format!("`{p}` is not a port")),
            },
        };
        let dns_ok = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !dns_ok && host.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("`{host}` is not a host name"));
        }
        Ok(Endpoint {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Parses an `https://host[:port][/path]` URL into the endpoint and its path (without a
    /// trailing `/`).
    pub fn parse_url(url: &str) -> Result<(Endpoint, String), String> {
        let rest = url
            .strip_prefix("https://")
            .ok_or("it must start with https://")?;
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return Err("it must not have a query or fragment".into());
        }
        if authority.contains('@') {
            return Err("it must not have user info".into());
        }
        if !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("its path has spaces or control characters".into());
        }
        Ok((
            Endpoint::parse_authority(authority)?,
            path.trim_end_matches('/').to_string(),
        ))
    }
}

/// Percent-encodes one path segment (or query value): everything but `A-Z a-z 0-9 - . _ ~`.
/// Refuses what no segment may be: empty, `.` and `..` (servers and proxies resolve those).
pub fn segment(s: &str) -> Result<String, String> {
    if s.is_empty() || s == "." || s == ".." {
        return Err(format!("`{s}` cannot be a path segment"));
    }
    Ok(encode(s, false))
}

/// One query value, percent-encoded (a space is `%20`).
pub fn query_value(s: &str) -> String {
    encode(s, false)
}

/// `application/x-www-form-urlencoded` of one value.
pub fn form_value(s: &str) -> String {
    encode(s, true)
}

fn encode(s: &str, form: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' if form => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A form body from fields.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", form_value(k), form_value(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An HTTP CONNECT proxy from `HTTPS_PROXY` (or `https_proxy`, `ALL_PROXY`, `all_proxy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub endpoint: Endpoint,
    /// `user:password` for Basic auth, when the URL has it.
    auth: Option<String>,
}

/// Hosts that bypass the proxy (`NO_PROXY`): `*`, exact hosts, domain suffixes (`.corp.com`
/// or `corp.com` match `a.corp.com`), ports ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy(Vec<String>);

impl NoProxy {
    pub fn parse(s: &str) -> NoProxy {
        NoProxy(
            s.split(',')
                .map(|e| e.trim().trim_start_matches("*.").trim_start_matches('.'))
                .map(|e| {
                    // drop a port (not inside an IPv6 address)
                    match e.rsplit_once(':') {
                        Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => h,
                        _ => e,
                    }
                })
                .map(|e| e.trim_matches(['[', ']']).to_ascii_lowercase())
                .filter(|e| !e.is_empty())
                .collect(),
        )
    }

    pub fn bypasses(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.0
            .iter()
            .any(|e| e == "*" || host == *e || host.ends_with(&format!(".{e}")))
    }
}

impl Proxy {
    /// `http://[user:pass@]host[:port]` (or `host:port`); port 80 by default... as curl says,
    /// 1080 for none given is for socks; an HTTP proxy without a port is on 80.
    pub fn parse(s: &str) -> Result<Proxy, String> {
        let s = s.trim();
        let rest = if let Some(r) = s.strip_prefix("http://") {
            r
        } else if s.contains("://") {
            return Err("only http:// proxies (HTTP CONNECT) are supported".into());
        } else {
            s
        };
        let rest = rest.trim_end_matches('/');
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(percent_decode(a)), h),
            None => (None, rest),
        };
        let mut endpoint = Endpoint::parse_authority(hostport)?;
        if !hostport.contains(':') || hostport.ends_with(']') {
            endpoint.port = 80;
        }
        Ok(Proxy { endpoint, auth })
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One request.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query, already encoded.
    pub target: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

/// The network: TLS and the proxy settings, read once from the environment.
#[derive(Clone)]
pub struct Net {
    tls: Tls,
    proxy: Option<Proxy>,
    no_proxy: NoProxy,
}

fn valid_header_value(v: &str) -> bool {
    v.bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
}

impl Net {
    /// The network as the person's settings say: TLS with their extra bundles, the proxy.
    pub fn from_config(cfg: &super::Config) -> Result<Net, AzureError> {
        let proxy = match cfg.proxy.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(p) => Some(Proxy::parse(p).map_err(|why| AzureError::ProxySetting { why })?),
            None => None,
        };
        let no_proxy = NoProxy::parse(cfg.no_proxy.as_deref().unwrap_or_default());
        Ok(Net {
            tls: Tls::from_bundles(&cfg.bundles)?,
            proxy,
            no_proxy,
        })
    }

    pub fn new(tls: Tls, proxy: Option<Proxy>, no_proxy: NoProxy) -> Net {
        Net {
            tls,
            proxy,
            no_proxy,
        }
    }

    /// The proxy used for `host`, if any.
    pub fn proxy_for(&self, host: &str) -> Option<&Proxy> {
        self.proxy
            .as_ref()
            .filter(|_| !self.no_proxy.bypasses(host))
    }

    /// A TLS connection to `ep` (through the proxy unless NO_PROXY says otherwise), with
    /// TCP_NODELAY and TCP keepalive (idle 30 s, every 10 s, 3 probes: a dead path is noticed).
    pub async fn connect(&self, ep: &Endpoint) -> Result<Stream, AzureError> {
        self.within_connect_timeout(ep, async {
            let tcp = self.tcp_to(ep).await?;
            self.tls.connect(&ep.host, tcp).await
        })
        .await
    }

    /// [`Net::connect`], the connection in two halves that run at once (the tunnel's).
    pub async fn connect_halves(
        &self,
        ep: &Endpoint,
    ) -> Result<(super::tls::Incoming, super::tls::Outgoing), AzureError> {
        self.within_connect_timeout(ep, async {
            let tcp = self.tcp_to(ep).await?;
            self.tls.connect_halves(&ep.host, tcp).await
        })
        .await
    }

    async fn within_connect_timeout<T>(
        &self,
        ep: &Endpoint,
        work: impl std::future::Future<Output = Result<T, AzureError>>,
    ) -> Result<T, AzureError> {
        tokio::time::timeout(CONNECT_TIMEOUT, work)
            .await
            .map_err(|_| AzureError::Timeout {
                what: format!("connecting to {}", ep.authority()),
                secs: CONNECT_TIMEOUT.as_secs(),
            })?
    }

    /// A TCP connection to `ep`, through the proxy unless NO_PROXY says otherwise.
    async fn tcp_to(&self, ep: &Endpoint) -> Result<TcpStream, AzureError> {
        let proxy = self.proxy_for(&ep.host);
        let first = proxy.map_or(ep, |p| &p.endpoint);
        let tcp = TcpStream::connect((first.host.as_str(), first.port))
            .await
            .map_err(|e| AzureError::Connect {
                what: match proxy {
                    Some(_) => format!("the proxy {} (HTTPS_PROXY)", first.authority()),
                    None => ep.authority(),
                },
                why: e.to_string(),
            })?;
        tune(&tcp);
        match proxy {
            Some(p) => tunnel_through(tcp, p, ep).await,
            None => Ok(tcp),
        }
    }

    /// Sends one request and reads the whole response (body up to `limit` bytes), all within
    /// `timeout`.
    pub async fn send(
        &self,
        ep: &Endpoint,
        req: &Request<'_>,
        limit: usize,
        timeout: Duration,
    ) -> Result<Response, AzureError> {
        let what = format!(
            "{} https://{}{}",
            req.method,
            ep.authority(),
            path_only(req.target)
        );
        let work = async {
            let mut s = self.connect(ep).await?;
            let head = request_head(ep, req).map_err(|why| AzureError::Protocol {
                what: what.clone(),
                why,
            })?;
            let io = |e: std::io::Error| AzureError::Io {
                what: what.clone(),
                why: e.to_string(),
            };
            s.write_all(head.as_bytes()).await.map_err(io)?;
            s.write_all(req.body).await.map_err(io)?;
            s.flush().await.map_err(io)?;
            read_response(&mut s, req.method == "HEAD", limit)
                .await
                .map_err(|why| AzureError::Protocol {
                    what: what.clone(),
                    why,
                })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| AzureError::Timeout {
                what: what.clone(),
                secs: timeout.as_secs(),
            })?
    }
}

/// The path of a target, without its query (queries can carry tokens: never in messages).
pub fn path_only(target: &str) -> &str {
    target.split('?').next().unwrap_or(target)
}

fn tune(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10));
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    let ka = ka.with_retries(3);
    let _ = socket2::SockRef::from(tcp).set_tcp_keepalive(&ka);
}

/// The request line and headers.
fn request_head(ep: &Endpoint, req: &Request<'_>) -> Result<String, String> {
    if !req.method.bytes().all(|b| b.is_ascii_uppercase())
        || !req.target.starts_with('/')
        || !req.target.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err("a malformed request line".into());
    }
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: bprof/{}\r\nConnection: close\r\n",
        req.method,
        req.target,
        ep.authority(),
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in &req.headers {
        if !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') || !valid_header_value(v) {
            return Err(format!(
                "the header `{k}` has characters a header cannot have"
            ));
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !req.body.is_empty() || matches!(req.method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    head.push_str("\r\n");
    Ok(head)
}

/// CONNECT through an HTTP proxy.
async fn tunnel_through(
    mut tcp: TcpStream,
    proxy: &Proxy,
    ep: &Endpoint,
) -> Result<TcpStream, AzureError> {
    let fail = |why: String| AzureError::Connect {
        what: format!(
            "{} through the proxy {} (HTTPS_PROXY)",
            ep.authority(),
            proxy.endpoint.authority()
        ),
        why,
    };
    let target = format!("{}:{}", bracketed(&ep.host), ep.port);
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = &proxy.auth {
        req.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            data_encoding::BASE64.encode(auth.as_bytes())
        ));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    // read the head byte by byte: nothing of the TLS stream after it may be consumed
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Err(fail("the proxy's answer is too long".into()));
        }
        match tcp.read(&mut byte).await {
            Ok(0) => return Err(fail("the proxy closed the connection".into())),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&head) {
        Ok(httparse::Status::Complete(_)) if resp.code.is_some_and(|c| (200..300).contains(&c)) => {
            Ok(tcp)
        }
        Ok(httparse::Status::Complete(_)) => Err(fail(format!(
            "the proxy answered {} {}",
            resp.code.unwrap_or(0),
            crate::terminal::value(&bounded(resp.reason.unwrap_or(""), 100))
        ))),
        _ => Err(fail("the proxy's answer is not HTTP".into())),
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// At most `n` characters of `s`, with `…` when cut.
pub fn bounded(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Reads one response (body up to `limit` bytes) with [`response::Parser`]: a read error is an
/// error, wherever it comes; the end of the stream ends a body that has no length.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    head_only: bool,
    limit: usize,
) -> Result<Response, String> {
    let mut parser = response::Parser::new(head_only, limit);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = read_some(s, &mut chunk).await?;
        if n == 0 {
            return parser.end();
        }
        if let Some(r) = parser.feed(chunk.get(..n).unwrap_or_default())? {
            return Ok(r);
        }
    }
}

async fn read_some<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    chunk: &mut [u8],
) -> Result<usize, String> {
    match s.read(chunk).await {
        Ok(n) => Ok(n),
        // a TLS peer that closes without close_notify: the end of the stream (a body with a
        // length or chunks that is not complete then is still an error)
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_reroute() {
        assert_eq!(segment("rg-hub_net.1").unwrap(), "rg-hub_net.1");
        assert_eq!(segment("a/../b?x#y").unwrap(), "a%2F..%2Fb%3Fx%23y");
        assert_eq!(segment("é %").unwrap(), "%C3%A9%20%25");
        for bad in ["", ".", ".."] {
            assert!(segment(bad).is_err(), "{bad}");
        }
        assert_eq!(form(&[("a b", "x&y=z+1")]), "a+b=x%26y%3Dz%2B1");
    }

    #[test]
    fn endpoints_are_host_and_port_only() {
        let ok = |s: &str| Endpoint::parse_url(s).unwrap();
        assert_eq!(
            ok("https://management.azure.com").0.authority(),
            "management.azure.com"
        );
        assert_eq!(
            ok("https://127.0.0.1:8443/").0,
            Endpoint {
                host: "127.0.0.1".into(),
                port: 8443
            }
        );
        assert_eq!(ok("https://[::1]:9/base/").1, "/base");
        assert_eq!(ok("https://[::1]:9").0.authority(), "[::1]:9");
        for bad in [
            "http://management.azure.com",
            "https://evil.com@management.azure.com",
            "https://a.com?x=1",
            "https://a b.com",
            "https://a.com:0",
            "https://a.com:99999",
            "https://a.com:+1",
            "https://",
            "https://a..com",
            "https://-a.com",
            "https://a.com/x y",
        ] {
            assert!(Endpoint::parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_proxy_matches_hosts_and_suffixes() {
        let n = NoProxy::parse("localhost, .corp.example ,10.0.0.1:8080,*.azure.com");
        assert!(
            n.bypasses("localhost") && n.bypasses("a.corp.example") && n.bypasses("corp.example")
        );
        assert!(n.bypasses("10.0.0.1") && n.bypasses("bst-1.bastion.azure.com"));
        assert!(!n.bypasses("management.azure.co") && !n.bypasses("xcorp.example"));
        assert!(NoProxy::parse("*").bypasses("anything"));
        assert!(!NoProxy::parse("").bypasses("anything"));
    }

    #[test]
    fn proxies_parse_as_curl_reads_them() {
        let p = Proxy::parse("http://u%40x:p@proxy.corp:3128/").unwrap();
        assert_eq!(
            p.endpoint,
            Endpoint {
                host: "proxy.corp".into(),
                port: 3128
            }
        );
        assert_eq!(p.auth.as_deref(), Some("u@x:p"));
        assert_eq!(Proxy::parse("proxy.corp").unwrap().endpoint.port, 80);
        assert!(Proxy::parse("socks5://p:1080").is_err());
    }

    #[test]
    fn header_values_cannot_add_headers() {
        let ep = Endpoint {
            host: "h".into(),
            port: 443,
        };
        let req = |v| Request {
            method: "DELETE",
            target: "/api/tokens/x",
            headers: vec![("X-Node-Id", v)],
            body: b"",
        };
        assert!(request_head(&ep, &req("node-1")).is_ok());
        assert!(request_head(&ep, &req("n\r\nEvil: 1")).is_err());
        let bad_target = Request {
            method: "GET",
            target: "/a b",
            headers: vec![],
            body: b"",
        };
        assert!(request_head(&ep, &bad_target).is_err());
    }
}
