//! The scheduler and the worker pool: which endpoint is served next, and by whom.
//!
//! Endpoints with work due wait in a run queue, each at most once; a worker takes the first,
//! makes one attempt of it, and puts it back at the end if it has more, so endpoints are
//! served in turn. Endpoints waiting for a retry, a breaker's cool-down or a rate-limit token
//! sit in a timer heap until then. The number of requests in flight is counted here for the
//! whole sink, with a reserve (one slot per other endpoint, at most a quarter of them but at
//! least one) kept for endpoints that have nothing in flight (see [`Pool::try_acquire`]).
//!
//! Blocking workers are threads: the pool starts one and grows by one whenever a worker
//! takes an attempt and none is left idle, up to `max_threads`; a thread idle for
//! `thread_idle_timeout` ends, but one always stays. Async workers are tasks: one
//! dispatcher per sink starts a task per attempt, and a task that finishes takes the next
//! attempt itself while there is one.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::{Lane, lock};

/// A lane to look at again at an instant.
#[derive(Debug)]
struct Timer {
    at: Instant,
    seq: u64,
    lane: Weak<Lane>,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What the run lock guards.
#[derive(Debug, Default)]
struct Run {
    ready: VecDeque<Arc<Lane>>,
    timers: BinaryHeap<Reverse<Timer>>,
    timer_seq: u64,
    /// Lanes refused a slot because the sink was at its limit, back to `ready` when one
    /// frees that they may fill (see [`Pool::unstarve`]), each with its turn: those that
    /// had requests in flight when refused (they may fill all but the reserve), and those
    /// that had none (they may fill every slot).
    starved: VecDeque<(u64, Arc<Lane>)>,
    starved_idle: VecDeque<(u64, Arc<Lane>)>,
    /// The turn of the next lane refused a slot.
    starved_seq: u64,
    stopping: bool,
    /// Events wait for the router (see [`Pool::push_routing`]).
    routing: bool,
    /// The last pop was for routing: a lane in the run queue goes before the next batch.
    routed_last: bool,
    /// Blocking workers waiting for work, and alive.
    idle: usize,
    alive: usize,
}

impl Run {
    /// Moves the lanes whose timers are due into the ready queue. Reads the clock only when
    /// a timer is set (a read costs about 30 ns on a VM, and this runs for every lane taken).
    fn fire_timers(&mut self) {
        if self.timers.is_empty() {
            return;
        }
        let now = Instant::now();
        while let Some(Reverse(timer)) = self.timers.peek() {
            if timer.at > now {
                break;
            }
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            if let Some(lane) = timer.lane.upgrade()
                && !lane.notified.swap(true, Ordering::AcqRel)
            {
                self.ready.push_back(lane);
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(timer)| timer.at)
    }
}

/// What [`Pool::pop`] found.
#[derive(Debug)]
pub(crate) enum Popped {
    /// A lane to look at.
    Lane(Arc<Lane>),
    /// Events to route to their endpoints' queues.
    Routing,
    /// Nothing now; look again at the instant (or when woken).
    Wait(Option<Instant>),
    /// The sink stops.
    Stop,
}

/// What a blocking worker's wait ended with.
#[cfg_attr(not(feature = "http-blocking"), allow(dead_code))]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Woke {
    /// Look for work.
    Work,
    /// Idle long enough while another thread is idle: end this one.
    Exit,
    /// The sink stops.
    Stop,
}

/// Starts one more blocking worker thread.
pub(crate) type Spawner = Box<dyn Fn() -> std::io::Result<()> + Send + Sync>;

/// The run queue, the timers and the workers of one sink.
#[cfg_attr(not(feature = "http-blocking"), allow(dead_code))]
pub(crate) struct Pool {
    run: Mutex<Run>,
    /// Blocking workers wait here.
    work: Condvar,
    /// The async dispatcher waits here.
    #[cfg(feature = "_async")]
    pub(crate) notify: tokio::sync::Notify,
    in_flight: AtomicUsize,
    /// Requests in flight at most (set when the transport starts).
    limit: AtomicUsize,
    /// Endpoints registered (kept by the registry), which sizes the slots kept back for
    /// endpoints with nothing in flight.
    endpoints: AtomicUsize,
    max_threads: usize,
    idle_timeout: Duration,
    spawn: OnceLock<Spawner>,
    /// Most worker threads alive at once.
    threads_peak: AtomicUsize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("in_flight", &self.in_flight)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of at most `limit` requests in flight and `max_threads` blocking workers.
    pub(crate) fn new(limit: usize, max_threads: usize, idle_timeout: Duration) -> Pool {
        Pool {
            run: Mutex::new(Run::default()),
            work: Condvar::new(),
            #[cfg(feature = "_async")]
            notify: tokio::sync::Notify::new(),
            in_flight: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit.max(1)),
            endpoints: AtomicUsize::new(0),
            max_threads: max_threads.max(1),
            idle_timeout,
            spawn: OnceLock::new(),
            threads_peak: AtomicUsize::new(0),
        }
    }

    /// Wakes whoever takes work: an idle thread, or the async dispatcher. Not while every
    /// slot is taken: a woken worker could only find no slot; the worker that frees one looks
    /// at the run queue itself before it waits (so `emit`, whose event then waits for a
    /// slot anyway, pays no wake-up).
    fn wake(&self, idle_threads: bool) {
        if self.in_flight.load(Ordering::Acquire) >= self.limit.load(Ordering::Acquire) {
            return;
        }
        if idle_threads {
            self.work.notify_one();
        }
        #[cfg(feature = "_async")]
        self.notify.notify_one();
    }

    /// Puts `lane` in the run queue unless it is there already or held (paused, disabled,
    /// closing: its resume puts it back). Costs an atomic load and swap when it is, a lock
    /// and perhaps a wake-up when it is not.
    pub(crate) fn push(&self, lane: &Arc<Lane>) {
        if let Some(idle) = self.enqueue(lane) {
            self.wake(idle);
        }
    }

    /// Tells the workers that events wait to be routed: the next one to look for work routes
    /// a batch (a batch and a lane of the run queue take turns; see [`Pool::pop`]).
    pub(crate) fn push_routing(&self) {
        let idle = {
            let mut run = lock(&self.run);
            run.routing = true;
            run.idle > 0
        };
        self.wake(idle);
    }

    /// [`push_routing`](Pool::push_routing) by a worker that looks at the run queue next:
    /// nobody else is woken for it.
    pub(crate) fn requeue_routing(&self) {
        lock(&self.run).routing = true;
    }

    /// [`push`](Pool::push) by a worker that looks at the run queue next (after settling an
    /// attempt): nobody else is woken for it.
    pub(crate) fn requeue(&self, lane: &Arc<Lane>) {
        self.enqueue(lane);
    }

    /// Puts `lane` in the run queue if it is not there and not held; whether a thread idles.
    fn enqueue(&self, lane: &Arc<Lane>) -> Option<bool> {
        if lane.held.load(Ordering::Acquire) || lane.notified.swap(true, Ordering::AcqRel) {
            return None;
        }
        let mut run = lock(&self.run);
        run.ready.push_back(lane.clone());
        Some(run.idle > 0)
    }

    /// Looks at `lane` again at `at`.
    pub(crate) fn timer(&self, lane: &Arc<Lane>, at: Instant) {
        let idle = {
            let mut run = lock(&self.run);
            let earliest = run.next_timer().is_none_or(|next| at < next);
            run.timer_seq += 1;
            let seq = run.timer_seq;
            run.timers.push(Reverse(Timer {
                at,
                seq,
                lane: Arc::downgrade(lane),
            }));
            // Someone waiting for a later instant must wait less.
            earliest.then_some(run.idle > 0)
        };
        if let Some(idle) = idle {
            self.wake(idle);
        }
    }

    /// `lane`, with `lane_in_flight` requests in flight, had work but no slot: it goes back
    /// to the run queue when one frees.
    pub(crate) fn starve(&self, lane: &Arc<Lane>, lane_in_flight: usize) {
        // Once in each queue: a lane refused again while it waits keeps its place (were it
        // queued at each refusal, a freed slot would go to one of its copies rather than
        // the next lane). One refused with requests in flight, then again with none (they
        // ended, and another lane took the slot before its look), waits among those with
        // none too: among the others alone, it could not take a slot of the reserve, and
        // would wait for in-flight to fall below the reserve while a slot is free.
        let idle = lane_in_flight == 0;
        let waits = match idle {
            true => &lane.starved_idle,
            false => &lane.starved,
        };
        if !waits.swap(true, Ordering::AcqRel) {
            let mut run = lock(&self.run);
            run.starved_seq += 1;
            let turn = (run.starved_seq, lane.clone());
            match idle {
                true => run.starved_idle.push_back(turn),
                false => run.starved.push_back(turn),
            }
        }
        // A slot may have freed between the refusal and now; `unstarve` hands it only to a
        // lane that may fill it (one sent back while it would be refused again would keep
        // a worker spinning).
        if self.in_flight.load(Ordering::Acquire) < self.cap(lane_in_flight) {
            self.unstarve(true);
        }
    }

    /// The slots a lane with `lane_in_flight` requests in flight may fill: all of them for
    /// a lane with none; otherwise all but the reserve, one slot per other endpoint and at
    /// most a quarter of them, but at least one (a sink with one endpoint keeps nothing
    /// back; one with a single slot cannot).
    fn cap(&self, lane_in_flight: usize) -> usize {
        let limit = self.limit.load(Ordering::Acquire);
        if lane_in_flight == 0 {
            return limit.max(1);
        }
        let others = self.endpoints.load(Ordering::Acquire).saturating_sub(1);
        // With 2 or 3 slots a quarter is none: a hanging endpoint would take them all.
        (limit - others.min((limit / 4).max(1))).max(1)
    }

    /// How many endpoints the registry holds.
    pub(crate) fn endpoints(&self) -> usize {
        self.endpoints.load(Ordering::Acquire)
    }

    /// The registry holds `count` endpoints now.
    pub(crate) fn set_endpoints(&self, count: usize) {
        self.endpoints.store(count, Ordering::Release);
    }

    /// A slot freed: the lane that waited longest for one goes back to the run queue (one
    /// per slot: sending them all back would have every freed slot look at every waiting
    /// lane). `wake` when no worker looks at the run queue next.
    ///
    /// The lane is marked as handed the slot: if its look does not take it (the lane was
    /// paused, disabled by a 410 or removed meanwhile, or waits for a `Retry-After`, its
    /// breaker or its rate limit), the look (the engine's `take`) hands it to the next lane
    /// waiting. Without that, the others would wait for a slot that is free until some
    /// other request ended: for good, with nothing else in flight.
    ///
    /// Only to a lane that may fill the slot now: with all but the reserve taken, a lane
    /// that had requests in flight when refused may not (see [`cap`](Pool::cap)), and the
    /// slot goes to the longest waiting of those that had none, if any waits. Without that,
    /// a healthy endpoint waiting behind a loaded one would wait for a slot that is free
    /// until another request ended.
    ///
    /// A lane waits in each queue once at most (see [`starve`](Pool::starve)). One already
    /// in the run queue (handed a slot from the other queue, or queued for its work) looks
    /// anyway: it is let out of this queue, and the slot goes to the next lane waiting, not
    /// merged with the one it looks for.
    pub(crate) fn unstarve(&self, wake: bool) {
        let idle = {
            let mut run = lock(&self.run);
            let in_flight = self.in_flight.load(Ordering::Acquire);
            loop {
                let busy = run
                    .starved
                    .front()
                    .filter(|_| in_flight < self.cap(1))
                    .map(|(turn, _)| *turn);
                let unloaded = run
                    .starved_idle
                    .front()
                    .filter(|_| in_flight < self.cap(0))
                    .map(|(turn, _)| *turn);
                let idle_queue = match (busy, unloaded) {
                    (Some(busy), Some(unloaded)) => unloaded < busy,
                    (Some(_), None) => false,
                    (None, Some(_)) => true,
                    (None, None) => return,
                };
                let popped = match idle_queue {
                    true => run.starved_idle.pop_front(),
                    false => run.starved.pop_front(),
                };
                let Some((_, lane)) = popped else {
                    return;
                };
                match idle_queue {
                    true => lane.starved_idle.store(false, Ordering::Release),
                    false => lane.starved.store(false, Ordering::Release),
                }
                if lane.notified.swap(true, Ordering::AcqRel) {
                    continue;
                }
                lane.handed.store(true, Ordering::Release);
                run.ready.push_back(lane);
                break run.idle > 0;
            }
        };
        if wake {
            self.wake(idle);
        }
    }

    /// Whether every slot is taken: then no lane can go, and none is looked at (the worker
    /// that frees a slot looks at the run queue itself).
    pub(crate) fn saturated(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) >= self.limit.load(Ordering::Acquire)
    }

    /// The next lane to look at, without waiting. When more is left (lanes in the run
    /// queue, or routing), another worker is woken for it: the one popping may go off with
    /// an attempt, and a lane or a batch left for it would wait until that attempt ends
    /// (or an idle thread's timeout), since whoever queued it woke nobody (see
    /// [`requeue`](Pool::requeue)).
    pub(crate) fn pop(&self) -> Popped {
        let mut run = lock(&self.run);
        if run.stopping {
            return Popped::Stop;
        }
        // Routing and the lanes in turn, so that neither a flood of emits nor a long run
        // queue holds up the other.
        let popped = if run.routing && (!run.routed_last || run.ready.is_empty()) {
            run.routing = false;
            run.routed_last = true;
            Popped::Routing
        } else {
            run.routed_last = false;
            run.fire_timers();
            match run.ready.pop_front() {
                Some(lane) => {
                    lane.notified.store(false, Ordering::Release);
                    Popped::Lane(lane)
                }
                None => return Popped::Wait(run.next_timer()),
            }
        };
        let more = (!run.ready.is_empty() || run.routing).then_some(run.idle > 0);
        drop(run);
        if let Some(idle) = more {
            self.wake(idle);
        }
        popped
    }

    /// Wakes a worker whatever the slots: an attempt settled where no worker looks at the
    /// run queue next (dropped by a panic: its task, or the thread that prepared it, ends).
    pub(crate) fn nudge(&self) {
        self.work.notify_one();
        #[cfg(feature = "_async")]
        self.notify.notify_one();
    }

    /// Takes a slot for a request of a lane that has `lane_in_flight` requests in flight: a
    /// lane with none may take any slot; one with some only while a reserve stays free (one
    /// slot per other endpoint, at most a quarter of the slots), so that endpoints whose
    /// requests hang cannot take every slot from the others.
    pub(crate) fn try_acquire(&self, lane_in_flight: usize) -> bool {
        let cap = self.cap(lane_in_flight);
        let mut now = self.in_flight.load(Ordering::Relaxed);
        loop {
            if now >= cap {
                return false;
            }
            match self.in_flight.compare_exchange_weak(
                now,
                now + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => now = seen,
            }
        }
    }

    /// A request ended: its slot frees. Called by the worker that ended it, which looks at
    /// the run queue next: a lane that waited for a slot goes there, waking nobody (spare
    /// threads sleep while every slot is taken: see `wait`).
    pub(crate) fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.unstarve(false);
    }

    /// Requests in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Sets the limit of requests in flight (when the transport starts).
    #[cfg_attr(not(feature = "http-blocking"), allow(dead_code))]
    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.store(limit.max(1), Ordering::Release);
    }

    /// Stops every worker: they see [`Popped::Stop`] at their next look.
    pub(crate) fn stop(&self) {
        {
            let mut run = lock(&self.run);
            run.stopping = true;
            run.routing = false;
            run.ready.clear();
            run.timers.clear();
            run.starved.clear();
            run.starved_idle.clear();
        }
        self.work.notify_all();
        #[cfg(feature = "_async")]
        self.notify.notify_waiters();
    }

    // --- blocking workers ---------------------------------------------------------------

    /// Sets how new worker threads are started, and starts the first.
    #[cfg_attr(not(feature = "http-blocking"), allow(dead_code))]
    pub(crate) fn start_threads(&self, spawn: Spawner) -> std::io::Result<()> {
        let spawn = self.spawn.get_or_init(|| spawn);
        {
            let mut run = lock(&self.run);
            run.alive += 1;
            self.threads_peak.fetch_max(run.alive, Ordering::Relaxed);
        }
        spawn().inspect_err(|_| lock(&self.run).alive -= 1)
    }

    /// A worker thread waits for work, until `until` at most. A thread told to end calls
    /// [`exited`](Pool::exited) as it goes.
    #[cfg_attr(not(feature = "http-blocking"), allow(dead_code))]
    pub(crate) fn wait(&self, until: Option<Instant>) -> Woke {
        let mut run = lock(&self.run);
        let started = Instant::now();
        // Whether the last wait was ended by a wake-up rather than its timeout.
        let mut woken = false;
        loop {
            if run.stopping {
                return Woke::Stop;
            }
            let now = Instant::now();
            // With every slot taken there is nothing to take: the worker that frees one
            // looks at the run queue itself. (Returning here would spin.)
            let workable = !self.saturated()
                && (!run.ready.is_empty()
                    || run.routing
                    || run.next_timer().is_some_and(|at| at <= now));
            if workable || until.is_some_and(|at| at <= now) {
                return Woke::Work;
            }
            let idle_left = self
                .idle_timeout
                .saturating_sub(now.saturating_duration_since(started));
            if idle_left.is_zero() && run.idle > 0 && !woken {
                // Another thread is idle: this one ends. Not when it was woken: the wake-up
                // was for work (a new earliest timer), and the other thread sleeps on with
                // an older wait; it ends at its own timeout instead.
                return Woke::Exit;
            }
            // The last idle thread stays: it wakes for work, not to look at the clock.
            let mut wait = if idle_left.is_zero() {
                self.idle_timeout.max(Duration::from_secs(1))
            } else {
                idle_left
            };
            // A timer due while every slot is taken waits for the worker that frees one
            // (only `pop` fires timers): waking for it would spin.
            let timer = if self.saturated() {
                None
            } else {
                run.next_timer()
            };
            for at in [until, timer].into_iter().flatten() {
                wait = wait.min(at.saturating_duration_since(now));
            }
            run.idle += 1;
            let timed_out;
            (run, timed_out) = self
                .work
                .wait_timeout(run, wait)
                .map(|(run, result)| (run, result.timed_out()))
                .unwrap_or_else(|p| {
                    let (run, result) = p.into_inner();
                    (run, result.timed_out())
                });
            woken = !timed_out;
            run.idle -= 1;
        }
    }

    /// A worker thread ends because the pool stops.
    #[cfg_attr(not(feature = "http-blocking"), allow(dead_code))]
    pub(crate) fn exited(&self) {
        let mut run = lock(&self.run);
        run.alive = run.alive.saturating_sub(1);
    }

    /// A worker thread took an attempt: if none is left idle, one more is started, so that
    /// new work always finds a thread (up to `max_threads`).
    #[cfg_attr(not(feature = "http-blocking"), allow(dead_code))]
    pub(crate) fn busy(&self) {
        let grow = {
            let mut run = lock(&self.run);
            // One thread more than the slots at most: another could take nothing.
            let most = self
                .max_threads
                .min(self.limit.load(Ordering::Acquire).saturating_add(1));
            let grow = run.idle == 0 && run.alive < most && !run.stopping;
            if grow {
                run.alive += 1;
                self.threads_peak.fetch_max(run.alive, Ordering::Relaxed);
            }
            grow
        };
        if grow
            && let Some(spawn) = self.spawn.get()
            && let Err(e) = spawn()
        {
            lock(&self.run).alive -= 1;
            log::error!(
                target: deskhook::LOG_TARGET,
                "cannot start another delivery thread ({e}); the running ones go on"
            );
        }
    }

    /// Worker threads alive now, and the most alive at once.
    pub(crate) fn threads(&self) -> (usize, usize) {
        (
            lock(&self.run).alive,
            self.threads_peak.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
