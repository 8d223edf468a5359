//! The writer thread's side of the spool: batches of ops written in one transaction each
//! (group commit; a step of a lane's move, [`moving`](super::moving), in one of its own
//! after its batch), and what the engine is told afterwards. Outcomes whose write fails
//! are [`again`](super::again)'s.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Instant, SystemTime};

use rusqlite::{Connection, params};

use super::again::{Again, WRITE_AGAIN_EVERY, finished_row, given_up_error, letter_lost};
use super::apply::{Committed, apply, insert_letter};
use super::failing;
use super::moving::{is_step, step_of, waits_for_move};
use super::room::{PRUNE_STEP, attempts_could_make_room, give_way, prune, prune_letters};
use super::schema::{unix_ms, used_bytes};
use super::shared::{Append, Core};
use super::writer::Op;
use crate::delivery::{DeadLetter, Job, Lane, lock};
use crate::error::Error;

/// Tells the engine that `jobs` could not be written (dropped).
pub(super) fn report_dropped(core: &Core, jobs: &[(Arc<Lane>, Job)]) {
    for (lane, _) in jobs {
        lane.rows.pending.fetch_sub(1, Ordering::AcqRel);
    }
    if let Some(engine) = core.engine() {
        let dropped: Vec<_> = jobs
            .iter()
            .map(|(lane, job)| (lane.clone(), job.event.event_type))
            .collect();
        engine.on_commit(&[], &dropped, &[]);
    }
}

/// The writer thread: takes what is queued, writes it in one transaction (and the steps of
/// moves under way in another), settles the receipts, and tells the engine; until the
/// channel closes, and the moves under way have ended.
pub(super) fn write_loop(core: &Core, mut conn: Connection, ops: &Receiver<Op>) {
    let max_batch = core.settings.max_batch;
    // Appends not written yet, in the order they came.
    let mut waiting: VecDeque<Op> = VecDeque::new();
    let mut again = Again::default();
    let mut last_batch = 1;
    // Waits for what was sent before them (`Op::Written`) that came after appends still
    // waiting, each with how many of those are ahead of it: answered with the batch that
    // commits the last of them, not before (a batch takes `max_batch` appends at most).
    let mut marks: Vec<(usize, Op)> = Vec::new();
    // Waits for the end of the move of an endpoint's rows in steps (a resume after a 410
    // waits so for its move, the lane taking rows again only then) that came while it was
    // under way: held until it ends, then as any other. Other waits are not held by moves.
    let mut held: Vec<Op> = Vec::new();
    loop {
        // The next steps of the moves under way go first. A step may also wait in `again`,
        // with the outcomes kept there (below).
        let (mut updates, mut moving) = next_steps(core);
        moving.extend(again.kept().filter_map(step_of).cloned());
        let released: Vec<Op> = held
            .extract_if(.., |op| !waits_for_move(op, &moving))
            .collect();
        let mut sort = |op: Op, waiting: &mut VecDeque<Op>, updates: &mut Vec<Op>| match op {
            Op::Append(_) => waiting.push_back(op),
            op if waits_for_move(&op, &moving) => held.push(op),
            Op::Written { .. } if !waiting.is_empty() => marks.push((waiting.len(), op)),
            op if is_step(&op) => {
                moving.extend(step_of(&op).cloned());
                updates.push(op);
            }
            other => updates.push(other),
        };
        for op in released {
            sort(op, &mut waiting, &mut updates);
        }
        if waiting.is_empty() && updates.is_empty() {
            if again.is_empty() {
                match ops.recv() {
                    Ok(op) => sort(op, &mut waiting, &mut updates),
                    Err(_) => break,
                }
            } else {
                match ops.recv_timeout(WRITE_AGAIN_EVERY) {
                    Ok(op) => sort(op, &mut waiting, &mut updates),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        // Everything that arrived meanwhile. Outcomes go into this transaction, ahead of
        // appends still waiting (the row an outcome is about is always committed already):
        // a delivery is on record after one commit, however far emits are ahead.
        while let Ok(op) = ops.try_recv() {
            sort(op, &mut waiting, &mut updates);
        }
        // Emits came concurrently last time: give the others a moment to arrive.
        let target = last_batch.min(max_batch);
        if last_batch > 1 && !waiting.is_empty() && waiting.len() < target {
            // `max_wait` is checked (at most a second); never past what a clock holds.
            let now = Instant::now();
            let deadline = now.checked_add(core.settings.max_wait).unwrap_or(now);
            while waiting.len() < target {
                match ops.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(op) => sort(op, &mut waiting, &mut updates),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        let take = waiting.len().min(max_batch);
        if take > 0 {
            last_batch = take;
        }
        let mut batch: Vec<Op> = waiting.drain(..take).collect();
        for (ahead, mark) in std::mem::take(&mut marks) {
            if ahead <= take {
                // Answered with this batch's appends (a failed commit answers it too).
                batch.push(mark);
            } else {
                marks.push((ahead - take, mark));
            }
        }
        if again.is_empty() {
            // The steps of moves under way go in a transaction of their own, after the rest:
            // an emit waits for the step being written at most, its own commit carries none.
            let steps: Vec<Op> = updates.extract_if(.., |op| is_step(op)).collect();
            batch.extend(updates);
            if !batch.is_empty() {
                let left = commit(core, &mut conn, batch);
                again.keep(core, left);
            }
            if again.is_empty() {
                commit_steps(core, &mut conn, steps);
            } else {
                // Outcomes of this batch are kept to be written again, and may be about rows
                // a step would move: the steps wait for them (see `Again::write`).
                lock(&core.moving).splice(0..0, steps);
            }
        } else {
            // Outcomes first, in their order, then the steps, alone, once the outcomes are
            // written or given up (a row delivered is deleted before a step would move it:
            // see `Again::write`); appends on their own.
            again.write(core, &mut conn, updates);
            commit_appends(core, &mut conn, batch, &mut again);
        }
    }
    let gave_up = again.last_chance(core, &mut conn);
    // A move whose step waited with the outcomes kept goes to its end, as one does when
    // nothing is kept (the loop runs it before it waits for the channel), then the waits
    // held for it are answered.
    loop {
        let steps = std::mem::take(&mut *lock(&core.moving));
        if steps.is_empty() {
            break;
        }
        commit_steps(core, &mut conn, steps);
    }
    if gave_up {
        // Some of what was sent before them was given up: not written.
        for wait in held {
            if let Op::Written { done: sender, .. } = wait {
                let _ = sender.send(Err(given_up_error(core)));
            }
        }
    } else if !held.is_empty() {
        let left = commit(core, &mut conn, held);
        debug_assert!(left.is_empty(), "a wait is answered, not kept");
    }
    // A clean close: fold the WAL into the database.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        log::debug!(target: deskhook::LOG_TARGET, "spool checkpoint at close: {e}");
    }
}

/// Commits `steps` of moves, each in a transaction of its own: one lane's step that fails
/// (a megabyte on a disk nearly full) ends its move only, answered, not kept.
fn commit_steps(core: &Core, conn: &mut Connection, steps: Vec<Op>) {
    for step in steps {
        let left = commit(core, conn, vec![step]);
        debug_assert!(left.is_empty(), "a failed step is answered, not kept");
    }
}

/// The next steps of the moves under way, and the endpoints whose rows they move (in tests,
/// those of moves left waiting too).
fn next_steps(core: &Core) -> (Vec<Op>, Vec<Arc<str>>) {
    let mut moving = lock(&core.moving);
    #[cfg(test)]
    if core.moves_paused.load(Ordering::Acquire) {
        return (
            Vec::new(),
            moving.iter().filter_map(step_of).cloned().collect(),
        );
    }
    let steps = std::mem::take(&mut *moving);
    let names = steps.iter().filter_map(step_of).cloned().collect();
    (steps, names)
}

/// Commits `batch`, appends and the waits for what was sent before them (`Op::Written`),
/// written on their own while `again` may hold outcomes sent before those waits: a wait is
/// then answered only once those are written too (or told they were given up), so it joins
/// them once the appends are committed. A registry change or a 410's move of rows kept
/// there is not "written" because the appends after it are.
pub(super) fn commit_appends(
    core: &Core,
    conn: &mut Connection,
    mut batch: Vec<Op>,
    again: &mut Again,
) {
    let marks: Vec<Op> = if again.is_empty() {
        Vec::new()
    } else {
        batch
            .extract_if(.., |op| matches!(op, Op::Written { .. }))
            .collect()
    };
    if marks.is_empty() {
        if !batch.is_empty() {
            let left = commit(core, conn, batch);
            debug_assert!(left.is_empty(), "a batch of appends has no outcome");
        }
        return;
    }
    // How the appends' commit went, as the waits would have been told.
    let (done, appends) = mpsc::sync_channel(1);
    batch.push(Op::Written {
        done,
        move_of: None,
    });
    let left = commit(core, conn, batch);
    debug_assert!(left.is_empty(), "a batch of appends has no outcome");
    let message = match appends.try_recv() {
        Ok(Ok(())) => return again.wait(marks),
        Ok(Err(Error::Spool { message, .. })) => message,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "the appends before it were not answered".to_owned(),
    };
    for mark in marks {
        if let Op::Written { done: sender, .. } = mark {
            let _ = sender.send(Err(Error::Spool {
                path: core.db.clone(),
                message: message.clone(),
            }));
        }
    }
}

/// Logs the events of a commit that went straight to the dead letters, once per endpoint (as
/// the memory backlog logs each of its letters).
fn log_late(late: &[(Arc<Lane>, &'static str)]) {
    let mut seen: Vec<&Arc<Lane>> = Vec::new();
    for (lane, reason) in late {
        if seen.iter().any(|l| Arc::ptr_eq(l, lane)) {
            continue;
        }
        seen.push(lane);
        let n = late.iter().filter(|(l, _)| Arc::ptr_eq(l, lane)).count();
        log::warn!(
            target: deskhook::LOG_TARGET,
            "endpoint '{}': {reason}; {n} event(s) emitted for it went to the spool's dead \
             letters",
            lane.name
        );
    }
}

/// Everything on disk of a released lane was let go: nothing is left to load, whatever its
/// window said.
fn forget_disk(lane: &Lane) {
    let mut st = lock(&lane.state);
    let (last, _) = lane.rows.committed();
    st.window.let_go(last);
}

/// Why a lane takes no more rows: removed, or disabled by a 410. Its later appends go
/// straight to the dead letters.
fn gone(lane: &Lane) -> Option<&'static str> {
    if !lane.closed.load(Ordering::Acquire) {
        return None;
    }
    lane.release_reason()
}

/// The appends of one batch: each emit's jobs, with its receipt.
type Appends = Vec<Append>;

/// Writes one batch in one transaction. When it fails, its appends are refused (their
/// emits told) and its outcomes are returned, to be written again; but those whose caller
/// waits for the answer (told the failure) and the attempt log's entries (let go).
fn commit(core: &Core, conn: &mut Connection, batch: Vec<Op>) -> Vec<Op> {
    commit_logged(core, conn, batch, true)
}

/// [`commit`], its failure logged or not (`log`).
pub(super) fn commit_logged(
    core: &Core,
    conn: &mut Connection,
    batch: Vec<Op>,
    log: bool,
) -> Vec<Op> {
    let mut appends = Vec::new();
    let mut updates = Vec::new();
    for op in batch {
        match op {
            Op::Append(append) => appends.push(append),
            other => updates.push(other),
        }
    }
    let mut used = core.used.load(Ordering::Acquire);
    let now = unix_ms(SystemTime::now());
    // Dead letters of events the spool never held add their bodies, as new events do.
    let letters_without_rows = updates
        .iter()
        .any(|op| matches!(op, Op::Dead { row: None, .. }));
    // A full spool lets expired letters go at once (not up to a minute later, as when it
    // has room): a spool idle since they expired would refuse events meanwhile. In steps,
    // until there is room: the emits waiting wait for no more than that.
    while used >= core.settings.max_size
        && (!appends.is_empty() || letters_without_rows)
        && prune_letters(core, conn, now, PRUNE_STEP) > 0
    {
        let Ok(now_used) = used_bytes(conn) else {
            break;
        };
        used = now_used;
        core.used.store(used, Ordering::Release);
    }
    // Half the attempt log at a time (the pages of its indexes free up unevenly), until
    // there is room or no attempt is left; only when the log could make the room (a spool
    // full of events keeps its attempts: they are the history of what is failing).
    if used >= core.settings.max_size
        && (!appends.is_empty() || letters_without_rows)
        && attempts_could_make_room(core, conn, used)
    {
        while used >= core.settings.max_size && give_way(core, conn) {
            match used_bytes(conn) {
                Ok(now) => {
                    used = now;
                    core.used.store(used, Ordering::Release);
                }
                Err(_) => break,
            }
        }
        // The log is smaller now: the next time the spool is full, whether what is left of
        // it could make the room is asked again (kept, the answer would have the rest of
        // the log go whether or not that makes the room).
        core.give_way_answer.forget();
    }
    let full = used >= core.settings.max_size;
    if full {
        // The attempt log gives way to events: a full spool keeps no attempts.
        updates.retain(|op| !matches!(op, Op::Attempt(_)));
        updates = drop_letters_without_rows(core, used, updates);
    }
    let mut rows: Vec<(Arc<Lane>, i64)> = Vec::new();
    let mut done = Committed::default();
    let result = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        if !full {
            for append in &appends {
                for (lane, job) in &append.jobs {
                    if let Some(reason) = gone(lane) {
                        let letter = DeadLetter::of_job(lane, job, reason);
                        insert_letter(&tx, &letter, job.event.content_type)?;
                        done.dead.push((lane.clone(), 1));
                        done.late.push((lane.clone(), reason));
                        continue;
                    }
                    let event = &job.event;
                    tx.prepare_cached(
                        "INSERT INTO events (id, endpoint, action, ticket, content_type, body, \
                         accepted_at, tenant) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                        &*event.id_text,
                        &*lane.name,
                        event.event_type.as_str(),
                        &*event.key,
                        event.content_type,
                        &event.body[..],
                        now,
                        event.tenant.as_deref()
                    ])?;
                    rows.push((lane.clone(), tx.last_insert_rowid()));
                }
            }
        }
        for op in &updates {
            apply(&tx, op, &core.given_up, &mut done)?;
        }
        tx.commit()
    })();
    let total: usize = appends.iter().map(|a| a.jobs.len()).sum();
    // Readiness: whether events are taken (a commit of outcomes alone says nothing of it).
    if !appends.is_empty() {
        match &result {
            Err(e) => core.events_not_written(format!(
                "its writes fail ({e}): free disk space or mend the file system"
            )),
            Ok(()) if full => core.events_not_written(format!(
                "it is full, at its max_size of {} bytes: let its endpoints deliver or drain \
                 it, or raise max_size",
                core.settings.max_size
            )),
            Ok(()) => core.events_written(),
        }
    }
    if result.is_ok() {
        if !full {
            // The rows are the lanes' to load (atomics only: nothing here can panic); an
            // append dropped from here on (a panic) says durable, not dropped.
            for (lane, row) in &rows {
                lane.rows.last.fetch_max(*row, Ordering::AcqRel);
                lane.rows.count.fetch_add(1, Ordering::AcqRel);
                if !done.touched.iter().any(|l| Arc::ptr_eq(l, lane)) {
                    done.touched.push(lane.clone());
                }
            }
            for append in &mut appends {
                for (lane, _) in &append.jobs {
                    lane.rows.pending.fetch_sub(1, Ordering::AcqRel);
                }
                append.written();
            }
        }
        core.commits.fetch_add(1, Ordering::Relaxed);
        refresh_used(core, conn);
    }
    if let Err(e) = result {
        core.failed_commits.fetch_add(1, Ordering::Relaxed);
        // A transaction whose rollback failed would leave every later one failing.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        if log {
            log::error!(
                target: deskhook::LOG_TARGET,
                "spool {}: a write failed ({} new event(s), {} outcome(s) to write again): {e}",
                core.dir.display(),
                total,
                updates.len()
            );
        }
        // Rows whose outcome is not written either: the engine finished them already.
        let finished: Vec<i64> = updates.iter().filter_map(finished_row).collect();
        let alone = updates.len() > 1;
        let mut deletes = Vec::new();
        if updates.is_empty() {
            drop_appends(core, || failing(&core.db, &e), appends);
        } else if !appends.is_empty() {
            // An outcome may be what cannot be written (a row it cannot change): the new
            // events are tried on their own before they are refused.
            let appends = appends.into_iter().map(Op::Append).collect();
            let left = commit(core, conn, appends);
            debug_assert!(left.is_empty(), "appends alone leave no outcome");
        }
        let mut again = Vec::new();
        for mut op in updates {
            // A letter whose write failed is kept to be written again (counted then, or
            // when given up), and its job is let go now: a flush does not wait for what the
            // spool cannot write, as for a release below.
            if let Op::Dead { hold, .. } = &mut op {
                drop(hold.take());
            }
            match &op {
                // The rows stay where they are: the caller is told how many, so that it
                // lets go of them all the same (the lane is gone or disabled) rather than
                // leave a flush waiting for them.
                Op::DeadRange {
                    lane,
                    range,
                    except,
                    done: Some(sender),
                    moving,
                    ..
                } => {
                    let given_up = lock(&core.given_up);
                    let except: Vec<i64> = (except.iter().chain(&finished))
                        .chain(given_up.iter())
                        .copied()
                        .collect();
                    drop(given_up);
                    let left = rows_of(conn, lane, &except).unwrap_or_else(|e| {
                        // Not counted, so not let go of: a flush waits for them to its
                        // timeout; they stay on disk all the same.
                        log::error!(
                            target: deskhook::LOG_TARGET,
                            "spool: cannot read the rows of endpoint '{}' left on disk ({e}); \
                             a flush may wait for them until its timeout",
                            lane.name
                        );
                        Vec::new()
                    });
                    // The caller finishes their jobs: a later release (a removal after this
                    // 410's) leaves them on disk for the next start, as it does the rows of
                    // outcomes given up, rather than moving them and finishing them again.
                    lock(&core.given_up).extend(&left);
                    let left = left.len();
                    if range.is_none() {
                        // Let go of as if moved: a resume (after a 410) must not load them
                        // and finish them a second time. They wait on disk for a restart.
                        forget_disk(lane);
                    }
                    // A move cut short after steps that were written says how far it went.
                    let moved = moving.map_or(0, |moving| moving.moved);
                    let _ = sender.send(Err((moved, left)));
                }
                // A row moved alone (unreadable, or more than the memory budget): it stays
                // on disk, for the next start, and is let go of now, as a dead letter's job
                // is: a flush does not wait for what the spool cannot write, and the lane,
                // past it, would never read it again. A later release leaves it there.
                Op::DeadRange {
                    lane,
                    range: Some((after, row, None)),
                    done: None,
                    ..
                } if *after == *row - 1 => {
                    lock(&core.given_up).insert(*row);
                    if let Some(engine) = core.engine() {
                        engine.finished(lane, 1);
                    }
                }
                // Tried on its own (it only touches letters written already) when the
                // batch held more; else the caller is told: a delete that did not happen
                // is not "nothing matched".
                Op::DeleteLetters { done: sender, .. } => {
                    if alone {
                        deletes.push(op);
                    } else {
                        let _ = sender.send(Err(failing(&core.db, &e)));
                    }
                }
                // Some of what was sent before it is not written (or, conservatively, of
                // what came after it in this batch).
                Op::Written { done: sender, .. } => {
                    let _ = sender.send(Err(failing(&core.db, &e)));
                }
                Op::Attempt(_) => {}
                _ => again.push(op),
            }
        }
        for delete in deletes {
            commit_logged(core, conn, vec![delete], log);
        }
        return again;
    }
    if full {
        let error = || Error::SpoolFull {
            path: core.dir.to_path_buf(),
            used,
            limit: core.settings.max_size,
        };
        drop_appends(core, error, appends);
    } else {
        let bytes = super::shared::body_bytes(appends.iter().flat_map(|a| &a.jobs));
        core.committed_jobs(total, bytes);
        // Receipts first: an `emit` waiting for its commit need not wait for workers.
        for append in &appends {
            append.settle(Ok(()));
        }
    }
    for lane in &done.released {
        forget_disk(lane);
    }
    lock(&core.moving).append(&mut done.more);
    log_late(&done.late);
    // The updates were written, whether the appends were or not (a full spool takes
    // updates: they make room).
    if let Some(engine) = core.engine() {
        engine.on_commit(&done.touched, &[], &done.dead);
        for lane in &done.letters {
            engine.count_letter(lane, None, true);
        }
    }
    // Counted: their jobs are let go (a flush waiting for them sees the counts).
    drop(updates);
    for (sender, moved) in done.done {
        let _ = sender.send(Ok(moved));
    }
    for (sender, deleted) in done.deleted {
        let _ = sender.send(Ok(deleted));
    }
    for sender in done.written {
        let _ = sender.send(Ok(()));
    }
    // Once everyone waiting for this commit is told; deletes make room too.
    if prune(core, conn, now) {
        refresh_used(core, conn);
    }
    Vec::new()
}

/// Reads how much of the file is in use: the limit is checked against that.
fn refresh_used(core: &Core, conn: &Connection) {
    if let Ok(used) = used_bytes(conn) {
        core.used.store(used, Ordering::Release);
    }
}

/// The rows of `lane` on disk but those in `except` (in flight, or whose outcome failed or
/// was given up).
fn rows_of(conn: &Connection, lane: &Lane, except: &[i64]) -> rusqlite::Result<Vec<i64>> {
    let except = serde_json::to_string(except).unwrap_or_else(|_| "[]".to_owned());
    let mut rows = conn.prepare(
        "SELECT row FROM events WHERE endpoint = ?1 AND row > ?2 \
         AND row NOT IN (SELECT value FROM json_each(?3))",
    )?;
    rows.query_map(params![&*lane.name, lane.rows.floor, except], |r| r.get(0))?
        .collect()
}

/// Appends that were not written: dropped (counted and logged), their receipts settled with
/// the error.
fn drop_appends(core: &Core, error: impl Fn() -> Error, appends: Appends) {
    let total: usize = appends.iter().map(|a| a.jobs.len()).sum();
    if total > 0 {
        log::error!(target: deskhook::LOG_TARGET, "{total} event(s) dropped: {}", error());
    }
    core.committed_jobs(
        total,
        super::shared::body_bytes(appends.iter().flat_map(|a| &a.jobs)),
    );
    for mut append in appends {
        append.refuse(core, error());
    }
}

/// The updates of a full spool but its dead letters without a row, which are dropped:
/// logged whole and counted. A letter that moves an event's row out of `events` takes little
/// more room than the row did; one without a row (an event over `max_payload` or the memory
/// budget, which never had one) would add its whole body, and a stream of them would fill
/// the disk past `max_size_mb` while every new event is refused.
fn drop_letters_without_rows(core: &Core, used: u64, updates: Vec<Op>) -> Vec<Op> {
    let (dropped, kept): (Vec<Op>, Vec<Op>) = updates
        .into_iter()
        .partition(|op| matches!(op, Op::Dead { row: None, .. }));
    if dropped.is_empty() {
        return kept;
    }
    log::error!(
        target: deskhook::LOG_TARGET,
        "spool {}: full ({used} bytes used, max_size_mb is {} MiB): {} dead letter(s) of events \
         it never held are dropped rather than written; raise max_size_mb, or replay or \
         delete dead letters to make room",
        core.dir.display(),
        core.settings.max_size >> 20,
        dropped.len()
    );
    for op in &dropped {
        if let Op::Dead {
            lane, row, letter, ..
        } = op
        {
            letter_lost(core, lane.as_deref(), *row, letter);
        }
    }
    kept
}
