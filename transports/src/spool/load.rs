//! Reading an endpoint's rows back from the spool: the range asked, the memory room a load
//! may fill, and each row decoded as a job, set aside as one of an event type this build
//! does not know, or moved to the dead letters when it cannot be read.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use deskhook::EventType;
use deskhook::sink::EventId;
use rusqlite::params;

use super::failing;
use super::writer::SpoolStore;
use crate::delivery::{EventData, Job, Lane, lock};
use crate::error::Error;

/// A job read back, with when its next attempt is due (`None`: now).
pub(crate) type StoredJob = (Job, Option<SystemTime>);

/// Rows of one endpoint: those after `after`, up to `through` if given, of one ticket if
/// given.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowRange<'a> {
    pub(crate) after: i64,
    pub(crate) through: Option<i64>,
    pub(crate) ticket: Option<&'a str>,
}

/// What one [`SpoolStore::load`] read.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The jobs, oldest first.
    pub(crate) jobs: Vec<StoredJob>,
    /// The last row read (`after` when none was).
    pub(crate) through: i64,
    /// Rows read, the unreadable ones included.
    pub(crate) rows: u64,
    /// Rows that could not be read; they were moved to the dead letters.
    pub(crate) bad: u64,
    /// The row the load stopped before, left unread because its job would not fit in the
    /// memory room it was given ([`LoadRoom`]).
    pub(crate) stopped_at: Option<i64>,
    /// Rows of event types this build does not know, oldest first: left on disk (see
    /// [`Unknown`]).
    pub(crate) unknown: Vec<Unknown>,
}

/// A row of an event type this build does not know, with a good id: written by a newer
/// deskhook (rolled back since, or an older tool run on its spool). Not this build's to end:
/// it stays on disk, and its ticket's later rows wait behind it (they would overtake it),
/// for a deskhook that knows it. Moved to the dead letters, it could be neither delivered
/// nor replayed by this build, and would be pruned with them.
#[derive(Debug)]
pub(crate) struct Unknown {
    pub(crate) row: i64,
    pub(crate) ticket: Arc<str>,
}

/// Why a row cannot be a job.
enum Undecodable {
    /// Of an event type this build does not know (its type's name).
    Unknown { ticket: String, event_type: String },
    /// Unreadable: it goes to the dead letters.
    Bad(String),
}

impl From<String> for Undecodable {
    fn from(why: String) -> Undecodable {
        Undecodable::Bad(why)
    }
}

/// The memory the jobs of one [`SpoolStore::load`] may take: their bodies, each with its
/// bookkeeping, up to `free` bytes (the rows after wait on disk, unread); a row more than
/// `whole` (the budget itself) is read all the same, since no wait would make it fit (it
/// goes to the dead letters). So that a spent budget costs the reading of one row, not of a
/// window of bodies to be thrown away.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoadRoom {
    pub(crate) free: usize,
    pub(crate) whole: usize,
}

impl SpoolStore {
    /// Up to `limit` rows of `lane` in `range`, oldest first, as many as `room` has memory
    /// for. A row that cannot be read goes to the dead letters (and is counted in
    /// [`Loaded::bad`]).
    pub(super) fn load(
        &self,
        lane: &Arc<Lane>,
        range: RowRange<'_>,
        limit: usize,
        room: LoadRoom,
    ) -> Result<Loaded, Error> {
        let conn = lock(&self.core.reader);
        let db = &self.core.db;
        let mut stmt = conn
            .prepare_cached(
                "SELECT row, id, action, ticket, content_type, body, attempts, next_at, \
                 last_status, last_error, tenant, length(body) FROM events \
                 WHERE endpoint = ?1 AND row > ?2 \
                 AND (?4 IS NULL OR row <= ?4) AND (?5 IS NULL OR ticket = ?5) \
                 ORDER BY row LIMIT ?3",
            )
            .map_err(|e| failing(db, &e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let name: &str = &lane.name;
        let mut rows = stmt
            .query(params![
                name,
                range.after,
                limit,
                range.through,
                range.ticket
            ])
            .map_err(|e| failing(db, &e))?;
        let mut loaded = Loaded {
            jobs: Vec::new(),
            through: range.after,
            rows: 0,
            bad: 0,
            stopped_at: None,
            unknown: Vec::new(),
        };
        let mut free = room.free;
        while let Some(r) = rows.next().map_err(|e| failing(db, &e))? {
            let row: i64 = r.get(0).map_err(|e| failing(db, &e))?;
            // Stepping to a row reads it whole, its body too: a load out of room reads the
            // one row it stops before, not the window of rows after it.
            let length: i64 = r.get(11).map_err(|e| failing(db, &e))?;
            let cost = usize::try_from(length)
                .unwrap_or(usize::MAX)
                .saturating_add(crate::delivery::JOB_OVERHEAD);
            if cost > free && cost <= room.whole {
                loaded.stopped_at = Some(row);
                break;
            }
            free = free.saturating_sub(cost);
            loaded.through = row;
            loaded.rows += 1;
            match self.decode(r) {
                Ok(job) => loaded.jobs.push(job),
                Err(Undecodable::Unknown { ticket, event_type }) => {
                    static WAITING: deskhook::Seldom = deskhook::Seldom::new();
                    if let Some(since) = WAITING.due() {
                        log::error!(
                            target: deskhook::LOG_TARGET,
                            "spool {}: {since} row(s) of event types this deskhook does not \
                             know since the last such line (this one: row {row} of endpoint \
                             '{}', ticket '{}', event type '{}'): a newer deskhook wrote \
                             them. They stay in the spool, and their tickets' later events \
                             wait behind them: run the newer deskhook to deliver them",
                            self.core.db.display(),
                            lane.name,
                            deskhook::shown_in_log(&ticket),
                            deskhook::shown_in_log(&event_type)
                        );
                    }
                    loaded.unknown.push(Unknown {
                        row,
                        ticket: ticket.into(),
                    });
                }
                Err(Undecodable::Bad(why)) => {
                    loaded.bad += 1;
                    // Its move given up already (and the row let go of): read again after a
                    // load that stopped before it, it is not moved, nor finished, twice.
                    if lock(&self.core.given_up).contains(&row) {
                        continue;
                    }
                    // One unreadable row must not stop the rows behind it.
                    log::error!(
                        target: deskhook::LOG_TARGET,
                        "spool {}: row {row} cannot be read ({why}); it goes to the dead letters",
                        self.core.db.display()
                    );
                    self.dead_row(lane, row, format!("unreadable spool row: {why}"));
                }
            }
        }
        Ok(loaded)
    }

    /// A row of `events` as a job, or why it cannot be one.
    fn decode(&self, r: &rusqlite::Row<'_>) -> Result<StoredJob, Undecodable> {
        let text = |i: usize| r.get::<_, String>(i).map_err(|e| e.to_string());
        let row: i64 = r.get(0).map_err(|e| e.to_string())?;
        let id_text = text(1)?;
        let id: EventId = id_text
            .parse()
            .map_err(|e| format!("bad event id '{id_text}': {e}"))?;
        // Spools written before other formats hold plain action names, which read as Zenlix
        // event types.
        let type_text = text(2)?;
        let Some(event_type) = EventType::from_wire(&type_text) else {
            return Err(Undecodable::Unknown {
                ticket: text(3)?,
                event_type: type_text,
            });
        };
        let next_at: i64 = r.get(7).map_err(|e| e.to_string())?;
        let due = (!self.core.settings.ignore_backoff && next_at > 0)
            .then(|| UNIX_EPOCH + std::time::Duration::from_millis(next_at.unsigned_abs()));
        let event = EventData {
            id,
            id_text: id_text.into(),
            event_type,
            key: text(3)?.into(),
            body: Bytes::from(r.get::<_, Vec<u8>>(5).map_err(|e| e.to_string())?),
            content_type: static_content_type(&text(4)?),
            tenant: r
                .get::<_, Option<String>>(10)
                .map_err(|e| e.to_string())?
                .map(Into::into),
            charge: None,
            parsed: std::sync::OnceLock::new(),
            withdrawn: None,
            past_capacity: false,
        };
        let mut job = Job::new(Arc::new(event), row.unsigned_abs());
        job.attempts = r.get(6).map_err(|e| format!("bad attempts: {e}"))?;
        job.last_status = r.get(8).map_err(|e| format!("bad last_status: {e}"))?;
        job.last_error = r
            .get::<_, Option<String>>(9)
            .map_err(|e| e.to_string())?
            .map(Into::into);
        job.row = Some(row);
        Ok((job, due))
    }
}

/// The content types a job can have, as the `&'static str` jobs hold.
fn static_content_type(text: &str) -> &'static str {
    const KNOWN: [&str; 2] = ["application/json", "application/json; charset=utf-8"];
    KNOWN
        .into_iter()
        .find(|known| *known == text)
        .unwrap_or(KNOWN[0])
}
