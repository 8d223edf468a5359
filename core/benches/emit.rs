//! What `emit` costs next to serializing the same event alone.
//!
//! cargo bench -p deskhook --bench emit
//!
//! - `to_vec`: `serde_json::to_vec` of the Zenlix reference event (the floor: the body has to
//!   be serialized once whatever happens).
//! - `emit`: `deskhook::emit` through the global facade to one sink that does nothing: the
//!   serialization plus the event id, the timestamps, the dispatcher and the sink call.
//! - `emit_off`: an action switched off at run time.
//! - `emit_no_subscriber`: a dispatcher whose sink subscribes to another action.
//!
//! Then the body alone, three ways, for the events of `deskhook bench` (the ticket's text
//! padded to about 1 KiB and 10 KiB): `serde_json::to_vec`, `sonic_rs::to_vec` (what `emit`
//! used before the model wrote itself), and `Emitted::new` (the body as `emit` writes it,
//! plus the event's id and timestamp).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use deskhook::sink::{Emitted, NopSink};
use deskhook::{Action, Dispatcher, EventRef, EventTypeSet, Ticket, User, sample};

fn emit(c: &mut Criterion) {
    let event = sample::event(Action::Comment);
    let ticket = sample::ticket();
    let user = sample::user();
    deskhook::set_dispatcher(
        Dispatcher::builder()
            .sink_for(
                "nop",
                NopSink,
                EventTypeSet::all().without(Action::Delete.into()),
            )
            .build(),
    )
    .expect("the bench sets the dispatcher once");

    let mut group = c.benchmark_group("emit");
    group.bench_function("to_vec", |b| {
        b.iter(|| serde_json::to_vec(black_box(&event)).expect("serializes"))
    });
    group.bench_function("emit", |b| {
        b.iter(|| {
            deskhook::emit(
                black_box(Action::Comment),
                black_box(&ticket),
                black_box(&user),
            )
        })
    });
    group.bench_function("emit_no_subscriber", |b| {
        b.iter(|| {
            deskhook::emit(
                black_box(Action::Delete),
                black_box(&ticket),
                black_box(&user),
            )
        })
    });
    deskhook::set_enabled(Action::Edit, false);
    group.bench_function("emit_off", |b| {
        b.iter(|| {
            deskhook::emit(
                black_box(Action::Edit),
                black_box(&ticket),
                black_box(&user),
            )
        })
    });
    group.finish();
}

/// The event `deskhook bench` emits, its ticket's text padded to make a body of about
/// `size` bytes.
fn padded(size: usize) -> (Ticket, User) {
    let user = User::new("bench@example.com", "Bench User");
    let mut ticket = Ticket::new("B0000001", "Benchmark ticket");
    ticket.author = user.clone();
    ticket.target_group = "Default group".to_owned();
    let base = serde_json::to_vec(&EventRef::new(Action::Create, &ticket, &user))
        .expect("serializes")
        .len();
    ticket.text = "x".repeat(size.saturating_sub(base));
    (ticket, user)
}

fn body(c: &mut Criterion) {
    let mut group = c.benchmark_group("body");
    for (name, size) in [("1k", 1024), ("10k", 10 * 1024)] {
        let (ticket, user) = padded(size);
        let event = EventRef::new(Action::Create, &ticket, &user);
        group.bench_function(format!("serde_json_{name}"), |b| {
            b.iter(|| serde_json::to_vec(black_box(&event)).expect("serializes"))
        });
        group.bench_function(format!("sonic_rs_{name}"), |b| {
            b.iter(|| sonic_rs::to_vec(black_box(&event)).expect("serializes"))
        });
        group.bench_function(format!("emitted_{name}"), |b| {
            b.iter(|| Emitted::new(black_box(event.clone())).expect("serializes"))
        });
    }
    group.finish();
}

criterion_group!(benches, emit, body);
criterion_main!(benches);
