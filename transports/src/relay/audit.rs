//! Messages a partition's consumer skipped: some nats-server versions (2.9 among them) now
//! and then pass a message of a filtered consumer as messages around it are removed. Each
//! partition reads the stream's head every `ack_wait`; a message of its own below its
//! consumer's floor, seen twice in a row, is stored again at the tail and the old one
//! removed (see the relay module's "Order and duplicates").

use std::sync::atomic::Ordering;

use super::incoming;
use super::partition::Shared;
use crate::nats::MSG_ID_HEADER;

/// The most messages one look reads from the stream's head: past them (other partitions'
/// messages under way, a stray subject's), the next look tries again, as the head moves.
/// In the usual state the first message is above the consumer's floor, and one is read.
const HEAD_READ: usize = 64;

/// What a partition's looks for skipped messages remember between them.
#[derive(Default)]
pub(super) struct Audit {
    /// The message found at the last look.
    suspect: Option<u64>,
    /// A message whose copy is stored but that could not be removed.
    copied: Option<u64>,
}

/// Why a skipped message was not stored again.
struct NotStored {
    why: String,
    /// Whether its copy is stored (only the old one's removal failed).
    copied: bool,
}

impl Shared {
    /// One look for a message `partition`'s consumer `name` skipped (see `skipped`): found
    /// at two looks in a row, it is stored again and the old one removed (only removed, if
    /// a look before stored its copy but could not remove it: never a third copy).
    pub(super) async fn look(&self, partition: u32, name: &str, audit: &mut Audit) {
        let found = self.skipped(partition, name).await;
        let sequence = found.as_ref().map(|(sequence, _)| *sequence);
        let Some((sequence, ticket)) = found.filter(|_| sequence == audit.suspect) else {
            audit.suspect = sequence;
            return;
        };
        audit.suspect = None;
        let stored = if audit.copied == Some(sequence) {
            self.remove(sequence).await
        } else {
            self.store_again(sequence).await
        };
        match stored {
            Ok(()) => log::warn!(
                target: deskhook::LOG_TARGET,
                "relay: partition {partition}: message {sequence} ({ticket}) was still \
                 in the stream though its consumer counts it as acknowledged (it skipped it: a \
                 fault of some nats-server versions); stored it again, for delivery"
            ),
            Err(e) => {
                if e.copied {
                    audit.copied = Some(sequence);
                }
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "relay: partition {partition}: message {sequence} ({ticket}) is \
                     still in the stream though its consumer counts it as acknowledged, and \
                     cannot be stored again: {}; trying again",
                    e.why
                );
            }
        }
    }

    /// The first message of `partition` in the stream (its sequence and tickets) that the
    /// consumer `name` counts as acknowledged: a message the consumer will never hand out.
    /// (In a work-queue stream an acknowledged message leaves it; some nats-server versions,
    /// 2.9 among them, now and then skip a message of a filtered consumer as messages
    /// around it are removed, and the partition's later events then flow without it.) Such
    /// messages gather at the stream's head, as everything around them is acknowledged and
    /// removed, among other partitions' messages still under way and messages of subjects no
    /// partition takes: the look reads the head in order, up to [`HEAD_READ`] messages, and
    /// stops at the first above the consumer's floor. It reads them by sequence through the
    /// whole stream (`>`), not through the subjects' index that misled the consumer. `None`
    /// when there is none, or when the servers do not answer: the next look tries again.
    async fn skipped(&self, partition: u32, name: &str) -> Option<(u64, String)> {
        // The consumer first: a message published after this is above its floor, and not
        // looked at.
        let info = self.stream.consumer_info(name).await.ok()?;
        let floor = info.ack_floor.stream_sequence;
        let mut from = 1;
        for _ in 0..HEAD_READ {
            let message = self
                .stream
                .get_first_raw_message_by_subject(">", from)
                .await
                .ok()?;
            if message.sequence > floor {
                return None;
            }
            if self.settings.partition_of_subject(&message.subject) == Some(partition) {
                let ticket = incoming::tickets(&message.headers, &message.payload);
                return Some((message.sequence, ticket));
            }
            from = message.sequence.checked_add(1)?;
        }
        None
    }

    /// Stores the message at `sequence` again, at the stream's tail, and removes the old
    /// one: the consumer that skipped it hands the copy out like any new message (making the
    /// consumer again does not help: a new one skips it too, misled by the same index). The
    /// copy keeps the event's headers but `Nats-Msg-Id`, with which JetStream would drop it
    /// as a duplicate. Should the relay die between the two steps, the event is in the stream
    /// twice, and is delivered twice with the same `webhook-id`.
    async fn store_again(&self, sequence: u64) -> Result<(), NotStored> {
        let failed = |why: String| NotStored { why, copied: false };
        let message = self
            .stream
            .get_raw_message(sequence)
            .await
            .map_err(|e| failed(format!("cannot read it: {e}")))?;
        let mut headers = async_nats::HeaderMap::new();
        for (name, values) in message.headers.iter() {
            if !AsRef::<str>::as_ref(name).eq_ignore_ascii_case(MSG_ID_HEADER) {
                for value in values {
                    headers.append(name.clone(), value.clone());
                }
            }
        }
        // Into this stream and no other (one made over the subject since would take the
        // copy, and the original would then be removed).
        let copy = async_nats::jetstream::message::PublishMessage::build()
            .payload(message.payload.clone())
            .headers(headers)
            .expected_stream(self.settings.stream_name());
        self.context
            .send_publish(message.subject.clone(), copy)
            .await
            .map_err(|e| failed(format!("cannot publish the copy: {e}")))?
            .await
            .map_err(|e| failed(format!("the copy was not stored: {e}")))?;
        self.book
            .counts
            .stored_again
            .fetch_add(1, Ordering::Relaxed);
        self.remove(sequence).await
    }

    /// Removes the message at `sequence`, once its copy is stored.
    async fn remove(&self, sequence: u64) -> Result<(), NotStored> {
        match self.stream.delete_message(sequence).await {
            Ok(_) => Ok(()),
            Err(e) => Err(NotStored {
                why: format!("the copy is stored, but the old one cannot be removed: {e}"),
                copied: true,
            }),
        }
    }
}
