//! The fake's TLS: its throwaway certificate, the acceptor (the TLS versions and suites a test
//! asks for), and the tap that reads the client's record headers as they pass.

use super::*;

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

pub(super) type Tls = tokio_rustls::server::TlsStream<Tap>;

/// The client's side of a connection, its TLS records' headers read as they pass: TLS 1.3
/// records of exactly 22 bytes after the handshake are the client's key updates (a 5-byte
/// message, its content type, a 16-byte tag; no websocket frame is that small: an empty one
/// takes 23), counted.
pub(super) struct Tap {
    pub(super) tcp: TcpStream,
    /// Header bytes of the record being read so far, and what is left of its body.
    pub(super) header: Vec<u8>,
    pub(super) body_left: usize,
    pub(super) state: Shared,
}

impl Tap {
    pub(super) fn new(tcp: TcpStream, state: Shared) -> Tap {
        Tap {
            tcp,
            header: Vec::with_capacity(5),
            body_left: 0,
            state,
        }
    }

    pub(super) fn saw(&mut self, mut bytes: &[u8]) {
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
