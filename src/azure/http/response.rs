//! HTTP/1.1 response framing, without I/O: bytes from the peer in, a response or a clear error
//! out, never a panic (every size from the peer is checked; the fuzz target `http_response`
//! drives it). Interim answers (1xx) are skipped, a few at most; a body is delimited by
//! `Transfer-Encoding: chunked`, by one `Content-Length` (digits only, duplicates that disagree
//! refused), or by the end of the connection; a body never grows past the caller's limit.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

/// A response head is read up to this size.
pub const MAX_HEAD: usize = 64 * 1024;
/// Interim (1xx) answers skipped before the final one.
const MAX_INTERIM: usize = 8;
/// A chunk size line (size, extensions) is at most this long.
const MAX_CHUNK_LINE: usize = 1024;

/// One response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    Close,
}

#[derive(Debug)]
enum State {
    Head { interim: usize },
    Body { resp: Response, framing: Framing },
    Done,
}

/// Reads one response from the bytes fed to it.
#[derive(Debug)]
pub struct Parser {
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    head_only: bool,
    limit: usize,
    state: State,
    /// A chunked body decoded so far, and where in `buf` the next chunk starts.
    decoded: Vec<u8>,
    chunk_at: usize,
}

impl Parser {
    /// A parser for the answer to a request (`head_only`: a HEAD request, whose answer has no
    /// body), with bodies of at most `limit` bytes.
    pub fn new(head_only: bool, limit: usize) -> Parser {
        Parser {
            buf: Vec::new(),
            head_only,
            limit,
            state: State::Head { interim: 0 },
            decoded: Vec::new(),
            chunk_at: 0,
        }
    }

    /// Takes bytes from the peer; the response once it is complete.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Response>, String> {
        if matches!(self.state, State::Done) {
            return Ok(None);
        }
        self.buf.extend_from_slice(data);
        self.step()
    }

    /// The peer closed the connection: the response, if it ends this way.
    pub fn end(&mut self) -> Result<Response, String> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Head { .. } if self.buf.is_empty() => {
                Err("the server closed the connection without answering".into())
            }
            State::Head { .. } => {
                Err("the server closed the connection in the middle of its answer".into())
            }
            State::Body {
                mut resp,
                framing: Framing::Close,
            } => {
                resp.body = std::mem::take(&mut self.buf);
                Ok(resp)
            }
            State::Body {
                framing: Framing::Length(_),
                ..
            } => Err("the answer ended before its Content-Length".into()),
            State::Body { .. } => Err("the answer ended inside a chunk".into()),
            State::Done => Err("the answer was already read".into()),
        }
    }

    fn step(&mut self) -> Result<Option<Response>, String> {
        loop {
            match &mut self.state {
                State::Head { interim } => {
                    let interim = *interim;
                    let Some((resp, used)) = parse_head(&self.buf)? else {
                        if self.buf.len() > MAX_HEAD {
                            return Err("the answer's head is too long".into());
                        }
                        return Ok(None);
                    };
                    self.buf.drain(..used.min(self.buf.len()));
                    if (100..200).contains(&resp.status) {
                        if resp.status == 101 {
                            return Err("the server switched protocols unasked (101)".into());
                        }
                        let interim = interim.saturating_add(1);
                        if interim > MAX_INTERIM {
                            return Err("too many interim (1xx) answers".into());
                        }
                        self.state = State::Head { interim };
                        continue;
                    }
                    if self.head_only || resp.status == 204 || resp.status == 304 {
                        self.state = State::Done;
                        return Ok(Some(resp));
                    }
                    let framing = framing(&resp)?;
                    if let Framing::Length(n) = framing
                        && n > self.limit
                    {
                        return Err(self.too_big());
                    }
                    self.state = State::Body { resp, framing };
                }
                State::Body { framing, .. } => {
                    let framing = *framing;
                    let body = match framing {
                        Framing::Length(n) => self.take_length(n),
                        Framing::Chunked => self.take_chunked()?,
                        Framing::Close => {
                            if self.buf.len() > self.limit {
                                return Err(self.too_big());
                            }
                            None
                        }
                    };
                    let Some(body) = body else { return Ok(None) };
                    let State::Body { mut resp, .. } =
                        std::mem::replace(&mut self.state, State::Done)
                    else {
                        return Ok(None);
                    };
                    resp.body = body;
                    return Ok(Some(resp));
                }
                State::Done => return Ok(None),
            }
        }
    }

    fn too_big(&self) -> String {
        format!("the answer is larger than {} bytes", self.limit)
    }

    /// The body of `n` bytes, once it is here (what follows it is ignored: one request per
    /// connection).
    fn take_length(&mut self, n: usize) -> Option<Vec<u8>> {
        let body = self.buf.get(..n)?.to_vec();
        self.buf.clear();
        Some(body)
    }

    /// The decoded body, once its last chunk is here; each chunk is decoded once, when it is
    /// whole.
    fn take_chunked(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            let rest = self.buf.get(self.chunk_at..).unwrap_or_default();
            let Some(line_len) = find(rest, b"\r\n") else {
                if rest.len() > MAX_CHUNK_LINE {
                    return Err("a bad chunk size line".into());
                }
                return Ok(None);
            };
            if line_len > MAX_CHUNK_LINE {
                return Err("a bad chunk size line".into());
            }
            let size = chunk_size(rest.get(..line_len).unwrap_or_default())?;
            if size == 0 {
                // trailers are not read: the connection closes after this answer
                self.buf.clear();
                return Ok(Some(std::mem::take(&mut self.decoded)));
            }
            if self
                .decoded
                .len()
                .checked_add(size)
                .is_none_or(|n| n > self.limit)
            {
                return Err(self.too_big());
            }
            let data_start = line_len.checked_add(2).ok_or("a bad chunk size")?;
            let data_end = data_start.checked_add(size).ok_or("a bad chunk size")?;
            let next = data_end.checked_add(2).ok_or("a bad chunk size")?;
            let (Some(data), Some(end)) =
                (rest.get(data_start..data_end), rest.get(data_end..next))
            else {
                return Ok(None);
            };
            if end != b"\r\n" {
                return Err("a chunk that does not end with CRLF".into());
            }
            self.decoded.extend_from_slice(data);
            self.chunk_at = self.chunk_at.checked_add(next).ok_or("a bad chunk size")?;
        }
    }
}

/// A complete head at the start of `buf` and its length, or None while it is partial.
fn parse_head(buf: &[u8]) -> Result<Option<(Response, usize)>, String> {
    let mut hs = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut hs);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            let status = resp.code.ok_or("an answer without a status")?;
            if !(100..=599).contains(&status) {
                return Err(format!("the status {status} is not an HTTP status"));
            }
            let headers = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            Ok(Some((
                Response {
                    status,
                    headers,
                    body: Vec::new(),
                },
                n,
            )))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err("the answer has too many headers".into()),
        Err(e) => Err(format!("the answer is not HTTP ({e})")),
    }
}

/// How the body of `resp` ends: chunked wins over a length; a transfer coding bprof cannot
/// undo, or lengths that disagree or are not digits, are errors.
fn framing(resp: &Response) -> Result<Framing, String> {
    let codings: Vec<String> = resp
        .headers
        .iter()
        .filter(|(k, _)| k == "transfer-encoding")
        .flat_map(|(_, v)| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    match codings.as_slice() {
        [] => {}
        [c] if c == "chunked" => return Ok(Framing::Chunked),
        _ => {
            return Err(format!(
                "the answer's Transfer-Encoding `{}` is not one bprof reads",
                codings.join(", ")
            ));
        }
    }
    let mut length: Option<usize> = None;
    for (_, v) in resp.headers.iter().filter(|(k, _)| k == "content-length") {
        for part in v.split(',') {
            let part = part.trim();
            let n = if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse::<usize>().ok()
            } else {
                None
            }
            .ok_or_else(|| format!("a bad Content-Length `{}`", super::bounded(part, 40)))?;
            match length {
                Some(m) if m != n => return Err("Content-Length given twice, differently".into()),
                _ => length = Some(n),
            }
        }
    }
    Ok(length.map_or(Framing::Close, Framing::Length))
}

/// A chunk size line: hex digits (at most 16), then optional `;extensions`.
fn chunk_size(line: &[u8]) -> Result<usize, String> {
    let text = std::str::from_utf8(line).map_err(|_| "a bad chunk size".to_string())?;
    let digits = text.split(';').next().unwrap_or("").trim();
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("a bad chunk size".into());
    }
    usize::from_str_radix(digits, 16).map_err(|_| "a chunk size too large".to_string())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The whole exchange at once: `bytes` as they came, then the end of the connection (the fuzz
/// target and the tests read answers this way).
pub fn parse_all(bytes: &[u8], head_only: bool, limit: usize) -> Result<Response, String> {
    let mut p = Parser::new(head_only, limit);
    match p.feed(bytes)? {
        Some(r) => Ok(r),
        None => p.end(),
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn ok(raw: &[u8]) -> Response {
        parse_all(raw, false, 100).unwrap()
    }

    fn err(raw: &[u8]) -> String {
        parse_all(raw, false, 100).unwrap_err()
    }

    #[test]
    fn lengths_chunks_and_the_end() {
        let r = ok(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        assert_eq!(r.body, b"hello world");
        let r = ok(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n<html>x</html>");
        assert_eq!(r.body, b"<html>x</html>");
        assert_eq!(r.header("Content-Type"), Some("text/html"));
        assert!(ok(b"HTTP/1.1 204 No Content\r\n\r\n").body.is_empty());
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nhi").body,
            b"hi"
        );
    }

    #[test]
    fn hostile_framing_is_an_error_not_a_panic() {
        for (raw, want) in [
            (&b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n"[..], "larger than"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", "before its Content-Length"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", "bad Content-Length"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "twice"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", "bad Content-Length"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n", "larger than"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nFFFFFFFFFFFFFFF0\r\nx", "larger than"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", "CRLF"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "Transfer-Encoding"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "inside a chunk"),
            (b"", "without answering"),
            (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP"),
            (b"HTTP/1.1 99 Odd\r\n\r\n", "not HTTP"),
            (b"HTTP/1.1 200 OK\r\nX: 1\r\n", "middle of its answer"),
            (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols"),
        ] {
            let e = err(raw);
            assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(raw));
        }
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..10_000 {
            endless.extend_from_slice(format!("X-{i}: {}\r\n", "y".repeat(20)).as_bytes());
        }
        assert!(err(&endless).contains("head"), "{}", err(&endless));
    }

    #[test]
    fn interim_answers_are_skipped_a_few_at_most() {
        let r = ok(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi"[..]));
        let many = "HTTP/1.1 100 Continue\r\n\r\n".repeat(20);
        assert!(err(many.as_bytes()).contains("interim"));
    }

    #[test]
    fn bytes_may_arrive_one_by_one() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let mut p = Parser::new(false, 100);
        let mut got = None;
        for b in raw {
            if let Some(r) = p.feed(&[*b]).unwrap() {
                got = Some(r);
            }
        }
        assert_eq!(got.unwrap().body, b"hello");
    }
}
