//! TLS for bprof's own HTTPS and websockets: one interface ([`Tls::connect`]), two
//! implementations chosen at build time. Linux, Windows and other systems: rustls (ring) with the
//! platform's roots (the system's CA bundle; on Windows the certificates of the `ROOT` store,
//! which includes the roots an enterprise's group policy adds). macOS: Security.framework through
//! native-tls, which keeps the keychain's trust settings. All add the certificates of
//! `SSL_CERT_FILE` and `REQUESTS_CA_BUNDLE` (people behind TLS-inspecting proxies set the latter
//! for az already).
//!
//! Why rustls on Windows rather than SChannel: native-tls gives no hook over SChannel's chain
//! check, whose revocation flags Wine ignores (a CA without revocation information, like many
//! TLS-inspecting proxies' and the tests' own, fails there with CERT_E_REVOCATION_FAILURE), and
//! on Windows itself that check consults the revocation cache only. rustls checks the chain the
//! same way on every system, and the Windows build is tested under Wine with it.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::AzureError;

/// A byte stream: a TLS connection (or, inside it, anything that reads and writes).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Stream = Box<dyn Io>;

#[cfg(not(target_os = "macos"))]
mod halves;
#[cfg(target_os = "macos")]
#[path = "halves_macos.rs"]
mod halves;
#[cfg(not(target_os = "macos"))]
pub mod records;

pub use halves::{Incoming, Outgoing};

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
    #[cfg(not(target_os = "macos"))]
    config: Arc<tokio_rustls::rustls::ClientConfig>,
    /// The same, for connections whose records bprof seals and opens itself (the tunnel's):
    /// rustls hands over their keys after the handshake.
    #[cfg(not(target_os = "macos"))]
    handing_over: Arc<tokio_rustls::rustls::ClientConfig>,
    #[cfg(target_os = "macos")]
    connector: Arc<tokio_native_tls::TlsConnector>,
}

/// Where Unix systems keep the system's CA bundle (the first that exists is used).
#[cfg(all(unix, not(target_os = "macos")))]
const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

/// The platform's root certificates (DER): the system's CA bundle.
#[cfg(all(unix, not(target_os = "macos")))]
fn platform_roots() -> Vec<Vec<u8>> {
    SYSTEM_BUNDLES
        .iter()
        .find_map(|p| crate::files::read_regular(std::path::Path::new(p), MAX_BUNDLE).ok())
        .map(|bytes| pem_certificates(&bytes))
        .unwrap_or_default()
}

/// The platform's root certificates (DER): the current user's `ROOT` store, which holds the
/// machine's roots and those group policy adds.
#[cfg(windows)]
fn platform_roots() -> Vec<Vec<u8>> {
    use windows_sys::Win32::Security::Cryptography::{
        CertCloseStore, CertEnumCertificatesInStore, CertOpenSystemStoreW,
    };
    let name: Vec<u16> = "ROOT".encode_utf16().chain([0]).collect();
    let mut out = Vec::new();
    // SAFETY: the store handle is checked, each context is read only while the enumeration
    // holds it (the next call frees the previous one), and the store is closed once.
    unsafe {
        let store = CertOpenSystemStoreW(0, name.as_ptr());
        if store.is_null() {
            return out;
        }
        let mut cert = CertEnumCertificatesInStore(store, std::ptr::null());
        while !cert.is_null() {
            let c = &*cert;
            if !c.pbCertEncoded.is_null() && c.cbCertEncoded > 0 {
                out.push(
                    std::slice::from_raw_parts(c.pbCertEncoded, c.cbCertEncoded as usize).to_vec(),
                );
            }
            cert = CertEnumCertificatesInStore(store, cert);
        }
        CertCloseStore(store, 0);
    }
    out
}

#[cfg(not(any(unix, windows)))]
fn platform_roots() -> Vec<Vec<u8>> {
    Vec::new()
}

impl Tls {
    /// The platform's trust store plus the bundles the settings name
    /// (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`).
    pub fn from_bundles(named: &[(String, std::path::PathBuf)]) -> Result<Tls, AzureError> {
        Tls::with(extra_bundles(named)?, true)
    }

    /// `extra` PEM bundles (named for messages), with or without the platform's store.
    pub fn with(extra: Vec<(String, Vec<u8>)>, platform: bool) -> Result<Tls, AzureError> {
        #[cfg(not(target_os = "macos"))]
        {
            use tokio_rustls::rustls::{self, RootCertStore};
            let mut roots = RootCertStore::empty();
            if platform {
                roots.add_parsable_certificates(
                    platform_roots()
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
            let mut handing_over = config.clone();
            handing_over.enable_secret_extraction = true;
            Ok(Tls {
                config: Arc::new(config),
                handing_over: Arc::new(handing_over),
            })
        }
        #[cfg(target_os = "macos")]
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
        #[cfg(not(target_os = "macos"))]
        {
            let name = server_name(host)?;
            let s = tokio_rustls::TlsConnector::from(Arc::clone(&self.config))
                .connect(name, tcp)
                .await
                .map_err(|e| failed(host, e.to_string()))?;
            Ok(Box::new(s))
        }
        #[cfg(target_os = "macos")]
        {
            Ok(Box::new(self.connect_native(host, tcp).await?))
        }
    }

    /// [`Tls::connect`], the connection in two halves that run at once (the tunnel's).
    pub async fn connect_halves(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<(Incoming, Outgoing), AzureError> {
        #[cfg(not(target_os = "macos"))]
        {
            let name = server_name(host)?;
            halves::handshake(Arc::clone(&self.handing_over), name, tcp)
                .await
                .map_err(|e| failed(host, e))
        }
        #[cfg(target_os = "macos")]
        {
            Ok(halves::split(self.connect_native(host, tcp).await?))
        }
    }

    #[cfg(target_os = "macos")]
    async fn connect_native(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<tokio_native_tls::TlsStream<TcpStream>, AzureError> {
        self.connector
            .connect(host, tcp)
            .await
            .map_err(|e| failed(host, e.to_string()))
    }
}

fn failed(host: &str, why: String) -> AzureError {
    AzureError::Tls {
        host: host.to_string(),
        why,
    }
}

#[cfg(not(target_os = "macos"))]
fn server_name(host: &str) -> Result<rustls_pki_types::ServerName<'static>, AzureError> {
    rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| failed(host, e.to_string()))
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
