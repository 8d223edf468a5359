//! An event larger than the NATS server takes (its `max_payload`, here 64 KiB) is refused
//! at emit, to the dead letters with the limit it passed, rather than published to be
//! refused; one under it is stored. nats-server runs on a free 127.0.0.1 port.

use deskhook::{Action, Dispatcher};
use deskhook_tests::nats::{NatsServer, stream_len};
use deskhook_tests::{WAIT, dead_letter_file, ticket};
use deskhook_transports::delivery::read_dead_letters;
use deskhook_transports::nats::{NatsSink, StreamSettings};

#[test]
fn a_body_over_the_servers_max_payload_is_refused_at_emit() {
    let server = NatsServer::start_configured("max_payload: 65536\n");
    let (_dir, dead) = dead_letter_file();
    let (sink, guard) = NatsSink::builder(server.url())
        .stream(StreamSettings::new())
        .require_server(true)
        .dead_letter_path(&dead)
        .build()
        .expect("the sink starts");
    let dispatcher = Dispatcher::builder().sink("nats", sink.clone()).build();
    let user = deskhook::sample::user();
    let mut large = ticket("BIG");
    large.text = "x".repeat(70 * 1024);
    dispatcher.emit(Action::Create, &large, &user);
    dispatcher.emit(Action::Create, &ticket("SMALL"), &user);
    guard.flush(WAIT).expect("the small one is stored");

    let letters = read_dead_letters(&dead).unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].ticket, "BIG");
    assert!(
        letters[0].reason.contains("exceeds the 61440-byte limit"),
        "refused at emit, under the server's 65536 less 4 KiB: {}",
        letters[0].reason
    );
    assert_eq!(letters[0].attempts, 0, "never published");
    let stored = deskhook_tests::nats::block_on(stream_len(&server.url(), "DESKHOOK"));
    assert_eq!(stored, 1);
}
