//! The TLS settings of both HTTP transports: rustls with the ring provider, the Mozilla
//! roots of webpki-roots or an endpoint's own CA, and one configuration (with its
//! session-resumption cache) per set of roots, shared by the endpoints that trust them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::delivery::lock;

/// A set of CA roots (DER certificates), or `None` for the public ones.
pub(crate) type Roots = Option<Vec<Vec<u8>>>;

/// One TLS configuration per set of roots, so that endpoints share one copy of the root
/// store and one session-resumption cache; held by the origins that use it, so that one no
/// endpoint uses any more goes.
pub(crate) struct TlsConfigs {
    /// The protocols offered by ALPN, in order of preference.
    alpn: &'static [&'static [u8]],
    /// The configurations in use, by their roots (`None`: the public ones).
    by_roots: Mutex<HashMap<Roots, Weak<rustls::ClientConfig>>>,
}

impl TlsConfigs {
    /// No configuration yet; those made will offer `alpn`.
    pub(crate) fn new(alpn: &'static [&'static [u8]]) -> TlsConfigs {
        TlsConfigs {
            alpn,
            by_roots: Mutex::default(),
        }
    }

    /// The configuration trusting `roots`, made if no origin uses it yet.
    pub(crate) fn get(&self, roots: &Roots) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut configs = lock(&self.by_roots);
        if let Some(config) = configs.get(roots).and_then(Weak::upgrade) {
            return Ok(config);
        }
        let config = Arc::new(tls_config(roots.as_deref(), self.alpn)?);
        configs.retain(|_, config| config.strong_count() > 0);
        configs.insert(roots.clone(), Arc::downgrade(&config));
        Ok(config)
    }
}

/// TLS with rustls and the ring provider, the Mozilla roots of webpki-roots (or an
/// endpoint's own CA), ALPN offering `alpn`, and rustls' in-memory session cache
/// (resumption by tickets and session ids); set per configuration, so nothing process-wide
/// is installed.
pub(super) fn tls_config(
    certs: Option<&[Vec<u8>]>,
    alpn: &[&[u8]],
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match certs {
        Some(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots
                    .add(rustls_pki_types::CertificateDer::from(cert.clone()))
                    .map_err(|e| format!("a CA certificate cannot be used: {e}"))?;
            }
            roots
        }
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The message of a TLS handshake that failed with `e`, with what to do about the failures
/// an operator can fix: a private CA the endpoint was not given, a name the certificate does
/// not carry, a port that does not speak TLS.
pub(crate) fn handshake_failed(e: &std::io::Error) -> String {
    use rustls::{CertificateError, InvalidMessage};
    let tls = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    let hint = match tls {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            "; if the receiver's certificate is signed by a private CA, give the endpoint that \
             CA (`ca_file`, `Endpoint::ca_certificates_pem`)"
        }
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => "; the certificate does not name the URL's host: use a name it carries",
        Some(rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType)) => {
            "; the server does not seem to speak TLS on this port (should the URL be http://?)"
        }
        _ => "",
    };
    format!("TLS handshake failed: {e}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_with(error: rustls::Error) -> String {
        handshake_failed(&std::io::Error::new(std::io::ErrorKind::InvalidData, error))
    }

    #[test]
    fn a_handshake_that_failed_says_what_to_do() {
        use rustls::{CertificateError, InvalidMessage};
        let unknown = failed_with(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert!(unknown.contains("give the endpoint that CA"), "{unknown}");
        let named = failed_with(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        ));
        assert!(named.contains("does not name the URL's host"), "{named}");
        let plain = failed_with(rustls::Error::InvalidMessage(
            InvalidMessage::InvalidContentType,
        ));
        assert!(
            plain.starts_with("TLS handshake failed: received corrupt message"),
            "{plain}"
        );
        assert!(plain.contains("should the URL be http://?"), "{plain}");
        let other = failed_with(rustls::Error::InvalidCertificate(CertificateError::Expired));
        assert!(!other.contains(';'), "{other}");
        let io = handshake_failed(&std::io::ErrorKind::ConnectionReset.into());
        assert_eq!(io, "TLS handshake failed: connection reset");
    }
}
