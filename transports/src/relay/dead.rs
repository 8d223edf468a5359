//! Where a relay's dead letters go besides its dead-letter file: the stream
//! `<stream>_DEAD`, under `<prefix>-dead.<endpoint>`. An event's message is acknowledged
//! only once its letters are published there (or failed to be, and are in the file or the
//! log): the file is not synced, and an acknowledgement that came first would lose a letter
//! in a crash of the host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};

use super::book::{Book, lock};
use super::nats_error;
use crate::delivery::DeadLetter;
use crate::error::Error;
use crate::nats::StreamSettings;

/// Dead letters published at once: a mass dead-lettering (an endpoint removed with
/// thousands queued) is not held to one round trip per letter.
const PUBLISHING: usize = 32;

/// A dead letter the engine wrote, with whether its file took it.
pub(super) type Letter = (DeadLetter, bool);

/// The events whose dead letters are on their way to the dead stream, each with how many.
#[derive(Default)]
pub(super) struct Unpublished {
    events: Mutex<HashMap<String, usize>>,
    /// Told each time an event's last letter is published.
    published: Notify,
}

impl Unpublished {
    /// A letter of event `id` goes to the publisher.
    pub(super) fn add(&self, id: &str) {
        *lock(&self.events).entry(id.to_owned()).or_default() += 1;
    }

    /// A letter of event `id` is published (or failed to be).
    pub(super) fn remove(&self, id: &str) {
        let mut events = lock(&self.events);
        if let Some(count) = events.get_mut(id) {
            *count -= 1;
            if *count == 0 {
                events.remove(id);
                drop(events);
                self.published.notify_waiters();
            }
        }
    }

    /// Resolves once no letter of the events `ids` is waiting to be published.
    pub(super) async fn until_published(&self, ids: &[&str]) {
        loop {
            let published = self.published.notified();
            if !ids.iter().any(|id| lock(&self.events).contains_key(*id)) {
                return;
            }
            published.await;
        }
    }

    /// Resolves once no letter at all is waiting to be published.
    pub(super) async fn until_all_published(&self) {
        loop {
            let published = self.published.notified();
            if lock(&self.events).is_empty() {
                return;
            }
            published.await;
        }
    }
}

/// Publishes the letters of `letters` as they come, [`PUBLISHING`] at once, each followed
/// by its endpoint's end with the event in `book` (so the event's message is acknowledged
/// once its last endpoint is done), until the engine that writes them is gone.
pub(super) async fn publish_letters(
    context: jetstream::Context,
    (prefix, stream): (String, String),
    book: Arc<Book>,
    unpublished: Arc<Unpublished>,
    mut letters: mpsc::UnboundedReceiver<Letter>,
) {
    futures_util::stream::poll_fn(move |cx| letters.poll_recv(cx))
        .for_each_concurrent(PUBLISHING, |(letter, in_file)| {
            let (context, prefix, stream) = (&context, &prefix, &stream);
            let (book, unpublished) = (&book, &unpublished);
            async move {
                publish_dead_letter(context, prefix, stream, &letter, in_file).await;
                book.finished(&letter.id, &letter.endpoint);
                unpublished.remove(&letter.id);
            }
        })
        .await;
}

/// The stream dead letters are published to: `<stream>_DEAD`, subjects `<prefix>-dead.>`,
/// made with as many `replicas` as the events' stream has: a letter's event is
/// acknowledged once the letter is published, and must not then rest on fewer copies.
pub(super) async fn dead_letter_stream(
    context: &jetstream::Context,
    settings: &StreamSettings,
    replicas: usize,
    urls: &str,
) -> Result<String, Error> {
    let name = format!("{}_DEAD", settings.stream_name());
    let made = context
        .get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}-dead.>", settings.prefix())],
            description: Some("deskhook dead letters, published by deskhook relay".to_owned()),
            num_replicas: replicas.max(1),
            ..Default::default()
        })
        .await
        .map_err(|e| {
            nats_error(
                urls,
                format!("cannot make the dead-letter stream '{name}': {e}"),
            )
        })?;
    let has = made.cached_info().config.num_replicas.max(1);
    if has < replicas {
        log::warn!(
            target: deskhook::LOG_TARGET,
            "the dead-letter stream '{name}' has {has} replica(s) and the events' stream \
             {replicas}: a dead letter rests on fewer copies than its event did; raise them \
             with `nats stream edit {name} --replicas {replicas}`"
        );
    }
    Ok(name)
}

/// Publishes a dead letter; what cannot be published is in the relay's dead-letter file
/// (`in_file`), or else only in the log, where the engine wrote it whole.
async fn publish_dead_letter(
    context: &jetstream::Context,
    prefix: &str,
    stream: &str,
    letter: &DeadLetter,
    in_file: bool,
) {
    let token: String = letter
        .endpoint
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() || ".*>".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let subject = format!("{prefix}-dead.{token}");
    let Ok(payload) = serde_json::to_vec(letter) else {
        return;
    };
    let message = jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .expected_stream(stream);
    let acked = match context.send_publish(subject, message).await {
        Ok(ack) => ack.await.map(drop).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = acked {
        let place = if in_file {
            "it is in the relay's dead-letter file"
        } else {
            "the relay's dead-letter file could not take it either: it is only in the log, \
             logged whole at error level"
        };
        log::warn!(
            target: deskhook::LOG_TARGET,
            "dead letter {} not published to stream '{stream}' ({e}); {place}",
            letter.id
        );
    }
}
