//! The book's acknowledging task: it acknowledges each message whose events have finished,
//! removes the parked entries of those parked, and parks the messages failing endpoints hold
//! up (see `park`), one piece of work at a time, in the order asked.
//!
//! An acknowledgement is only sent: the server may never get it (a connection cut as it
//! went, a leader change), and then hands the message out again after `ack_wait`. The
//! relay knows such a message again by its events' ids, but only while it remembers them
//! (see `Recent`), and a relay that takes the partition over does not know them at all. So
//! the events a message's tickets hold in their gates behind it go only once the server has
//! confirmed its acknowledgement (a request on the message's reply subject, answered by the
//! server; asked again every `ack_wait` / 4 until it is): a lost acknowledgement cannot
//! bring the earlier event back after them. A message nothing waits for when its
//! acknowledgement is sent is acknowledged without a confirmation; an event gated behind it
//! after that (the ticket's next message pulled meanwhile) waits for the confirmation of
//! the acknowledgement sent again. After 2 × `ack_wait` without one, the events go all
//! the same (logged): a lost acknowledgement has brought the message back by then, or does
//! later, and the relay knows it again by its events, which it then remembers for longer
//! (see `Book::pin`). A relay that takes the partition over does not know them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::park::{park, remove_unremoved};
use super::{Book, Carrier, Work, lock};
use crate::delivery::DeliverySink;
use crate::relay::parked::Parked;

/// How the server's confirmation of an acknowledgement is asked for: each request waits
/// `every` (a quarter of `ack_wait`, between 100 ms and 5 s) and is made again after that,
/// for `until` (2 × `ack_wait`) at most.
#[derive(Clone, Copy, Debug)]
pub(in crate::relay) struct Confirming {
    every: Duration,
    until: Duration,
}

impl Confirming {
    /// For a consumer whose server hands a message out again after `ack_wait`.
    pub(in crate::relay) fn new(ack_wait: Duration) -> Confirming {
        Confirming {
            every: (ack_wait / 4).clamp(Duration::from_millis(100), Duration::from_secs(5)),
            until: ack_wait.saturating_mul(2),
        }
    }
}

/// Does the book's [`Work`] as it comes, until the book is dropped: acknowledges each
/// message whose events have finished, hands `http` the events that waited for it, removes
/// the parked entries of those parked, and parks what failing endpoints hold up.
/// Acknowledgements to be confirmed (see the module) wait for the server beside the work.
pub(in crate::relay) async fn settle_messages(
    book: Arc<Book>,
    mut work: mpsc::UnboundedReceiver<Work>,
    http: DeliverySink,
    parked: Arc<Parked>,
    confirming: Confirming,
) {
    let mut waiting = FuturesUnordered::new();
    loop {
        let next = tokio::select! {
            next = work.recv() => match next {
                Some(next) => next,
                None => return,
            },
            Some((carrier, acked)) = waiting.next(), if !waiting.is_empty() => {
                let carrier: Arc<Carrier> = carrier;
                match acked {
                    // Its tenure ended: the next owner has the message, and the events that
                    // waited for it.
                    Acked::Withdrawn => book.settle(&carrier),
                    Acked::Confirmed => {
                        acknowledged(&book, &http, &carrier, true);
                    }
                    Acked::Unconfirmed => {
                        book.pin(&carrier);
                        acknowledged(&book, &http, &carrier, true);
                    }
                }
                continue;
            }
        };
        match next {
            Work::Done(carrier) => {
                if let Some(carrier) = done(&book, &http, &parked, carrier).await {
                    waiting.push(confirmed_ack(carrier, confirming));
                }
            }
            Work::Park { carriers, quietly } => {
                // Taken: the next turn of `park_stuck` may queue another.
                book.park_queued.store(false, Ordering::Release);
                for carrier in park(&book, &http, &parked, carriers, quietly).await {
                    waiting.push(confirmed_ack(carrier, confirming));
                }
                // What a look at once found meanwhile was not queued (one park at a time).
                if book.park_deferred.swap(false, Ordering::AcqRel) {
                    book.park_soon.notify_one();
                }
            }
            Work::Flush(done) => {
                remove_unremoved(&book, &parked).await;
                let _ = done.send(());
            }
        }
    }
}

/// `carrier`'s events have all finished. Returns it when its acknowledgement is to be
/// confirmed (an event waits for it: see the module) rather than only sent.
async fn done(
    book: &Book,
    http: &DeliverySink,
    parked: &Parked,
    carrier: Arc<Carrier>,
) -> Option<Arc<Carrier>> {
    let keys = book.parked_done(&carrier);
    if !keys.is_empty() {
        // Acknowledged when it was parked.
        if let Err(e) = parked.remove(&keys).await {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "relay: partition {}: cannot remove the parked entries {keys:?}, whose events \
                 have finished ({e}); trying again at the next look",
                carrier.partition
            );
            lock(&book.unremoved).extend(keys);
        }
        return None;
    }
    let message = carrier.message.as_ref()?;
    if book.gates.held_behind(&carrier) {
        return Some(carrier);
    }
    if let Err(e) = message.ack().await {
        log::warn!(
            target: deskhook::LOG_TARGET,
            "relay: acknowledging a message on '{}' failed ({e}); the server will hand \
             it out again and the relay will acknowledge it then",
            message.subject
        );
    }
    (!acknowledged(book, http, &carrier, false)).then_some(carrier)
}

/// How waiting for the confirmation of an acknowledgement ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Acked {
    /// The server has it.
    Confirmed,
    /// Not confirmed within `Confirming::until`: the events waiting for it go all the same.
    Unconfirmed,
    /// The tenure that took the message ended first: the partition's next owner has the
    /// message, and the events that wait for it.
    Withdrawn,
}

/// Acknowledges `carrier`'s message and waits for the server to confirm it, asking again
/// as `confirming` says. Gives it back with how that ended.
async fn confirmed_ack(carrier: Arc<Carrier>, confirming: Confirming) -> (Arc<Carrier>, Acked) {
    let Some(message) = &carrier.message else {
        return (carrier, Acked::Confirmed);
    };
    let start = Instant::now();
    let mut asked = 0_u32;
    loop {
        let asking = Instant::now();
        let Err(error) = confirm_ack(message, confirming.every).await else {
            break;
        };
        if carrier.withdrawn.load(Ordering::Acquire) {
            return (carrier, Acked::Withdrawn);
        }
        asked += 1;
        if start.elapsed() >= confirming.until {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "relay: partition {}: the server did not confirm the acknowledgement of \
                 message {} in {:?} ({error}); the events of its tickets that waited for it go \
                 on (should the acknowledgement have been lost, the message comes back, and \
                 this relay knows its events)",
                carrier.partition,
                carrier.sequence,
                confirming.until
            );
            return (carrier, Acked::Unconfirmed);
        }
        if asked == 1 {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "relay: partition {}: the server has not confirmed the acknowledgement of \
                 message {} ({error}); the next events of its tickets wait for it, and it is \
                 asked again",
                carrier.partition,
                carrier.sequence
            );
        }
        // Once per `every`: an error can come at once (no connection).
        tokio::time::sleep_until(asking + confirming.every).await;
    }
    (carrier, Acked::Confirmed)
}

/// Sends `message`'s acknowledgement as a request, which the server answers once it has
/// it, waiting `wait` at most. Unlike async-nats' `double_ack`, which takes any answer, an
/// answer that nobody took the request (no consumer: deleted, or replaced by the next
/// owner's) is an error.
pub(in crate::relay) async fn confirm_ack(
    message: &async_nats::jetstream::Message,
    wait: Duration,
) -> Result<(), String> {
    let Some(reply) = message.reply.clone() else {
        return Err("the message has no reply subject".to_owned());
    };
    let client = message.context.client();
    // The request's own timeout, not the client's (which may be shorter).
    let request = async_nats::Request::new()
        .payload(bytes::Bytes::from_static(b"+ACK"))
        .timeout(Some(wait));
    let asked = client.send_request(reply, request);
    match tokio::time::timeout(wait, asked).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {wait:?}")),
    }
}

/// `carrier`'s message is acknowledged (its events finished, or parked): the events that
/// waited for it go to `http`, and it is no longer outstanding. Unless its acknowledgement
/// is not `confirmed` and a ticket holds events behind it: then nothing changes, and false
/// says that it is to be confirmed first.
pub(super) fn acknowledged(
    book: &Book,
    http: &DeliverySink,
    carrier: &Arc<Carrier>,
    confirmed: bool,
) -> bool {
    let Some(released) = book.gates.acknowledged(carrier, confirmed) else {
        return false;
    };
    for next in released {
        crate::relay::partition::deliver(http, book, next);
    }
    book.settle(carrier);
    // The last acknowledgement a hand-back confirms: a message's, not a parked entry's.
    if carrier.message.is_some() {
        lock(&book.last).insert(carrier.partition, carrier.clone());
    }
    true
}
