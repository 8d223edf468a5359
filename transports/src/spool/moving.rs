//! The move of a lane's rows to the dead letters, inside the writer's transaction: a range
//! of rows in one go, or every row of a removed (or 410) endpoint in steps, one per commit
//! (the writer carries the next step to its next commit; see `commit::write_loop`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rusqlite::params;

use super::writer::Op;
use crate::delivery::{Lane, lock, now_rfc3339};

/// How far the move of a whole lane's rows went, from one step to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Moving {
    /// The last row the steps so far looked at.
    pub(super) after: i64,
    /// The lane's last row when the move began: rows after it are not the move's (a lane
    /// resumed after a 410 takes rows again).
    pub(super) through: i64,
    /// Rows moved so far.
    pub(super) moved: usize,
}

/// Most rows a whole lane's move to the dead letters takes per commit: a removed endpoint's
/// backlog of a million rows is a thousand commits or more, between which the emits waiting
/// for theirs are written, not one transaction that holds them all for its whole length.
pub(super) const MOVE_STEP_ROWS: usize = 1_000;

/// Body bytes after which a step of a lane's move ends (with the row that reached them: a
/// step moves one row at least): a step copies them into the dead letters' table, and an
/// emit may wait for one step's commit (the `spool_remove` benchmark).
const MOVE_STEP_BYTES: u64 = 1 << 20;

/// What one step of a lane's move did.
pub(super) struct Step {
    /// Rows it moved.
    pub(super) moved: usize,
    /// Where the next step begins; `None` when the move is over.
    pub(super) next: Option<Moving>,
    /// Rows moved by the steps so far, this one's with them.
    pub(super) total: usize,
}

/// One step of the move of every row of `lane` but those in `except` (in flight) to the
/// dead letters for `reason`: up to [`MOVE_STEP_ROWS`] rows or [`MOVE_STEP_BYTES`] of
/// bodies, from where the steps before ended (`moving`; `None` for the first, which bounds
/// the move at the lane's last row).
pub(super) fn move_step(
    tx: &rusqlite::Transaction<'_>,
    lane: &Lane,
    except: &[i64],
    reason: &str,
    moving: Option<Moving>,
    given_up: &Mutex<BTreeSet<i64>>,
) -> rusqlite::Result<Step> {
    let name: &str = &lane.name;
    let moving = match moving {
        Some(moving) => moving,
        None => Moving {
            after: lane.rows.floor,
            through: tx
                .prepare_cached("SELECT coalesce(max(row), 0) FROM events WHERE endpoint = ?1")?
                .query_row([name], |r| r.get(0))?,
            moved: 0,
        },
    };
    // Where this step ends: the last of the rows it has room for.
    let mut rows = 0;
    let mut bytes = 0;
    let mut until = moving.through;
    {
        let mut stmt = tx.prepare_cached(
            "SELECT row, length(body) FROM events WHERE endpoint = ?1 AND row > ?2 \
             AND row <= ?3 ORDER BY row LIMIT ?4",
        )?;
        let mut found = stmt.query(params![
            name,
            moving.after,
            moving.through,
            MOVE_STEP_ROWS as i64
        ])?;
        while let Some(r) = found.next()? {
            let (row, length): (i64, i64) = (r.get(0)?, r.get(1)?);
            rows += 1;
            bytes += length.unsigned_abs();
            if rows == MOVE_STEP_ROWS || bytes >= MOVE_STEP_BYTES {
                until = row;
                break;
            }
        }
    }
    let moved = move_rows(
        tx,
        lane,
        (moving.after, until, None),
        except,
        reason,
        given_up,
    )?;
    let total = moving.moved + moved;
    let next = (until < moving.through).then_some(Moving {
        after: until,
        moved: total,
        ..moving
    });
    Ok(Step { moved, next, total })
}

/// Moves the rows of `lane` after `after` through `through` (of `ticket`'s only, if given)
/// to the dead letters for `reason`, but those in `except` (in flight: their attempts
/// settle them) and those given up; returns how many went.
pub(super) fn move_rows(
    tx: &rusqlite::Transaction<'_>,
    lane: &Lane,
    (after, through, ticket): (i64, i64, Option<&str>),
    except: &[i64],
    reason: &str,
    given_up: &Mutex<BTreeSet<i64>>,
) -> rusqlite::Result<usize> {
    let except: Vec<i64> = {
        let given_up = lock(given_up);
        let given_up = (after < through).then(|| given_up.range(after + 1..=through));
        (except.iter().chain(given_up.into_iter().flatten()))
            .copied()
            .collect()
    };
    let except = serde_json::to_string(&except).unwrap_or_else(|_| "[]".to_owned());
    let name: &str = &lane.name;
    let url = lane.route().url.clone();
    let filter = "endpoint = ?1 AND row > ?2 AND row <= ?3 \
                  AND (?4 IS NULL OR ticket = ?4) \
                  AND row NOT IN (SELECT value FROM json_each(?5))";
    tx.prepare_cached(&format!(
        "INSERT INTO dead_letters (id, endpoint, url, action, ticket, content_type, \
         attempts, last_status, last_error, reason, failed_at, body, tenant) \
         SELECT id, endpoint, ?6, action, ticket, content_type, attempts, last_status, \
         last_error, ?7, ?8, body, tenant FROM events WHERE {filter} ORDER BY row"
    ))?
    .execute(params![
        name,
        after,
        through,
        ticket,
        except,
        url,
        reason,
        now_rfc3339()
    ])?;
    tx.prepare_cached(&format!("DELETE FROM events WHERE {filter}"))?
        .execute(params![name, after, through, ticket, except])
}

/// Whether `op` is a step of the move of every row of a lane (see [`move_step`]).
pub(super) fn is_step(op: &Op) -> bool {
    step_of(op).is_some()
}

/// The endpoint whose rows `op` moves, if it is a step of such a move.
pub(super) fn step_of(op: &Op) -> Option<&Arc<str>> {
    match op {
        Op::DeadRange {
            range: None, lane, ..
        } => Some(&lane.name),
        _ => None,
    }
}

/// Whether `op` is a wait for the end of the move of the rows of one of `moving`.
pub(super) fn waits_for_move(op: &Op, moving: &[Arc<str>]) -> bool {
    matches!(op, Op::Written { move_of: Some(name), .. } if moving.contains(name))
}
