//! An emitted body is exactly what serde_json writes for the event: emit serializes with
//! sonic-rs for speed, and receivers, signatures and the reference fixtures rest on
//! serde_json's bytes.

use deskhook::event::Comment;
use deskhook::sample;
use deskhook::sink::Emitted;
use deskhook::{Action, EventRef};
use proptest::prelude::*;

/// Text where escapes fall on every position of a 16- and 32-byte block: quotes,
/// backslashes, every control character, DEL, multi-byte letters and emoji.
fn awkward_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-z ]{0,40}",
        "[а-яё ]{0,20}",
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        (0u8..0x20).prop_map(|b| char::from(b).to_string()),
        Just("\u{7f}\u{2028}\u{2029}😀/<>&'".to_owned()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x656d_6974),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_zenlix_body_is_serde_jsons_bytes(
        subject in awkward_text(),
        text in awkward_text(),
        comment in awkward_text(),
        long in 0usize..3000,
    ) {
        let mut ticket = sample::ticket();
        ticket.subject = subject;
        ticket.text = format!("{text}{}", "x".repeat(long));
        ticket.comments.push(Comment::new(sample::user(), comment));
        let user = sample::user();
        for action in [Action::Create, Action::Comment] {
            let event = EventRef::new(action, &ticket, &user);
            let emitted = Emitted::new(event.clone()).unwrap();
            let expected = serde_json::to_vec(&event).unwrap();
            prop_assert_eq!(emitted.body().as_ref(), expected.as_slice());
        }
    }
}
