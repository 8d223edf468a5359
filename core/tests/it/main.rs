//! The integration tests of `deskhook`, in one binary (one link step): one module per
//! behaviour. The tests that set process-wide state have binaries of their own (see the
//! `[[test]]` entries in `core/Cargo.toml`).

mod action_bodies;
mod broken_inputs_never_panic;
mod emit_from_anywhere;
mod emitted_bodies_are_serde_json_bytes;
mod failing_sink_does_not_stop_others;
mod generated_vendor_events_round_trip;
mod malformed_vendor_bodies_name_the_field;
mod receive_verifies_and_parses;
mod reference_event_round_trips;
mod tenants;
mod vendor_fixtures_round_trip;
