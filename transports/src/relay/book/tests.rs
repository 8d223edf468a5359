use super::*;

#[test]
fn room_taken_beyond_the_whole_is_paid_back_before_anyone_gets_it() {
    // 4 KiB of bodies, 2 events.
    let (book, _done) = Book::new(1, 4 * 1024, 2);
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
    let (book, _done) = Book::new(1, 4 * 1024, 3);
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
