//! A TLS receiver on 127.0.0.1 whose certificate comes from a private CA made at run time
//! (rcgen): it speaks HTTP/2 or HTTP/1.1 as ALPN decides, answers 204, records each request,
//! and how each TLS handshake went (full or resumed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// One request as the TLS server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `h2` or `http/1.1`.
    pub protocol: String,
    /// Its headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

/// A TLS receiver on 127.0.0.1, answering 204, on a runtime of its own (stopped when
/// dropped).
#[derive(Debug)]
pub struct TlsReceiver {
    /// Its port.
    pub port: u16,
    /// The PEM of the CA that signed its certificate (for `localhost` and `127.0.0.1`).
    pub ca_pem: String,
    /// Every request, in the order they were read.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Whether each TLS handshake resumed an earlier session, in the order they ended.
    pub resumed: Arc<Mutex<Vec<bool>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for TlsReceiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// Starts a receiver offering `alpn`; with `close`, it answers each HTTP/1.1 request with
/// `Connection: close` and closes the connection (a new TLS connection per request).
pub fn tls_receiver(alpn: &[&[u8]], close: bool) -> TlsReceiver {
    start(alpn, close, H2Limits::default())
}

/// An HTTP/2 receiver that lets each connection have `max_streams` requests at once, and
/// answers none whose path starts with `/hold` (until it is dropped): a hanging endpoint
/// beside healthy ones on one origin.
pub fn h2_receiver_that_holds(max_streams: u32) -> TlsReceiver {
    start(
        &[b"h2"],
        false,
        H2Limits {
            max_streams: Some(max_streams),
            hold: true,
            ..H2Limits::default()
        },
    )
}

/// An HTTP/2 receiver that turns requests away as servers do: it refuses the first stream
/// it is sent (`REFUSED_STREAM`), and after `requests` on a connection sends `GOAWAY` (as
/// nginx does after 1,000), finishing those it took. The refused stream is not recorded.
pub fn h2_receiver_that_turns_away(requests: usize) -> TlsReceiver {
    start(
        &[b"h2"],
        false,
        H2Limits {
            refuse_first: true,
            go_away_after: Some(requests),
            ..H2Limits::default()
        },
    )
}

/// An HTTP/2 receiver whose first connection goes silent after answering `answers`
/// requests: it stays open but nothing more is read from it or written to it (pings
/// included), as a connection whose flow a NAT or a load balancer dropped. The request that
/// found it silent is not recorded; later connections serve as usual.
pub fn h2_receiver_that_goes_silent(answers: usize) -> TlsReceiver {
    start(
        &[b"h2"],
        false,
        H2Limits {
            silent_after: Some(answers),
            ..H2Limits::default()
        },
    )
}

/// A TLS receiver (HTTP/1.1 only) that answers a request whose body is over `limit` bytes
/// `413` as soon as it has the head, then reads nothing more from that connection (a body
/// limit refusing early); smaller ones get 204.
pub fn tls_receiver_that_refuses_over(limit: usize) -> TlsReceiver {
    start(
        &[b"http/1.1"],
        false,
        H2Limits {
            refuse_over: Some(limit),
            ..H2Limits::default()
        },
    )
}

/// An HTTP/2 receiver whose answers carry a header of `bytes` bytes (a large policy or
/// cookie header): a head over HTTP/2's usual 16 KiB limit, under the 64 KiB deskhook reads.
pub fn h2_receiver_with_a_large_answer_head(bytes: usize) -> TlsReceiver {
    start(
        &[b"h2"],
        false,
        H2Limits {
            answer_padding: Some(bytes),
            ..H2Limits::default()
        },
    )
}

/// How the receiver serves (HTTP/2 but `refuse_over`).
#[derive(Clone, Copy, Default)]
struct H2Limits {
    /// HTTP/1.1: a body over this many bytes is refused (`413`) once the head came, unread.
    refuse_over: Option<usize>,
    max_streams: Option<u32>,
    /// Requests to `/hold…` are never answered.
    hold: bool,
    /// The first stream the server is sent is refused.
    refuse_first: bool,
    /// `GOAWAY` after this many requests on a connection (a refused one aside).
    go_away_after: Option<usize>,
    /// The first connection goes silent after answering this many requests.
    silent_after: Option<usize>,
    /// Each answer carries a header of this many bytes.
    answer_padding: Option<usize>,
}

fn start(alpn: &[&[u8]], close: bool, limits: H2Limits) -> TlsReceiver {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "deskhook test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
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
    let resumed: Arc<Mutex<Vec<bool>>> = Arc::default();
    let (record, handshakes) = (seen.clone(), resumed.clone());
    let refused = Arc::new(AtomicBool::new(!limits.refuse_first));
    let mut first = true;
    runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, record, handshakes, refused) = (
                acceptor.clone(),
                record.clone(),
                handshakes.clone(),
                refused.clone(),
            );
            let silent_after = limits.silent_after.filter(|_| std::mem::take(&mut first));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let kind = tls.get_ref().1.handshake_kind();
                handshakes
                    .lock()
                    .unwrap()
                    .push(kind == Some(rustls::HandshakeKind::Resumed));
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                if h2 {
                    serve_h2(tls, record, limits, &refused, silent_after).await;
                } else {
                    serve_http1(tls, record, close, limits.refuse_over).await;
                }
            });
        }
    });
    TlsReceiver {
        port,
        ca_pem: ca_cert.pem(),
        seen,
        resumed,
        runtime: Some(runtime),
    }
}

async fn serve_h2(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    record: Arc<Mutex<Vec<Seen>>>,
    limits: H2Limits,
    refused: &AtomicBool,
    silent_after: Option<usize>,
) {
    let mut builder = h2::server::Builder::new();
    if let Some(max) = limits.max_streams {
        builder.max_concurrent_streams(max);
    }
    let Ok(mut connection) = builder.handshake::<_, bytes::Bytes>(tls).await else {
        return;
    };
    // The connection is driven by accept(); each request is answered on a task of its own so
    // that its body keeps flowing meanwhile.
    let mut streams = 0;
    while let Some(Ok((request, mut respond))) = connection.accept().await {
        if !refused.swap(true, Ordering::SeqCst) {
            respond.send_reset(h2::Reason::REFUSED_STREAM);
            continue;
        }
        if silent_after == Some(streams) {
            // Held open, never polled again: nothing read, nothing written.
            let _held = (connection, request, respond);
            return std::future::pending().await;
        }
        streams += 1;
        if limits.go_away_after == Some(streams) {
            connection.graceful_shutdown();
        }
        let record = record.clone();
        tokio::spawn(async move {
            let hold = limits.hold && request.uri().path().starts_with("/hold");
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
            if hold {
                // Until the receiver's runtime shuts down.
                std::future::pending::<()>().await;
            }
            let mut response = http::Response::builder().status(204);
            if let Some(bytes) = limits.answer_padding {
                response = response.header("x-padding", "p".repeat(bytes));
            }
            let _ = respond.send_response(response.body(()).unwrap(), true);
        });
    }
}

async fn serve_http1(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    record: Arc<Mutex<Vec<Seen>>>,
    close: bool,
    refuse_over: Option<usize>,
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
        let length = crate::content_length(&headers);
        if refuse_over.is_some_and(|limit| length > limit) {
            let refusal = b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\n\r\ntoo big!";
            if stream.get_mut().write_all(refusal).await.is_ok() {
                let _ = stream.get_mut().flush().await;
                // Held, nothing more read, until the receiver's runtime shuts down.
                std::future::pending::<()>().await;
            }
            return;
        }
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        record.lock().unwrap().push(Seen {
            protocol: "http/1.1".into(),
            headers,
            body,
        });
        let response: &[u8] = if close {
            b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
        } else {
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
        };
        if stream.get_mut().write_all(response).await.is_err() || close {
            let _ = stream.get_mut().shutdown().await;
            return;
        }
    }
}
