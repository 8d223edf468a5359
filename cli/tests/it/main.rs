//! The tests of the `deskhook` command, in one binary (one link step): one module per
//! behaviour, each running the built binary as a child process. `support` has the helpers
//! they share; the loopback receivers and nats-server come from `deskhook-tests`.

mod support;

mod bench_over_nats_reports_publish_and_end_to_end;
mod bench_reports_one_json_line;
mod dead_letters_are_listed;
mod dead_letters_are_replayed;
mod drain_and_spool_stats;
mod endpoints_in_a_kv_bucket;
mod listen_reports_each_request;
mod listen_verifies_what_send_delivers;
mod publish_feeds_the_relays;
mod relay_follows_the_endpoints_bucket;
mod relay_says_when_nats_goes_and_comes_back;
mod relay_shares_work_and_survives_a_kill;
mod relay_stops_and_gives_up_cleanly;
mod relays_share_partitions;
mod render;
mod send_explains_bad_flags_and_config_files;
mod send_refuses_private_addresses_without_allow_private;
mod send_stops_waiting_on_ctrl_c;
mod serve;
mod serve_answers_only_its_own_hosts;
mod serve_console_in_a_browser;
mod serve_describes_its_events_api;
mod serve_from_curl_example;
mod serve_metrics_forget_a_removed_endpoint;
mod serve_needs_a_token;
mod serve_refuses_what_memory_cannot_hold;
mod serve_remembers_idempotency_keys_across_a_restart;
mod spool_survives_sigkill;
mod tail;
mod verify_checks_a_captured_request;
