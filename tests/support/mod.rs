//! Shared pieces of the cross-crate tests: a loopback HTTP receiver that records what it gets
//! and answers as each test scripts it, and the two transports behind one interface.
//!
//! Every receiver binds `127.0.0.1:0` and is stopped (its threads joined) when dropped.

pub mod logs;
pub mod nats;
pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
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
    /// The response body.
    pub body: String,
}

impl Answer {
    /// An immediate answer with this status and no headers.
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            body: String::new(),
        }
    }

    /// This answer with a header.
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// This answer with a body.
    pub fn body(mut self, body: impl Into<String>) -> Answer {
        self.body = body.into();
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
    /// Arrival numbers, in the order requests are read.
    next: std::sync::atomic::AtomicUsize,
    stop: std::sync::atomic::AtomicBool,
    /// Every connection, to shut them down when the receiver stops.
    connections: Mutex<Vec<TcpStream>>,
}

/// A loopback HTTP/1.1 receiver on std's `TcpListener`: a thread per connection, keep-alive,
/// `Content-Length` bodies. (tiny_http was tried first; it can leave a new connection
/// unserved while others stay open, which the async transport's 16 connections trip over.)
#[allow(missing_debug_implementations)]
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    handlers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// A request's path, headers and body.
type Request = (String, Vec<(String, String)>, Vec<u8>);

/// Reads one request; `None` at the end of the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut body = vec![0; content_length(&headers)];
    reader.read_exact(&mut body).ok()?;
    Some((path, headers, body))
}

fn serve(stream: TcpStream, shared: Arc<Shared>, reply: Arc<Reply>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    while let Some((path, headers, body)) = read_request(&mut reader) {
        let index = shared
            .next
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut received = Received {
            path,
            headers,
            body,
            at: Instant::now(),
            index,
            status: 0,
        };
        let answer = reply(&received, index);
        received.status = answer.status;
        std::thread::sleep(answer.delay);
        let close = received
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        {
            let mut log = shared.log.lock().unwrap();
            log.push(received);
        }
        shared.arrived.notify_all();
        let mut response = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
            answer.status,
            answer.body.len()
        );
        for (name, value) in &answer.headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&answer.body);
        if writer.write_all(response.as_bytes()).is_err() || close {
            return;
        }
    }
}

impl Receiver {
    /// A receiver that answers 204 to everything.
    pub fn ok() -> Receiver {
        Receiver::start(|_, _| Answer::status(204))
    }

    /// A receiver that answers each request (and its 0-based number in the order of arrival)
    /// as `reply` says. Each connection is served on a thread of its own.
    pub fn start(reply: impl Fn(&Received, usize) -> Answer + Send + Sync + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a local address");
        let shared = Arc::new(Shared {
            log: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            next: std::sync::atomic::AtomicUsize::new(0),
            stop: std::sync::atomic::AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let handlers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let reply: Arc<Reply> = Arc::new(reply);
        let accept = {
            let (shared, handlers) = (shared.clone(), handlers.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if shared.stop.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let _ = stream.set_nodelay(true);
                    if let Ok(clone) = stream.try_clone() {
                        shared.connections.lock().unwrap().push(clone);
                    }
                    let (shared, reply) = (shared.clone(), reply.clone());
                    let handler = std::thread::spawn(move || serve(stream, shared, reply));
                    handlers.lock().unwrap().push(handler);
                }
            })
        };
        Receiver {
            url: format!("http://{addr}/hook"),
            addr,
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

    /// Waits until the sender closed every connection it made (at most [`WAIT`]); how many
    /// are still open then.
    pub fn wait_until_all_closed(&self) -> usize {
        let deadline = Instant::now() + WAIT;
        loop {
            // A connection's thread ends when the sender closes it.
            let open = self
                .handlers
                .lock()
                .unwrap()
                .iter()
                .filter(|handler| !handler.is_finished())
                .count();
            if open == 0 || Instant::now() > deadline {
                return open;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared
            .stop
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop with a connection of our own, then close every connection so
        // that the threads reading them return.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for connection in self.shared.connections.lock().unwrap().drain(..) {
            let _ = connection.shutdown(std::net::Shutdown::Both);
        }
        let handlers: Vec<JoinHandle<()>> = self.handlers.lock().unwrap().drain(..).collect();
        for handler in handlers {
            let _ = handler.join();
        }
    }
}

/// A loopback listener that accepts connections and never answers: a dead endpoint whose
/// requests hang. Dropping it closes every connection, so the requests end at once.
#[allow(missing_debug_implementations)]
pub struct Hanging {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    addr: std::net::SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    arrived: Arc<(Mutex<usize>, Condvar)>,
    accept: Option<JoinHandle<()>>,
}

impl Hanging {
    /// Starts listening on 127.0.0.1:0.
    pub fn start() -> Hanging {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a local address");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let arrived: Arc<(Mutex<usize>, Condvar)> = Arc::default();
        let accept = {
            let (stop, connections, arrived) = (stop.clone(), connections.clone(), arrived.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        connections.lock().unwrap().push(stream);
                        *arrived.0.lock().unwrap() += 1;
                        arrived.1.notify_all();
                    }
                }
            })
        };
        Hanging {
            base: format!("http://{addr}"),
            addr,
            stop,
            connections,
            arrived,
            accept: Some(accept),
        }
    }

    /// Waits until `n` connections were accepted (at most [`WAIT`]).
    pub fn wait_for_connections(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        let mut count = self.arrived.0.lock().unwrap();
        while *count < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{} of {n} connections in {WAIT:?}", *count);
            count = self.arrived.1.wait_timeout(count, left).unwrap().0;
        }
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            let _ = connection.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The threads of this process now, from /proc/self/status (`None` without /proc).
pub fn threads_now() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// The `content-length` among `headers` (names in lower case), 0 when there is none.
pub fn content_length(headers: &[(String, String)]) -> usize {
    headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// A dead-letter path in a fresh temporary directory (kept alive by the returned guard).
pub fn dead_letter_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("dead-letters.jsonl");
    (dir, path)
}

use deskhook::Dispatcher;
use deskhook_transports::delivery::{DeliveryGuard, DeliverySink, Endpoint, SinkBuilder};

/// Which HTTP transport a test runs against: every behavioural test runs against both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `HttpSink`: worker threads over blocking sockets.
    Blocking,
    /// `AsyncHttpSink`: hyper on tokio tasks (a runtime of the sink's own here).
    Async,
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
    fn build_for(
        self,
        t: Transport,
    ) -> Result<(DeliverySink, DeliveryGuard), deskhook_transports::Error>;
}

impl BuildFor for SinkBuilder {
    fn build_for(
        self,
        t: Transport,
    ) -> Result<(DeliverySink, DeliveryGuard), deskhook_transports::Error> {
        match t {
            Transport::Blocking => self.build(),
            Transport::Async => self.build_async(),
        }
    }
}

/// Builds the sink of transport `t` and a dispatcher around it.
pub fn start(t: Transport, builder: SinkBuilder) -> (DeliverySink, DeliveryGuard, Dispatcher) {
    let (sink, guard) = builder.build_for(t).expect("the sink starts");
    let dispatcher = Dispatcher::builder().sink("http", sink.clone()).build();
    (sink, guard, dispatcher)
}

/// A ticket of the sample with another code.
pub fn ticket(code: &str) -> deskhook::Ticket {
    let mut ticket = deskhook::sample::ticket();
    ticket.code = code.to_owned();
    ticket
}

/// Emits `per_ticket` events for each of `tickets` in turn (T1, T2, …, T1, T2, …), the
/// i-th of each ticket with subject `i` and the i-th action (cycling through the twelve),
/// so that a receiver can check each ticket's order from the bodies.
pub fn emit_in_turn(dispatcher: &Dispatcher, tickets: &[&str], per_ticket: usize) {
    let user = deskhook::sample::user();
    for i in 0..per_ticket {
        for code in tickets {
            let mut t = ticket(code);
            t.subject = i.to_string();
            dispatcher.emit(deskhook::Action::ALL[i % 12], &t, &user);
        }
    }
}
