//! Several events in one stream message ([`NatsSinkBuilder::batch`](super::NatsSinkBuilder::batch)).
//!
//! While a publish of a partition waits for its acknowledgement, the events that come for the
//! same partition queue behind it; the next publish takes them all (up to the batch's limits)
//! as one message, on `<prefix>.batch.events.<partition>`. A lone event is published as it
//! always is, on its own subject, so batches form only under load and add no wait. JetStream's work per message (storing it, handing it out, its
//! acknowledgements) is then shared by the events of the batch.
//!
//! A batch message has the header [`BATCH_HEADER`] (the number of events) and a
//! `Nats-Msg-Id` that names all of its events (see `batch_msg_id`); a publish that got no
//! answer is sent again as it was, so that the stream can take it for the duplicate it may
//! be, before its events go back to the engine. Its payload is [`MAGIC`], then for each event the
//! length of its head (big-endian `u32`), its head (`name: value\r\n` lines: the headers the
//! event would have as a message of its own, ticket and tenant percent-encoded), the length
//! of its body and its body.

use std::collections::{HashMap, VecDeque};
use std::str::FromStr as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishError, publish::PublishAck};
use async_nats::{HeaderMap, HeaderName, HeaderValue};
use bytes::{BufMut as _, Bytes, BytesMut};
use tokio::sync::oneshot;

use super::MSG_ID_HEADER;
use crate::delivery::lock;

/// The header of a batch message: how many events it carries.
pub const BATCH_HEADER: &str = "Deskhook-Batch";

/// The first bytes of a batch's payload (the layout's version).
pub const MAGIC: &[u8; 4] = b"DHB1";

/// Publishes of one partition waiting for their acknowledgement at once; the events that
/// come meanwhile wait for the next.
const SENDERS_PER_PARTITION: usize = 2;

/// How many times a publish that got no answer is sent again as it was, before its events
/// go back to the engine.
const SAME_AGAIN: u32 = 2;

/// The most bytes of events in one batch message.
const BATCH_BYTES: usize = 1 << 20;

/// The format and event-type tokens of a batch's subject.
pub const BATCH_SUBJECT: &str = "batch.events";

/// What a publish got: the stream's acknowledgement, or the error, shared by its events.
pub(super) type Published = Result<PublishAck, Arc<PublishError>>;

/// One event as it is published: its subject, its id and the event.
pub(super) struct Outgoing {
    pub(super) subject: String,
    pub(super) id: String,
    pub(super) event: Framed,
}

impl Outgoing {
    /// The headers of the event as a message of its own, with `Nats-Msg-Id`.
    pub(super) fn header_map(&self) -> Result<HeaderMap, String> {
        header_map(self.event.headers.iter().map(|(n, v)| (n, v)), &self.id)
    }
}

/// The NATS headers of one event as a message of its own: `pairs` as they go on the wire,
/// and `Nats-Msg-Id` (`id`).
pub(super) fn header_map<N: AsRef<str>, V: AsRef<str>>(
    pairs: impl IntoIterator<Item = (N, V)>,
    id: &str,
) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let (name, value) = (name.as_ref(), value.as_ref());
        let key = HeaderName::from_str(name).map_err(|e| format!("header name '{name}': {e}"))?;
        let value = HeaderValue::from_str(value).map_err(|e| format!("header '{name}': {e}"))?;
        map.insert(key, value);
    }
    let id = HeaderValue::from_str(id).map_err(|e| format!("event id: {e}"))?;
    map.insert(MSG_ID_HEADER, id);
    Ok(map)
}

/// One event of a batch: its headers, as they would be on a message of its own (ticket and
/// tenant percent-encoded: [`encode_ticket`](super::encode_ticket)), and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Framed {
    headers: Vec<(String, String)>,
    /// The event's body (read back: a slice of the message's payload).
    pub body: Bytes,
}

impl Framed {
    /// An event of `headers` and `body`.
    ///
    /// # Errors
    ///
    /// A header that a NATS message cannot carry (a batch of one goes as one, with its
    /// headers): an empty name, a name with `:` or a character other than visible ASCII
    /// (a space, a line break, a letter outside ASCII), or a value with a line break.
    pub fn new(headers: Vec<(String, String)>, body: Bytes) -> Result<Framed, String> {
        for (name, value) in &headers {
            let bad_name =
                name.is_empty() || name.chars().any(|c| !c.is_ascii_graphic() || c == ':');
            if bad_name || value.contains(['\r', '\n']) {
                return Err(format!("header '{name}' cannot go into a NATS message"));
            }
        }
        Ok(Framed { headers, body })
    }

    /// Its headers, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Its length in a batch payload.
    pub(crate) fn framed_len(&self) -> usize {
        let head: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        8 + head + self.body.len()
    }

    /// The value of header `name` (case-insensitive), as it was on the wire.
    pub fn header(&self, name: &str) -> Option<&str> {
        super::header(&self.headers, name)
    }
}

/// The payload of a batch of `events` (to publish with [`BATCH_HEADER`] set to their
/// number).
pub fn encode(events: &[&Framed]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + events.iter().map(|e| e.framed_len()).sum::<usize>());
    out.put_slice(MAGIC);
    for event in events {
        let mut head = String::new();
        for (name, value) in &event.headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        out.put_u32(len32(head.len()));
        out.put_slice(head.as_bytes());
        out.put_u32(len32(event.body.len()));
        out.put_slice(&event.body);
    }
    out.freeze()
}

fn len32(n: usize) -> u32 {
    // A message is far below 4 GiB: NATS refuses payloads over its max_payload (64 MiB at
    // most).
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The events of a batch's payload, `expected` of them (the [`BATCH_HEADER`]).
///
/// # Errors
///
/// What is wrong with the payload: not a batch, cut short, a head that is not
/// `name: value` lines, or a count other than `expected`.
pub fn decode(payload: &Bytes, expected: usize) -> Result<Vec<Framed>, String> {
    let events = decode_all(payload, expected)?;
    if events.len() != expected {
        return Err(format!(
            "the payload holds {} event(s), its {BATCH_HEADER} header says {expected}",
            events.len()
        ));
    }
    Ok(events)
}

/// Every event of `payload`, however many (`expected` sizes the list).
pub(crate) fn decode_all(payload: &Bytes, expected: usize) -> Result<Vec<Framed>, String> {
    if !payload.starts_with(MAGIC) {
        return Err("the payload does not start as a batch of this deskhook version".to_owned());
    }
    let mut events = Vec::with_capacity(expected.min(4096));
    let mut at = MAGIC.len();
    while at < payload.len() {
        let n = events.len() + 1;
        let head =
            part(payload, &mut at).ok_or_else(|| format!("event {n}: its head is cut short"))?;
        let body =
            part(payload, &mut at).ok_or_else(|| format!("event {n}: its body is cut short"))?;
        let head = std::str::from_utf8(&payload[head])
            .map_err(|_| format!("event {n}: its head is not UTF-8"))?;
        let mut headers = Vec::new();
        for line in head.split_terminator("\r\n") {
            let (name, value) = line
                .split_once(": ")
                .ok_or_else(|| format!("event {n}: '{line}' is not a header line"))?;
            headers.push((name.to_owned(), value.to_owned()));
        }
        events.push(Framed {
            headers,
            body: payload.slice(body),
        });
    }
    Ok(events)
}

/// The place of the length-prefixed part of `payload` at `at`; `at` moves past it.
fn part(payload: &[u8], at: &mut usize) -> Option<std::ops::Range<usize>> {
    let len = payload.get(*at..at.checked_add(4)?)?;
    let len = usize::try_from(u32::from_be_bytes(len.try_into().ok()?)).ok()?;
    let start = *at + 4;
    let end = start.checked_add(len).filter(|end| *end <= payload.len())?;
    *at = end;
    Some(start..end)
}

/// Gathers the events of each partition into batches and publishes them.
pub(super) struct Batcher {
    context: jetstream::Context,
    /// The stream that must take the batches (`Nats-Expected-Stream`).
    stream: String,
    /// How long a publish waits for its acknowledgement: also how long a batch whose first
    /// answer did not come is sent again while the stream says it is busy with it.
    timeout: Duration,
    /// `<prefix>.batch.events.`: a batch's subject without its partition.
    subject: String,
    max_events: usize,
    /// The most bytes of payload in a batch: see [`batch_bytes`].
    max_bytes: AtomicUsize,
    lanes: Mutex<HashMap<u32, Lane>>,
}

/// The most bytes of events one batch message holds: at most `most` (1 MiB), and 4 KiB
/// (room for its headers) under the server's `max_payload` and the stream's `max_msg_size`
/// when they are known (not 0 or -1), so that full batches are not refused, then sent again
/// one event at a time, over and over.
pub(super) fn batch_bytes(most: usize, max_payload: usize, max_msg_size: i32) -> usize {
    const HEADERS: usize = 4096;
    let mut limit = most;
    if max_payload > 0 {
        limit = limit.min(max_payload.saturating_sub(HEADERS));
    }
    if let Ok(max) = usize::try_from(max_msg_size)
        && max > 0
    {
        limit = limit.min(max.saturating_sub(HEADERS));
    }
    limit
}

/// The events of one partition waiting for a publish, and the publishes under way.
#[derive(Default)]
struct Lane {
    queue: VecDeque<Waiting>,
    senders: usize,
}

struct Waiting {
    event: Outgoing,
    reply: oneshot::Sender<Published>,
}

impl Batcher {
    /// Up to `max_events` events in one message, as many bytes as the server's
    /// `max_payload` and the stream's `max_msg_size` (-1 when not known) let in (see
    /// [`Batcher::fit`]), on `<prefix>.batch.events.<partition>` of `settings`' stream;
    /// `timeout` as the sink's.
    pub(super) fn new(
        context: jetstream::Context,
        settings: &super::StreamSettings,
        timeout: Duration,
        max_events: usize,
        (max_payload, max_msg_size): (usize, i32),
    ) -> Self {
        let prefix = settings.prefix();
        Batcher {
            context,
            stream: settings.stream_name().to_owned(),
            timeout,
            subject: format!("{prefix}.{BATCH_SUBJECT}."),
            max_events,
            max_bytes: AtomicUsize::new(batch_bytes(BATCH_BYTES, max_payload, max_msg_size)),
            lanes: Mutex::default(),
        }
    }

    /// Fits the batches to the server's `max_payload` and the stream's `max_msg_size` (see
    /// [`batch_bytes`]): after the stream was checked, whose limit may have changed.
    pub(super) fn fit(&self, max_payload: usize, max_msg_size: i32) {
        let most = batch_bytes(BATCH_BYTES, max_payload, max_msg_size);
        self.max_bytes.store(most, Ordering::Relaxed);
    }

    /// Reads the server's `max_payload` and the stream's `max_msg_size` again and
    /// [`fit`](Batcher::fit)s the batches to them; without an answer within the timeout,
    /// halves the batches' size instead, which comes down to the limit in a few refusals
    /// (either way, a batch refused is followed by smaller ones, or by its events alone).
    async fn refit(&self) {
        let max_payload = self.context.client().server_info().max_payload;
        let info = tokio::time::timeout(self.timeout, async {
            let mut stream = self.context.get_stream(&self.stream).await.ok()?;
            stream
                .info()
                .await
                .ok()
                .map(|info| info.config.max_message_size)
        });
        match info.await {
            Ok(Some(max_msg_size)) => self.fit(max_payload, max_msg_size),
            _ => {
                let half = self.max_bytes.load(Ordering::Relaxed) / 2;
                self.max_bytes.store(half, Ordering::Relaxed);
            }
        }
    }

    /// Publishes `event` of `partition`, alone or in a batch; `None` when it was still
    /// waiting for its turn after `wait` (it is then taken out of the queue: the engine's
    /// retry publishes it, once). Once in a batch under way, the batch's answer decides.
    pub(super) async fn publish(
        self: &Arc<Self>,
        partition: u32,
        event: Outgoing,
        wait: Duration,
    ) -> Option<Published> {
        let id = event.id.clone();
        let (reply, mut answer) = oneshot::channel();
        let start = {
            let mut lanes = lock(&self.lanes);
            let lane = lanes.entry(partition).or_default();
            lane.queue.push_back(Waiting { event, reply });
            let start = lane.senders < SENDERS_PER_PARTITION;
            lane.senders += usize::from(start);
            start
        };
        if start {
            tokio::spawn(self.clone().send(partition));
        }
        match tokio::time::timeout(wait, &mut answer).await {
            Ok(answered) => answered.ok(),
            Err(_) if self.withdraw(partition, &id) => None,
            // Taken into a batch meanwhile: published or not, its answer says.
            Err(_) => answer.await.ok(),
        }
    }

    /// Takes event `id` out of `partition`'s queue, if it still waits there.
    fn withdraw(&self, partition: u32, id: &str) -> bool {
        let mut lanes = lock(&self.lanes);
        let Some(lane) = lanes.get_mut(&partition) else {
            return false;
        };
        match lane.queue.iter().position(|w| w.event.id == id) {
            Some(at) => lane.queue.remove(at).is_some(),
            None => false,
        }
    }

    /// Publishes what waits for `partition` until nothing does.
    async fn send(self: Arc<Self>, partition: u32) {
        loop {
            let batch = self.next(partition);
            if batch.is_empty() {
                return;
            }
            let published = self.publish_batch(partition, &batch).await;
            if batch.len() > 1 && too_large(&published) {
                // Over what the server or the stream takes in one message (set lower than
                // this sink was built for). The limits are read again: under this batch's
                // size, its events wait again, at the front, for batches that fit them.
                // Else each event goes alone, and only one too large by itself is refused.
                let size = MAGIC.len()
                    + batch
                        .iter()
                        .map(|w| w.event.event.framed_len())
                        .sum::<usize>();
                self.refit().await;
                if self.max_bytes.load(Ordering::Relaxed) < size {
                    let mut lanes = lock(&self.lanes);
                    let lane = lanes.entry(partition).or_default();
                    for waiting in batch.into_iter().rev() {
                        lane.queue.push_front(waiting);
                    }
                    continue;
                }
                for waiting in batch {
                    let alone = self
                        .publish_batch(partition, std::slice::from_ref(&waiting))
                        .await;
                    let _ = waiting.reply.send(alone);
                }
                continue;
            }
            for waiting in batch {
                let _ = waiting.reply.send(published.clone());
            }
        }
    }

    /// The next batch of `partition`; empty (and the sender gone) when nothing waits.
    fn next(&self, partition: u32) -> Vec<Waiting> {
        let mut lanes = lock(&self.lanes);
        let Some(lane) = lanes.get_mut(&partition) else {
            return Vec::new();
        };
        let mut batch = Vec::new();
        let mut bytes = MAGIC.len();
        let max_bytes = self.max_bytes.load(Ordering::Relaxed);
        while let Some(first) = lane.queue.front() {
            let len = first.event.event.framed_len();
            if batch.len() == self.max_events || (!batch.is_empty() && bytes + len > max_bytes) {
                break;
            }
            bytes += len;
            batch.extend(lane.queue.pop_front());
        }
        if batch.is_empty() {
            lane.senders -= 1;
            if lane.senders == 0 {
                lanes.remove(&partition);
            }
        }
        batch
    }

    async fn publish_batch(&self, partition: u32, batch: &[Waiting]) -> Published {
        // (A batch's Msg-Id names every event in it: see `batch_msg_id`.)
        let (subject, headers, payload) = match batch {
            [one] => (
                one.event.subject.clone(),
                one.event.header_map().map_err(invalid)?,
                one.event.event.body.clone(),
            ),
            _ => {
                let events: Vec<&Framed> = batch.iter().map(|w| &w.event.event).collect();
                let mut headers = HeaderMap::new();
                headers.insert(BATCH_HEADER, batch.len().to_string().as_str());
                headers.insert(MSG_ID_HEADER, batch_msg_id(batch).as_str());
                (
                    format!("{}{partition}", self.subject),
                    headers,
                    encode(&events),
                )
            }
        };
        // A publish whose answer did not come (a timeout, a connection lost) may have been
        // stored: sent again as it was, its Msg-Id lets the stream take it for the
        // duplicate it may be. Given back to the engine instead, its events would be
        // published again one by one, under other ids: stored twice. So after such a try,
        // an answer that only says "not now" (the id still being stored by a leader that
        // took the first one, no leader yet) is not the end either (see `Resend`).
        let mut resend = Resend::new(self.timeout);
        loop {
            let message = jetstream::message::PublishMessage::build()
                .payload(payload.clone())
                .headers(headers.clone())
                .expected_stream(&self.stream);
            let published = match self.context.send_publish(subject.clone(), message).await {
                Ok(pending) => pending.await,
                Err(e) => Err(e),
            };
            let Err(e) = published else {
                return published.map_err(Arc::new);
            };
            let now = tokio::time::Instant::now().into_std();
            match resend.after(answer_of(&e), now) {
                Some(pause) => tokio::time::sleep(pause).await,
                None => return Err(Arc::new(e)),
            }
        }
    }
}

/// What a failed publish of a batch said, for [`Resend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// No answer came (a timeout, a connection lost): it may have been stored.
    Unknown,
    /// Not now (a leader still storing the same id, no leader yet, a full queue).
    NotNow,
    /// Anything else: the engine decides what comes next.
    Final,
}

/// What the failed publish `e` said.
fn answer_of(e: &PublishError) -> Answer {
    use jetstream::context::PublishErrorKind as Kind;
    if matches!(e.kind(), Kind::TimedOut | Kind::BrokenPipe) {
        return Answer::Unknown;
    }
    let passing = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .is_some_and(|api| super::api_refusal(api).1);
    if passing {
        Answer::NotNow
    } else {
        Answer::Final
    }
}

/// When a batch is sent again as it was (see `publish_batch`): at once after an answer that
/// did not come, [`SAME_AGAIN`] times; once a try's fate is unknown, after any answer but a
/// final refusal (a "not now": the id still being stored, no leader, a stream or account
/// full; or again no answer), with a pause that doubles from 50 ms to 1 s, for as long as
/// one publish may wait for its answer (`timeout`, counted from the first unknown fate).
#[derive(Debug)]
struct Resend {
    timeout: Duration,
    tries: u32,
    unsure_since: Option<std::time::Instant>,
    pause: Duration,
}

impl Resend {
    fn new(timeout: Duration) -> Resend {
        Resend {
            timeout,
            tries: 0,
            unsure_since: None,
            pause: Duration::from_millis(50),
        }
    }

    /// After a try that got `answer` at `now`: the pause before the next try, or `None`
    /// when the error is the batch's answer.
    fn after(&mut self, answer: Answer, now: std::time::Instant) -> Option<Duration> {
        if answer == Answer::Unknown && self.tries < SAME_AGAIN {
            self.tries += 1;
            self.unsure_since.get_or_insert(now);
            return Some(Duration::ZERO);
        }
        let since = self.unsure_since?;
        let pause = self.pause;
        if answer == Answer::Final || now.duration_since(since) + pause >= self.timeout {
            return None;
        }
        self.pause = (pause * 2).min(Duration::from_secs(1));
        Some(pause)
    }
}

/// Whether a publish was refused for its size: over the server's `max_payload`, or the
/// stream's `max_msg_size`.
fn too_large(published: &Published) -> bool {
    let Err(e) = published else {
        return false;
    };
    e.kind() == jetstream::context::PublishErrorKind::MaxPayloadExceeded
        || std::error::Error::source(&**e)
            .and_then(|s| s.downcast_ref::<jetstream::Error>())
            .is_some_and(|api| {
                api.error_code() == jetstream::ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM
            })
}

/// A header the engine made that NATS cannot carry (checked before the event queues).
fn invalid(message: String) -> Arc<PublishError> {
    Arc::new(PublishError::with_source(
        jetstream::context::PublishErrorKind::Other,
        message,
    ))
}

/// The `Nats-Msg-Id` of a batch: its first event's id, its size, and a SHA-256 of every
/// event's id. JetStream takes a message whose id it saw in its window for a duplicate and
/// acknowledges it without storing it, so the id must name all the events: one made of the
/// first and last ids only let a later batch [a, d, c] pass for a stored [a, b, c], and d was
/// lost without a trace.
fn batch_msg_id(batch: &[Waiting]) -> String {
    use sha2::Digest as _;
    let mut digest = sha2::Sha256::new();
    for waiting in batch {
        digest.update(waiting.event.id.as_bytes());
        digest.update(b"\n");
    }
    let hex: String = digest.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}+{}+{hex}", batch[0].event.id, batch.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_whose_fate_is_unknown_is_sent_again_while_the_stream_says_not_now() {
        let t0 = std::time::Instant::now();
        let ms = Duration::from_millis;
        // Refused at once: the engine decides, nothing is sent again.
        let mut resend = Resend::new(ms(2000));
        assert_eq!(resend.after(Answer::NotNow, t0), None);
        assert_eq!(Resend::new(ms(2000)).after(Answer::Final, t0), None);
        // Timed out twice: sent again at once each time; then "still being stored" answers
        // are waited out with a growing pause, until one publish's wait has gone by.
        let mut resend = Resend::new(ms(2000));
        assert_eq!(resend.after(Answer::Unknown, t0), Some(Duration::ZERO));
        assert_eq!(
            resend.after(Answer::Unknown, t0 + ms(10)),
            Some(Duration::ZERO)
        );
        assert_eq!(resend.after(Answer::NotNow, t0 + ms(20)), Some(ms(50)));
        assert_eq!(resend.after(Answer::NotNow, t0 + ms(80)), Some(ms(100)));
        assert_eq!(resend.after(Answer::Unknown, t0 + ms(200)), Some(ms(200)));
        assert_eq!(resend.after(Answer::NotNow, t0 + ms(1000)), Some(ms(400)));
        assert_eq!(resend.after(Answer::NotNow, t0 + ms(1500)), None);
        // After an unknown one, a refusal that is final ends it too.
        let mut resend = Resend::new(ms(2000));
        assert_eq!(resend.after(Answer::Unknown, t0), Some(Duration::ZERO));
        assert_eq!(resend.after(Answer::Final, t0), None);
    }

    #[test]
    fn a_batch_fits_the_servers_payload_and_the_streams_message_size() {
        let mib = 1 << 20;
        // Unknown (a server not reached yet, a stream without a limit): 1 MiB.
        assert_eq!(batch_bytes(mib, 0, -1), mib);
        assert_eq!(batch_bytes(mib, 8 * mib, 0), mib);
        assert_eq!(batch_bytes(mib, 64 * 1024, -1), 60 * 1024);
        assert_eq!(batch_bytes(mib, 8 * mib, 100_000), 100_000 - 4096);
        // A stream that takes less than the headers' room: one event per message.
        assert_eq!(batch_bytes(mib, 8 * mib, 1000), 0);
    }

    #[test]
    fn a_message_id_still_being_stored_is_not_now_and_another_stream_is_final() {
        let api = |code: u16, err_code: u64| -> PublishError {
            let api: jetstream::Error = serde_json::from_value(serde_json::json!({
                "code": code, "err_code": err_code, "description": "from the server",
            }))
            .unwrap();
            PublishError::with_source(jetstream::context::PublishErrorKind::Other, api)
        };
        // The id still being stored; a cluster without a leader.
        assert_eq!(answer_of(&api(503, 10158)), Answer::NotNow);
        assert_eq!(answer_of(&api(503, 10008)), Answer::NotNow);
        assert_eq!(answer_of(&api(400, 10060)), Answer::Final);
        let timed_out = PublishError::new(jetstream::context::PublishErrorKind::TimedOut);
        assert_eq!(answer_of(&timed_out), Answer::Unknown);
    }

    fn event(id: &str, ticket: &str, body: &str) -> Framed {
        Framed::new(
            vec![
                ("webhook-id".to_owned(), id.to_owned()),
                ("x-deskhook-ticket".to_owned(), ticket.to_owned()),
            ],
            Bytes::from(body.to_owned()),
        )
        .unwrap()
    }

    #[test]
    fn a_batch_reads_back_as_its_events() {
        let events = [
            event("msg_1", "T-1", "{\"a\":1}"),
            event("msg_2", "T%202", ""),
            event("msg_3", "T-3", &"x".repeat(70_000)),
        ];
        let refs: Vec<&Framed> = events.iter().collect();
        let payload = encode(&refs);
        let read = decode(&payload, 3).unwrap();
        assert_eq!(read, events);
        assert_eq!(read[1].header("Webhook-Id"), Some("msg_2"));
        assert_eq!(read[1].header("x-deskhook-ticket"), Some("T%202"));
        assert_eq!(read[1].header("x-deskhook-tenant"), None);
        assert_eq!(
            payload.len(),
            4 + events.iter().map(Framed::framed_len).sum::<usize>()
        );
        assert!(Framed::new(vec![("a".into(), "b\r\nc: d".into())], Bytes::new()).is_err());
        // What NATS refuses in a message's header names, refused here too (a batch of one
        // goes as one message): else retried for a whole schedule rather than refused.
        for name in ["X Team", "X-Équipe", "X:Team", ""] {
            assert!(
                Framed::new(vec![(name.into(), "1".into())], Bytes::new()).is_err(),
                "{name:?}"
            );
        }
        assert!(Framed::new(vec![("X-Team".into(), "a b é".into())], Bytes::new()).is_ok());
    }

    #[test]
    fn a_batch_msg_id_names_every_event() {
        let waiting = |id: &str| Waiting {
            event: Outgoing {
                subject: "s".into(),
                id: id.into(),
                event: event(id, "T", "{}"),
            },
            reply: oneshot::channel().0,
        };
        let id = |ids: &[&str]| batch_msg_id(&ids.iter().map(|i| waiting(i)).collect::<Vec<_>>());
        // Same first, size and last: another batch all the same.
        assert_ne!(id(&["a", "b", "c"]), id(&["a", "d", "c"]));
        assert_eq!(id(&["a", "b", "c"]), id(&["a", "b", "c"]));
        assert!(id(&["a", "b", "c"]).starts_with("a+3+"));
        // The separator keeps ids from running together.
        assert_ne!(id(&["ab", "c"]), id(&["a", "bc"]));
    }

    #[test]
    fn a_damaged_batch_is_refused_with_what_is_wrong() {
        let events = [event("msg_1", "T-1", "{}"), event("msg_2", "T-2", "{}")];
        let refs: Vec<&Framed> = events.iter().collect();
        let payload = encode(&refs);
        let error = |payload: Bytes, n| decode(&payload, n).unwrap_err();
        assert!(error(payload.clone(), 3).contains("holds 2 event(s)"));
        assert!(
            error(payload.slice(..payload.len() - 1), 2).contains("event 2: its body is cut short")
        );
        assert!(error(payload.slice(..10), 2).contains("event 1: its head is cut short"));
        assert!(error(Bytes::from_static(b"{\"a\":1}"), 1).contains("does not start as a batch"));
        let mut bad = BytesMut::from(&MAGIC[..]);
        bad.put_u32(5);
        bad.put_slice(b"nope\n");
        bad.put_u32(0);
        assert!(error(bad.freeze(), 1).contains("'nope\n' is not a header line"));
    }
}
