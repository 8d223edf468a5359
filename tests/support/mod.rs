//! Shared pieces of the cross-crate tests: a loopback HTTP receiver that records what it gets
//! and answers as each test scripts it.
//!
//! Every receiver binds `127.0.0.1:0` and is stopped (its threads joined) when dropped.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a test waits for requests before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request path.
    pub path: String,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// Its number in the order of arrival, from 0.
    pub index: usize,
    /// The status it was answered with.
    pub status: u16,
}

impl Received {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// How to answer one request.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Answer {
    /// An immediate answer with this status and no headers.
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// This answer with a header.
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// This answer after a delay.
    pub fn after(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }
}

type Reply = dyn Fn(&Received, usize) -> Answer + Send + Sync;

struct Shared {
    log: Mutex<Vec<Received>>,
    arrived: Condvar,
}

/// A loopback HTTP receiver.
#[allow(missing_debug_implementations)]
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    server: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    handlers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Receiver {
    /// A receiver that answers 204 to everything.
    pub fn ok() -> Receiver {
        Receiver::start(|_, _| Answer::status(204))
    }

    /// A receiver that answers each request (and its 0-based number) as `reply` says. Each
    /// request is handled on a thread of its own, so a slow answer does not hold up others.
    pub fn start(reply: impl Fn(&Received, usize) -> Answer + Send + Sync + 'static) -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let shared = Arc::new(Shared {
            log: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
        });
        let handlers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let reply: Arc<Reply> = Arc::new(reply);
        let accept = {
            let (server, shared, handlers) = (server.clone(), shared.clone(), handlers.clone());
            std::thread::spawn(move || {
                for (n, mut request) in server.incoming_requests().enumerate() {
                    let mut body = Vec::new();
                    let _ = request.as_reader().read_to_end(&mut body);
                    let received = Received {
                        path: request.url().to_owned(),
                        headers: request
                            .headers()
                            .iter()
                            .map(|h| {
                                (
                                    h.field.as_str().as_str().to_ascii_lowercase(),
                                    h.value.as_str().to_owned(),
                                )
                            })
                            .collect(),
                        body,
                        at: Instant::now(),
                        index: n,
                        status: 0,
                    };
                    let index = n;
                    let (shared, reply) = (shared.clone(), reply.clone());
                    let handler = std::thread::spawn(move || {
                        let mut received = received;
                        let answer = reply(&received, index);
                        received.status = answer.status;
                        std::thread::sleep(answer.delay);
                        {
                            let mut log = shared.log.lock().unwrap();
                            log.push(received);
                        }
                        shared.arrived.notify_all();
                        let mut response = tiny_http::Response::empty(answer.status);
                        for (name, value) in &answer.headers {
                            let header =
                                tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
                                    .expect("a valid header");
                            response = response.with_header(header);
                        }
                        let _ = request.respond(response);
                    });
                    handlers.lock().unwrap().push(handler);
                }
            })
        };
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            server,
            shared,
            accept: Some(accept),
            handlers,
        }
    }

    /// Every request answered so far, in the order they were answered (see
    /// [`Received::index`] for the order of arrival).
    pub fn requests(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }

    /// How many requests were answered.
    pub fn count(&self) -> usize {
        self.shared.log.lock().unwrap().len()
    }

    /// Waits until `n` requests were answered (at most [`WAIT`]) and returns them all.
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        let mut log = self.shared.log.lock().unwrap();
        while log.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the receiver got {} of {n} requests in {WAIT:?}",
                log.len()
            );
            log = self.shared.arrived.wait_timeout(log, left).unwrap().0;
        }
        log.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for handler in self.handlers.lock().unwrap().drain(..) {
            let _ = handler.join();
        }
    }
}

/// A dead-letter path in a fresh temporary directory (kept alive by the returned guard).
pub fn dead_letter_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("dead-letters.jsonl");
    (dir, path)
}

use deskhook::Dispatcher;
use deskhook_transports::delivery::{
    DeadLetter, DeliveryGuard, Endpoint, EndpointStats, SinkBuilder,
};
use deskhook_transports::http_async::AsyncHttpSink;
use deskhook_transports::http_blocking::HttpSink;

/// Which HTTP transport a test runs against: every behavioural test runs against both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `HttpSink`: ureq on worker threads.
    Blocking,
    /// `AsyncHttpSink`: reqwest on tokio tasks (a runtime of the sink's own here).
    Async,
}

/// Either sink.
#[derive(Clone, Debug)]
pub enum Sink {
    /// The blocking one.
    Blocking(HttpSink),
    /// The async one.
    Async(AsyncHttpSink),
}

impl Sink {
    /// The endpoints' stats.
    pub fn stats(&self) -> Vec<EndpointStats> {
        match self {
            Sink::Blocking(s) => s.stats(),
            Sink::Async(s) => s.stats(),
        }
    }

    /// Queues a dead letter again.
    pub fn redeliver(&self, letter: &DeadLetter) -> Result<(), deskhook_transports::Error> {
        match self {
            Sink::Blocking(s) => s.redeliver(letter),
            Sink::Async(s) => s.redeliver(letter),
        }
    }
}

/// Writes one `#[test]` per transport for each named `fn name(t: Transport)`, in modules
/// `blocking` and `async_transport`.
#[macro_export]
macro_rules! for_both_transports {
    ($($name:ident),* $(,)?) => {
        mod blocking {
            $( #[test] fn $name() { super::$name($crate::Transport::Blocking) } )*
        }
        mod async_transport {
            $( #[test] fn $name() { super::$name($crate::Transport::Async) } )*
        }
    };
}

/// An endpoint named `name` for a loopback receiver: private addresses allowed, short
/// timeouts, and a fast retry schedule (`retry`, such as `"0s,10ms,10ms"`).
pub fn endpoint(name: &str, receiver: &Receiver, retry: &str) -> Endpoint {
    Endpoint::new(name, &receiver.url)
        .expect("a loopback URL")
        .allow_private(true)
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .retry(retry.parse().expect("a retry schedule"))
}

/// `build()` or `build_async()` by transport.
pub trait BuildFor {
    /// Builds the sink of transport `t`.
    fn build_for(self, t: Transport) -> Result<(Sink, DeliveryGuard), deskhook_transports::Error>;
}

impl BuildFor for SinkBuilder {
    fn build_for(self, t: Transport) -> Result<(Sink, DeliveryGuard), deskhook_transports::Error> {
        match t {
            Transport::Blocking => self.build().map(|(s, g)| (Sink::Blocking(s), g)),
            Transport::Async => self.build_async().map(|(s, g)| (Sink::Async(s), g)),
        }
    }
}

/// Builds the sink of transport `t` and a dispatcher around it.
pub fn start(t: Transport, builder: SinkBuilder) -> (Sink, DeliveryGuard, Dispatcher) {
    let (sink, guard) = builder.build_for(t).expect("the sink starts");
    let dispatcher = match &sink {
        Sink::Blocking(s) => Dispatcher::builder().sink("http", s.clone()).build(),
        Sink::Async(s) => Dispatcher::builder().sink("http", s.clone()).build(),
    };
    (sink, guard, dispatcher)
}

/// A ticket of the sample with another code.
pub fn ticket(code: &str) -> deskhook::Ticket {
    let mut ticket = deskhook::sample::ticket();
    ticket.code = code.to_owned();
    ticket
}
