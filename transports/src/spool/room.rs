//! What the spool lets go to keep within its limits: the attempt log giving way to events
//! in a full spool, and, once a minute, attempts and dead letters past their retention.
//! Called by the writer (`commit`) on its connection, outside its transactions.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use rusqlite::Connection;

use super::schema::unix_ms;
use super::shared::Core;

/// Whether dropping the attempt log would bring a spool using `used` bytes under its
/// limit: the log's size, summed from its rows (a scan: once in 10 s at most while the
/// spool stays full, the answer kept meanwhile unless the log gave way since).
pub(super) fn attempts_could_make_room(core: &Core, conn: &Connection, used: u64) -> bool {
    let now = unix_ms(SystemTime::now());
    let (at, could) = core.give_way_answer.load();
    if now.saturating_sub(at) < 10_000 {
        return could;
    }
    // Per row: the response, the texts, and about 100 bytes of numbers and index entries.
    let size: i64 = conn
        .query_row(
            "SELECT coalesce(sum(length(response) + length(event_id) + length(endpoint) + \
             length(ticket) + coalesce(length(error), 0) + 100), 0) FROM attempts",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    let could = used.saturating_sub(size.unsigned_abs()) < core.settings.max_size;
    core.give_way_answer.store(now, could);
    could
}

/// A full spool with events to take: the older half of the attempt log goes, so that the
/// log (up to `attempt_max_rows` attempts with their responses) never keeps events out.
/// Whether anything went (the last attempt goes too: `min` and `max` are then equal).
pub(super) fn give_way(core: &Core, conn: &Connection) -> bool {
    let result = conn.execute(
        "DELETE FROM attempts WHERE seq <= (SELECT (min(seq) + max(seq)) / 2 FROM attempts)",
        [],
    );
    match result {
        Ok(0) => false,
        Ok(gone) => {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "spool {} is full: the {gone} oldest attempt(s) of its attempt log were \
                 dropped to make room for events and dead letters",
                core.dir.display()
            );
            true
        }
        Err(e) => {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "spool {} is full and its attempt log could not make room: {e}",
                core.dir.display()
            );
            false
        }
    }
}

/// The attempts, or dead letters, one commit prunes at most. A restart after a week away
/// has up to `attempt_max_rows` (a million by default) to delete, and a month's dead
/// letters of an endpoint dead for weeks as many; in one statement that held the writer,
/// and the emits waiting for it, for seconds. In steps, each commit deletes some and the
/// emits' commits go on in between.
pub(super) const PRUNE_STEP: usize = 10_000;

/// Once a minute at most: attempts past the retention, and the oldest past the row cap, go;
/// then dead letters past theirs (each in steps of [`PRUNE_STEP`], one per commit until
/// none is left). Whether it deleted (or tried to).
pub(super) fn prune(core: &Core, conn: &Connection, now: i64) -> bool {
    let last = core.pruned_at.load(Ordering::Acquire);
    if now.saturating_sub(last) < 60_000 {
        return false;
    }
    if prune_attempts(core, conn, now, PRUNE_STEP)
        && prune_letters(core, conn, now, PRUNE_STEP) < PRUNE_STEP
    {
        core.pruned_at.store(now, Ordering::Release);
    }
    true
}

/// Deletes at most `step` attempts past the retention and as many past the row cap, the
/// oldest first; whether that was all of them (or the delete failed: it is tried again in
/// a minute).
pub(super) fn prune_attempts(core: &Core, conn: &Connection, now: i64, step: usize) -> bool {
    let retention = i64::try_from(core.settings.attempt_retention.as_millis()).unwrap_or(i64::MAX);
    let cap = i64::try_from(core.settings.attempt_max_rows).unwrap_or(i64::MAX);
    let step_sql = i64::try_from(step).unwrap_or(i64::MAX);
    let result = conn
        .execute(
            "DELETE FROM attempts WHERE seq IN \
             (SELECT seq FROM attempts WHERE at < ?1 ORDER BY at LIMIT ?2)",
            [now.saturating_sub(retention), step_sql],
        )
        .and_then(|expired| {
            let over = conn.execute(
                "DELETE FROM attempts WHERE seq IN (SELECT seq FROM attempts \
                 WHERE seq <= (SELECT max(seq) FROM attempts) - ?1 ORDER BY seq LIMIT ?2)",
                [cap, step_sql],
            )?;
            Ok(expired.max(over))
        });
    match result {
        Ok(deleted) => deleted < step,
        Err(e) => {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "spool {}: old attempts could not be pruned: {e}",
                core.dir.display()
            );
            true
        }
    }
}

/// Dead letters that failed more than `dead_letter_retention` ago, `step` at most, the
/// oldest first: deleted, their count logged and returned (0 when the delete failed: it is
/// tried again in a minute). `failed_at` is RFC 3339 in UTC with milliseconds, so its text
/// sorts as its time (within a second for letters written without them).
pub(super) fn prune_letters(core: &Core, conn: &Connection, now: i64, step: usize) -> usize {
    let retention = core.settings.dead_letter_retention;
    let cutoff = jiff::Timestamp::from_millisecond(now)
        .ok()
        .and_then(|now| now.checked_sub(retention).ok());
    let Some(cutoff) = cutoff else {
        return 0; // A retention reaching before the timestamps' range: nothing is that old.
    };
    let result = conn.execute(
        "DELETE FROM dead_letters WHERE row IN \
         (SELECT row FROM dead_letters WHERE failed_at < ?1 ORDER BY failed_at LIMIT ?2)",
        rusqlite::params![
            format!("{cutoff:.3}"),
            i64::try_from(step).unwrap_or(i64::MAX)
        ],
    );
    match result {
        Ok(0) => 0,
        Ok(gone) => {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "spool {}: {gone} dead letter(s) that failed before {cutoff:.0} were deleted \
                 (dead_letter_retention = \"{}\"; replay or export letters within it)",
                core.dir.display(),
                deskhook::policy::format_duration(retention)
            );
            gone
        }
        Err(e) => {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "spool {}: old dead letters could not be deleted: {e}",
                core.dir.display()
            );
            0
        }
    }
}
