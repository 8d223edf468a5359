//! Delivery over TLS to a loopback server whose certificate comes from a private CA that the
//! endpoint trusts: the async transport speaks HTTP/2 when the server offers it (ALPN) and
//! HTTP/1.1 otherwise; the blocking one speaks HTTP/1.1. An endpoint that does not trust the
//! CA gets nothing through.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskhook::{Action, Secret};
use deskhook_tests::{Transport, dead_letter_file, start, ticket};
use deskhook_transports::delivery::{Endpoint, read_dead_letters};
use deskhook_transports::http_blocking::HttpSink;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// One request as the TLS server saw it.
#[derive(Clone, Debug)]
struct Seen {
    protocol: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A TLS receiver on 127.0.0.1, answering 204, on a runtime of its own.
struct TlsReceiver {
    port: u16,
    ca_pem: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for TlsReceiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

fn tls_receiver(alpn: &[&[u8]]) -> TlsReceiver {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "deskhook test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = seen.clone();
    runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                if h2 {
                    serve_h2(tls, record).await;
                } else {
                    serve_http1(tls, record).await;
                }
            });
        }
    });
    TlsReceiver {
        port,
        ca_pem: ca_cert.pem(),
        seen,
        runtime: Some(runtime),
    }
}

async fn serve_h2(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    record: Arc<Mutex<Vec<Seen>>>,
) {
    let Ok(mut connection) = h2::server::handshake(tls).await else {
        return;
    };
    // The connection is driven by accept(); each request is answered on a task of its own so
    // that its body keeps flowing meanwhile.
    while let Some(Ok((request, mut respond))) = connection.accept().await {
        let record = record.clone();
        tokio::spawn(async move {
            let headers = request
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            let mut body = request.into_body();
            let mut bytes = Vec::new();
            while let Some(Ok(chunk)) = body.data().await {
                let _ = body.flow_control().release_capacity(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            record.lock().unwrap().push(Seen {
                protocol: "h2".into(),
                headers,
                body: bytes,
            });
            let response = http::Response::builder().status(204).body(()).unwrap();
            let _ = respond.send_response(response, true);
        });
    }
}

async fn serve_http1(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    record: Arc<Mutex<Vec<Seen>>>,
) {
    let mut stream = BufReader::new(tls);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if stream.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        record.lock().unwrap().push(Seen {
            protocol: "http/1.1".into(),
            headers,
            body,
        });
        let response = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
        if stream.get_mut().write_all(response).await.is_err() {
            return;
        }
    }
}

fn deliver(t: Transport, server: &TlsReceiver, secret: &Secret, trust: bool) -> usize {
    let (_dir, dead) = dead_letter_file();
    let mut endpoint = Endpoint::new("tls", &format!("https://localhost:{}/hook", server.port))
        .unwrap()
        .allow_private(true)
        .https_only(true)
        .secret(secret.clone())
        .retry("0s".parse().unwrap());
    if trust {
        endpoint = endpoint
            .ca_certificates_pem(server.ca_pem.as_bytes())
            .unwrap();
    }
    let (_sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(endpoint)
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    for code in ["H1", "H2", "H3"] {
        dispatcher.emit(Action::Comment, &ticket(code), &user);
    }
    guard.flush(Duration::from_secs(10)).unwrap();
    read_dead_letters(&dead).unwrap().len()
}

fn check_requests(server: &TlsReceiver, secret: &Secret, protocol: &str) {
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!(request.protocol, protocol);
        deskhook::verify(
            &request.headers,
            &request.body,
            std::slice::from_ref(secret),
            Duration::from_secs(300),
        )
        .unwrap();
    }
}

#[test]
fn async_speaks_http2_when_the_server_offers_it() {
    let server = tls_receiver(&[b"h2", b"http/1.1"]);
    let secret = Secret::generate().unwrap();
    assert_eq!(deliver(Transport::Async, &server, &secret, true), 0);
    check_requests(&server, &secret, "h2");
}

#[test]
fn async_speaks_http1_when_that_is_all_the_server_offers() {
    let server = tls_receiver(&[b"http/1.1"]);
    let secret = Secret::generate().unwrap();
    assert_eq!(deliver(Transport::Async, &server, &secret, true), 0);
    check_requests(&server, &secret, "http/1.1");
}

#[test]
fn blocking_delivers_over_tls_with_http1() {
    let server = tls_receiver(&[b"h2", b"http/1.1"]);
    let secret = Secret::generate().unwrap();
    assert_eq!(deliver(Transport::Blocking, &server, &secret, true), 0);
    check_requests(&server, &secret, "http/1.1");
}

#[test]
fn an_untrusted_certificate_gets_nothing_through() {
    for t in [Transport::Blocking, Transport::Async] {
        let server = tls_receiver(&[b"h2", b"http/1.1"]);
        let secret = Secret::generate().unwrap();
        assert_eq!(deliver(t, &server, &secret, false), 3, "{t:?}");
        assert!(server.seen.lock().unwrap().is_empty(), "{t:?}");
    }
}
