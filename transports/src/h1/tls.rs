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
fn tls_config(certs: Option<&[Vec<u8>]>, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, String> {
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
