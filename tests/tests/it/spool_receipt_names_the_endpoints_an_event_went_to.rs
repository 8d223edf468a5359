//! A spooled sink's receipt says how many endpoints the event was queued for, as it was
//! routed: what `deskhook serve` answers in its 202, with no separate count that the
//! endpoints could change under.

use std::time::Duration;

use deskhook::Action;
use deskhook_tests::{Receiver, endpoint, ticket};
use deskhook_transports::http_blocking::HttpSink;
use deskhook_transports::spool::{Durability, Spool};

#[test]
fn the_receipt_counts_the_endpoints_the_event_was_queued_for() {
    let receiver = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::builder(dir.path())
        .durability(Durability::Receipt)
        .open()
        .unwrap();
    let (sink, guard) = HttpSink::builder()
        .endpoint(endpoint("everyone", &receiver, "0s"))
        .endpoint(endpoint("acme", &receiver, "0s").tenant("acme"))
        .endpoint(endpoint("globex", &receiver, "0s").tenant("globex"))
        .spool(spool)
        .build()
        .unwrap();
    let user = deskhook::sample::user();
    let t = ticket("R1");
    let sent = |tenant: Option<&str>| {
        let mut emitted =
            deskhook::sink::Emitted::new(deskhook::EventRef::new(Action::Create, &t, &user))
                .unwrap();
        if let Some(tenant) = tenant {
            emitted = emitted.with_tenant(tenant.to_owned()).unwrap();
        }
        let receipt = sink.send_with_receipt(&emitted);
        let endpoints = receipt.endpoints();
        receipt.wait(Duration::from_secs(10)).expect("durable");
        endpoints
    };
    assert_eq!(sent(None), 1, "no tenant: the endpoint without one");
    assert_eq!(sent(Some("acme")), 2, "acme's and the one without a tenant");
    // Delivered before the removal, which would dead-letter what is still queued.
    receiver.wait_for(3);
    sink.endpoints().remove("everyone").unwrap();
    assert_eq!(
        sent(Some("globex")),
        1,
        "globex's alone, once the other is removed"
    );
    receiver.wait_for(4);
    sink.endpoints().remove("acme").unwrap();
    let none =
        deskhook::sink::Emitted::new(deskhook::EventRef::new(Action::Create, &t, &user)).unwrap();
    let receipt = sink.send_with_receipt(&none);
    assert_eq!(receipt.endpoints(), 0, "nobody takes it");
    receipt
        .wait(Duration::from_secs(10))
        .expect("accepted, nothing kept");
    guard.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(receiver.count(), 4);
}
