//! Outcomes whose transaction failed (a full disk, an I/O error): kept and written again
//! ahead of later ones, and given up (logged, a dead letter without a row counted as
//! dropped) when they cannot be.

use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::commit::commit_logged;
use super::moving::is_step;
use super::shared::Core;
use super::writer::Op;
use crate::delivery::{DeadLetter, Lane, lock};
use crate::error::Error;

/// How often outcomes whose transaction failed are tried again.
pub(super) const WRITE_AGAIN_EVERY: Duration = Duration::from_millis(100);

/// How long outcomes are written again together before each is tried alone, and those that
/// fail alone are given up (logged): so that one that can never be written (a damaged
/// table) holds up the others for a minute, not for ever.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// How often a failure to write them again is logged.
const LOG_AGAIN_EVERY: Duration = Duration::from_secs(10);

/// The most outcomes kept to be written again, and the most bytes of dead letters' bodies
/// among them; past either the oldest are given up (logged).
const MAX_WRITE_AGAIN: usize = 100_000;
const MAX_WRITE_AGAIN_BYTES: usize = 64 << 20;

/// Outcomes (deliveries, retries, dead letters, the registry's changes) whose transaction
/// failed (a full disk, an I/O error), written again ahead of later ones until they are:
/// the engine counted them done already (a dead letter is counted once written, but its
/// job was let go at the first failure), so losing one leaves its row on disk, to be
/// delivered again after a restart (a later release leaves it there: see
/// [`Core::given_up`]).
#[derive(Default)]
pub(super) struct Again {
    ops: Vec<Op>,
    /// When a write of them first failed.
    since: Option<Instant>,
    /// When they were last tried, and a failure last logged.
    tried: Option<Instant>,
    logged: Option<Instant>,
}

impl Again {
    pub(super) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The ops kept.
    pub(super) fn kept(&self) -> std::slice::Iter<'_, Op> {
        self.ops.iter()
    }

    /// Keeps `left`, the outcomes of a write that failed.
    pub(super) fn keep(&mut self, core: &Core, left: Vec<Op>) {
        if left.is_empty() {
            return;
        }
        let now = Instant::now();
        self.ops.extend(left);
        self.since.get_or_insert(now);
        self.tried = Some(now);
        self.logged = Some(now);
        self.trim(core);
    }

    /// Keeps `marks` (waits for what was sent before them, `Op::Written`) behind the
    /// outcomes kept: answered once those are written, or told they were given up.
    pub(super) fn wait(&mut self, marks: Vec<Op>) {
        self.ops.extend(marks);
    }

    /// Writes the outcomes kept, with `updates` after them, in one transaction (no appends:
    /// they are not held up by outcomes that cannot be written; nor the steps of moves,
    /// which go back to the writer, to run alone once nothing is kept), at most every
    /// [`WRITE_AGAIN_EVERY`] from the end of the last try (meanwhile `updates` join them).
    /// After [`GIVE_UP_AFTER`], each is tried alone.
    pub(super) fn write(&mut self, core: &Core, conn: &mut Connection, updates: Vec<Op>) {
        let now = Instant::now();
        if self
            .tried
            .is_some_and(|at| now.duration_since(at) < WRITE_AGAIN_EVERY)
        {
            self.ops.extend(updates);
            self.trim(core);
            return;
        }
        let mut ops = std::mem::take(&mut self.ops);
        ops.extend(updates);
        let log = self
            .logged
            .is_none_or(|at| now.duration_since(at) >= LOG_AGAIN_EVERY);
        // The steps of moves go after the outcomes (a row delivered is deleted before a step
        // would move it), in a transaction of their own once these are written: back to the
        // writer's next turn, which runs them alone when nothing is kept any more, and keeps
        // them waiting here otherwise. Never with the outcomes: a step that fails on its own
        // (a megabyte of dead letters on a disk nearly full) would fail them for a minute.
        put_back(core, ops.extract_if(.., |op| is_step(op)).collect());
        let left = commit_logged(core, conn, ops, log);
        // From its end: a try that took long (a busy database) is not made again at once.
        self.tried = Some(Instant::now());
        if log {
            self.logged = Some(now);
        }
        if left.is_empty() {
            log::info!(
                target: deskhook::LOG_TARGET,
                "spool {}: the outcomes kept are written",
                core.dir.display()
            );
            *self = Again::default();
            return;
        }
        if self
            .since
            .is_some_and(|at| now.duration_since(at) < GIVE_UP_AFTER)
        {
            self.ops = left;
            self.trim(core);
            return;
        }
        *self = Again::default();
        let mut given_up = Vec::new();
        for op in left {
            // Not written if anything before it is not.
            if let Op::Written { done: sender, .. } = &op
                && !given_up.is_empty()
            {
                let _ = sender.send(Err(given_up_error(core)));
                continue;
            }
            given_up.extend(commit_logged(core, conn, vec![op], false));
        }
        if !given_up.is_empty() {
            lost(core, &given_up);
        }
    }

    /// At the writer's end: the outcomes kept are written once more, or given up (the
    /// steps of moves kept with them go back to the writer, which runs them after). Whether
    /// some were given up.
    pub(super) fn last_chance(mut self, core: &Core, conn: &mut Connection) -> bool {
        put_back(core, self.ops.extract_if(.., |op| is_step(op)).collect());
        if self.is_empty() {
            return false;
        }
        let left = commit_logged(core, conn, self.ops, true);
        if left.is_empty() {
            return false;
        }
        lost(core, &left);
        true
    }

    /// Gives up the oldest past [`MAX_WRITE_AGAIN`] outcomes or [`MAX_WRITE_AGAIN_BYTES`]; a
    /// step of a move among them is no outcome: it goes back to the writer, to wait there.
    fn trim(&mut self, core: &Core) {
        let over = over_limits(&self.ops, MAX_WRITE_AGAIN, MAX_WRITE_AGAIN_BYTES);
        if over > 0 {
            let mut given_up: Vec<Op> = self.ops.drain(..over).collect();
            put_back(core, given_up.extract_if(.., |op| is_step(op)).collect());
            lost(core, &given_up);
        }
    }
}

/// Puts `steps` of moves back for the writer's next turn, ahead of those that came since
/// (each lane's move has one step waiting at a time).
fn put_back(core: &Core, steps: Vec<Op>) {
    if !steps.is_empty() {
        lock(&core.moving).splice(0..0, steps);
    }
}

/// How many of the oldest of `ops` to give up so that at most `max_ops` are left, holding
/// at most `max_bytes` of dead letters' bodies.
pub(super) fn over_limits(ops: &[Op], max_ops: usize, max_bytes: usize) -> usize {
    let size = |op: &Op| match op {
        Op::Dead { letter, .. } => letter.body.get().len(),
        _ => 0,
    };
    let mut over = ops.len().saturating_sub(max_ops);
    // The bytes of those left.
    let mut bytes: usize = ops[over..].iter().map(size).sum();
    while bytes > max_bytes && over < ops.len() {
        bytes -= size(&ops[over]);
        over += 1;
    }
    over
}

/// What a caller waiting on an outcome given up is told.
pub(super) fn given_up_error(core: &Core) -> Error {
    Error::Spool {
        path: core.db.clone(),
        message: "a change could not be written and was given up (see the errors logged \
                  before)"
            .into(),
    }
}

/// Outcomes given up after their writes failed (logged; those events may be delivered
/// again). Their rows stay out of later releases (see [`Core::given_up`]).
pub(super) fn lost(core: &Core, updates: &[Op]) {
    log::error!(
        target: deskhook::LOG_TARGET,
        "spool {}: {} outcome(s) could not be written and are given up; those events may be \
         delivered again",
        core.dir.display(),
        updates.len()
    );
    lock(&core.given_up).extend(updates.iter().filter_map(finished_row));
    for op in updates {
        match op {
            Op::Dead {
                lane, row, letter, ..
            } => letter_lost(core, lane.as_deref(), *row, letter),
            // Their callers wait for an answer.
            Op::DeleteLetters { done, .. } => {
                let _ = done.send(Err(given_up_error(core)));
            }
            Op::Written { done, .. } => {
                let _ = done.send(Err(given_up_error(core)));
            }
            _ => {}
        }
    }
}

/// The row of an outcome whose job the engine finished already (a delivery, a dead letter):
/// written or not, it is not the engine's to count again.
pub(super) fn finished_row(op: &Op) -> Option<i64> {
    match op {
        Op::Delivered(row) | Op::Dead { row: Some(row), .. } => Some(*row),
        _ => None,
    }
}

/// A dead letter of `lane` the spool could not write. Without a row its event is nowhere
/// else: it is logged whole at error level and counted as dropped. With one, its row stays
/// in the spool for the next start, and it is not counted.
pub(super) fn letter_lost(core: &Core, lane: Option<&Lane>, row: Option<i64>, letter: &DeadLetter) {
    if row.is_some() {
        return;
    }
    log::error!(
        target: deskhook::LOG_TARGET,
        "spool {}: a dead letter could not be written and is dropped; it follows: {}",
        core.dir.display(),
        serde_json::to_string(letter).unwrap_or_default()
    );
    if let (Some(engine), Some(lane)) = (core.engine(), lane) {
        let event_type = deskhook::EventType::from_wire(&letter.action);
        engine.count_letter(lane, event_type, false);
    }
}
