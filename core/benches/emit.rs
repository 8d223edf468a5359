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

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use deskhook::sink::NopSink;
use deskhook::{Action, Dispatcher, EventTypeSet, sample};

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

criterion_group!(benches, emit);
criterion_main!(benches);
