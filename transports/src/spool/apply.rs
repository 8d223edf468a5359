//! One update inside the writer's transaction ([`apply`]), and what a commit did
//! ([`Committed`]), which the writer tells the engine and the callers once it is committed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::params;

use super::moving::{move_rows, move_step};
use super::writer::Op;
use crate::delivery::backlog::MoveAnswer;
use crate::delivery::{DeadLetter, Lane};
use crate::error::Error;

/// What one commit did, per lane.
#[derive(Default)]
pub(super) struct Committed {
    /// Lanes that got rows.
    pub(super) touched: Vec<Arc<Lane>>,
    /// Rows moved or written straight to the dead letters, per lane.
    pub(super) dead: Vec<(Arc<Lane>, usize)>,
    /// The lanes of the dead letters written (their `Op::Dead`s'), one per letter.
    pub(super) letters: Vec<Arc<Lane>>,
    /// Events emitted for a lane removed or disabled meanwhile, written straight to the
    /// dead letters: logged once the commit is done.
    pub(super) late: Vec<(Arc<Lane>, &'static str)>,
    /// Counts to hand to waiting `dead_all` callers.
    pub(super) done: Vec<(mpsc::SyncSender<MoveAnswer>, usize)>,
    /// Counts of deleted dead letters to hand to their callers.
    pub(super) deleted: Vec<(mpsc::SyncSender<Result<usize, Error>>, usize)>,
    /// Callers waiting for what they sent before to be committed.
    pub(super) written: Vec<mpsc::SyncSender<Result<(), Error>>>,
    /// Lanes all of whose rows were let go (their windows are reset once committed).
    pub(super) released: Vec<Arc<Lane>>,
    /// The next steps of whole lanes' moves, for the next commit.
    pub(super) more: Vec<Op>,
}

/// Writes `letter` into the dead letters' table, with `content_type`.
pub(super) fn insert_letter(
    tx: &rusqlite::Transaction<'_>,
    letter: &DeadLetter,
    content_type: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO dead_letters (id, endpoint, url, action, ticket, content_type, attempts, \
         last_status, last_error, reason, failed_at, body, tenant) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        letter.id,
        letter.endpoint,
        letter.url,
        letter.action,
        letter.ticket,
        content_type,
        letter.attempts,
        letter.last_status,
        letter.last_error,
        letter.reason,
        letter.failed_at,
        letter.body.get().as_bytes(),
        letter.tenant
    ])
    .map(drop)
}

/// One update inside the writer's transaction; `given_up` rows (see
/// [`Core::given_up`](super::shared::Core::given_up)) stay where they are.
pub(super) fn apply(
    tx: &rusqlite::Transaction<'_>,
    op: &Op,
    given_up: &Mutex<BTreeSet<i64>>,
    done: &mut Committed,
) -> rusqlite::Result<()> {
    match op {
        Op::Append(_) => Ok(()),
        Op::Attempted {
            row,
            attempts,
            next_at,
            last_status,
            last_error,
        } => tx
            .prepare_cached(
                "UPDATE events SET attempts = ?2, next_at = ?3, last_status = ?4, \
                 last_error = ?5 WHERE row = ?1",
            )?
            .execute(params![row, attempts, next_at, last_status, last_error])
            .map(drop),
        Op::Delivered(row) => tx
            .prepare_cached("DELETE FROM events WHERE row = ?1")?
            .execute([row])
            .map(drop),
        Op::DeadRange {
            lane,
            range,
            except,
            reason,
            done: sender,
            moving,
        } => {
            let Some((after, through, ticket)) = range else {
                let step = move_step(tx, lane, except, reason, *moving, given_up)?;
                if step.moved > 0 {
                    done.dead.push((lane.clone(), step.moved));
                }
                match step.next {
                    Some(next) => done.more.push(Op::DeadRange {
                        lane: lane.clone(),
                        range: None,
                        except: except.clone(),
                        reason: reason.clone(),
                        done: sender.clone(),
                        moving: Some(next),
                    }),
                    None => {
                        done.released.push(lane.clone());
                        if let Some(sender) = sender {
                            done.done.push((sender.clone(), step.total));
                        }
                    }
                }
                return Ok(());
            };
            let moved = move_rows(
                tx,
                lane,
                (*after, *through, ticket.as_deref()),
                except,
                reason,
                given_up,
            )?;
            debug_assert!(moving.is_none(), "a range is moved in one step");
            if moved > 0 {
                done.dead.push((lane.clone(), moved));
            }
            if let Some(sender) = sender {
                done.done.push((sender.clone(), moved));
            }
            Ok(())
        }
        Op::Dead {
            lane, row, letter, ..
        } => {
            // The event type's own (iQChannels' says its charset), which a replay sends.
            let content_type = deskhook::EventType::from_wire(&letter.action)
                .map_or("application/json", deskhook::EventType::content_type);
            insert_letter(tx, letter, content_type)?;
            if let Some(row) = row {
                tx.prepare_cached("DELETE FROM events WHERE row = ?1")?
                    .execute([row])?;
            }
            done.letters.extend(lane.clone());
            Ok(())
        }
        Op::Hurry(name) => tx
            .prepare_cached("UPDATE events SET next_at = 0 WHERE endpoint = ?1 AND next_at > 0")?
            .execute([name])
            .map(drop),
        Op::Register { name, entry } => match entry {
            // One just added is paused as it was added; a change keeps what the row says.
            Some(entry) => tx
                .prepare_cached(
                    "INSERT INTO endpoints (name, tenant, url, spec, paused) \
                     VALUES (?1, ?2, ?3, ?4, coalesce(?5, 0)) \
                     ON CONFLICT (name) DO UPDATE SET tenant = ?2, url = ?3, spec = ?4, \
                     paused = coalesce(?5, paused)",
                )?
                .execute(params![
                    name,
                    Some(entry.tenant.as_str()).filter(|t| !t.is_empty()),
                    entry.url,
                    entry.spec,
                    entry.paused
                ])
                .map(drop),
            None => tx
                .prepare_cached("DELETE FROM endpoints WHERE name = ?1")?
                .execute([name])
                .map(drop),
        },
        Op::Paused { name, paused } => tx
            .prepare_cached("UPDATE endpoints SET paused = ?2 WHERE name = ?1")?
            .execute(params![name, paused])
            .map(drop),
        Op::Attempt(entry) => super::schema::insert_attempt(tx, entry),
        Op::DeleteLetters { rows, done: sender } => {
            let mut gone = 0;
            for row in rows {
                gone += tx
                    .prepare_cached("DELETE FROM dead_letters WHERE row = ?1")?
                    .execute([row])?;
            }
            done.deleted.push((sender.clone(), gone));
            Ok(())
        }
        Op::Written { done: sender, .. } => {
            done.written.push(sender.clone());
            Ok(())
        }
    }
}
