//! The dead letters of a running sink, for an operator: list and filter them, replay them
//! (queued again with the same `webhook-id`), delete them. They live where the sink writes
//! them: its dead-letter file, or its spool's table.

use std::sync::Arc;

use super::{DeadLetter, Engine};
use crate::error::Error;

/// Which dead letters to list. Every field set narrows it; they come newest first. Build it
/// with `..DeadLetterQuery::new()` for the fields left open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadLetterQuery {
    /// Only this endpoint's.
    pub endpoint: Option<String>,
    /// Only this tenant's.
    pub tenant: Option<String>,
    /// Only this event type's (`create`, `usedesk.comment_created`, …).
    pub event_type: Option<String>,
    /// Only this event's (`webhook-id`).
    pub event_id: Option<String>,
    /// Only this ticket's (its ordering key: the Zenlix code, the Usedesk ticket id, the
    /// iQChannels chat id).
    pub ticket: Option<String>,
    /// Only letters older than this cursor (the `next` of the previous page).
    pub before: Option<u64>,
    /// At most this many (1 to 1,000; 50 when 0). A page also ends once its letters'
    /// bodies reach [`MAX_PAGE_BYTES`] (8 MiB), with one letter at least: its `next` then
    /// goes on from there.
    pub limit: usize,
}

impl DeadLetterQuery {
    /// Every dead letter, newest first, 50 at a time.
    pub fn new() -> DeadLetterQuery {
        DeadLetterQuery::default()
    }

    /// The page size asked for, within 1 to 1,000.
    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => 50,
            n => n.min(super::MAX_PAGE),
        }
    }

    /// Whether `letter` is one it asks for (the cursor aside).
    pub fn keeps(&self, letter: &DeadLetter) -> bool {
        self.asks_for(&LetterFields {
            endpoint: &letter.endpoint,
            tenant: letter.tenant.as_deref(),
            event_type: &letter.action,
            id: &letter.id,
            ticket: &letter.ticket,
        })
    }

    /// Whether a letter with `fields` is one it asks for (the cursor aside).
    pub(crate) fn asks_for(&self, fields: &LetterFields<'_>) -> bool {
        let is = |asked: &Option<String>, value: &str| asked.as_deref().is_none_or(|a| a == value);
        is(&self.endpoint, fields.endpoint)
            && self
                .tenant
                .as_deref()
                .is_none_or(|t| fields.tenant == Some(t))
            && is(&self.event_type, fields.event_type)
            && is(&self.event_id, fields.id)
            && is(&self.ticket, fields.ticket)
    }
}

/// The fields of a dead letter that a [`DeadLetterQuery`] looks at.
#[derive(Debug)]
pub(crate) struct LetterFields<'a> {
    pub(crate) endpoint: &'a str,
    pub(crate) tenant: Option<&'a str>,
    pub(crate) event_type: &'a str,
    pub(crate) id: &'a str,
    pub(crate) ticket: &'a str,
}

/// A dead letter where the sink keeps it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StoredLetter {
    /// What names it for [`DeadLetters::replay`] and [`DeadLetters::delete`]: stable while
    /// it is kept.
    pub key: String,
    /// Its place: later letters have larger numbers (the cursor of paging). In a
    /// dead-letter file, one more than the offset of its line's first byte, so that a page
    /// starts reading where the last one stopped; in a spool, its row. A delete rewrites a
    /// file, moving the positions of the letters after those deleted: the next page of a
    /// cursor made before it may then repeat a few letters, never skip one or show half of
    /// one.
    pub position: u64,
    /// The letter.
    pub letter: DeadLetter,
}

/// A page of dead letters, newest first, and the cursor of the next one.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct DeadLetterPage {
    /// The letters.
    pub items: Vec<StoredLetter>,
    /// Pass it as [`DeadLetterQuery::before`] for the next page; `None` on the last.
    pub next: Option<u64>,
}

/// What [`DeadLetters::replay`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Replayed {
    /// Letters queued again (and taken out of the dead letters, but those in
    /// [`still_listed`](Replayed::still_listed)).
    pub replayed: usize,
    /// Letters that could not be, with why (they stay): an endpoint that is gone, a key
    /// that names no letter.
    pub failed: Vec<(String, String)>,
    /// The keys of letters queued again that could not be taken out of the dead letters
    /// (a file or a spool that cannot be written; the error is logged). Delete them:
    /// replaying them again would send them twice.
    pub still_listed: Vec<String>,
}

/// The (endpoint, ticket) pairs of a replay one of whose letters was refused, with that
/// letter's id: their later letters stay too, so that none goes out before an earlier one.
type Held = std::collections::HashMap<(String, String), String>;

/// The dead letters of a running sink (from [`DeliverySink::dead_letters`]). Cheap to clone.
///
/// [`DeliverySink::dead_letters`]: super::DeliverySink::dead_letters
#[derive(Clone)]
pub struct DeadLetters {
    pub(crate) engine: Arc<Engine>,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("place", &self.engine.backlog().dead_letter_place())
            .finish()
    }
}

impl DeadLetters {
    /// How long letters are kept after they failed, then deleted: with a spool, its
    /// `SpoolConfig::dead_letter_retention`; `None` for a dead-letter file, which keeps
    /// them until they are deleted or replayed.
    pub fn retention(&self) -> Option<std::time::Duration> {
        self.engine.backlog().letter_retention()
    }

    /// The letters `query` asks for, newest first.
    ///
    /// From a dead-letter file, a page is read backwards from its cursor, a block at a
    /// time, and reading stops one letter past the page: a page without a filter costs the
    /// letters it shows, whatever the file's size; a filter also reads the few fields it
    /// looks at of each letter it passes over. A line that is not a letter is logged and
    /// left out. From a spool, a page is a query of its table, with an index for each
    /// filter but the event type.
    ///
    /// # Errors
    ///
    /// [`Error::Read`] when the file cannot be read, [`Error::Spool`] when the spool
    /// cannot.
    pub fn list(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, Error> {
        self.engine.backlog().letters(query)
    }

    /// The letters named by `keys`, in the order they were written; keys that name none are
    /// left out.
    ///
    /// # Errors
    ///
    /// As [`list`](DeadLetters::list).
    pub fn get(&self, keys: &[String]) -> Result<Vec<StoredLetter>, Error> {
        self.engine.backlog().letters_by_key(keys)
    }

    /// Deletes the letters named by `keys`; returns how many went.
    ///
    /// The dead-letter file is rewritten (a new file renamed over it), under a lock of this
    /// sink's: a letter another process (or another sink of this process with the same
    /// path) appends meanwhile can be lost. Give each sink a file of its own, or a spool.
    ///
    /// # Errors
    ///
    /// [`Error::Write`] when the file cannot be rewritten, [`Error::Spool`] when the spool
    /// cannot be written.
    pub fn delete(&self, keys: &[String]) -> Result<usize, Error> {
        self.engine.backlog().delete_letters(keys)
    }

    /// Queues the letters named by `keys` again for their endpoints (same `webhook-id` and
    /// body, attempts from the start), in the order their events were emitted, and takes
    /// them out of the dead letters. A letter whose endpoint is gone, now belongs to another
    /// tenant (removed and made again under the same name), no longer takes the letter's
    /// event type, is disabled by a 410 (resume it first) or is being removed, or whose body
    /// is over `max_payload`, stays, and is listed in [`Replayed::failed`] with the reason;
    /// so do the later letters of its ticket for that endpoint, which would otherwise go
    /// out before it.
    ///
    /// A replayed event is then where any queued event is: with a spool, on disk (written
    /// before its letter is deleted: a crash in between keeps both); without one, in memory
    /// only, its letter deleted from the file once it is queued. So a process killed before it is delivered (or written to
    /// the dead letters again) loses it, as it would any queued event: replay many letters
    /// to a slow endpoint with a spool, or with `deskhook dead-letters replay`, which keeps
    /// them in `PATH.replaying` until they are done.
    ///
    /// # Errors
    ///
    /// As [`get`](DeadLetters::get) and [`delete`](DeadLetters::delete).
    pub fn replay(&self, keys: &[String]) -> Result<Replayed, Error> {
        // One replay at a time: a second one for the same keys finds them gone.
        let _one = super::lock(&self.engine.replaying);
        let mut report = Replayed::default();
        let found = self.get(keys)?;
        let done = self.queue_again(keys.iter(), found, &mut report, &mut Held::default());
        self.take_out(done, &mut report);
        Ok(report)
    }

    /// Queues the letters `found` of those asked for by `keys` again, in the order their
    /// events were emitted; returns the keys of those queued, to take out of the dead letters.
    /// A key asked for but not found, and the letters refused (and those of a ticket and
    /// endpoint in `held`, one of whose letters was refused, and so of tickets refused
    /// here), go to `report`.
    fn queue_again<'k>(
        &self,
        keys: impl Iterator<Item = &'k String>,
        found: Vec<StoredLetter>,
        report: &mut Replayed,
        held: &mut Held,
    ) -> Vec<String> {
        let known: std::collections::HashSet<&str> = found.iter().map(|s| s.key.as_str()).collect();
        for key in keys {
            if !known.contains(key.as_str()) {
                report
                    .failed
                    .push((key.clone(), "no dead letter has this key".to_owned()));
            }
        }
        // In the order the events were emitted (their ids are UUID v7, ordered by creation):
        // letters are not always written in their tickets' order (an endpoint removed
        // dead-letters what it had queued at once, and the event in flight when its attempt
        // ends), and a ticket's events must go out again in theirs.
        let mut found = found;
        found.sort_by(|a, b| a.letter.id.cmp(&b.letter.id));
        let mut done = Vec::new();
        for stored in found {
            let ticket = (stored.letter.endpoint.clone(), stored.letter.ticket.clone());
            if let Some(first) = held.get(&ticket) {
                // Queued, it would go out before the earlier event of its ticket.
                let why = format!(
                    "held behind dead letter {first} of the same ticket and endpoint, which \
                     was not replayed: replay them together once it can be"
                );
                report.failed.push((stored.key, why));
                continue;
            }
            match self.engine.redeliver(&stored.letter) {
                Ok(()) => done.push(stored.key),
                Err(e) => {
                    held.insert(ticket, stored.letter.id.clone());
                    report.failed.push((stored.key, e.to_string()));
                }
            }
        }
        report.replayed += done.len();
        done
    }

    /// Deletes the letters `done` queued again; those that cannot be go to `report`.
    fn take_out(&self, done: Vec<String>, report: &mut Replayed) {
        if done.is_empty() {
            return;
        }
        match self.delete(&done) {
            Ok(gone) if gone < done.len() => log::warn!(
                target: deskhook::LOG_TARGET,
                "{} of {} dead letter(s) queued again were no longer in {} when they were to \
                 be taken out: deleted meanwhile{}",
                done.len() - gone,
                done.len(),
                self.engine.backlog().dead_letter_place(),
                if self.engine.backlog().letter_deletes_rewrite() {
                    ", or moved away by `deskhook dead-letters replay`, which then sends them \
                     again"
                } else {
                    ""
                }
            ),
            Ok(_) => {}
            Err(e) => {
                // Queued already: an error here would have the operator replay them again.
                log::error!(
                    target: deskhook::LOG_TARGET,
                    "{} dead letter(s) were queued again but could not be taken out of the dead \
                     letters ({e}): delete them; replaying them again would send them twice",
                    done.len()
                );
                report.still_listed.extend(done);
            }
        }
    }

    /// [`replay`](DeadLetters::replay) of every letter of `endpoint`.
    ///
    /// # Errors
    ///
    /// As [`replay`](DeadLetters::replay).
    pub fn replay_endpoint(&self, endpoint: &str) -> Result<Replayed, Error> {
        self.replay_matching(&DeadLetterQuery {
            endpoint: Some(endpoint.to_owned()),
            ..DeadLetterQuery::new()
        })
    }

    /// [`replay`](DeadLetters::replay) of every letter `query` keeps (its endpoint, tenant,
    /// event type, event and ticket; not its cursor or page size): after an endpoint's or
    /// a tenant's outage, all of what it missed, and nothing of the others'.
    /// `DeadLetterQuery::new()` replays every letter.
    ///
    /// The letters are read (and queued again, and deleted) a part at a time, in the order
    /// their events were emitted: about 8 MiB of bodies or 1,000 letters in memory at
    /// once, however many match (and the listing before, 64 letters at a time). From a
    /// dead-letter file, each part's letters are read where the listing found them, and
    /// those queued are taken out together at the end, in one rewrite of the file (a part at
    /// a time, each part would cost a read and a rewrite of the whole file): until then
    /// they are still listed, and a process that dies meanwhile has them to replay again
    /// rather than losing those queued in its memory; a `deskhook dead-letters replay` of
    /// the file meanwhile sends those queued here again (a warning says how many).
    ///
    /// # Errors
    ///
    /// As [`replay`](DeadLetters::replay), when the listing or the first part fails. When a
    /// later part cannot be read, the letters not replayed yet are in
    /// [`Replayed::failed`] with the error.
    pub fn replay_matching(&self, query: &DeadLetterQuery) -> Result<Replayed, Error> {
        self.replay_matching_in(query, REPLAY_PART)
    }

    /// [`replay_matching`](DeadLetters::replay_matching), a part at most `part` big.
    pub(crate) fn replay_matching_in(
        &self,
        query: &DeadLetterQuery,
        part: Part,
    ) -> Result<Replayed, Error> {
        let _one = super::lock(&self.engine.replaying);
        // Each letter's id, key (and where it was found) and size: the bodies are read again
        // a part at a time. The listing reads bodies too, a page at a time: small pages, so
        // that large letters do not fill memory a thousand at a time.
        let mut found: Vec<(String, (String, u64), usize)> = Vec::new();
        let mut query = DeadLetterQuery {
            before: None,
            limit: LISTING_PAGE,
            ..query.clone()
        };
        loop {
            let page = self.list(&query)?;
            found.extend(page.items.into_iter().map(|s| {
                let size = s.letter.body.get().len();
                (s.letter.id, (s.key, s.position), size)
            }));
            match page.next {
                Some(next) => query.before = Some(next),
                None => break,
            }
        }
        once_each(&mut found);
        // Oldest written first, then in the order their events were emitted (as `replay`
        // orders each part): the parts go out in that order too.
        found.reverse();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let backlog = self.engine.backlog();
        let at_the_end = backlog.letter_deletes_rewrite();
        let mut report = Replayed::default();
        let mut held = Held::default();
        let mut queued = Vec::new();
        let mut rest = &found[..];
        while !rest.is_empty() {
            let (now, later) = rest.split_at(part.of(rest.iter().map(|(_, _, size)| *size)));
            let wanted: Vec<(String, u64)> = now.iter().map(|(_, at, _)| at.clone()).collect();
            let letters = match backlog.letters_at(&wanted) {
                Ok(letters) => letters,
                Err(e) if rest.len() == found.len() => return Err(e),
                Err(e) => {
                    let why = format!("not replayed: {e}");
                    report.failed.extend(
                        rest.iter()
                            .map(|(_, (key, _), _)| (key.clone(), why.clone())),
                    );
                    break;
                }
            };
            let keys = wanted.iter().map(|(key, _)| key);
            let done = self.queue_again(keys, letters, &mut report, &mut held);
            if at_the_end {
                queued.extend(done);
            } else {
                self.take_out(done, &mut report);
            }
            rest = later;
        }
        self.take_out(queued, &mut report);
        Ok(report)
    }
}

/// Keeps one of each letter of `found` (id, (key, position), size), the one listed last: a
/// delete meanwhile moves the letters after it back in the file, and the next page (read
/// from the old cursor) may show again letters listed already, which would be queued twice.
fn once_each(found: &mut Vec<(String, (String, u64), usize)>) {
    let mut last = std::collections::HashMap::new();
    for (at, (_, (key, _), _)) in found.iter().enumerate() {
        last.insert(key.clone(), at);
    }
    let mut at = 0;
    found.retain(|(_, (key, _), _)| {
        let keep = last.get(key) == Some(&at);
        at += 1;
        keep
    });
}

/// What is checked of a dead letter before it is queued again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LetterHead<'a> {
    pub(crate) id: &'a str,
    /// Its event type, as written (`create`, `usedesk.comment_created`, …).
    pub(crate) action: &'a str,
    pub(crate) tenant: Option<&'a str>,
    /// Its body's bytes.
    pub(crate) size: usize,
}

impl<'a> LetterHead<'a> {
    pub(crate) fn of(letter: &'a DeadLetter) -> LetterHead<'a> {
        LetterHead {
            id: &letter.id,
            action: &letter.action,
            tenant: letter.tenant.as_deref(),
            size: letter.body.get().len(),
        }
    }
}

/// Whether a dead letter may be queued again for `endpoint` as it is now, by a live replay
/// or the offline one (`deskhook dead-letters replay --spool`) alike: its id and event type
/// when it may, else why not. Not to an endpoint made again for another tenant (nor signed
/// with its secret), nor one that no longer takes its event type, nor over `max_payload`.
/// Queued to an endpoint that cannot take it, it would only be dead-lettered again, a
/// second letter for the same event.
pub(crate) fn replayable(
    endpoint: &super::Endpoint,
    letter: &LetterHead<'_>,
    max_payload: usize,
) -> Result<(deskhook::sink::EventId, deskhook::EventType), String> {
    let owner = endpoint.tenant.as_deref();
    if owner.is_some() && owner != letter.tenant {
        return Err(format!(
            "dead letter {} is of {}, and endpoint '{}' now belongs to {}: it is not replayed \
             to another tenant's endpoint",
            letter.id,
            super::registry::tenant_words(letter.tenant),
            endpoint.name(),
            super::registry::tenant_words(owner)
        ));
    }
    if letter.size > max_payload {
        return Err(format!(
            "dead letter {} is {} bytes, over max_payload ({max_payload} bytes): raise \
             max_payload to replay it",
            letter.id, letter.size
        ));
    }
    let id = letter.id.parse().map_err(|e| {
        format!(
            "dead letter id '{}' is not a deskhook event id: {e}",
            letter.id
        )
    })?;
    let event_type = deskhook::EventType::from_wire(letter.action).ok_or_else(|| {
        format!(
            "dead letter {} has unknown event type '{}'",
            letter.id, letter.action
        )
    })?;
    if !endpoint.subscribed_event_types().contains(event_type) {
        return Err(format!(
            "endpoint '{}' no longer takes '{}' events (its actions changed since); dead \
             letter {} is not replayed: add the type back to replay it",
            endpoint.name(),
            letter.action,
            letter.id
        ));
    }
    Ok((id, event_type))
}

/// How much of a [`DeadLetters::replay_matching`] is read at once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Part {
    /// Bodies' bytes: a part holds at least one letter, however large.
    pub(crate) bytes: usize,
    /// Letters.
    pub(crate) letters: usize,
}

/// The page size of the listing a [`DeadLetters::replay_matching`] starts with: at most
/// 64 MiB of bodies with the default `max_payload` (1 MiB), under 1 MiB with bodies of a
/// typical ticket (10 KiB).
const LISTING_PAGE: usize = 64;

/// About 8 MiB or 1,000 letters (a page of the listing).
const REPLAY_PART: Part = Part {
    bytes: 8 << 20,
    letters: super::MAX_PAGE,
};

impl Part {
    /// How many of the letters of `sizes` (their bodies' bytes, in order) go in the next
    /// part: at least one when there is one.
    fn of(self, sizes: impl Iterator<Item = usize>) -> usize {
        let mut bytes = 0;
        let mut n = 0;
        for size in sizes {
            bytes += size;
            if n > 0 && (n == self.letters || bytes > self.bytes) {
                break;
            }
            n += 1;
        }
        n
    }
}

/// The bodies a page of dead letters holds, in bytes, past which it ends (with one letter
/// at least, however large): a thousand letters of a megabyte each would be a gigabyte in
/// memory for one page.
pub const MAX_PAGE_BYTES: usize = 8 << 20;

/// Pages `letters` (newest first, and only those the query asks for, from its cursor on):
/// reads as far as the page's last letter and one more (to tell whether there is a next
/// page: that one is read whole, however large). A page ends at the query's size, or once
/// its bodies reach [`MAX_PAGE_BYTES`].
pub(crate) fn page<E>(
    letters: impl Iterator<Item = Result<StoredLetter, E>>,
    query: &DeadLetterQuery,
) -> Result<DeadLetterPage, E> {
    let size = query.page_size();
    let mut items = Vec::new();
    let mut bytes = 0;
    let mut more = false;
    for stored in letters {
        if items.len() == size || bytes >= MAX_PAGE_BYTES {
            more = true;
            break;
        }
        let stored = stored?;
        bytes += stored.letter.body.get().len();
        items.push(stored);
    }
    let next = if more {
        items.last().map(|s| s.position)
    } else {
        None
    };
    Ok(DeadLetterPage { items, next })
}

#[cfg(test)]
mod tests {
    use super::{Part, once_each};

    #[test]
    fn a_letter_listed_twice_is_replayed_once_where_it_was_seen_last() {
        let letter = |id: &str, key: &str, at: u64| (id.to_owned(), (key.to_owned(), at), 1);
        let mut found = vec![
            letter("c", "k3", 300),
            letter("b", "k2", 200),
            // The next page, after a delete moved them back: b again, then a.
            letter("b", "k2", 150),
            letter("a", "k1", 50),
        ];
        once_each(&mut found);
        assert_eq!(
            found,
            [
                letter("c", "k3", 300),
                letter("b", "k2", 150),
                letter("a", "k1", 50)
            ]
        );
    }

    #[test]
    fn a_part_stops_at_its_letters_or_bytes_and_holds_one_letter_at_least() {
        let part = Part {
            bytes: 10,
            letters: 3,
        };
        assert_eq!(part.of([1, 1, 1, 1].into_iter()), 3, "three letters");
        assert_eq!(part.of([4, 4, 4].into_iter()), 2, "ten bytes");
        assert_eq!(part.of([4, 6, 1].into_iter()), 2, "ten bytes exactly");
        assert_eq!(part.of([50, 1].into_iter()), 1, "one, however large");
        assert_eq!(part.of(std::iter::empty()), 0);
    }
}
