//! The fake's HTTP: the listeners, a proxy's CONNECT, one request per connection read and
//! answered, the plain TCP echo.

use super::*;

pub(super) async fn serve(listener: TcpListener, tls: TlsAcceptor, state: Shared, host: String) {
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
pub(super) async fn proxy_connect(tcp: &mut TcpStream, state: &Shared) -> std::io::Result<()> {
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

pub(super) async fn serve_echo(listener: TcpListener) {
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
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: String,
}

impl Reply {
    pub(super) fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            content_type: "application/json; charset=utf-8",
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// `{"message": ...}`, as the bastion's token endpoint says what went wrong.
    pub(super) fn message(status: u16, message: &str) -> Reply {
        Reply::json(status, serde_json::json!({ "message": message }))
    }

    /// `{"error": {"code": ..., "message": ...}}`, as ARM does.
    pub(super) fn arm_error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            serde_json::json!({ "error": { "code": code, "message": message } }),
        )
    }

    pub(super) fn html(status: u16) -> Reply {
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
pub(super) enum Outcome {
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
pub(super) type Unread = Option<Reply>;

pub(super) async fn connection(mut stream: Tls, peer: SocketAddr, state: Shared, host: String) {
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
pub(super) async fn read_request(
    stream: &mut Tls,
    peer: SocketAddr,
) -> Result<(Request, Vec<u8>), Unread> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let (head_len, method, path, headers) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut slots);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let headers = lowercase_headers(parsed.headers);
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

pub(super) async fn write_reply(stream: &mut Tls, reply: Reply) {
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

pub(super) fn reason(status: u16) -> &'static str {
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

/// Headers as (lower-case name, value).
pub(super) fn lowercase_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}
