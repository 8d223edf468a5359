use super::recent::RECENT;
use super::*;

#[test]
fn room_taken_beyond_the_whole_is_paid_back_before_anyone_gets_it() {
    // 4 KiB of bodies, 2 events.
    let (book, _done) = Book::new(1, 4 * 1024, 2, Duration::ZERO);
    assert_eq!(book.capacity(), (4, 2));
    assert_eq!(book.kib_of(10 * 1024), 4, "at most the whole budget");
    assert_eq!(book.kib_of(0), 1);
    pollster::block_on(book.reserve(1));
    pollster::block_on(book.reserve(1));
    // A third event of the same message would wait for ever: taken beyond, and owed.
    book.reserve_beyond(3);
    assert_eq!(book.slots.available_permits(), 0);
    // What comes back pays the debt first.
    book.give_back(1);
    assert_eq!(book.slots.available_permits(), 0);
    assert_eq!(book.budget.available_permits(), 2);
    book.give_back(3);
    assert_eq!(book.slots.available_permits(), 1);
    assert_eq!(book.budget.available_permits(), 3);
    book.give_back(1);
    assert_eq!(
        (
            book.budget.available_permits(),
            book.slots.available_permits()
        ),
        (4, 2),
        "the room is whole again, no larger"
    );
}

#[test]
fn a_message_past_the_budget_alone_owes_kib_and_takes_places_as_others_do() {
    // 4 KiB of bodies, 3 events.
    let (book, _done) = Book::new(1, 4 * 1024, 3, Duration::ZERO);
    pollster::block_on(book.reserve(3));
    // The next event of the same message does not fit the budget, but has a place.
    pollster::block_on(book.reserve_slot_beyond_budget(4));
    assert_eq!(
        (
            book.budget.available_permits(),
            book.slots.available_permits()
        ),
        (1, 1),
        "a place taken, the KiB owed"
    );
    // The KiB come back to the debt first; the place comes back to the room.
    book.give_back(4);
    assert_eq!(
        (
            book.budget.available_permits(),
            book.slots.available_permits()
        ),
        (1, 2)
    );
    book.give_back(3);
    assert_eq!(
        (
            book.budget.available_permits(),
            book.slots.available_permits()
        ),
        (4, 3),
        "the room is whole again, no larger"
    );
}

#[test]
fn a_parked_message_whose_tenure_ended_as_its_entries_were_written_does_not_stay_outstanding() {
    let (book, _done) = Book::new(1, 4 * 1024, 2, Duration::ZERO);
    let withdrawn = Arc::new(crate::delivery::Withdrawal::new(None));
    // A message of one event taken under tenure (0, 1), counted as `carry` counts it.
    book.outstanding[0].fetch_add(1, Ordering::AcqRel);
    let carrier = Carrier::new(None, (0, 1), 7, 1, &withdrawn);
    // While its entries are written: its event finishes, and the tenure ends, whose end
    // finds nothing of it to leave.
    book.pass(&carrier, &Arc::from("event"));
    assert_eq!(book.abandon(Some((0, 1))), 0);
    withdrawn.store(true, Ordering::Release);
    // The write ends: `park` keeps its keys and leaves it to the next owner.
    *lock(&carrier.parked) = vec!["0.1.7.0".to_owned()];
    assert_eq!(book.outstanding(0), 1);
    // Done: its entries go, and it is no longer outstanding (it stayed at 1 before, and a
    // hand-back of the partition waited for it for ever).
    assert_eq!(book.parked_done(&carrier), ["0.1.7.0"]);
    assert_eq!(book.outstanding(0), 0);
    // Once: a carrier parked and acknowledged was settled then.
    book.parked_done(&carrier);
    assert_eq!(book.outstanding(0), 0);
}

/// A message whose tenure ended as its entries were written: they stay for `done` to remove
/// only when its events have all finished; still to finish, or let go by the tenure's end
/// (no `done` comes then), they are removed at once (left, an owner after the next would
/// deliver them again, late).
#[test]
fn entries_written_as_the_tenure_ended_stay_only_for_a_message_whose_events_finished() {
    use super::park::finishing;
    let (book, _done) = Book::new(1, 4 * 1024, 2, Duration::ZERO);
    let withdrawn = Arc::new(crate::delivery::Withdrawal::new(None));
    let carry = |events| {
        book.outstanding[0].fetch_add(1, Ordering::AcqRel);
        Carrier::new(None, (0, 1), 7, events, &withdrawn)
    };
    let unfinished = carry(2);
    book.pass(&unfinished, &Arc::from("one of two"));
    assert!(!finishing(&unfinished), "one event still to finish");
    let finished = carry(1);
    book.pass(&finished, &Arc::from("its only event"));
    assert!(finishing(&finished), "`done` comes for it");
    let let_go = carry(1);
    book.let_go(&let_go, 0);
    assert!(!finishing(&let_go), "let go by the tenure's end: no `done`");
}

/// A relay that stops rewrites its parked entries with the endpoints still to take their
/// events. Should its lease be lost while it writes (the tenure's end withdraws the carrier
/// and leaves it, `left` at 0), the next owner reads the old entries: they stay, and only
/// the new ones go. A message whose last event finished meanwhile loses both.
#[test]
fn a_rewrite_during_a_stop_keeps_the_old_entries_of_a_message_whose_lease_was_lost() {
    use super::park::rewritten_to_remove;
    let (book, _done) = Book::new(1, 4 * 1024, 2, Duration::ZERO);
    let keys = |part: u32| vec![format!("0.7.1.{part}")];
    let carry = |withdrawn: &Arc<crate::delivery::Withdrawal>| {
        book.outstanding[0].fetch_add(1, Ordering::AcqRel);
        Carrier::new(None, (0, 1), 7, 2, withdrawn)
    };

    let lost = Arc::new(crate::delivery::Withdrawal::new(None));
    let abandoned = carry(&lost);
    book.pass(&abandoned, &Arc::from("one of two"));
    lost.store(true, Ordering::Release);
    book.let_go(&abandoned, 0);
    assert_eq!(
        rewritten_to_remove(true, &abandoned, keys(0), keys(1)),
        keys(1)
    );

    let held = Arc::new(crate::delivery::Withdrawal::new(None));
    let finished = carry(&held);
    book.pass(&finished, &Arc::from("one of two"));
    book.pass(&finished, &Arc::from("two of two"));
    assert_eq!(
        rewritten_to_remove(true, &finished, keys(0), keys(1)),
        [keys(0), keys(1)].concat()
    );
    // Finished, then its lease lost: its events need no one, all go.
    let lost_after = Arc::new(crate::delivery::Withdrawal::new(None));
    let finished_then_lost = carry(&lost_after);
    book.pass(&finished_then_lost, &Arc::from("one of two"));
    book.pass(&finished_then_lost, &Arc::from("two of two"));
    lost_after.store(true, Ordering::Release);
    book.let_go(&finished_then_lost, 0);
    assert_eq!(
        rewritten_to_remove(true, &finished_then_lost, keys(0), keys(1)),
        [keys(0), keys(1)].concat()
    );
    let going_on = carry(&held);
    book.pass(&going_on, &Arc::from("one of two"));
    assert_eq!(
        rewritten_to_remove(true, &going_on, keys(0), keys(1)),
        keys(0)
    );
    // A hand-back's carriers are withdrawn as it rewrites them (it runs only while the
    // lease is held): the old entries go.
    let handed = Arc::new(crate::delivery::Withdrawal::new(None));
    handed.store(true, Ordering::Release);
    let handing = carry(&handed);
    assert_eq!(
        rewritten_to_remove(false, &handing, keys(0), keys(1)),
        keys(0)
    );
}

/// Entries tried and left to be removed are never written again under the same key (its
/// removal would take the new entry): a carrier's next parts come after its own and after
/// those of its message and tenure in the list to remove, whoever left them.
#[test]
fn parts_left_to_remove_are_not_written_again() {
    use super::park::first_part;
    let (book, _done) = Book::new(1, 4 * 1024, 2, Duration::ZERO);
    let withdrawn = Arc::new(crate::delivery::Withdrawal::new(None));
    let carrier = Carrier::new(None, (0, 1), 7, 1, &withdrawn);
    assert_eq!(first_part(&book, &carrier), 0);
    carrier.parts_taken(&["0.7.1.0".to_owned(), "0.7.1.1".to_owned()]);
    assert_eq!(first_part(&book, &carrier), 2);
    // Another carrier's of the same message and tenure; others' do not count.
    lock(&book.unremoved)
        .extend(["0.7.1.4", "0.8.1.9", "0.7.2.9", "1.7.1.9", "0.17.1.9"].map(str::to_owned));
    assert_eq!(first_part(&book, &carrier), 5);
}

#[test]
fn the_events_of_an_unconfirmed_acknowledgement_are_remembered_past_the_recent_ones() {
    let (book, _done) = Book::new(1, 1024 * 1024, 16, Duration::ZERO);
    let id = |n: usize| -> Arc<str> { format!("evt_{n}").into() };
    let withdrawn = Arc::new(crate::delivery::Withdrawal::new(None));
    let carrier = Carrier::new(None, (0, 1), 7, 2, &withdrawn);
    lock(&carrier.done).extend([id(0), id(1)]);
    book.pin(&carrier);
    book.remember(&id(2));
    // As many acknowledged after them as the relay remembers: the acknowledged one is
    // forgotten, the pinned ones are not.
    for n in 3..3 + RECENT {
        book.remember(&id(n));
    }
    assert!(book.knows("evt_0") && book.knows("evt_1"));
    assert!(!book.knows("evt_2"));
    assert!(book.knows(&format!("evt_{}", 2 + RECENT)));
    // Events of a pinned message that finish later (a parked one's) are pinned too.
    book.pass(&carrier, &id(9_999_999));
    for n in 3 + RECENT..3 + 2 * RECENT {
        book.remember(&id(n));
    }
    assert!(book.knows("evt_9999999"));
    // Pinned ones are forgotten in turn, as many pinned after them.
    let later = Carrier::new(None, (0, 1), 8, RECENT, &withdrawn);
    lock(&later.done).extend((3 + RECENT..3 + 2 * RECENT).map(id));
    book.pin(&later);
    assert!(!book.knows("evt_0") && !book.knows("evt_1"));
}

#[test]
fn an_event_acknowledged_within_twice_ack_wait_is_known_however_many_came_after() {
    let (book, _done) = Book::new(1, 1024 * 1024, 16, Duration::from_secs(30));
    let id = |n: usize| -> Arc<str> { format!("evt_{n}").into() };
    book.remember(&id(0));
    // More than RECENT acknowledged after it, within the minute: its message, handed out
    // again after a lost acknowledgement, is still known.
    for n in 1..=RECENT + 1 {
        book.remember(&id(n));
    }
    assert!(book.knows("evt_0"));
}
