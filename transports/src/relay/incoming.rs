//! The events of a message taken from the stream: the message itself, or each event of a
//! batch ([`nats::batch`](crate::nats::batch)).

use std::sync::Arc;

use async_nats::jetstream;
use bytes::Bytes;
use deskhook::EventType;
use deskhook::sink::EventId;

use crate::delivery::{TENANT_HEADER, TICKET_HEADER};
use crate::nats::batch::{self, BATCH_HEADER, Framed};
use crate::nats::{MSG_ID_HEADER, decode_ticket};

/// One event of a message.
pub(super) struct Incoming {
    pub(super) id: Arc<str>,
    pub(super) parsed: EventId,
    pub(super) event_type: EventType,
    pub(super) ticket: Arc<str>,
    pub(super) tenant: Option<String>,
    pub(super) body: Bytes,
    /// Let in past the relay's whole room for events (its message is bigger than the room,
    /// and goes whole): the endpoints' queues take it whatever they hold.
    pub(super) past_room: bool,
}

impl Incoming {
    /// The event whose headers `header` reads; `None` when it is not a deskhook event.
    fn read<'a>(header: impl Fn(&str) -> Option<&'a str>, body: Bytes) -> Option<Incoming> {
        let parsed: EventId = header("webhook-id")?.parse().ok()?;
        let event_type = EventType::from_wire(header("x-deskhook-action")?)?;
        Some(Incoming {
            // Written as the engine writes it (lowercase, hyphens) whatever form the
            // publisher gave: the outcomes the relay is told of name it so.
            id: parsed.to_string().into(),
            parsed,
            event_type,
            ticket: header(TICKET_HEADER)
                .map(decode_ticket)
                .unwrap_or_default()
                .into(),
            tenant: header(TENANT_HEADER).map(decode_ticket),
            body,
            past_room: false,
        })
    }
}

/// The events `message` carries, in their order.
///
/// # Errors
///
/// Why the message is not deskhook's (it is then terminated).
pub(super) fn events(message: &jetstream::Message) -> Result<Vec<Incoming>, String> {
    const NOT_AN_EVENT: &str =
        "is not a deskhook event (webhook-id or x-deskhook-action missing or unknown)";
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str())
    };
    let Some(count) = header(BATCH_HEADER) else {
        let event = Incoming::read(header, message.payload.clone()).ok_or(NOT_AN_EVENT)?;
        return Ok(vec![event]);
    };
    let count = batch_count(count)?;
    let framed = batch::decode(&message.payload, count)
        .map_err(|e| format!("is not a batch this relay can read: {e}"))?;
    framed
        .into_iter()
        .enumerate()
        .map(|(n, event)| {
            read_framed(&event)
                .ok_or_else(|| format!("holds a batch whose event {} {NOT_AN_EVENT}", n + 1))
        })
        .collect()
}

/// Whether `message`, which this relay cannot read, looks written by a newer deskhook (a
/// later batch layout, or events with an id and an event type this build does not know,
/// alone or in a batch of this layout) rather than by something else: it is then left in
/// the stream for a relay that reads it.
pub(super) fn from_newer(message: &jetstream::Message) -> bool {
    looks_newer(message.headers.as_ref(), &message.payload)
}

fn looks_newer(headers: Option<&async_nats::HeaderMap>, payload: &Bytes) -> bool {
    let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
    let Some(count) = header(BATCH_HEADER) else {
        return of_newer(header);
    };
    if payload.starts_with(batch::MAGIC) {
        // This layout: newer when every event it cannot read is a newer deskhook's (a batch
        // holding one would otherwise be ended whole, the events it can read with it).
        let Some(events) = count
            .parse()
            .ok()
            .and_then(|count| batch::decode(payload, count).ok())
        else {
            return false;
        };
        let mut unread = events
            .iter()
            .filter(|e| read_framed(e).is_none())
            .peekable();
        return unread.peek().is_some() && unread.all(|e| of_newer(|name| e.header(name)));
    }
    payload.len() >= batch::MAGIC.len()
        && payload.starts_with(&batch::MAGIC[..3])
        && payload[3].is_ascii_digit()
}

/// Whether the event of these headers has an id and an event type this build does not know.
fn of_newer<'a>(header: impl Fn(&str) -> Option<&'a str>) -> bool {
    header("webhook-id").is_some_and(|id| id.parse::<EventId>().is_ok())
        && header("x-deskhook-action").is_some_and(|action| EventType::from_wire(action).is_none())
}

/// The number of events a batch's header says it holds.
fn batch_count(header: &str) -> Result<usize, String> {
    match header.parse() {
        Ok(0) => Err(format!(
            "has {BATCH_HEADER}: 0 (a batch holds one event or more)"
        )),
        Ok(count) => Ok(count),
        Err(_) => Err(format!(
            "has a {BATCH_HEADER} header that is not a number: '{header}'"
        )),
    }
}

/// The event `framed` holds (a batch's, or a parked one's); `None` when it is not a
/// deskhook event.
pub(super) fn read_framed(framed: &Framed) -> Option<Incoming> {
    Incoming::read(|name| framed.header(name), framed.body.clone())
}

/// The events `message` carries as they were framed (headers and body), in order, to park
/// them. A message of one event keeps its headers but `Nats-Msg-Id`.
///
/// # Errors
///
/// Why they cannot be read again (they were read once: a header a batch cannot hold).
pub(super) fn framed(message: &jetstream::Message) -> Result<Vec<Framed>, String> {
    let Some(headers) = message.headers.as_ref() else {
        return Err("the message has no headers".to_owned());
    };
    if let Some(count) = headers.get(BATCH_HEADER) {
        let count = count.as_str().parse().unwrap_or(1);
        return batch::decode(&message.payload, count);
    }
    let mut pairs = Vec::new();
    for (name, values) in headers.iter() {
        let name: &str = name.as_ref();
        if name.eq_ignore_ascii_case(MSG_ID_HEADER) {
            continue;
        }
        for value in values {
            pairs.push((name.to_owned(), value.as_str().to_owned()));
        }
    }
    Ok(vec![Framed::new(pairs, message.payload.clone())?])
}

/// The tickets of a message of the stream, as the relay's logs name them: `ticket 'T'`, or
/// `tickets 'T1', 'T2'` for a batch (`ticket ''` when they cannot be read).
pub(super) fn tickets(headers: &async_nats::HeaderMap, payload: &Bytes) -> String {
    let header = |name: &str| headers.get(name).map(|v| v.as_str());
    let batch = header(BATCH_HEADER)
        .and_then(|count| count.parse().ok())
        .and_then(|count| batch::decode(payload, count).ok());
    match batch {
        Some(events) => {
            let tickets: Vec<String> = events
                .iter()
                .map(|e| {
                    format!(
                        "'{}'",
                        e.header(TICKET_HEADER)
                            .map(decode_ticket)
                            .unwrap_or_default()
                    )
                })
                .collect();
            format!("tickets {}", tickets.join(", "))
        }
        None => format!(
            "ticket '{}'",
            header(TICKET_HEADER).map(decode_ticket).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_known_by_its_id_as_the_engine_writes_it() {
        let id = "01A23389-1CD1-74BD-847D-8290BB6D784B";
        let headers = [("webhook-id", id), ("x-deskhook-action", "create")];
        let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let event = Incoming::read(header, Bytes::new()).unwrap();
        assert_eq!(&*event.id, "01a23389-1cd1-74bd-847d-8290bb6d784b");
        assert_eq!(&*event.id, event.parsed.to_string());
    }

    #[test]
    fn what_a_newer_deskhook_wrote_is_told_from_what_is_not_deskhooks() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = async_nats::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, *value);
            }
            map
        };
        let id = "01A23389-1CD1-74BD-847D-8290BB6D784B";
        let bytes = |b: &'static [u8]| Bytes::from_static(b);
        let batch = headers(&[(BATCH_HEADER, "2")]);
        // A later batch layout; this one's, damaged; something else.
        assert!(looks_newer(Some(&batch), &bytes(b"DHB2....")));
        assert!(!looks_newer(Some(&batch), &bytes(b"DHB1....")));
        assert!(!looks_newer(Some(&batch), &bytes(b"garbage")));
        // An event of a type this build does not know; one without an id; not deskhook's.
        let later = headers(&[("webhook-id", id), ("x-deskhook-action", "ticket_merged")]);
        assert!(looks_newer(Some(&later), &bytes(b"{}")));
        let no_id = headers(&[("x-deskhook-action", "ticket_merged")]);
        assert!(!looks_newer(Some(&no_id), &bytes(b"{}")));
        assert!(!looks_newer(None, &bytes(b"{}")));
    }

    #[test]
    fn a_batch_of_this_layout_holding_a_newer_deskhooks_event_is_left_for_a_newer_relay() {
        let id = "01A23389-1CD1-74BD-847D-8290BB6D784B";
        let event = |action: &str, id: &str| {
            let headers = vec![
                ("webhook-id".to_owned(), id.to_owned()),
                ("x-deskhook-action".to_owned(), action.to_owned()),
            ];
            batch::Framed::new(headers, Bytes::from_static(b"{}")).unwrap()
        };
        let mut two = async_nats::HeaderMap::new();
        two.insert(BATCH_HEADER, "2");
        let (known, merged) = (event("create", id), event("ticket_merged", id));
        assert!(read_framed(&known).is_some());
        let payload = batch::encode(&[&known, &merged]);
        assert!(looks_newer(Some(&two), &payload));
        // But not one whose unread event is no deskhook event at all, nor one it reads.
        let stray = event("ticket_merged", "not-an-id");
        assert!(!looks_newer(Some(&two), &batch::encode(&[&known, &stray])));
        assert!(!looks_newer(Some(&two), &batch::encode(&[&known, &known])));
    }

    #[test]
    fn a_batch_of_no_event_is_refused() {
        assert!(batch_count("0").unwrap_err().contains("one event or more"));
        assert!(batch_count("x").unwrap_err().contains("not a number"));
        assert_eq!(batch_count("64"), Ok(64));
    }
}
