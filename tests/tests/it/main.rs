//! The cross-crate integration tests, in one binary (one link step): one module per
//! behaviour. The tests that set or measure process-wide state have binaries of their own
//! (see the `[[test]]` entries in `tests/Cargo.toml`).

mod attempt_log_and_kept_endpoints;
mod console;
mod dead_letters_on_a_full_disk;
mod emit_routes_later;
mod endpoints_are_data;
mod http_async_runtime;
mod http_circuit_breaker;
mod http_failures_without_retry;
mod http_flush_and_overflow;
mod http_isolation;
mod http_order_per_ticket;
mod http_receivers_that_misbehave;
mod http_retries;
mod http_signatures;
mod http_ssrf_guard;
mod http_vendor_formats;
mod https_delivery;
mod nats_batches_fit_the_stream;
mod nats_cluster_survives_a_node;
mod nats_endpoint_store;
mod nats_publishes_each_event_once;
mod nats_refuses_a_conflicting_stream;
mod nats_relay_delivers_what_its_consumer_skipped;
mod nats_restart_loses_nothing_acknowledged;
mod nats_unreachable_overflow_is_counted;
mod nats_waits_in_the_spool;
mod operator_actions;
mod payload_templates;
mod relay_counts_events_for_no_endpoint;
mod relay_keeps_order_across_batches;
mod relay_keeps_order_while_it_stops_or_reconnects;
mod relay_parks_what_a_failing_endpoint_holds;
mod relay_publishes_a_dead_letter_before_it_acknowledges;
mod relay_waits_for_a_confirmed_ack;
mod relay_withdraws_a_lost_partition;
mod spool_a_stuck_ticket_holds_up_no_other;
mod spool_backlog_survives_restarts;
mod spool_dead_letters_it_cannot_write;
mod spool_emit_async_awaits_the_commit;
mod spool_flush_and_gone;
mod spool_keeps_pauses;
mod spool_keeps_rows_by_endpoint;
mod spool_refuses_what_it_cannot_use;
mod worker_priority;
