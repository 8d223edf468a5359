//! The way in: where an emit's event goes (its endpoints, the backlog), redelivery of a
//! dead letter, and the dead letters themselves.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use deskhook::EventType;

use super::Engine;
use crate::delivery::backlog::{LetterFate, LetterOwner, Refusal, Settling};
use crate::delivery::dead_letter::BATCH_BYTES;
use crate::delivery::letters::LetterHead;
use crate::delivery::{DeadLetter, EventData, Job, Lane, Lanes, Receipt, Refused, Routed};
use crate::error::Error;

/// An event and the endpoints it goes to.
type Targets = (EventData, Lanes);

/// What `emit` returns for the problems of its endpoints, each logged already where it
/// happened (a drop, a dead letter): the dispatcher does not log them again.
fn sink_result(problems: Vec<String>) -> Result<(), deskhook::Error> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(deskhook::Error::sink_logged(problems.join("; ")))
    }
}

/// The problems of `refused` endpoints, without their names.
fn problems(refused: Vec<(Arc<str>, Refusal)>) -> Vec<String> {
    refused
        .into_iter()
        .map(|(_, refusal)| refusal.problem)
        .collect()
}

/// [`sink_result`] with the failure of a wait for the disk, which nothing logged.
fn commit_result(problems: Vec<String>, commit: Result<(), Error>) -> Result<(), deskhook::Error> {
    match commit {
        Ok(()) => sink_result(problems),
        Err(err) => {
            let mut all = problems;
            all.push(err.to_string());
            Err(deskhook::Error::sink(all.join("; ")))
        }
    }
}

impl Engine {
    // --- emit ---------------------------------------------------------------------------

    /// The endpoints `emitted` goes to, and its data; dead-letters it for all of them when
    /// its body is over `max_payload`. What was handed to the router before is routed first,
    /// so that an event routed now does not overtake an earlier one of its ticket; not for
    /// an event over `max_payload`, which is queued nowhere: the caller's thread would route
    /// the router's whole backlog (while endpoints are down, tens of thousands of events)
    /// only to dead-letter it.
    fn targets(
        &self,
        emitted: &deskhook::sink::Emitted<'_>,
    ) -> Result<Option<Targets>, Vec<(Arc<str>, Refusal)>> {
        if emitted.body().len() <= self.config.max_payload {
            self.route_all();
        }
        let lanes = self.registry.route(emitted.tenant(), emitted.event_type());
        if lanes.is_empty() {
            self.count_unrouted(emitted.event_type());
            return Ok(None);
        }
        let event = EventData::of(emitted);
        let templated = lanes.iter().filter(|lane| lane.templated()).count();
        if templated > 0 {
            // Read while the typed event is at hand: a Zenlix event needs no parse.
            let parsed = crate::template::Parsed::of_emitted(emitted, templated > 1);
            let _ = event
                .parsed
                .set(parsed.map(|p| std::sync::Arc::new(p.charged_to(&self.budget))));
        }
        #[cfg(feature = "metrics")]
        crate::delivery::telemetry::accepted(event.event_type);
        // A spool keeps what it cannot load into the memory budget on disk, for later: an
        // event more than the whole budget would never load, and hold up every later row
        // of its endpoints for good. (The memory backlog drops such an event as it queues.)
        let never_loads = if self.backlog.durable() {
            self.beyond_budget(event.body.len())
        } else {
            None
        };
        if event.body.len() <= self.config.max_payload && never_loads.is_none() {
            return Ok(Some((event, lanes)));
        }
        let reason = never_loads.unwrap_or_else(|| {
            format!(
                "body of {} bytes exceeds the {}-byte limit (raise max_payload or send less)",
                event.body.len(),
                self.config.max_payload
            )
        });
        Err(lanes
            .iter()
            .map(|lane| {
                let kept = self.dead_letter_event(lane, &event, 0, None, &reason);
                let problem = format!("endpoint '{}': {reason}", lane.name);
                (lane.name.clone(), Refusal::dead_lettered(&problem, kept))
            })
            .collect())
    }

    /// Queues `emitted` for every endpoint it goes to: hands it to the router when it may
    /// (see [`router`](super::router)), else routes it now. With a backlog that waits for
    /// commits, it returns once the jobs are durable.
    pub(crate) fn enqueue(
        &self,
        emitted: &deskhook::sink::Emitted<'_>,
    ) -> Result<(), deskhook::Error> {
        if self.routes_later(emitted) {
            if self.hand_over(emitted) {
                return Ok(());
            }
            return self.drop_for_budget(emitted);
        }
        self.enqueue_now(emitted)
    }

    /// The memory budget cannot hold `emitted`, so each of its endpoints would refuse it:
    /// counted and logged as dropped for them here, without routing on the caller's thread
    /// everything that waits for the router (the helpdesk's thread would pay for the whole
    /// backlog at every emit while endpoints are down).
    fn drop_for_budget(
        &self,
        emitted: &deskhook::sink::Emitted<'_>,
    ) -> Result<(), deskhook::Error> {
        let endpoints = self.count_dropped_everywhere(emitted);
        if endpoints == 0 {
            return Ok(());
        }
        let event = EventData::of(emitted);
        // Logged by `budget_spent`: the dispatcher does not warn again.
        Err(deskhook::Error::sink_logged(
            self.budget_spent(&event, endpoints),
        ))
    }

    /// Counts `emitted` as dropped for each endpoint it would go to (or as unrouted when
    /// there is none); returns how many.
    fn count_dropped_everywhere(&self, emitted: &deskhook::sink::Emitted<'_>) -> usize {
        let lanes = self.registry.route(emitted.tenant(), emitted.event_type());
        if lanes.is_empty() {
            self.count_unrouted(emitted.event_type());
        }
        for lane in &lanes {
            self.count_dropped(lane, Some(emitted.event_type()), 1);
        }
        lanes.len()
    }

    /// Routes `emitted` on the caller's thread and says what happened to it: a full queue,
    /// a disabled endpoint, a spent memory budget are errors here, for a caller that answers
    /// for the event (`deskhook serve`'s 503). With a backlog that waits for commits, it
    /// returns once the jobs are durable.
    pub(crate) fn enqueue_now(
        &self,
        emitted: &deskhook::sink::Emitted<'_>,
    ) -> Result<(), deskhook::Error> {
        let (event, lanes) = match self.targets(emitted) {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(()),
            Err(letters) => return sink_result(problems(letters)),
        };
        let accepted = self.backlog.accept(self, event, lanes);
        let commit = match (accepted.wait, &accepted.receipt) {
            (true, Some(receipt)) => receipt.wait(Duration::MAX),
            _ => Ok(()),
        };
        commit_result(accepted.problems, commit)
    }

    /// [`enqueue_now`](Engine::enqueue_now), saying what each endpoint did with the event.
    pub(crate) fn route_now(&self, emitted: &deskhook::sink::Emitted<'_>) -> Routed {
        let (event, lanes) = match self.targets(emitted) {
            Ok(Some(found)) => found,
            Ok(None) => return Routed::default(),
            Err(letters) => {
                let refused = letters
                    .into_iter()
                    .map(|(name, refusal)| {
                        Refused::new(&name, refusal.problem, refusal.dead_lettered)
                    })
                    .collect();
                return Routed {
                    queued: Vec::new(),
                    refused,
                };
            }
        };
        let names: Vec<Arc<str>> = lanes.iter().map(|lane| lane.name.clone()).collect();
        let accepted = self.backlog.accept(self, event, lanes);
        let commit = match (accepted.wait, &accepted.receipt) {
            (true, Some(receipt)) => receipt.wait(Duration::MAX),
            _ => Ok(()),
        };
        let mut routed = Routed::default();
        if let Err(error) = commit {
            // Not written: dropped for every endpoint (counted and logged by the writer).
            routed.refused = names
                .iter()
                .map(|name| Refused::new(name, error.to_string(), false))
                .collect();
            return routed;
        }
        if accepted.refused.is_empty() && !accepted.problems.is_empty() {
            // The memory budget: dropped for every endpoint.
            let problem = accepted.problems.join("; ");
            routed.refused = names
                .iter()
                .map(|name| Refused::new(name, problem.clone(), false))
                .collect();
            return routed;
        }
        for name in names {
            match accepted
                .refused
                .iter()
                .find(|(refused, _)| *refused == name)
            {
                Some((_, refusal)) => routed.refused.push(Refused::new(
                    &name,
                    refusal.problem.clone(),
                    refusal.dead_lettered,
                )),
                None => routed.queued.push(name.to_string()),
            }
        }
        routed
    }

    /// [`enqueue`](Engine::enqueue) for async code: waits for room in the spool's writer
    /// and for the commit without blocking.
    pub(crate) async fn enqueue_async(
        &self,
        emitted: &deskhook::sink::Emitted<'_>,
    ) -> Result<(), deskhook::Error> {
        if self.routes_later(emitted) {
            if self.hand_over(emitted) {
                return Ok(());
            }
            return self.drop_for_budget(emitted);
        }
        let mut waiting = WaitingForRoom {
            engine: self,
            emitted,
            cancelled: true,
        };
        self.room().await;
        waiting.cancelled = false;
        let (event, lanes) = match self.targets(emitted) {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(()),
            Err(letters) => return sink_result(problems(letters)),
        };
        let accepted = self.backlog.accept(self, event, lanes);
        let commit = match (accepted.wait, accepted.receipt) {
            // Cancelled from here on, the event is in the writer's hands: written, or
            // counted as dropped by it.
            (true, Some(receipt)) => receipt.await,
            _ => Ok(()),
        };
        commit_result(accepted.problems, commit)
    }

    /// Counts `emitted` as dropped, for each endpoint it would have gone to, and logs it: an
    /// async emit cancelled while it waited for room (see [`WaitingForRoom`]).
    fn drop_cancelled(&self, emitted: &deskhook::sink::Emitted<'_>) {
        let endpoints = self.count_dropped_everywhere(emitted);
        if endpoints == 0 {
            return;
        }
        log::warn!(
            target: deskhook::LOG_TARGET,
            "event {} ({}) dropped for {} endpoint(s): the emit was cancelled (its future \
             dropped) while it waited for the spool's writer to catch up",
            emitted.id(),
            emitted.event_type(),
            endpoints
        );
    }

    /// Waits, without blocking the thread, until accepting an event would not wait for the
    /// backlog (a spool's writer far behind).
    pub(crate) async fn room(&self) {
        std::future::poll_fn(|cx| self.backlog.poll_room(cx)).await;
    }

    /// Queues `emitted` like [`enqueue`](Engine::enqueue) but never waits: the receipt says
    /// when the event is durable. Without a durable backlog, the receipt is settled at once
    /// with an error saying so (the event is queued in memory all the same).
    pub(crate) fn enqueue_with_receipt(&self, emitted: &deskhook::sink::Emitted<'_>) -> Receipt {
        let (event, lanes) = match self.targets(emitted) {
            Ok(Some(found)) => found,
            Ok(None) => return Receipt::settled(Ok(())),
            Err(letters) => {
                return Receipt::settled(Err(Error::NotQueued(problems(letters).join("; "))));
            }
        };
        let endpoints = lanes.len();
        let accepted = self.backlog.accept(self, event, lanes);
        match accepted.receipt {
            Some(receipt) if accepted.problems.is_empty() => receipt.for_endpoints(endpoints),
            Some(_) => Receipt::settled(Err(Error::NotQueued(accepted.problems.join("; ")))),
            None if accepted.problems.is_empty() => Receipt::settled(Err(Error::Config(
                "this sink has no spool, so nothing is durable (the event is queued in \
                 memory); add one with SinkBuilder::spool to get durability receipts"
                    .to_owned(),
            ))),
            None => Receipt::settled(Err(Error::NotQueued(accepted.problems.join("; ")))),
        }
    }

    /// Queues a dead letter again for its endpoint, with its id and body, attempts from 0.
    pub(crate) fn redeliver(&self, letter: &DeadLetter) -> Result<(), Error> {
        // No suggestion: a letter goes to its own endpoint or to none.
        let lane = self
            .registry
            .get(&letter.endpoint)
            .ok_or_else(|| Error::UnknownEndpoint {
                name: letter.endpoint.clone(),
                suggestion: None,
            })?;
        let (id, event_type) = crate::delivery::letters::replayable(
            &lane.route().endpoint,
            &LetterHead::of(letter),
            self.config.max_payload,
        )
        .map_err(Error::Config)?;
        // Refused here, the letter stays as it is: queued to an endpoint that cannot take
        // it, it would only be dead-lettered again, a second letter for the same event.
        if let Some(why) = lane.refusing() {
            return Err(Error::Config(format!(
                "endpoint '{}' {why}; dead letter {} is not replayed",
                letter.endpoint, letter.id
            )));
        }
        let event = EventData {
            id,
            id_text: letter.id.as_str().into(),
            event_type,
            key: letter.ticket.as_str().into(),
            body: Bytes::copy_from_slice(letter.body.get().as_bytes()),
            content_type: event_type.content_type(),
            tenant: letter.tenant.as_deref().map(Into::into),
            charge: None,
            parsed: std::sync::OnceLock::new(),
            withdrawn: None,
            past_capacity: false,
        };
        self.enqueue_for(&lane, event)
    }

    /// Queues an event a relay took from its stream for `lanes`, as an emit's event is (one
    /// event, its body shared; charged once for the body and a job per endpoint), but charged
    /// whether the memory budget has room or not: the relay's room, which reserved just that,
    /// bounds what it hands over, and the engine must not refuse what it let in. Returns the
    /// endpoints whose queue did not take it and did not give it to the dead letters either
    /// (the relay letters those itself), with why.
    #[cfg(feature = "relay")]
    pub(crate) fn enqueue_relayed(
        &self,
        lanes: super::super::Lanes,
        mut event: EventData,
    ) -> Vec<(Arc<str>, String)> {
        let bytes = event.body.len() + lanes.len() * super::super::budget::JOB_OVERHEAD;
        event.charge = Some(self.budget.charge_forced(bytes));
        let refused = self.backlog.accept(self, event, lanes).refused;
        refused
            .into_iter()
            .filter(|(_, refusal)| !refusal.lettered)
            .map(|(name, refusal)| (name, refusal.problem))
            .collect()
    }

    /// Queues `event` for `lane` only (a replayed dead letter, a test event).
    pub(crate) fn enqueue_for(&self, lane: &Arc<Lane>, event: EventData) -> Result<(), Error> {
        let job = Job::new(Arc::new(event), self.next_order());
        match self.backlog.requeue(self, lane, job) {
            Ok(Some(receipt)) => receipt.wait(Duration::MAX),
            Ok(None) => Ok(()),
            Err(problem) => Err(Error::NotQueued(problem)),
        }
    }

    // --- dead letters -------------------------------------------------------------------

    /// Dead-letters `job` of `lane` for `reason`. The caller finishes the job; but when
    /// the letter is [pending](LetterFate::Pending) and `settling` is given, the second of
    /// the caller and the letter's writer to [arrive](Settling::arrive) does.
    pub(crate) fn dead_letter(
        &self,
        lane: &Arc<Lane>,
        job: &Job,
        reason: &str,
        settling: Option<Settling>,
    ) -> LetterFate {
        let letter = DeadLetter::of_job(lane, job, reason);
        let warning = self.letter_warning(&letter);
        let owner = LetterOwner {
            lane: lane.clone(),
            job: settling,
        };
        let fate = self.write_letter(Some(owner), job.row, letter);
        warn(warning);
        fate
    }

    /// Dead-letters an event that has no job (too large to queue); false when the letter
    /// could not be kept (counted as dropped). It is outstanding until its letter is
    /// settled: a flush waits for a spool to write it (or to fail to).
    pub(crate) fn dead_letter_event(
        &self,
        lane: &Arc<Lane>,
        event: &EventData,
        attempts: u32,
        row: Option<i64>,
        reason: &str,
    ) -> bool {
        let letter = DeadLetter::of(lane, event, attempts, reason);
        let warning = self.letter_warning(&letter);
        // Outstanding, and being written, until the letter is settled.
        self.accepted(lane, 1);
        lane.letters_writing.fetch_add(1, Ordering::AcqRel);
        let settling = Settling::default();
        let owner = LetterOwner {
            lane: lane.clone(),
            job: Some(settling.clone()),
        };
        let fate = self.write_letter(Some(owner), row, letter);
        warn(warning);
        if fate != LetterFate::Pending || settling.arrive() {
            self.letter_settled(lane);
        }
        fate != LetterFate::Lost
    }

    /// A job of `lane` counted in its `letters_writing` is over: its letter is settled, and
    /// the attempt (or caller) that gave it up is done with it. Finished.
    pub(crate) fn letter_settled(&self, lane: &Lane) {
        lane.letters_writing.fetch_sub(1, Ordering::AcqRel);
        self.finished(lane, 1);
    }

    /// Dead-letters what `lane` let go at once (removed, closed, or stopping), made as they
    /// are needed: a batch of about [`BATCH_BYTES`] bytes of bodies at a time is written in
    /// one go, logged letter by letter, counted, then the hook is told of each. So
    /// memory holds one batch, not a copy of every body let go. Returns how many went to
    /// the dead letters (kept, or handed to the spool's writer): not those lost, which were
    /// logged whole and counted as dropped.
    pub(crate) fn dead_letter_all(
        &self,
        lane: &Arc<Lane>,
        letters: impl Iterator<Item = (Option<i64>, DeadLetter)>,
    ) -> usize {
        let mut batch: Vec<(Option<i64>, DeadLetter)> = Vec::new();
        let mut not_lost = 0;
        let mut bytes = 0;
        let mut letters = letters.peekable();
        while let Some((row, letter)) = letters.next() {
            bytes += letter.body.get().len();
            batch.push((row, letter));
            if bytes < BATCH_BYTES && letters.peek().is_some() {
                continue;
            }
            // Their jobs are the caller's to finish.
            let fates = self.backlog.dead_all(lane, &batch);
            for (_, letter) in &batch {
                warn(self.letter_warning(letter));
            }
            // The kept at once (a removal may let go of thousands); the rare lost one by one,
            // each under its event type.
            let in_file = fates.iter().filter(|f| **f == LetterFate::Kept).count();
            if in_file > 0 {
                self.count_dead_lettered(lane, in_file as u64);
            }
            let lost = |(_, fate): &(_, &LetterFate)| **fate == LetterFate::Lost;
            for ((_, letter), _) in batch.iter().zip(&fates).filter(lost) {
                self.count_dropped(lane, EventType::from_wire(&letter.action), 1);
            }
            not_lost += fates.iter().filter(|f| **f != LetterFate::Lost).count();
            if let Some(hook) = &self.hooks.dead_letter {
                for ((_, letter), fate) in batch.iter().zip(fates) {
                    hook(letter, fate != LetterFate::Lost);
                }
            }
            batch.clear();
            bytes = 0;
        }
        not_lost
    }

    /// Counts a letter of `lane` (of `event_type`): dead-lettered when it is `kept`, else
    /// dropped (the backlog logged it whole at error level).
    pub(crate) fn count_letter(&self, lane: &Lane, event_type: Option<EventType>, kept: bool) {
        if kept {
            self.count_dead_lettered(lane, 1);
        } else {
            self.count_dropped(lane, event_type, 1);
        }
    }

    /// The warning for a dead letter (`None` when warnings are off), made before the letter
    /// is handed over and logged after: a `log` logger that panics (one writing to a closed
    /// pipe) then costs no letter.
    fn letter_warning(&self, letter: &DeadLetter) -> Option<String> {
        log::log_enabled!(target: deskhook::LOG_TARGET, log::Level::Warn).then(|| {
            format!(
                "event {} ({} on ticket {}) for endpoint '{}' dead-lettered to {}: {}",
                letter.id,
                letter.action,
                crate::delivery::shown(&letter.ticket),
                letter.endpoint,
                self.backlog.dead_letter_place(),
                letter.reason
            )
        })
    }

    /// Writes a dead letter (moving row `row` of the store, if it has one), counts it for
    /// its owner's lane (dead-lettered, or dropped when it could not be kept), then tells
    /// the hook: a relay acknowledges the event's message once it has its letter (the memory
    /// backlog writes it at once; relays have no spool), which it also publishes to its own
    /// stream. A [pending](LetterFate::Pending) letter is counted by its writer.
    pub(crate) fn write_letter(
        &self,
        owner: Option<LetterOwner>,
        row: Option<i64>,
        letter: DeadLetter,
    ) -> LetterFate {
        let event_type = EventType::from_wire(&letter.action);
        let hooked = (self.hooks.dead_letter.as_ref()).map(|hook| (hook, letter.clone()));
        let lane = owner.as_ref().map(|owner| owner.lane.clone());
        let fate = self.backlog.dead(owner, row, letter);
        if let Some(lane) = lane
            && fate != LetterFate::Pending
        {
            self.count_letter(&lane, event_type, fate == LetterFate::Kept);
        }
        if let Some((hook, letter)) = hooked {
            hook(&letter, fate != LetterFate::Lost);
        }
        fate
    }
}

/// An async emit waiting for room in the spool's writer, before the engine has its event:
/// if its future is dropped there (a client gone, a timeout around the emit), the event is
/// counted and logged as dropped rather than lost without a word (the dispatcher counts
/// only the sinks after the one it was waiting on).
struct WaitingForRoom<'e, 'a> {
    engine: &'e Engine,
    emitted: &'e deskhook::sink::Emitted<'a>,
    cancelled: bool,
}

impl Drop for WaitingForRoom<'_, '_> {
    fn drop(&mut self) {
        if self.cancelled {
            self.engine.drop_cancelled(self.emitted);
        }
    }
}

/// Logs `warning` (see [`Engine::letter_warning`]). A logger that panics is let be: this is
/// called where an attempt is settled, some of it under its lane's lock.
fn warn(warning: Option<String>) {
    if let Some(warning) = warning {
        crate::delivery::logged(|| log::warn!(target: deskhook::LOG_TARGET, "{warning}"));
    }
}
