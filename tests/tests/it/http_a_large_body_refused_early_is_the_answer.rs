//! A receiver that refuses a large body as soon as it has the request's head (a `413` from
//! a body limit) and then reads no more is heard on both transports: the event goes to the
//! dead letters with that status at its first attempt, not retried as a timeout. The
//! receiver is on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use deskhook::Action;
use deskhook_tests::{Transport, WAIT, dead_letter_file, for_both_transports, start, ticket};
use deskhook_transports::delivery::{AttemptRecord, Endpoint};
use deskhook_transports::http_blocking::HttpSink;

/// A body far larger than what the sockets' buffers take while nothing reads it.
const LARGE: usize = 16 * 1024 * 1024;

/// Answers each connection's first request `413` once it has its head, then holds the
/// connection, reading nothing, until dropped.
struct Refusing {
    url: String,
    stop: Option<mpsc::Sender<()>>,
    accepter: Option<std::thread::JoinHandle<usize>>,
}

impl Refusing {
    fn start() -> Refusing {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (stop, stopped) = mpsc::channel::<()>();
        let accepter = std::thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let mut held: Vec<TcpStream> = Vec::new();
            // Until the test is done: each connection refused and held.
            while stopped.recv_timeout(Duration::from_millis(10)).is_err() {
                let Ok((mut stream, _)) = listener.accept() else {
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(WAIT)).unwrap();
                let mut seen = Vec::new();
                let mut chunk = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk) {
                        Ok(n @ 1..) => seen.extend_from_slice(&chunk[..n]),
                        _ => break,
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\n\r\ntoo big!",
                );
                held.push(stream);
            }
            held.len()
        });
        Refusing {
            url,
            stop: Some(stop),
            accepter: Some(accepter),
        }
    }

    /// Stops the receiver; the connections it had.
    fn stop(mut self) -> usize {
        self.stop.take().map(|stop| stop.send(()));
        self.accepter.take().map_or(0, |a| a.join().unwrap())
    }
}

impl Drop for Refusing {
    fn drop(&mut self) {
        self.stop.take().map(|stop| stop.send(()));
        if let Some(accepter) = self.accepter.take() {
            let _ = accepter.join();
        }
    }
}

fn a_large_body_refused_before_it_is_read_is_dead_lettered_with_the_refusal(t: Transport) {
    let receiver = Refusing::start();
    let (_dir, dead) = dead_letter_file();
    // Each attempt's status and answer.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .max_payload(2 * LARGE)
            .endpoint(
                Endpoint::new("small-limit", &receiver.url)
                    .unwrap()
                    .allow_private(true)
                    // Past this, the attempt is a timeout: what the refusal must not become.
                    .timeout(Duration::from_secs(4))
                    .retry("0s,10ms".parse().unwrap()),
            )
            .dead_letter_path(&dead)
            .observer(move |r: &AttemptRecord<'_>| {
                let response = String::from_utf8_lossy(r.response);
                record
                    .lock()
                    .unwrap()
                    .push(format!("{:?} {response}", r.status));
            }),
    );
    let mut large = ticket("BIG");
    large.subject = "x".repeat(LARGE);
    dispatcher.emit(Action::Create, &large, &deskhook::sample::user());
    guard.flush(WAIT).expect("dead-lettered within the wait");
    let totals = sink.totals();
    assert_eq!((totals.dead_lettered, totals.retried), (1, 0), "{totals:?}");
    assert_eq!(
        *seen.lock().unwrap(),
        ["Some(413) too big!"],
        "one attempt, answered by the refusal"
    );
    drop(sink);
    assert_eq!(receiver.stop(), 1, "one connection");
}

for_both_transports!(a_large_body_refused_before_it_is_read_is_dead_lettered_with_the_refusal);
