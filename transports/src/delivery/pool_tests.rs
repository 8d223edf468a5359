//! The pool's tests: its reserve, the lanes waiting for a slot, its threads and timers.

use super::*;

/// The names of the lanes in the run queue, in order.
fn ready(pool: &Pool) -> Vec<String> {
    lock(&pool.run)
        .ready
        .iter()
        .map(|lane| lane.name.to_string())
        .collect()
}

#[test]
fn a_lane_with_requests_in_flight_leaves_a_quarter_of_the_slots() {
    let pool = Pool::new(8, 8, Duration::from_secs(1));
    pool.set_endpoints(100);
    // Lanes with something in flight stop at 6 of 8.
    for _ in 0..6 {
        assert!(pool.try_acquire(1));
    }
    assert!(!pool.try_acquire(1));
    // A lane with nothing in flight takes the rest.
    assert!(pool.try_acquire(0));
    assert!(pool.try_acquire(0));
    assert!(!pool.try_acquire(0));
    pool.release();
    assert!(pool.try_acquire(0));
    assert_eq!(pool.in_flight(), 8);
    // With 2 endpoints, one slot is kept back for the other; with 1, none.
    let pool = Pool::new(8, 8, Duration::from_secs(1));
    pool.set_endpoints(2);
    for _ in 0..7 {
        assert!(pool.try_acquire(1));
    }
    assert!(!pool.try_acquire(1));
    assert!(pool.try_acquire(0));
    let alone = Pool::new(8, 8, Duration::from_secs(1));
    alone.set_endpoints(1);
    for _ in 0..8 {
        assert!(alone.try_acquire(1));
    }
    assert!(!alone.try_acquire(1));
    // With 3 slots (or 2) as with 8: one is kept back for another endpoint.
    let three = Pool::new(3, 3, Duration::from_secs(1));
    three.set_endpoints(2);
    assert!(three.try_acquire(0));
    assert!(three.try_acquire(1));
    assert!(
        !three.try_acquire(2),
        "the last slot is the other endpoint's"
    );
    assert!(three.try_acquire(0));
    // A limit of 1 is one slot for anyone.
    let one = Pool::new(1, 1, Duration::from_secs(1));
    assert!(one.try_acquire(0));
    assert!(!one.try_acquire(0));
}

#[test]
fn a_lane_refused_again_keeps_its_one_place_among_those_waiting_for_a_slot() {
    let pool = Pool::new(8, 8, Duration::from_secs(1));
    pool.set_endpoints(3);
    for _ in 0..6 {
        assert!(pool.try_acquire(1));
    }
    let (slow, next) = (
        crate::delivery::lane::lane_for_test("slow"),
        crate::delivery::lane::lane_for_test("next"),
    );
    for _ in 0..100 {
        pool.starve(&slow, 6);
    }
    pool.starve(&next, 1);
    assert_eq!(lock(&pool.run).starved.len(), 2);
    // Two slots free: the lane that waited longest, then the next, back in the run queue.
    pool.release();
    pool.release();
    assert_eq!(ready(&pool), ["slow", "next"]);
    assert!(lock(&pool.run).starved.is_empty());
}

/// A lane refused with a request in flight, then again with none (its request ended,
/// and other lanes took the slots before the lane's look): a slot freed next is one it
/// may take, reserve or not, and it gets it.
#[test]
fn a_lane_refused_again_with_nothing_in_flight_may_take_a_slot_of_the_reserve() {
    // 8 slots, 100 endpoints: a lane with requests in flight may fill 6.
    let pool = Pool::new(8, 8, Duration::from_secs(1));
    pool.set_endpoints(100);
    let a = crate::delivery::lane::lane_for_test("a");
    for _ in 0..7 {
        assert!(pool.try_acquire(0));
    }
    // A has one of the 7 in flight; its next job is refused.
    assert!(!pool.try_acquire(1));
    pool.starve(&a, 1);
    // Its request ends (6 in flight: not one A, counted loaded, may fill); two other
    // lanes take a slot each before A's look, which is refused with none in flight.
    pool.release();
    assert!(lock(&pool.run).ready.is_empty());
    assert!(pool.try_acquire(0) && pool.try_acquire(0));
    assert!(!pool.try_acquire(0));
    pool.starve(&a, 0);
    // A slot frees (7 in flight, past the 6 of a loaded lane): it goes to A.
    pool.release();
    assert_eq!(ready(&pool), ["a"]);
}

/// A lane waits in each queue once at most, however often it is refused in turn with
/// and without requests in flight; and a slot is not handed to a lane already in the run
/// queue, but to the next one waiting.
#[test]
fn a_lane_waits_once_in_each_queue_and_a_slot_goes_to_one_not_queued_already() {
    let pool = Pool::new(8, 8, Duration::from_secs(1));
    pool.set_endpoints(100);
    let (a, b) = (
        crate::delivery::lane::lane_for_test("a"),
        crate::delivery::lane::lane_for_test("b"),
    );
    for _ in 0..7 {
        assert!(pool.try_acquire(0));
    }
    for _ in 0..50 {
        pool.starve(&a, 1);
        pool.starve(&a, 0);
        // Handed a slot from among those with none in flight; it looks, and is refused.
        pool.release();
        assert!(pool.try_acquire(0));
        lock(&pool.run).ready.clear();
        a.notified.store(false, Ordering::Release);
    }
    let run = lock(&pool.run);
    assert_eq!((run.starved.len(), run.starved_idle.len()), (1, 0));
    drop(run);
    // A is in the run queue (its own work) and waits for a slot; B waits after it: a
    // freed slot goes to B.
    assert!(pool.try_acquire(0));
    a.notified.store(true, Ordering::Release);
    lock(&pool.run).ready.push_back(a.clone());
    pool.starve(&a, 0);
    pool.starve(&b, 0);
    pool.release();
    assert_eq!(ready(&pool), ["a", "b"]);
}

#[test]
fn a_freed_slot_goes_to_a_lane_that_may_fill_it_not_to_one_kept_out_by_the_reserve() {
    // 8 slots, 4 endpoints: a lane with requests in flight may fill 6.
    let pool = Pool::new(8, 8, Duration::from_secs(1));
    pool.set_endpoints(4);
    for _ in 0..8 {
        assert!(pool.try_acquire(0));
    }
    let (loaded, healthy) = (
        crate::delivery::lane::lane_for_test("loaded"),
        crate::delivery::lane::lane_for_test("healthy"),
    );
    pool.starve(&loaded, 6);
    pool.starve(&healthy, 0);
    // 7 in flight: over what the loaded lane may fill, within what the healthy one may.
    pool.release();
    assert_eq!(ready(&pool), ["healthy"]);
    assert!(healthy.handed.load(Ordering::Acquire));
    // 6, then 5: the loaded lane's turn comes when it may fill the slot.
    pool.release();
    assert_eq!(ready(&pool), ["healthy"], "6 in flight is still its cap");
    pool.release();
    assert_eq!(ready(&pool), ["healthy", "loaded"]);
}

/// Starts a thread that waits in `pool` once and sends what it woke with, named.
fn waiter(
    pool: &Arc<Pool>,
    name: &'static str,
    woke: &std::sync::mpsc::Sender<(&'static str, Woke)>,
) -> std::thread::JoinHandle<()> {
    let (pool, woke) = (pool.clone(), woke.clone());
    std::thread::spawn(move || {
        let _ = woke.send((name, pool.wait(None)));
    })
}

/// Waits until `n` threads idle in `pool`.
fn idle(pool: &Pool, n: usize) {
    while lock(&pool.run).idle < n {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_thread_woken_for_a_timer_stays_to_take_it() {
    let pool = Arc::new(Pool::new(8, 8, Duration::from_millis(200)));
    let (tx, woke) = std::sync::mpsc::channel();
    // It idles past its timeout while no other thread does: it stays, for a second.
    let stays = waiter(&pool, "the thread that stays", &tx);
    idle(&pool, 1);
    std::thread::sleep(Duration::from_millis(250));
    let newer = waiter(&pool, "the newer thread", &tx);
    idle(&pool, 2);
    // A new earliest timer wakes one of them (the one waiting longest): the thread
    // woken for it takes it. Were it to end because the other idles, that one would
    // sleep on until its own timeout, 200 ms on, past the timer.
    pool.timer(
        &crate::delivery::lane::lane_for_test("crm"),
        Instant::now() + Duration::from_millis(10),
    );
    let (who, first) = woke.recv().expect("a thread wakes");
    assert_eq!(first, Woke::Work, "{who} woke first");
    pool.stop();
    stays.join().expect("it ends");
    newer.join().expect("it ends");
}

#[test]
fn a_worker_that_pops_a_lane_wakes_another_for_the_rest() {
    let pool = Arc::new(Pool::new(8, 8, Duration::from_secs(30)));
    let (tx, woke) = std::sync::mpsc::channel();
    let thread = waiter(&pool, "the idle thread", &tx);
    idle(&pool, 1);
    // Queued by a worker settling an attempt, which wakes nobody: it looks itself.
    let (a, b) = (
        crate::delivery::lane::lane_for_test("a"),
        crate::delivery::lane::lane_for_test("b"),
    );
    pool.requeue(&a);
    pool.requeue(&b);
    assert!(matches!(pool.pop(), Popped::Lane(lane) if lane.name == a.name));
    // The worker goes off with a's attempt; b is the idle thread's (not in 30 s).
    let woken = woke
        .recv_timeout(Duration::from_secs(10))
        .expect("the idle thread is woken for b");
    assert_eq!(woken, ("the idle thread", Woke::Work));
    assert!(matches!(pool.pop(), Popped::Lane(lane) if lane.name == b.name));
    thread.join().expect("it ends");
}
