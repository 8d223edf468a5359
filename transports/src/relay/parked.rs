//! Where a relay parks what a failing endpoint holds up: a JetStream KV bucket
//! (`<durable>-parked`), so that the messages carrying it leave the partition's window.
//!
//! A message is acknowledged once every endpoint has finished with its events, and a
//! partition has at most [`Relay::max_pending`](super::Relay::max_pending) messages
//! outstanding. An endpoint that fails for hours would fill that window with its retries
//! and stop the whole partition. So a message outstanding for longer than
//! [`Relay::park_after`](super::Relay::park_after), whose events wait only for endpoints that
//! are failing (the last attempt failed, the breaker is open, paused or disabled), is
//! parked: its unfinished events, each with the endpoints still to take it, are written
//! under `<partition>.<stream sequence>.<lease revision>.<part>`, then the message is acknowledged. The
//! events stay in the engine and are retried as before; the entries go when they have
//! finished. A partition's next owner reads the entries when it takes the partition and
//! delivers them, in stream order, before anything it pulls: each ticket keeps its order.
//!
//! An entry's value is a batch payload ([`nats::batch`](crate::nats::batch)): each event's
//! headers, with one [`REMAINING_HEADER`] per endpoint still to take it and
//! [`PARKED_AT_HEADER`], and its body.

use std::time::Duration;

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::StreamExt as _;

use super::incoming::{self, Incoming};
use crate::endpoint_store::open_bucket;
use crate::error::Error;
use crate::nats::batch::{self, Framed};
use crate::nats::{decode_ticket, encode_ticket};

/// The header of a parked event naming an endpoint still to take it (percent-encoded, one
/// header per endpoint).
pub(super) const REMAINING_HEADER: &str = "Deskhook-Remaining";

/// The header of a parked event saying when it was parked (RFC 3339, UTC).
pub(super) const PARKED_AT_HEADER: &str = "Deskhook-Parked-At";

/// Room left in an entry for its key and the KV's own headers.
const ENTRY_MARGIN: usize = 4096;

/// One entry read back: the events of one part of a parked message, each with the
/// endpoints still to take it.
pub(super) struct Entry {
    pub(super) key: String,
    /// The parked message's place in the stream.
    pub(super) sequence: u64,
    /// Its value as read, and its revision in the bucket (what
    /// [`replace`](Parked::replace) expects).
    pub(super) value: Bytes,
    pub(super) revision: u64,
    pub(super) events: Vec<(Incoming, Vec<String>)>,
}

/// The parked bucket.
pub(super) struct Parked {
    kv: kv::Store,
    /// The stream under it, to remove entries without leaving a delete marker each.
    stream: jetstream::stream::Stream,
    /// The subject prefix of its entries (`$KV.<bucket>.`).
    prefix: String,
    /// The largest value an entry may have (the server's `max_payload`, less a margin).
    max_value: usize,
}

/// Entries of a parked message that could not be written: why, and the keys that may be in
/// the bucket still (written, or perhaps written, and not removed), to be removed later.
#[derive(Debug)]
pub(super) struct NotWritten {
    pub(super) reason: String,
    pub(super) left: Vec<String>,
}

impl std::fmt::Display for NotWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Why a parked bucket's stream, as `config` makes it, could remove entries no relay
/// removed (made or changed by hand: the relays make it keeping entries until removed), or
/// `None`.
fn loses_entries(config: &jetstream::stream::Config) -> Option<String> {
    use jetstream::stream::DiscardPolicy;
    let format = deskhook::policy::format_duration;
    if !config.max_age.is_zero() {
        return Some(format!(
            "removes entries after {} (its max_age)",
            format(config.max_age)
        ));
    }
    let limited = config.max_bytes > 0 || config.max_messages > 0;
    if limited && config.discard == DiscardPolicy::Old {
        return Some("removes its oldest entries when full (discard old)".to_owned());
    }
    None
}

impl Parked {
    /// Opens `bucket`, making it (with `replicas` copies, entries kept until removed) if it
    /// is missing.
    pub(super) async fn open(
        context: &jetstream::Context,
        bucket: &str,
        replicas: usize,
    ) -> Result<Parked, Error> {
        let kv = open_bucket(
            context,
            bucket,
            "deskhook relays: events parked while a failing endpoint holds them up",
            1,
            Duration::ZERO,
            replicas,
        )
        .await
        .map_err(|(what, e)| {
            Error::Config(format!(
                "the relays' parked events bucket '{bucket}': cannot {what}: {e}"
            ))
        })?;
        let mut stream = context
            .get_stream(format!("KV_{bucket}"))
            .await
            .map_err(|e| {
                Error::Config(format!(
                    "the relays' parked events bucket '{bucket}': cannot open its stream: {e}"
                ))
            })?;
        let found = stream.info().await.map_err(|e| {
            Error::Config(format!(
                "the relays' parked events bucket '{bucket}': cannot read its stream: {e}"
            ))
        })?;
        if let Some(fault) = loses_entries(&found.config) {
            return Err(Error::Config(format!(
                "the relays' parked events bucket '{bucket}' {fault}: parked events, whose \
                 messages were acknowledged, would be lost without a dead letter; delete it \
                 (nats kv del {bucket}) while no event is parked (deskhook parked), and let \
                 the relays make it again"
            )));
        }
        let max_payload = context
            .client()
            .try_server_info()
            .map_or(1024 * 1024, |info| info.max_payload);
        Ok(Parked {
            kv,
            stream,
            prefix: format!("$KV.{bucket}."),
            max_value: max_payload.saturating_sub(ENTRY_MARGIN).max(ENTRY_MARGIN),
        })
    }

    /// Writes `events` (each with [`REMAINING_HEADER`]s) as the entries of the message at
    /// `sequence` of `partition`, parked in the tenure of lease `revision`: one, or more
    /// when they do not fit in one value, their parts numbered from `first` (entries that
    /// replace those of parts below it, which stay until they are removed, or follow parts
    /// tried before). Returns their keys, `<partition>.<sequence>.<revision>.<part>`: a
    /// message parked again by the partition's next owner (its acknowledgement did not reach
    /// the server) gets keys of its own, so that neither relay removes the other's.
    ///
    /// # Errors
    ///
    /// [`NotWritten`]: why an entry could not be written. Those written before it, and it
    /// (a put that failed may have been stored all the same, as when its answer was lost),
    /// are removed; those whose removal failed too are in [`NotWritten::left`].
    pub(super) async fn write_from(
        &self,
        (partition, revision): (u32, u64),
        sequence: u64,
        first: u32,
        events: &[Framed],
    ) -> Result<Vec<String>, NotWritten> {
        let mut keys = Vec::new();
        for (n, part) in (first..).zip(parts(events, self.max_value)) {
            let key = format!("{partition}.{sequence}.{revision}.{n}");
            let put = self.kv.put(&key, batch::encode(&part)).await;
            keys.push(key);
            if let Err(e) = put {
                let left = match self.remove(&keys).await {
                    Ok(()) => Vec::new(),
                    Err(_) => keys,
                };
                return Err(NotWritten {
                    reason: e.to_string(),
                    left,
                });
            }
        }
        Ok(keys)
    }

    /// Replaces the value of entry `key`, read back at `revision`, with `value` (a batch
    /// payload of its events naming fewer endpoints, so no larger than it was). Returns the
    /// entry's new revision, or `None` when the entry is no longer the one read (removed:
    /// its events finished meanwhile), which stays as it is.
    ///
    /// # Errors
    ///
    /// Why the value could not be written.
    pub(super) async fn replace(
        &self,
        key: &str,
        revision: u64,
        value: Bytes,
    ) -> Result<Option<u64>, String> {
        if value.len() > self.max_value {
            return Err(format!(
                "its events take {} bytes, more than an entry holds ({})",
                value.len(),
                self.max_value
            ));
        }
        match self.kv.update(key, value, revision).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Removes the entries `keys` (their events have finished). They are purged from the
    /// stream under the bucket rather than deleted: a delete leaves a marker per key, and
    /// every parked message has keys of its own, so markers would pile up for good.
    pub(super) async fn remove(&self, keys: &[String]) -> Result<(), String> {
        for key in keys {
            self.stream
                .purge()
                .filter(format!("{}{key}", self.prefix))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// How many entries the bucket holds of each partition from `partitions` up: entries
    /// of a stream made again with fewer partitions, which no relay of it reads.
    ///
    /// # Errors
    ///
    /// Why the bucket could not be listed.
    pub(super) async fn beyond(
        &self,
        partitions: u32,
    ) -> Result<std::collections::BTreeMap<u32, usize>, String> {
        let mut keys = self.kv.keys().await.map_err(|e| e.to_string())?;
        let mut found = std::collections::BTreeMap::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| e.to_string())?;
            if let Some(partition) = key.split('.').next().and_then(|p| p.parse::<u32>().ok())
                && partition >= partitions
            {
                *found.entry(partition).or_insert(0) += 1;
            }
        }
        Ok(found)
    }

    /// The entries of `partition`, in stream order.
    ///
    /// # Errors
    ///
    /// Why the bucket could not be read. An entry this relay cannot read is logged and left
    /// in place (for a relay that can), not returned.
    pub(super) async fn of_partition(&self, partition: u32) -> Result<Vec<Entry>, String> {
        let mut keys = self.kv.keys().await.map_err(|e| e.to_string())?;
        let mut found = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| e.to_string())?;
            if let Some(place) = place(partition, &key) {
                found.push((place, key));
            }
        }
        found.sort_unstable();
        let mut entries = Vec::with_capacity(found.len());
        for ((sequence, _, _), key) in found {
            // From the stream's leader: the bucket allows direct gets, which a replica that
            // lags behind may answer without an entry just written.
            let (value, revision) = match self
                .stream
                .get_last_raw_message_by_subject(&format!("{}{key}", self.prefix))
                .await
            {
                Ok(message) => (message.payload, message.sequence),
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => continue,
                Err(e) => return Err(format!("cannot read entry '{key}': {e}")),
            };
            match read(&value) {
                Ok(events) => entries.push(Entry {
                    key,
                    sequence,
                    value,
                    revision,
                    events,
                }),
                Err(e) => log::error!(
                    target: deskhook::LOG_TARGET,
                    "relay: partition {partition}: parked entry '{key}' cannot be read ({e}); \
                     left in the bucket for a relay that can read it"
                ),
            }
        }
        Ok(entries)
    }
}

/// What the relays sharing a durable name have parked for one endpoint (see [`parked`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParkedEndpoint {
    /// The endpoint's name.
    pub endpoint: String,
    /// Its events parked (each waiting for it when parked, and perhaps for other endpoints
    /// too; an entry is rewritten only when its relay stops or hands the partition back).
    pub events: u64,
    /// The partitions they are in, in order.
    pub partitions: Vec<u32>,
    /// When the oldest of them was parked.
    pub oldest: Option<jiff::Timestamp>,
}

/// What [`parked`] found in the bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParkedSummary {
    /// What is parked, by endpoint, most events first.
    pub endpoints: Vec<ParkedEndpoint>,
    /// The entries that could not be read (written by a newer deskhook's relays, or
    /// damaged), each as the reason: their events are not in `endpoints`. A relay that
    /// cannot read an entry leaves it for one that can.
    pub unreadable: Vec<String>,
}

/// What the relays named `durable` (see [`Relay::durable`](super::Relay::durable)) have parked, by endpoint, most
/// events first, from the KV bucket `<durable>-parked` of the servers `context` is connected
/// to (see [Failing endpoints](super#failing-endpoints)): for an operator to see which
/// endpoints hold events up, and since when. Empty when nothing is parked.
///
/// # Errors
///
/// [`Error::Config`] when `durable` cannot be a relay's name (see
/// [`Relay::durable`](super::Relay::durable)); when no relay of that name has run on these
/// servers (a relay makes the bucket when it starts), naming the relays that have; when
/// the bucket cannot be read. An entry that cannot be read is in
/// [`ParkedSummary::unreadable`].
pub async fn parked(context: &jetstream::Context, durable: &str) -> Result<ParkedSummary, Error> {
    super::check_durable(durable)?;
    let bucket = format!("{durable}-parked");
    match summary(context, &bucket).await? {
        Some(summary) => Ok(summary),
        None => Err(Error::Config(format!(
            "no relay named '{durable}' has run on these servers: there is no bucket \
             '{bucket}', which a relay makes when it starts{}",
            relays_there(context).await
        ))),
    }
}

/// The names of the relays that have run on the servers of `context` (those whose parked
/// events bucket is there), for an error that names another: ` (relays there: a, b)`.
async fn relays_there(context: &jetstream::Context) -> String {
    // Not listed: nothing to point to.
    let Some(buckets) = crate::endpoint_store::bucket_names(context).await else {
        return String::new();
    };
    let mut relays: Vec<&str> = buckets
        .iter()
        .filter_map(|b| b.strip_suffix("-parked"))
        .collect();
    relays.sort();
    if relays.is_empty() {
        " (nor any other relay)".to_owned()
    } else {
        format!(
            " (relays there: {}; give one with --durable)",
            relays.join(", ")
        )
    }
}

/// What the relays sharing `bucket` have parked, by endpoint, most events first (see
/// [`parked`]); `None` when there is no such bucket.
///
/// # Errors
///
/// [`Error::Config`] when the bucket cannot be read.
async fn summary(
    context: &jetstream::Context,
    bucket: &str,
) -> Result<Option<ParkedSummary>, Error> {
    let failed =
        |e: String| Error::Config(format!("the relays' parked events bucket '{bucket}': {e}"));
    let stream = match context.get_stream(format!("KV_{bucket}")).await {
        Ok(stream) => stream,
        // No relay of that name ever ran.
        Err(e)
            if matches!(e.kind(), GetStreamErrorKind::JetStream(ref js)
                if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(failed(format!("cannot open its stream: {e}"))),
    };
    let kv = context
        .get_key_value(bucket)
        .await
        .map_err(|e| failed(format!("cannot open it: {e}")))?;
    let mut keys = kv
        .keys()
        .await
        .map_err(|e| failed(format!("cannot list it: {e}")))?;
    let mut by_endpoint: std::collections::BTreeMap<String, ParkedEndpoint> =
        std::collections::BTreeMap::new();
    let mut unreadable = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| failed(format!("cannot list it: {e}")))?;
        let Some(partition) = key.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let value = match stream
            .get_last_raw_message_by_subject(&format!("$KV.{bucket}.{key}"))
            .await
        {
            Ok(message) => message.payload,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => continue,
            Err(e) => return Err(failed(format!("cannot read entry '{key}': {e}"))),
        };
        let events = match batch::decode_all(&value, 1) {
            Ok(events) => events,
            Err(e) => {
                unreadable.push(format!(
                    "entry '{}' cannot be read ({e}); a newer deskhook's relays wrote it?",
                    deskhook::shown_in_log(&key)
                ));
                continue;
            }
        };
        for event in &events {
            let at = event
                .header(PARKED_AT_HEADER)
                .and_then(|at| at.parse::<jiff::Timestamp>().ok());
            let remaining = event
                .headers()
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(REMAINING_HEADER));
            for (_, name) in remaining {
                let name = decode_ticket(name);
                let entry = by_endpoint
                    .entry(name.clone())
                    .or_insert_with(|| ParkedEndpoint {
                        endpoint: name,
                        events: 0,
                        partitions: Vec::new(),
                        oldest: None,
                    });
                entry.events += 1;
                if !entry.partitions.contains(&partition) {
                    entry.partitions.push(partition);
                }
                entry.oldest = match (entry.oldest, at) {
                    (Some(old), Some(at)) => Some(old.min(at)),
                    (old, at) => old.or(at),
                };
            }
        }
    }
    let mut endpoints: Vec<ParkedEndpoint> = by_endpoint.into_values().collect();
    for endpoint in &mut endpoints {
        endpoint.partitions.sort_unstable();
    }
    endpoints.sort_by_key(|e| std::cmp::Reverse(e.events));
    Ok(Some(ParkedSummary {
        endpoints,
        unreadable,
    }))
}

/// How many endpoints a parked `event` names as still to take it.
pub(super) fn remaining_of(event: &Framed) -> usize {
    event
        .headers()
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(REMAINING_HEADER))
        .count()
}

/// `event`, to park, with the endpoints still to take it and when it was parked (`at`; the
/// time it says already when `None`: an entry read back and written again).
///
/// # Errors
///
/// A header that cannot go into a batch (from a publisher other than deskhook's).
pub(super) fn with_remaining(
    event: &Framed,
    remaining: &[Box<str>],
    at: Option<jiff::Timestamp>,
) -> Result<Framed, String> {
    let mut headers: Vec<(String, String)> = event
        .headers()
        .iter()
        .filter(|(name, _)| {
            !name.eq_ignore_ascii_case(REMAINING_HEADER)
                && (at.is_none() || !name.eq_ignore_ascii_case(PARKED_AT_HEADER))
        })
        .cloned()
        .collect();
    headers.extend(
        remaining
            .iter()
            .map(|name| (REMAINING_HEADER.to_owned(), encode_ticket(name))),
    );
    if let Some(at) = at {
        headers.push((PARKED_AT_HEADER.to_owned(), format!("{at:.0}")));
    }
    Framed::new(headers, event.body.clone())
}

/// The endpoints a parked `event` names as still to take it.
pub(super) fn remaining_names(event: &Framed) -> Vec<String> {
    event
        .headers()
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(REMAINING_HEADER))
        .map(|(_, value)| decode_ticket(value))
        .collect()
}

/// The events of an entry's value, each with the endpoints still to take it.
fn read(value: &Bytes) -> Result<Vec<(Incoming, Vec<String>)>, String> {
    batch::decode_all(value, 1)?
        .into_iter()
        .enumerate()
        .map(|(n, framed)| {
            let remaining = remaining_names(&framed);
            incoming::read_framed(&framed)
                .map(|event| (event, remaining))
                .ok_or_else(|| format!("its event {} is not a deskhook event", n + 1))
        })
        .collect()
}

/// `events` cut into parts whose batch payloads fit in `max` bytes (an event larger than
/// that goes alone).
fn parts(events: &[Framed], max: usize) -> Vec<Vec<&Framed>> {
    let mut parts: Vec<Vec<&Framed>> = Vec::new();
    let mut size = 0;
    for event in events {
        let len = event.framed_len();
        match parts.last_mut() {
            Some(part) if size + len <= max => part.push(event),
            _ => {
                parts.push(vec![event]);
                size = batch::MAGIC.len();
            }
        }
        size += len;
    }
    parts
}

/// The part number of an entry's key (`<partition>.<sequence>.<revision>.<part>`).
pub(super) fn part_of(key: &str) -> Option<u32> {
    key.rsplit('.').next()?.parse().ok()
}

/// (stream sequence, lease revision, part) of `key` when it is an entry of `partition`.
fn place(partition: u32, key: &str) -> Option<(u64, u64, u32)> {
    let rest = key.strip_prefix(&format!("{partition}."))?;
    let mut fields = rest.split('.');
    let place = (
        fields.next()?.parse().ok()?,
        fields.next()?.parse().ok()?,
        fields.next()?.parse().ok()?,
    );
    fields.next().is_none().then_some(place)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bucket the relays make keeps its entries; one made or changed to expire or drop
    /// them is said so.
    #[test]
    fn a_bucket_that_would_remove_parked_entries_is_named() {
        use jetstream::stream::{Config, DiscardPolicy};
        let made = Config {
            discard: DiscardPolicy::New,
            max_bytes: -1,
            max_messages: -1,
            ..Config::default()
        };
        assert_eq!(loses_entries(&made), None);
        let ttl = Config {
            max_age: Duration::from_secs(3600),
            ..made.clone()
        };
        assert_eq!(
            loses_entries(&ttl).as_deref(),
            Some("removes entries after 1h (its max_age)")
        );
        let full = Config {
            max_bytes: 1 << 20,
            discard: DiscardPolicy::Old,
            ..made.clone()
        };
        assert!(loses_entries(&full).unwrap().contains("discard old"));
        // A limit with discard new refuses new entries instead (parking fails, said).
        let refusing = Config {
            max_bytes: 1 << 20,
            ..made
        };
        assert_eq!(loses_entries(&refusing), None);
    }

    fn event(ticket: &str, body: &str) -> Framed {
        Framed::new(
            vec![
                (
                    "webhook-id".to_owned(),
                    deskhook::sink::EventId::new().to_string(),
                ),
                ("x-deskhook-action".to_owned(), "comment".to_owned()),
                ("x-deskhook-ticket".to_owned(), ticket.to_owned()),
            ],
            Bytes::from(body.to_owned()),
        )
        .expect("valid headers")
    }

    #[test]
    fn an_entry_keeps_its_events_and_the_endpoints_still_to_take_them() {
        let remaining: [Box<str>; 2] = ["crm, west".into(), "100%\r\nbad".into()];
        let parked = [
            with_remaining(
                &event("T 1", "{\"n\":1}"),
                &remaining,
                Some(jiff::Timestamp::now()),
            )
            .expect("parked"),
            with_remaining(
                &event("U", "{\"n\":2}"),
                &remaining[..1],
                Some(jiff::Timestamp::now()),
            )
            .expect("parked"),
        ];
        let value = batch::encode(&parked.iter().collect::<Vec<_>>());
        let read = read(&value).expect("an entry");
        assert_eq!(read.len(), 2);
        assert_eq!(&*read[0].0.ticket, "T 1");
        assert_eq!(read[0].0.body, "{\"n\":1}");
        assert_eq!(read[0].1, ["crm, west", "100%\r\nbad"]);
        assert_eq!(read[1].1, ["crm, west"]);
        // Parked again, an event keeps one set of endpoints (the new one) and one time: the
        // one given (a rewrite keeps the first parking's).
        let first: jiff::Timestamp = "2026-12-01T14:02:11Z".parse().unwrap();
        let again = with_remaining(&parked[0], &remaining[1..], Some(first)).expect("parked");
        let value = batch::encode(&[&again]);
        assert_eq!(read_one(&value), ["100%\r\nbad"]);
        let times = again
            .headers()
            .iter()
            .filter(|(name, _)| name == PARKED_AT_HEADER)
            .count();
        assert_eq!(times, 1);
        assert_eq!(again.header(PARKED_AT_HEADER), Some("2026-12-01T14:02:11Z"));
        // Read back and written again with no time: the one it had, once.
        let kept = with_remaining(&again, &[], None).expect("parked");
        assert_eq!(read_one(&batch::encode(&[&kept])), Vec::<String>::new());
        let times: Vec<_> = kept
            .headers()
            .iter()
            .filter(|(name, _)| name == PARKED_AT_HEADER)
            .collect();
        assert_eq!(times.len(), 1);
        assert_eq!(kept.header(PARKED_AT_HEADER), Some("2026-12-01T14:02:11Z"));
        assert!(
            parked[1]
                .header(PARKED_AT_HEADER)
                .is_some_and(|at| at.parse::<jiff::Timestamp>().is_ok())
        );
    }

    fn read_one(value: &Bytes) -> Vec<String> {
        read(value).expect("an entry").remove(0).1
    }

    #[test]
    fn an_entry_that_is_not_deskhooks_is_refused_with_the_reason() {
        let foreign = Bytes::from_static(b"DHB2....");
        let Err(why) = read(&foreign) else {
            panic!("a foreign layout is refused");
        };
        assert!(why.contains("does not start as a batch"), "{why}");
        let anonymous = Framed::new(Vec::new(), Bytes::from_static(b"{}")).expect("no headers");
        let value = batch::encode(&[&anonymous]);
        assert_eq!(
            read(&value).err().as_deref(),
            Some("its event 1 is not a deskhook event")
        );
    }

    #[test]
    fn events_are_cut_into_parts_that_fit() {
        let events: Vec<Framed> = (0..5).map(|_| event("T", &"x".repeat(100))).collect();
        let one = events[0].framed_len();
        let parts = parts(&events, batch::MAGIC.len() + 2 * one);
        assert_eq!(
            parts.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 2, 1],
            "two to a part"
        );
        // One too large for a part goes alone.
        let parts = super::parts(&events[..2], 10);
        assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1]);
    }

    #[test]
    fn keys_sort_by_partition_sequence_and_part() {
        assert_eq!(place(3, "3.120.7.1"), Some((120, 7, 1)));
        assert_eq!(place(3, "13.120.7.1"), None);
        assert_eq!(place(3, "3.x.7.1"), None);
        assert_eq!(place(3, "3.120.7"), None);
        assert_eq!(place(3, "3.120.7.1.0"), None);
    }
}
