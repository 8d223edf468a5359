//! What a stream or a KV bucket holds, read back for a test to check: taken out with a pull
//! consumer on one server, read by sequence (no consumer) on a cluster.

use std::time::{Duration, Instant};

use deskhook_transports::nats::async_nats::{self, jetstream};
use futures_util::StreamExt;

use super::{START_WAIT, context};

/// One message read back from the stream.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    /// Its subject.
    pub subject: String,
    /// Its headers (name, value), as published.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

impl StoredMessage {
    /// The message of `subject`, `headers` and `body`, as a test reads it.
    fn new(subject: &str, headers: Option<&async_nats::HeaderMap>, body: &[u8]) -> StoredMessage {
        let headers = headers
            .into_iter()
            .flat_map(|map| map.iter())
            .flat_map(|(name, values)| {
                values
                    .iter()
                    .map(move |v| (name.to_string(), v.as_str().to_owned()))
            })
            .collect();
        StoredMessage {
            subject: subject.to_owned(),
            headers,
            body: body.to_vec(),
        }
    }

    /// A header's value, by exact name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Takes every message out of `stream` with a pull consumer (acknowledging each, which
/// removes it from a work-queue stream): as many as the stream held when called, each
/// waited for up to 20 s, then more while the next comes within `idle`; or until a pull
/// fails. Making the consumer is tried again for up to 20 s. For one server: a cluster's
/// test reads with [`read_stream`], which neither makes nor deletes a consumer.
pub async fn drain_stream(url: &str, stream: &str, idle: Duration) -> Vec<StoredMessage> {
    let js = context(url).await;
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    // What the stream holds is waited for as long as a start may take; only then does a
    // pause of `idle` end the pass (a busy machine can be slower than `idle` to deliver
    // the first message).
    let held = stream.info().await.map_or(0, |info| info.state.messages);
    let deadline = Instant::now() + START_WAIT;
    let consumer = loop {
        let made = stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some("deskhook-test".to_owned()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await;
        match made {
            Ok(consumer) => break consumer,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("a pull consumer: {e:?}"),
        }
    };
    let mut messages = consumer.messages().await.expect("a message stream");
    let mut out = Vec::new();
    loop {
        let wait = if (out.len() as u64) < held {
            START_WAIT.max(idle)
        } else {
            idle
        };
        let Ok(Some(message)) = tokio::time::timeout(wait, messages.next()).await else {
            break;
        };
        // A pull that failed (a heartbeat missed on a busy machine): the drain ends here,
        // and the caller's count of what it read says what it missed.
        let Ok(message) = message else {
            break;
        };
        out.push(StoredMessage::new(
            &message.subject,
            message.headers.as_ref(),
            &message.payload,
        ));
        message.ack().await.expect("the ack reaches the server");
    }
    // What the server delivered to this pass but it did not read waits out the consumer's
    // ack wait (30 s) before it is delivered again: the consumer goes, and on the
    // work-queue stream the next pass's consumer starts at the first unacknowledged message.
    drop(messages);
    let deadline = Instant::now() + START_WAIT;
    loop {
        match stream.delete_consumer("deskhook-test").await {
            Ok(_) => break,
            Err(e)
                if matches!(e.kind(), jetstream::stream::ConsumerErrorKind::JetStream(ref js)
                if js.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND) =>
            {
                break;
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("deleting the drain's consumer: {e:?}"),
        }
    }
    out
}

/// Every message `stream` holds now, in the stream's order, read one by one by sequence
/// from the stream's leader, leaving the stream as it was: no consumer, no acknowledgement.
///
/// What a test on a cluster reads: a consumer made and deleted on a replicated work-queue
/// stream can take unacknowledged messages with it on some nats-server releases
/// (nats-io/nats-server#5612), which a drain by consumer then reports as lost. A read the
/// cluster does not answer (its leaders still moving after a node died) is tried again for
/// up to 20 s.
pub async fn read_stream(url: &str, stream: &str) -> Vec<StoredMessage> {
    use jetstream::stream::RawMessageErrorKind;
    let js = context(url).await;
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    let state = &stream.info().await.expect("the stream's info").state;
    let sequences = state.first_sequence..=state.last_sequence;
    let mut out = Vec::new();
    for sequence in sequences {
        let deadline = Instant::now() + START_WAIT;
        loop {
            match stream.get_raw_message(sequence).await {
                Ok(message) => {
                    out.push(StoredMessage::new(
                        &message.subject,
                        Some(&message.headers),
                        &message.payload,
                    ));
                    break;
                }
                // Taken out of the stream (acknowledged, or deleted).
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("reading message {sequence} of the stream: {e}"),
            }
        }
    }
    out
}

/// The keys of the KV bucket `bucket` now.
pub async fn kv_keys(url: &str, bucket: &str) -> Vec<String> {
    use futures_util::StreamExt as _;
    let bucket = context(url)
        .await
        .get_key_value(bucket)
        .await
        .expect("the bucket exists");
    let keys = bucket.keys().await.expect("its keys");
    keys.map(|key| key.expect("a key")).collect().await
}

/// How many messages `stream` holds now.
pub async fn stream_len(url: &str, stream: &str) -> u64 {
    let js = context(url).await;
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    stream
        .info()
        .await
        .expect("the stream's info")
        .state
        .messages
}

/// The state of every consumer of `stream`, one line each (name, filter, messages left for
/// it, delivered and not acknowledged, pull requests waiting, last delivered and
/// acknowledged stream sequence), and the stream's message count: what a test prints when
/// deliveries stop, to tell a stream that is empty from consumers that do not deliver.
pub async fn consumers_report(url: &str, stream: &str) -> String {
    use futures_util::StreamExt as _;
    let js = context(url).await;
    let Ok(mut found) = js.get_stream(stream).await else {
        return format!("stream {stream}: not found");
    };
    let (messages, first, last) = found.info().await.map_or((0, 0, 0), |i| {
        (
            i.state.messages,
            i.state.first_sequence,
            i.state.last_sequence,
        )
    });
    let mut lines = vec![format!(
        "stream {stream}: {messages} message(s), sequences {first} to {last}"
    )];
    // The first few messages still held: which subjects (partitions) they are on.
    let mut shown = 0;
    for seq in first..=last {
        if shown == 8 || messages == 0 {
            break;
        }
        if let Ok(message) = found.get_raw_message(seq).await {
            // What a look for its partition's first message finds (`<prefix>.*.*.<n>`).
            let tokens: Vec<&str> = message.subject.split('.').collect();
            let partition = format!(
                "{}.*.*.{}",
                tokens.first().unwrap_or(&""),
                tokens.last().unwrap_or(&"")
            );
            let first = found
                .get_first_raw_message_by_subject(&partition, 1)
                .await
                .map_or_else(|e| e.to_string(), |m| m.sequence.to_string());
            lines.push(format!(
                "  held: sequence {seq} on {} (first found on {partition}: {first})",
                message.subject
            ));
            shown += 1;
        }
    }
    let mut consumers = found.consumers();
    while let Some(info) = consumers.next().await {
        match info {
            Ok(c) => lines.push(format!(
                "consumer {} ({}): pending {}, ack pending {}, waiting pulls {}, delivered {}, \
                 ack floor {}",
                c.name,
                c.config.filter_subject,
                c.num_pending,
                c.num_ack_pending,
                c.num_waiting,
                c.delivered.stream_sequence,
                c.ack_floor.stream_sequence
            )),
            Err(e) => lines.push(format!("listing consumers: {e}")),
        }
    }
    lines.join("\n")
}
