//! TLS for bprof's own HTTPS and websockets: one interface ([`Tls::connect`]), two
//! implementations chosen at build time. Linux: rustls (ring) with the system's CA bundle.
//! Windows and macOS: the platform's own TLS through native-tls (SChannel, Security.framework),
//! which uses the platform's trust store and needs no C compiler to build. Both add the
//! certificates of `SSL_CERT_FILE` and `REQUESTS_CA_BUNDLE` (people behind TLS-inspecting proxies
//! set the latter for az already).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::AzureError;

/// A byte stream: a TLS connection (or, inside it, anything that reads and writes).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Stream = Box<dyn Io>;

/// The environment variables whose PEM bundles are trusted besides the platform's store.
pub const BUNDLE_VARS: [&str; 2] = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"];

/// A bundle is read up to this size.
const MAX_BUNDLE: u64 = 16 * 1024 * 1024;

/// The extra bundles the settings name: (variable, its PEM). A named file that cannot be read
/// is an error that names the variable (a silent fallback would hide why TLS fails).
fn extra_bundles(
    named: &[(String, std::path::PathBuf)],
) -> Result<Vec<(String, Vec<u8>)>, AzureError> {
    let mut out = Vec::new();
    for (var, path) in named {
        let bytes =
            crate::files::read_regular(path, MAX_BUNDLE).map_err(|e| AzureError::Bundle {
                var: var.clone(),
                path: path.display().to_string(),
                why: e.to_string(),
            })?;
        out.push((format!("{var}={}", path.display()), bytes));
    }
    Ok(out)
}

/// The certificates of a PEM bundle (each `BEGIN CERTIFICATE` block, base64-decoded).
pub fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let Some(end) = after.find(END) else { break };
        let b64: String = after[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if let Ok(der) = data_encoding::BASE64.decode(b64.as_bytes()) {
            out.push(der);
        }
        rest = &after[end + END.len()..];
    }
    out
}

/// A bundle (`VAR=PATH`) with no usable certificate.
fn no_certificate(name: &str) -> AzureError {
    let (var, path) = name.split_once('=').unwrap_or((name, ""));
    AzureError::Bundle {
        var: var.into(),
        path: path.into(),
        why: "it holds no usable PEM certificate".into(),
    }
}

/// The TLS client configuration, built once per process.
#[derive(Clone)]
pub struct Tls {
    #[cfg(target_os = "linux")]
    config: Arc<tokio_rustls::rustls::ClientConfig>,
    #[cfg(not(target_os = "linux"))]
    connector: Arc<tokio_native_tls::TlsConnector>,
}

/// Where Linux distributions keep the system's CA bundle (the first that exists is used).
#[cfg(target_os = "linux")]
const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

impl Tls {
    /// The platform's trust store plus the bundles the settings name
    /// (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`).
    pub fn from_bundles(named: &[(String, std::path::PathBuf)]) -> Result<Tls, AzureError> {
        Tls::with(extra_bundles(named)?, true)
    }

    /// `extra` PEM bundles (named for messages), with or without the platform's store.
    pub fn with(extra: Vec<(String, Vec<u8>)>, platform: bool) -> Result<Tls, AzureError> {
        #[cfg(target_os = "linux")]
        {
            use tokio_rustls::rustls::{self, RootCertStore};
            let mut roots = RootCertStore::empty();
            if platform
                && let Some(bytes) = SYSTEM_BUNDLES.iter().find_map(|p| {
                    crate::files::read_regular(std::path::Path::new(p), MAX_BUNDLE).ok()
                })
            {
                roots.add_parsable_certificates(
                    pem_certificates(&bytes)
                        .into_iter()
                        .map(rustls_pki_types::CertificateDer::from),
                );
            }
            for (name, pem) in &extra {
                let certs = pem_certificates(pem);
                let (added, _) = roots.add_parsable_certificates(
                    certs
                        .into_iter()
                        .map(rustls_pki_types::CertificateDer::from),
                );
                if added == 0 {
                    return Err(no_certificate(name));
                }
            }
            // AES-128-GCM first: as safe for this, and cheaper per byte than AES-256 (the tunnel
            // encrypts every byte of the session)
            let mut provider = rustls::crypto::ring::default_provider();
            provider.cipher_suites.sort_by_key(|s| {
                use rustls::CipherSuite as C;
                match s.suite() {
                    C::TLS13_AES_128_GCM_SHA256 => 0,
                    C::TLS13_AES_256_GCM_SHA384 => 1,
                    C::TLS13_CHACHA20_POLY1305_SHA256 => 2,
                    _ => 3,
                }
            });
            let provider = Arc::new(provider);
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| AzureError::TlsSetup(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Tls {
                config: Arc::new(config),
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let mut b = native_tls::TlsConnector::builder();
            b.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
            b.disable_built_in_roots(!platform);
            for (name, pem) in &extra {
                let certs = pem_certificates(pem);
                if certs.is_empty() {
                    return Err(no_certificate(name));
                }
                for der in certs {
                    if let Ok(c) = native_tls::Certificate::from_der(&der) {
                        b.add_root_certificate(c);
                    }
                }
            }
            let connector = b.build().map_err(|e| AzureError::TlsSetup(e.to_string()))?;
            Ok(Tls {
                connector: Arc::new(tokio_native_tls::TlsConnector::from(connector)),
            })
        }
    }

    /// The TLS handshake with `host` (a DNS name or an IP address) over `tcp`; the certificate
    /// must be valid for `host`.
    pub async fn connect(&self, host: &str, tcp: TcpStream) -> Result<Stream, AzureError> {
        let failed = |e: String| AzureError::Tls {
            host: host.to_string(),
            why: e,
        };
        #[cfg(target_os = "linux")]
        {
            let name = rustls_pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| failed(e.to_string()))?;
            let s = tokio_rustls::TlsConnector::from(Arc::clone(&self.config))
                .connect(name, tcp)
                .await
                .map_err(|e| failed(e.to_string()))?;
            Ok(Box::new(s))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let s = self
                .connector
                .connect(host, tcp)
                .await
                .map_err(|e| failed(e.to_string()))?;
            Ok(Box::new(s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_found_among_other_text() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n# c\n-----BEGIN CERTIFICATE-----\nBAU=\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nunterminated";
        assert_eq!(pem_certificates(pem), vec![vec![0, 1, 2, 3], vec![4, 5]]);
        assert!(pem_certificates(b"").is_empty());
    }

    #[test]
    fn a_bundle_without_certificates_is_named() {
        let e = Tls::with(
            vec![("SSL_CERT_FILE=/x.pem".into(), b"nothing".to_vec())],
            false,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("SSL_CERT_FILE") && e.contains("/x.pem"), "{e}");
    }
}
