//! An event emitted for a tenant reaches the sinks with `Emitted::tenant` set, through every
//! emit form; an invalid tenant drops the event (counted, never a panic).

use std::sync::{Arc, Mutex};

use deskhook::dispatch::MAX_TENANT_LEN;
use deskhook::formats::{iqchannels, usedesk};
use deskhook::sink::{AsyncEventSink, Emitted, EventSink};
use deskhook::{Action, Dispatcher, Error, EventRef, sample};

/// Records the tenant and the event type of each event it takes.
#[derive(Default)]
struct Record(Mutex<Vec<(Option<String>, String)>>);

impl Record {
    fn take(&self) -> Vec<(Option<String>, String)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl EventSink for Record {
    fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        self.0.lock().unwrap().push((
            event.tenant().map(str::to_owned),
            event.event_type().to_string(),
        ));
        Ok(())
    }
}

/// The same record, as an async sink, so that the async forms await a sink.
struct AsyncRecord(Arc<Record>);

#[deskhook::sink::async_trait]
impl AsyncEventSink for AsyncRecord {
    async fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        self.0.send(event)
    }
}

fn dispatcher() -> (Dispatcher, Arc<Record>, Arc<Record>) {
    let blocking = Arc::new(Record::default());
    let awaited = Arc::new(Record::default());
    let dispatcher = Dispatcher::builder()
        .sink("blocking", blocking.clone())
        .async_sink("async", AsyncRecord(awaited.clone()))
        .build();
    (dispatcher, blocking, awaited)
}

fn usedesk_comment() -> usedesk::Event {
    let body = br#"{"secret":"0e8f","comment":{"id":5,"message":"Hi","ticket_id":2261907}}"#;
    usedesk::Event::from_json(body).unwrap()
}

fn tenanted(tenant: &str, event_type: &str) -> (Option<String>, String) {
    (Some(tenant.to_owned()), event_type.to_owned())
}

#[test]
fn the_tenant_reaches_the_sinks_through_every_form() {
    let (dispatcher, blocking, awaited) = dispatcher();
    let (ticket, user) = (sample::ticket(), sample::user());
    let comment = usedesk_comment();

    deskhook::with_dispatcher(&dispatcher, || {
        deskhook::for_tenant("acme").emit(Action::Create, &ticket, &user);
        deskhook::for_tenant("globex").emit_webhook(&comment);
        pollster::block_on(deskhook::for_tenant("initech").emit_async(Action::Ok, &ticket, &user));
        pollster::block_on(deskhook::for_tenant("umbrella").emit_webhook_async(&comment));
    });
    dispatcher
        .for_tenant("hooli")
        .emit(Action::Edit, &ticket, &user);
    dispatcher.for_tenant("stark").emit_webhook(&comment);
    pollster::block_on(
        dispatcher
            .for_tenant("wayne")
            .emit_async(Action::Lock, &ticket, &user),
    );
    pollster::block_on(dispatcher.for_tenant("tyrell").emit_webhook_async(&comment));

    let expected = vec![
        tenanted("acme", "create"),
        tenanted("globex", "usedesk.comment_created"),
        tenanted("initech", "ok"),
        tenanted("umbrella", "usedesk.comment_created"),
        tenanted("hooli", "edit"),
        tenanted("stark", "usedesk.comment_created"),
        tenanted("wayne", "lock"),
        tenanted("tyrell", "usedesk.comment_created"),
    ];
    assert_eq!(blocking.take(), expected);
    assert_eq!(awaited.take(), expected);
    let stats = dispatcher.stats();
    assert_eq!((stats.emitted, stats.dropped), (8, 0));
}

#[test]
fn events_emitted_without_a_tenant_have_none() {
    let (dispatcher, blocking, awaited) = dispatcher();
    let (ticket, user) = (sample::ticket(), sample::user());
    let comment = usedesk_comment();

    deskhook::with_dispatcher(&dispatcher, || {
        deskhook::emit(Action::Create, &ticket, &user);
        deskhook::emit_webhook(&comment);
        pollster::block_on(deskhook::emit_async(Action::Ok, &ticket, &user));
    });
    dispatcher.emit(Action::Edit, &ticket, &user);

    let expected: Vec<(Option<String>, String)> =
        ["create", "usedesk.comment_created", "ok", "edit"]
            .into_iter()
            .map(|t| (None, t.to_owned()))
            .collect();
    assert_eq!(blocking.take(), expected);
    assert_eq!(awaited.take(), expected);
}

#[test]
fn a_tenant_goes_with_one_emit_only() {
    let (dispatcher, blocking, _) = dispatcher();
    let (ticket, user) = (sample::ticket(), sample::user());

    deskhook::with_dispatcher(&dispatcher, || {
        let acme = deskhook::for_tenant("acme");
        acme.emit(Action::Create, &ticket, &user);
        deskhook::emit(Action::Comment, &ticket, &user);
        acme.emit(Action::Ok, &ticket, &user);
    });

    assert_eq!(
        blocking.take(),
        [
            tenanted("acme", "create"),
            (None, "comment".to_owned()),
            tenanted("acme", "ok"),
        ]
    );
}

fn bad_tenants() -> Vec<String> {
    vec![
        String::new(),
        "a".repeat(MAX_TENANT_LEN + 1),
        "acme\u{7}".to_owned(),
        "ac\nme".to_owned(),
    ]
}

#[test]
fn an_invalid_tenant_drops_the_event_without_panicking() {
    let (dispatcher, blocking, awaited) = dispatcher();
    let (ticket, user) = (sample::ticket(), sample::user());
    let comment = usedesk_comment();

    let mut expected_dropped = 0;
    for tenant in bad_tenants() {
        deskhook::with_dispatcher(&dispatcher, || {
            deskhook::for_tenant(&tenant).emit(Action::Create, &ticket, &user);
            deskhook::for_tenant(&tenant).emit_webhook(&comment);
            pollster::block_on(deskhook::for_tenant(&tenant).emit_async(
                Action::Ok,
                &ticket,
                &user,
            ));
            pollster::block_on(deskhook::for_tenant(&tenant).emit_webhook_async(&comment));
        });
        dispatcher
            .for_tenant(&tenant)
            .emit(Action::Edit, &ticket, &user);
        expected_dropped += 5;
        let stats = dispatcher.stats();
        assert_eq!(stats.dropped, expected_dropped, "tenant {tenant:?}");
        assert_eq!(stats.emitted, 0, "tenant {tenant:?}");
        assert_eq!(stats.sinks[0].sent + stats.sinks[1].sent, 0);
    }
    assert!(blocking.take().is_empty());
    assert!(awaited.take().is_empty());
}

#[test]
fn a_tenant_of_128_bytes_passes() {
    let (dispatcher, blocking, _) = dispatcher();
    let (ticket, user) = (sample::ticket(), sample::user());
    let longest = "a".repeat(MAX_TENANT_LEN);
    // Multi-byte characters count in bytes: 64 two-byte characters are 128 bytes.
    let longest_cyrillic = "я".repeat(MAX_TENANT_LEN / 2);

    dispatcher
        .for_tenant(&longest)
        .emit(Action::Create, &ticket, &user);
    dispatcher
        .for_tenant(&longest_cyrillic)
        .emit(Action::Create, &ticket, &user);
    dispatcher
        .for_tenant(&format!("{longest_cyrillic}я"))
        .emit(Action::Create, &ticket, &user);

    assert_eq!(
        blocking.take(),
        [
            tenanted(&longest, "create"),
            tenanted(&longest_cyrillic, "create")
        ]
    );
    assert_eq!(dispatcher.stats().dropped, 1);
}

#[test]
fn without_a_dispatcher_a_tenant_emit_does_nothing() {
    let (ticket, user) = (sample::ticket(), sample::user());
    // No dispatcher in this thread, none global in this process: nothing to send to, and an
    // invalid tenant is not even looked at.
    deskhook::for_tenant("acme").emit(Action::Create, &ticket, &user);
    deskhook::for_tenant("").emit(Action::Create, &ticket, &user);
    pollster::block_on(deskhook::for_tenant("").emit_async(Action::Create, &ticket, &user));
    pollster::block_on(deskhook::for_tenant("").emit_webhook_async(&usedesk_comment()));
}

#[test]
fn with_tenant_checks_like_emit() {
    let (ticket, user) = (sample::ticket(), sample::user());
    let emitted = Emitted::new(EventRef::new(Action::Create, &ticket, &user)).unwrap();
    assert_eq!(emitted.tenant(), None);

    for tenant in bad_tenants() {
        let err = emitted.clone().with_tenant(tenant.clone()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidTenant(_)),
            "{tenant:?}: {err:?}"
        );
        assert!(err.to_string().starts_with("invalid tenant '"), "{err}");
    }

    let longest = "a".repeat(MAX_TENANT_LEN);
    let tenanted = emitted.clone().with_tenant(longest.as_str()).unwrap();
    assert_eq!(tenanted.tenant(), Some(longest.as_str()));
    assert_eq!(tenanted.id(), emitted.id());
    assert_eq!(tenanted.body(), emitted.body());
    // An owned name works too, and a later call replaces the tenant.
    let again = tenanted.with_tenant(String::from("acme")).unwrap();
    assert_eq!(again.tenant(), Some("acme"));
}

/// Keeps the `deskhook` records at warn and above, for the test that reads them.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == deskhook::LOG_TARGET && metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = format!("{} {}", record.level(), record.args());
            self.0.lock().unwrap().push(line);
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

#[test]
fn a_dropped_event_is_logged_with_the_reason_and_the_ticket() {
    // The logger is the process's: it also takes the other tests' records, so the check
    // below looks only at those naming this test's ticket.
    log::set_logger(&CAPTURE).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Warn);
    let (dispatcher, _, _) = dispatcher();
    let ticket = deskhook::Ticket::new("LOG-ME", "Printer jammed");

    dispatcher
        .for_tenant("")
        .emit(Action::Create, &ticket, &sample::user());
    // A ticket code is the helpdesk's data (or a received event's): on one line, clipped.
    let forged = deskhook::Ticket::new(format!("LOG-ME\nWARN forged{}", "x".repeat(100)), "");
    dispatcher
        .for_tenant("")
        .emit(Action::Create, &forged, &sample::user());
    // An event of a type this deskhook does not know is named, with what to do.
    let body = br#"{"ChatEvent":{"Id":608,"Type":"chat_reopened","ChatId":21},"Rels":{}}"#;
    dispatcher.emit_webhook(&iqchannels::Event::from_json(body).unwrap());

    let lines = CAPTURE.0.lock().unwrap().clone();
    let ours: Vec<String> = lines
        .into_iter()
        .filter(|l| l.contains("LOG-ME") || l.contains("chat_reopened"))
        .collect();
    let refusal = "invalid tenant '': it is empty (give a non-empty name of at most 128 bytes)";
    assert_eq!(
        ours,
        [
            format!("WARN create event for LOG-ME dropped: {refusal}"),
            format!(
                "WARN create event for LOG-ME\\nWARN forged{}… dropped: {refusal}",
                "x".repeat(46)
            ),
            "WARN iqchannels event for 21 dropped: its type 'chat_reopened' is not one \
             deskhook can send; a newer deskhook may know it"
                .to_owned(),
        ]
    );
}
