//! What a payload template costs per event and endpoint, next to what emit already pays to
//! serialize the event (the reference): `cargo bench -p deskhook-transports --bench template`.
//!
//! - `serialize`: the event to its JSON body, as emit does once per event (the reference);
//! - `render/<preset>`: the same body rendered with a preset or the CRM-shaped templates of
//!   benches/templates.sh (`crm`, `crm-fields`), from the body (`Template::render`:
//!   parsing it first);
//! - `emitted/<preset>`: the same from the emitted event, as the delivery engine renders
//!   (`Template::render_emitted`: a Zenlix event's fields are read from the typed event).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use deskhook::{Action, EventType};
use deskhook_transports::template::Template;

const CRM: &str = r#"{"external_id": "{{ ticket }}", "title": "{{ subject }}", "what": "{{ label }}", "by": "{{ author }}", "comments": {{ event.ticket.comments|default([])|map(attribute="text")|list|tojson }}, "event": {{ event|tojson }}}"#;
const CRM_FIELDS: &str = r#"{"external_id": "{{ ticket }}", "title": "{{ subject }}", "description": "{{ text }}", "what": "{{ label }}", "by": "{{ author }}", "status": "{{ event.ticket.status }}", "priority": "{{ event.ticket.prio }}", "deadline": "{{ event.ticket.deadline_time }}"}"#;

fn bench(c: &mut Criterion) {
    let mut ticket = deskhook::sample::ticket();
    // About 1 KiB, as benches/templates.sh sends.
    ticket.comments.truncate(2);
    ticket.logs.truncate(2);
    ticket.watched.truncate(1);
    let event = deskhook::Event::new(Action::Comment, ticket, deskhook::sample::user());
    let body = event.to_json().unwrap();
    let event_type = EventType::Zenlix(Action::Comment);
    let mut group = c.benchmark_group("template");
    group.bench_function("serialize", |b| {
        b.iter(|| black_box(event.to_json().unwrap()))
    });
    let templates = [
        ("slack", Template::preset("slack").unwrap()),
        (
            "telegram",
            Template::preset("telegram")
                .unwrap()
                .var("chat_id", "-100123"),
        ),
        ("crm", Template::inline(CRM).unwrap()),
        ("crm-fields", Template::inline(CRM_FIELDS).unwrap()),
    ];
    let emitted = deskhook::sink::Emitted::new(event.as_event_ref().unwrap()).unwrap();
    for (name, template) in templates {
        group.bench_function(format!("render/{name}"), |b| {
            b.iter(|| black_box(template.render(event_type, "id", None, &body).unwrap()))
        });
        group.bench_function(format!("emitted/{name}"), |b| {
            b.iter(|| black_box(template.render_emitted(&emitted).unwrap()))
        });
    }
    group.finish();
    eprintln!("body: {} bytes", body.len());
}

criterion_group!(benches, bench);
criterion_main!(benches);
