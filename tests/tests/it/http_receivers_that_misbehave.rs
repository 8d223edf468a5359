//! Receivers that treat connections roughly still get every event, once per delivery, on
//! both transports: one that closes each connection after its answer (saying so, or silently
//! so that the next request meets a kept connection already closed), one that answers before
//! it has read the body, one whose answer is larger than the read limit, one whose body
//! comes too slowly after its status, and ones whose answers are unusual but valid: a
//! chunked body with a trailer, an interim `100 Continue` nobody asked for. One that closes
//! every connection without an answer gets each attempt once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskhook::Action;
use deskhook_tests::{Transport, WAIT, dead_letter_file, for_both_transports, start, ticket};
use deskhook_transports::delivery::{
    AttemptOutcome, AttemptRecord, Endpoint, RESPONSE_READ_LIMIT, RESPONSE_SNIPPET_BYTES,
};
use deskhook_transports::http_blocking::HttpSink;

const EVENTS: usize = 24;

/// How the receiver treats each connection.
#[derive(Clone, Copy, Debug)]
enum Manner {
    /// Answers 204 with `Connection: close`, then closes.
    SaysClose,
    /// Answers 204 as if it kept the connection, then closes it.
    ClosesSilently,
    /// Keeps the connection after its first answer, then closes it as the next request
    /// arrives, without an answer (a server closing an idle connection just as it is reused).
    ClosesOnReuse,
    /// Answers 204 once the head is read, then reads the body, and keeps the connection.
    AnswersEarly,
    /// Answers 200 with a body four times the read limit, and keeps the connection.
    AnswersHuge,
    /// The same body in one chunk.
    AnswersHugeChunk,
    /// Answers 200 at once, with the first bytes of its body, and never the rest (until the
    /// sender gives up on the connection).
    TricklesBody,
    /// Answers 200 with a chunked body (three chunks and a trailer), and keeps the
    /// connection.
    AnswersChunked,
    /// Sends `100 Continue` (unasked), then answers 204, and keeps the connection.
    ContinuesFirst,
    /// Answers 204 with a head longer than the sender's first buffer (a large cookie or
    /// security policy header), and keeps the connection.
    AnswersLongHead,
    /// Answers 200 with a header folded over two lines, a space before a colon and a line
    /// that is no header (as old servers do), and keeps the connection (which the sender
    /// does not keep).
    AnswersLoosely,
    /// Reads each request whole, then closes its connection without an answer (a receiver
    /// whose worker dies).
    NeverAnswers,
    /// Answers a connection's first request 204 and keeps the connection; reads the next
    /// whole, sends the first bytes of an answer, and closes (a receiver that dies as it
    /// answers).
    CutsItsSecondAnswer,
}

/// A raw HTTP/1.1 receiver on 127.0.0.1, a thread per connection.
struct RawReceiver {
    url: String,
    /// Requests by `webhook-id`.
    seen: Arc<Mutex<HashMap<String, usize>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    port: u16,
    accepter: Option<std::thread::JoinHandle<()>>,
}

impl RawReceiver {
    fn start(manner: Manner) -> RawReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accepter = {
            let (seen, connections, stop) = (seen.clone(), connections.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let seen = seen.clone();
                    std::thread::spawn(move || serve(stream, manner, &seen));
                }
            })
        };
        RawReceiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            seen,
            connections,
            stop,
            port,
            accepter: Some(accepter),
        }
    }
}

impl Drop for RawReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accepter) = self.accepter.take() {
            let _ = accepter.join();
        }
    }
}

/// Serves one connection until the client closes it (or the manner closes it).
fn serve(stream: TcpStream, manner: Manner, seen: &Mutex<HashMap<String, usize>>) {
    let _ = stream.set_read_timeout(Some(WAIT));
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for served in 0.. {
        let mut length = 0usize;
        let mut id = None;
        let mut line = String::new();
        // The request line, then the headers.
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "webhook-id" => id = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if matches!(manner, Manner::ClosesOnReuse) && served > 0 {
            let _ = reader.read_exact(&mut body);
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
        if matches!(manner, Manner::CutsItsSecondAnswer) && served > 0 {
            if reader.read_exact(&mut body).is_ok()
                && let Some(id) = id
            {
                *seen.lock().unwrap().entry(id).or_default() += 1;
            }
            let _ = writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-le");
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
        if matches!(manner, Manner::NeverAnswers) {
            if reader.read_exact(&mut body).is_ok()
                && let Some(id) = id
            {
                *seen.lock().unwrap().entry(id).or_default() += 1;
            }
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
        let answer: Vec<u8> = match manner {
            Manner::SaysClose => b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_vec(),
            Manner::ClosesSilently
            | Manner::ClosesOnReuse
            | Manner::AnswersEarly
            | Manner::NeverAnswers
            | Manner::CutsItsSecondAnswer => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
            Manner::TricklesBody => {
                b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst part".to_vec()
            }
            Manner::AnswersChunked => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                5\r\nfirst\r\n1;note=x\r\n \r\n4\r\npart\r\n0\r\nX-Checksum: 1\r\n\r\n"
                .to_vec(),
            Manner::ContinuesFirst => {
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".to_vec()
            }
            Manner::AnswersLoosely => b"HTTP/1.1 200 OK\r\nX-Note: one\r\n two\r\n\
                Server : old\r\nnot a header\r\nContent-Length: 2\r\n\r\nok"
                .to_vec(),
            Manner::AnswersLongHead => format!(
                "HTTP/1.1 204 No Content\r\nContent-Security-Policy: {}\r\n\r\n",
                "default-src 'self'; ".repeat(1000)
            )
            .into_bytes(),
            Manner::AnswersHuge => {
                let size = 4 * RESPONSE_READ_LIMIT as usize;
                let mut answer =
                    format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n").into_bytes();
                answer.resize(answer.len() + size, b'x');
                answer
            }
            Manner::AnswersHugeChunk => {
                let size = 4 * RESPONSE_READ_LIMIT as usize;
                let mut answer =
                    format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{size:x}\r\n")
                        .into_bytes();
                answer.resize(answer.len() + size, b'x');
                answer.extend_from_slice(b"\r\n0\r\n\r\n");
                answer
            }
        };
        // Recorded before the answer goes out: once the sender has its answer, the test may
        // look at what the receiver saw.
        let record = |id: Option<String>| {
            if let Some(id) = id {
                *seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(id)
                    .or_default() += 1;
            }
        };
        if matches!(manner, Manner::AnswersEarly) {
            record(id);
            if writer.write_all(&answer).is_err() {
                return;
            }
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        } else {
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            record(id);
        }
        if !matches!(manner, Manner::AnswersEarly) && writer.write_all(&answer).is_err() {
            return;
        }
        if matches!(manner, Manner::SaysClose | Manner::ClosesSilently) {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
        if matches!(manner, Manner::TricklesBody) {
            // The rest never comes: this waits for the sender to close the connection.
            let _ = reader.read(&mut [0; 1]);
            return;
        }
    }
}

fn every_event_arrives(t: Transport, manner: Manner) {
    let receiver = RawReceiver::start(manner);
    let (_dir, dead) = dead_letter_file();
    let delivered: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let snippets = Arc::new(AtomicUsize::new(0));
    let (record, longest) = (delivered.clone(), snippets.clone());
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                Endpoint::new("rough", &receiver.url)
                    .unwrap()
                    .allow_private(true)
                    .timeout(Duration::from_secs(5))
                    // One attempt: a request that meets a kept connection as the receiver
                    // closes it goes on a new one within its attempt.
                    .retry("0s".parse().unwrap()),
            )
            .dead_letter_path(&dead)
            .observer(move |r: &AttemptRecord<'_>| {
                if r.outcome == AttemptOutcome::Delivered {
                    *record
                        .lock()
                        .unwrap()
                        .entry(r.event_id.to_string())
                        .or_default() += 1;
                    longest.fetch_max(r.response.len(), Ordering::SeqCst);
                }
            }),
    );
    let user = deskhook::sample::user();
    // Two rounds with a flush between, so that the second meets connections the first kept.
    for round in 0..2 {
        for i in 0..EVENTS / 2 {
            dispatcher.emit(
                Action::Comment,
                &ticket(&format!("R{round}-{}", i % 4)),
                &user,
            );
        }
        guard.flush(WAIT).expect("every event delivered");
    }
    let totals = sink.totals();
    assert_eq!(totals.delivered as usize, EVENTS, "{manner:?}: {totals:?}");
    assert_eq!(totals.dead_lettered, 0, "{manner:?}: {totals:?}");
    // No failed attempt: a request that meets a kept connection as the receiver closes it
    // goes on a new one within its attempt, on both transports.
    assert_eq!(totals.failed, 0, "{manner:?}: {totals:?}");
    // Each event delivered once; the receiver saw each one, and at most once more than that
    // (a request whose answer was lost on a closed connection is sent again: at least once).
    let delivered = delivered.lock().unwrap();
    assert_eq!(delivered.len(), EVENTS, "{manner:?}");
    assert!(
        delivered.values().all(|&n| n == 1),
        "{manner:?}: {delivered:?}"
    );
    let seen = receiver.seen.lock().unwrap();
    assert_eq!(seen.len(), EVENTS, "{manner:?}");
    for (id, n) in seen.iter() {
        assert!(
            delivered.contains_key(id),
            "{manner:?}: {id} was never delivered"
        );
        assert!(*n <= 2, "{manner:?}: {id} arrived {n} times");
    }
    // What the observer is shown of a response is bounded, whatever its size.
    assert!(
        snippets.load(Ordering::SeqCst) <= RESPONSE_SNIPPET_BYTES,
        "{manner:?}"
    );
    let connections = receiver.connections.load(Ordering::SeqCst);
    match manner {
        // A connection per request at least, since each is closed after one answer (or,
        // with a head read loosely, which may have lost a framing header, not kept).
        Manner::SaysClose
        | Manner::ClosesSilently
        | Manner::ClosesOnReuse
        | Manner::AnswersLoosely => {
            assert!(
                connections >= EVENTS,
                "{manner:?}: {connections} connections"
            );
        }
        // A response body left unread ends its connection; no answer, no delivery. The
        // start of one too long is shown.
        Manner::AnswersHuge | Manner::AnswersHugeChunk => {
            assert_eq!(
                snippets.load(Ordering::SeqCst),
                RESPONSE_SNIPPET_BYTES,
                "{manner:?}"
            );
        }
        Manner::TricklesBody | Manner::NeverAnswers | Manner::CutsItsSecondAnswer => {}
        // Kept: far fewer connections than requests.
        Manner::AnswersEarly
        | Manner::AnswersChunked
        | Manner::ContinuesFirst
        | Manner::AnswersLongHead => {
            assert!(
                connections < EVENTS,
                "{manner:?}: {connections} connections"
            );
        }
    }
}

fn a_receiver_that_says_close_after_each_answer_gets_every_event(t: Transport) {
    every_event_arrives(t, Manner::SaysClose);
}

fn a_kept_connection_closed_by_the_receiver_is_not_a_failure(t: Transport) {
    every_event_arrives(t, Manner::ClosesSilently);
}

fn a_kept_connection_closed_as_it_is_reused_is_not_a_failure(t: Transport) {
    every_event_arrives(t, Manner::ClosesOnReuse);
}

fn a_receiver_that_answers_before_reading_the_body_gets_every_event(t: Transport) {
    every_event_arrives(t, Manner::AnswersEarly);
}

fn a_receiver_answering_more_than_the_read_limit_gets_every_event(t: Transport) {
    every_event_arrives(t, Manner::AnswersHuge);
}

fn a_chunk_longer_than_the_read_limit_shows_its_start(t: Transport) {
    every_event_arrives(t, Manner::AnswersHugeChunk);
}

fn a_chunked_answer_is_read_and_its_connection_kept(t: Transport) {
    every_event_arrives(t, Manner::AnswersChunked);
}

fn an_interim_answer_is_skipped_for_the_final_one(t: Transport) {
    every_event_arrives(t, Manner::ContinuesFirst);
}

/// A head of 20 KB grows the connection's buffer; the connection, kept, carries the next
/// requests.
fn a_long_answer_head_leaves_its_connection_usable(t: Transport) {
    every_event_arrives(t, Manner::AnswersLongHead);
}

/// An answer whose head an old server wrote loosely is read for its status, not taken for
/// a failure (which would send the delivered event again).
fn a_loosely_written_answer_counts(t: Transport) {
    every_event_arrives(t, Manner::AnswersLoosely);
}

/// A receiver that sends its status at once and its body too slowly: the status is the
/// answer (delivered once, not retried as a timeout), and only the connection is given up.
fn a_status_whose_body_comes_too_slowly_is_still_the_answer(t: Transport) {
    const SLOW_EVENTS: usize = 3;
    let receiver = RawReceiver::start(Manner::TricklesBody);
    let (_dir, dead) = dead_letter_file();
    let snippets: Arc<Mutex<Vec<String>>> = Arc::default();
    let shown = snippets.clone();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                // The status must come within it on a busy machine too; the body never
                // does, so each attempt takes it whole.
                Endpoint::new("slow-body", &receiver.url)
                    .unwrap()
                    .allow_private(true)
                    .timeout(Duration::from_millis(1500))
                    .retry("0s,10ms".parse().unwrap()),
            )
            .dead_letter_path(&dead)
            .observer(move |r: &AttemptRecord<'_>| {
                shown
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(r.response).into_owned());
            }),
    );
    let user = deskhook::sample::user();
    for i in 0..SLOW_EVENTS {
        dispatcher.emit(Action::Comment, &ticket(&format!("S{i}")), &user);
    }
    guard.flush(WAIT).expect("every event delivered");
    let totals = sink.totals();
    assert_eq!(
        (totals.delivered as usize, totals.failed, totals.retried),
        (SLOW_EVENTS, 0, 0),
        "{totals:?}"
    );
    let seen = receiver.seen.lock().unwrap();
    assert_eq!(seen.len(), SLOW_EVENTS);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    // What came of the body is what the observer is shown.
    let snippets = snippets.lock().unwrap();
    assert!(
        snippets
            .iter()
            .all(|s| s.starts_with("first") || s.is_empty()),
        "{snippets:?}"
    );
}

/// A receiver that reads each request and closes its connection without an answer gets
/// each attempt once: a new connection that ends so is the attempt's failure, not a kept one
/// the receiver closed as the request went out, and is not sent again.
fn a_receiver_that_closes_without_answering_gets_each_attempt_once(t: Transport) {
    let receiver = RawReceiver::start(Manner::NeverAnswers);
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                Endpoint::new("mute", &receiver.url)
                    .unwrap()
                    .allow_private(true)
                    .retry("0s,10ms".parse().unwrap()),
            )
            .dead_letter_path(&dead),
    );
    dispatcher.emit(Action::Comment, &ticket("M1"), &deskhook::sample::user());
    guard.flush(WAIT).expect("dead-lettered within the wait");
    let totals = sink.totals();
    assert_eq!((totals.failed, totals.dead_lettered), (2, 1), "{totals:?}");
    let seen = receiver.seen.lock().unwrap();
    assert_eq!(seen.values().copied().collect::<Vec<_>>(), [2], "{seen:?}");
}

/// A kept connection that ends after the first bytes of its answer ended as the receiver
/// answered, so the receiver had the request: the attempt failed, and the request is not
/// sent again at once on a new connection (a kept connection that ends before any answer
/// is).
fn a_kept_connection_cut_in_its_answer_is_not_sent_again_at_once(t: Transport) {
    let receiver = RawReceiver::start(Manner::CutsItsSecondAnswer);
    let (_dir, dead) = dead_letter_file();
    let (sink, guard, dispatcher) = start(
        t,
        HttpSink::builder()
            .endpoint(
                Endpoint::new("cut", &receiver.url)
                    .unwrap()
                    .allow_private(true)
                    .retry("0s".parse().unwrap()),
            )
            .dead_letter_path(&dead),
    );
    let user = deskhook::sample::user();
    dispatcher.emit(Action::Comment, &ticket("C1"), &user);
    guard.flush(WAIT).expect("delivered");
    // On the connection the first one left open.
    dispatcher.emit(Action::Comment, &ticket("C2"), &user);
    guard.flush(WAIT).expect("dead-lettered within the wait");
    let totals = sink.totals();
    assert_eq!(
        (totals.delivered, totals.dead_lettered),
        (1, 1),
        "{totals:?}"
    );
    assert_eq!(receiver.connections.load(Ordering::SeqCst), 1);
    let seen = receiver.seen.lock().unwrap();
    assert_eq!(
        seen.values().copied().collect::<Vec<_>>(),
        [1, 1],
        "{seen:?}"
    );
}

for_both_transports!(
    a_kept_connection_cut_in_its_answer_is_not_sent_again_at_once,
    a_receiver_that_closes_without_answering_gets_each_attempt_once,
    a_status_whose_body_comes_too_slowly_is_still_the_answer,
    a_receiver_that_says_close_after_each_answer_gets_every_event,
    a_kept_connection_closed_by_the_receiver_is_not_a_failure,
    a_kept_connection_closed_as_it_is_reused_is_not_a_failure,
    a_receiver_that_answers_before_reading_the_body_gets_every_event,
    a_receiver_answering_more_than_the_read_limit_gets_every_event,
    a_chunked_answer_is_read_and_its_connection_kept,
    an_interim_answer_is_skipped_for_the_final_one,
    a_long_answer_head_leaves_its_connection_usable,
    a_loosely_written_answer_counts,
    a_chunk_longer_than_the_read_limit_shows_its_start,
);
