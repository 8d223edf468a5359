use std::time::Duration;

use deskhook::policy::{BreakerPolicy, OverflowPolicy};

use super::*;

fn err(text: &str) -> String {
    match Config::parse(text, "deskhook.toml").and_then(|c| c.endpoints().map(|_| c)) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

#[cfg(feature = "spool")]
#[test]
fn the_spool_section_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[spool]\ndir = {:?}\nsynchronous = \"normal\"\ndurability = \"receipt\"\nmax_size_mb = 8\n\
         dead_letter_retention = \"14d\"\nrest_after = \"1m\"\n",
        dir.path().join("spool")
    );
    let config = Config::parse(&text, "deskhook.toml").unwrap();
    let spool = config.spool().unwrap().expect("a [spool] section");
    assert!(format!("{spool:?}").contains("Normal"));
    assert!(format!("{spool:?}").contains("dead_letter_retention: 1209600s"));
    assert!(format!("{spool:?}").contains("rest_after: 60s"));
    let builder = config.http_sink_builder().unwrap();
    assert!(format!("{builder:?}").contains("spool"));
    drop(builder);

    let bad = Config::parse(
        "[spool]\ndir = \"x\"\nsynchronous = \"fast\"\n",
        "deskhook.toml",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        bad,
        "deskhook.toml:3:15: unknown variant `fast`, expected `full` or `normal`"
    );
    let zero = Config::parse("[spool]\ndir = \"x\"\nmax_size_mb = 0\n", "deskhook.toml")
        .unwrap()
        .spool()
        .unwrap_err()
        .to_string();
    assert!(
        zero.starts_with("deskhook.toml:3:15: max_size_mb = 0"),
        "{zero}"
    );
    let keep_none = "[spool]\ndir = \"x\"\ndead_letter_retention = \"0s\"\n";
    let keep_none = Config::parse(keep_none, "deskhook.toml")
        .unwrap()
        .spool()
        .unwrap_err()
        .to_string();
    assert!(
        keep_none.starts_with("deskhook.toml:3:25: dead_letter_retention = \"0s\" would delete"),
        "{keep_none}"
    );
    // A wait no clock can add (jiff reads seconds up to i64::MAX) is refused as it is read,
    // not a panic of the writer under load; a long one, with what to give.
    let endless = Config::parse(
        "[spool]\ndir = \"x\"\nmax_wait = \"9223372036854775807s\"\n",
        "deskhook.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        endless.starts_with("deskhook.toml:3:12: ") && endless.contains("longer than 36500d"),
        "{endless}"
    );
    let long = Config::parse(
        "[spool]\ndir = \"x\"\nmax_wait = \"3650d\"\n",
        "deskhook.toml",
    )
    .unwrap()
    .spool()
    .unwrap_err()
    .to_string();
    assert!(
        long.starts_with("deskhook.toml:3:12: max_wait = \"")
            && long.contains("give at most \"1s\""),
        "{long}"
    );
    let no_dir = Config::parse("[spool]\nmax_batch = 8\n", "deskhook.toml")
        .unwrap()
        .spool()
        .unwrap_err()
        .to_string();
    assert!(
        no_dir.starts_with("deskhook.toml:1:1: the spool needs its directory"),
        "{no_dir}"
    );
}

#[cfg(feature = "file")]
#[test]
fn the_file_log_section_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let text = format!("[file_log]\npath = {path:?}\nflush = \"1s\"\nrotate_bytes = 1024\n");
    let log = Config::parse(&text, "deskhook.toml")
        .unwrap()
        .file_sink()
        .unwrap()
        .expect("a [file_log] section");
    assert_eq!(log.path(), path);
    assert_eq!(
        err("[file_log]\npath = \"x\"\nflush = \"sometimes\"\n"),
        "deskhook.toml:3:9: invalid duration 'sometimes' (write it like 200ms, 5s, 5m, 2h, \
         1h 30m or 7d; not in months or years); or write \"every-event\" or \"never\""
    );
    // A flush without rest, or none at all, is refused at the key.
    for every in ["0s", "1ms"] {
        let text = err(&format!("[file_log]\npath = \"x\"\nflush = \"{every}\"\n"));
        assert!(
            text.starts_with(&format!(
                "deskhook.toml:3:9: a flush every {every} would keep a thread flushing"
            )) && text.contains("\"every-event\""),
            "{text}"
        );
    }
    let no_path = Config::parse("[file_log]\nkeep = 2\n", "deskhook.toml")
        .unwrap()
        .file_sink()
        .unwrap_err()
        .to_string();
    assert!(
        no_path.starts_with("deskhook.toml:1:1: the file log needs its path"),
        "{no_path}"
    );
}

#[test]
fn a_full_file_is_read() {
    let text = r#"
[delivery]
queue_capacity = 5
overflow = { block = "20ms" }
breaker = { failures = 3, cool_down = "1s" }

[[endpoint]]
name = "crm"
url = "http://127.0.0.1:9/hooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", { secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", expires = "2026-12-01T00:00:00Z" }]
actions = ["create", "ok"]
headers = { Authorization = "Bearer x" }
retry = ["0s", "10ms"]
allow_private = true
workers = 2
"#;
    let config = Config::parse(text, "deskhook.toml").unwrap();
    let delivery = config.delivery_config().unwrap();
    assert_eq!(delivery.queue_capacity, 5);
    assert_eq!(
        delivery.overflow,
        OverflowPolicy::Block {
            timeout: Duration::from_millis(20)
        }
    );
    assert_eq!(
        delivery.breaker,
        BreakerPolicy {
            failures: 3,
            cool_down: Duration::from_secs(1)
        }
    );
    let block = Config::parse(
        "[delivery]\noverflow = \"block\"\nbreaker = { failures = 0 }\n",
        "d",
    )
    .unwrap()
    .delivery_config()
    .unwrap();
    assert_eq!(
        block.overflow,
        OverflowPolicy::Block {
            timeout: deskhook::policy::DEFAULT_BLOCK_TIMEOUT
        }
    );
    assert_eq!(block.breaker.failures, 0);
    assert_eq!(block.breaker.cool_down, BreakerPolicy::default().cool_down);
    let endpoints = config.endpoints().unwrap();
    assert_eq!(endpoints.len(), 1);
    let e = &endpoints[0];
    assert_eq!(e.name(), "crm");
    assert_eq!(e.secrets.len(), 2);
    assert_eq!(e.secrets[0].1, None);
    assert_eq!(
        e.secrets[1].1,
        Some(std::time::SystemTime::from(
            "2026-12-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap()
        ))
    );
    assert_eq!(e.retry.attempts(), 2);
    assert_eq!(e.max_in_flight, Some(2));
    assert_eq!(
        e.headers,
        [("Authorization".to_owned(), "Bearer x".to_owned())]
    );
}

#[test]
fn endpoints_subscribe_to_event_types_of_every_format() {
    let text = "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\n\
                actions = [\"create\", \"usedesk.comment_created\", \"iqchannels.*\"]\n\
                [[endpoint]]\nname = \"b\"\nurl = \"https://y.example\"\n";
    let endpoints = Config::parse(text, "deskhook.toml")
        .unwrap()
        .endpoints()
        .unwrap();
    let a = endpoints[0].subscribed_event_types();
    assert_eq!(a.to_string(), "create,usedesk.comment_created,iqchannels.*");
    assert_eq!(a.actions().collect::<Vec<_>>(), [deskhook::Action::Create]);
    assert!(endpoints[1].subscribed_event_types().is_all());
    let one_string = "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\n\
                      actions = \"ok, iqchannels.message_created\"\n";
    let endpoints = Config::parse(one_string, "deskhook.toml")
        .unwrap()
        .endpoints()
        .unwrap();
    assert_eq!(
        endpoints[0].subscribed_event_types().to_string(),
        "ok,iqchannels.message_created"
    );
}

#[test]
fn misspelt_event_types_get_a_suggestion_and_a_position() {
    let file = |actions: &str| {
        err(&format!(
            "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\nactions = {actions}\n"
        ))
    };
    assert_eq!(
        file(r#"["create", "usedesk.coment_created"]"#),
        "deskhook.toml:4:11: unknown event type 'usedesk.coment_created' (did you mean \
         'usedesk.comment_created'?)"
    );
    assert_eq!(
        file(r#"["iqchannels.delete_messages"]"#),
        "deskhook.toml:4:11: unknown event type 'iqchannels.delete_messages' (did you mean \
         'iqchannels.delete-messages'?)"
    );
    assert_eq!(
        file(r#"["message_created"]"#),
        "deskhook.toml:4:11: unknown action 'message_created' (did you mean \
         'iqchannels.message_created'?)"
    );
    assert_eq!(
        file(r#""create, usedesk.ratin""#),
        "deskhook.toml:4:11: unknown event type 'usedesk.ratin' (did you mean \
         'usedesk.rating'?)"
    );
}

#[test]
fn a_credential_of_the_wrong_type_is_not_repeated_in_the_error() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let cases = [
        format!("secrets = \"{secret}\""),
        format!("headers = \"Bearer {secret}\""),
        format!("headers = [\"Authorization: {secret}\"]"),
        format!("template_vars = \"{secret}\""),
        format!("secrets = [{{ secret = \"{secret}\", expires = 7 }}]"),
        // A key of digits, written without quotes.
        "headers = { X-Api-Key = 918273645546 }".to_owned(),
        "template_vars = { token = 9182736455.46 }".to_owned(),
        // A float without a fraction, which serde writes with one (`918273645546.0`).
        "template_vars = { token = 918273645546e0 }".to_owned(),
        "headers = { X-Api-Key = 9.18273645e11 }".to_owned(),
    ];
    for case in cases {
        let text =
            format!("[[endpoint]]\nname = \"crm\"\nurl = \"https://crm.example/hook\"\n{case}\n");
        let error = err(&text);
        assert!(error.starts_with("deskhook.toml:4:"), "{error}");
        assert!(!error.contains("MfKQ9r8G"), "{case}: {error}");
        assert!(!error.contains("918273645"), "{case}: {error}");
        assert!(
            error.contains("expected"),
            "what was expected stays: {error}"
        );
    }
    // A short header value hides only where it is quoted, not every 'a' of the message.
    let error = err(
        "[[endpoint]]\nname = \"crm\"\nurl = \"https://crm.example/hook\"\nretry = \"5x\"\nheaders = { X-Flag = \"a\" }\n",
    );
    assert!(
        error.contains("retry") || error.contains("duration"),
        "{error}"
    );
    assert!(!error.contains("(hidden)"), "{error}");
    // Other values are still quoted.
    let error = err("[[endpoint]]\nname = 7\nurl = \"https://crm.example/hook\"\n");
    assert_eq!(
        error,
        "deskhook.toml:2:8: invalid type: integer `7`, expected a string"
    );
}

#[test]
fn a_list_in_single_brackets_and_a_duration_without_its_unit_are_said_how_to_write() {
    assert_eq!(
        err("[endpoint]\nname = \"crm\"\nurl = \"https://crm.example/hook\"\n"),
        "deskhook.toml:1:1: invalid type: map, expected a sequence (write [[endpoint]]: each \
         one is an entry of a list)"
    );
    assert_eq!(
        err("[[endpoint]]\nname = \"crm\"\nurl = \"https://crm.example/hook\"\ntimeout = 5\n"),
        "deskhook.toml:4:11: a duration is text with its unit: write \"5s\" for 5 seconds, or \
         \"5ms\" for milliseconds"
    );
    assert_eq!(
        err("[delivery]\nshutdown_timeout = true\n"),
        "deskhook.toml:2:20: invalid type: boolean `true`, expected a duration such as \"5s\" \
         or \"500ms\""
    );
}

#[test]
fn errors_name_the_position_and_the_fix() {
    assert_eq!(
        err("[delivery]\nqueue_capacty = 5\n"),
        "deskhook.toml:2:1: unknown field `queue_capacty`, expected one of `queue_capacity`, \
         `overflow`, `dead_letter_path`, `breaker`, `retry_after_max`, `shutdown_timeout`, \
         `max_payload`, `max_in_flight`, `max_threads`, `thread_idle_timeout`, \
         `worker_nice`, `max_queued_bytes`, `attempt_log`, `attempt_retention`, `attempt_max_rows`, \
         `metrics_per_endpoint` (did you mean `queue_capacity`?)"
    );
    assert_eq!(
        err(
            "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\nactions = [\"create\", \"aprove\"]\n"
        ),
        "deskhook.toml:4:11: unknown action 'aprove' (did you mean 'approve'?)"
    );
    assert_eq!(
        err("[delivery]\nshutdown_timeout = \"5 parsecs\"\n"),
        "deskhook.toml:2:20: invalid duration '5 parsecs' (write it like 200ms, 5s, 5m, 2h, \
         1h 30m or 7d; not in months or years)"
    );
    assert_eq!(
        err("[delivery]\noverflow = \"spill\"\n"),
        "deskhook.toml:2:12: unknown overflow policy 'spill' (write \"drop-newest\", \
         \"drop-oldest\", \"block\" or { block = \"250ms\" })"
    );
    let bad_url = err("[[endpoint]]\nname = \"a\"\nurl = \"not a url\"\n");
    assert!(
        bad_url.starts_with("deskhook.toml:3:7: invalid endpoint URL"),
        "{bad_url}"
    );
    let private = err("[[endpoint]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\n");
    assert!(
        private.starts_with("deskhook.toml:3:7: refusing to connect to 127.0.0.1 (loopback)"),
        "{private}"
    );
    let short = err(
        "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\nsecrets = [\"whsec_c2hvcnQ=\"]\n",
    );
    assert!(
        short.starts_with("deskhook.toml:4:12: secret is 5 bytes"),
        "{short}"
    );
    let env = err(
        "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\nsecret_env = \"DESKHOOK_TEST_UNSET_VARIABLE\"\n",
    );
    assert!(
        env.starts_with(
            "deskhook.toml:4:14: endpoint 'a': environment variable DESKHOOK_TEST_UNSET_VARIABLE is not set"
        ),
        "{env}"
    );
    let twice = err(
        "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\n\n[[endpoint]]\nname = \"a\"\n\
         url = \"https://y.example\"\n",
    );
    assert!(
        twice.starts_with("deskhook.toml:6:8: endpoint 'a' is named twice"),
        "{twice}"
    );
    let cidr = err(
        "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\nallow_cidrs = [\"10.0.0.0/33\"]\n",
    );
    assert!(
        cidr.starts_with("deskhook.toml:4:15: endpoint 'a': '10.0.0.0/33' is not a network"),
        "{cidr}"
    );
    assert_eq!(
        err("[delivery]\nblock_timeout = \"1s\"\n"),
        "deskhook.toml:2:1: block_timeout is now part of overflow: write overflow = { block = \
         \"100ms\" }"
    );
    assert_eq!(
        err("[delivery]\nbreaker = { failures = 3, cooldown = \"1s\" }\n"),
        "deskhook.toml:2:27: unknown field `cooldown`, expected `failures` or `cool_down` (did \
         you mean `cool_down`?)"
    );
    assert_eq!(
        err("[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\nworkers = 0\n"),
        "deskhook.toml:4:11: endpoint 'a': max_in_flight is 0; give at least 1"
    );
    assert_eq!(
        err("[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\nretry = \"5s,1m\"\n"),
        "deskhook.toml:4:9: endpoint 'a': the retry schedule starts with 5s, but the first \
         attempt is always made at once; start it with 0s (\"0s,5s,1m\")"
    );
    assert_eq!(
        err("[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\ntimeout = \"1ns\"\n"),
        "deskhook.toml:4:11: endpoint 'a': timeout = 1ns is shorter than an attempt can take (at \
         least 1ms); give e.g. 15s"
    );
    assert_eq!(
        err("[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\nconnect_timeout = \"0s\"\n"),
        "deskhook.toml:4:19: endpoint 'a': connect_timeout = 0s is shorter than an attempt can \
         take (at least 1ms); give e.g. 5s"
    );
    // Every setting at fault, each at its key.
    assert_eq!(
        err(
            "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\nretry = \"5s,1m\"\n\
             workers = 0\n"
        ),
        "deskhook.toml:4:9: endpoint 'a': the retry schedule starts with 5s, but the first \
         attempt is always made at once; start it with 0s (\"0s,5s,1m\")\n\
         deskhook.toml:5:11: endpoint 'a': max_in_flight is 0; give at least 1"
    );
    assert_eq!(
        err("[delivery]\nmax_payload = 0\n"),
        "deskhook.toml:2:15: max_payload = 0 would refuse every event; give a size in bytes, \
         e.g. 1048576"
    );
    let syntax = err("[delivery\n");
    assert!(syntax.starts_with("deskhook.toml:1:"), "{syntax}");
}

#[test]
fn pool_settings_tenants_and_rate_limits_are_read_and_checked() {
    let text = "[delivery]\nmax_in_flight = 64\nmax_threads = 8\nthread_idle_timeout = \"1s\"\n\
                worker_nice = 5\nmax_queued_bytes = 1000000\nattempt_log = 0\nattempt_retention = \"1h\"\n\
                metrics_per_endpoint = true\n[[endpoint]]\nname = \"a\"\n\
                url = \"https://x.example\"\ntenant = \"acme\"\nrate_limit = \"50/s\"\n\
                rate_burst = 100\nmax_in_flight = 3\n";
    let config = Config::parse(text, "deskhook.toml").unwrap();
    let delivery = config.delivery_config().unwrap();
    assert_eq!(
        (
            delivery.max_in_flight,
            delivery.max_threads,
            delivery.max_queued_bytes
        ),
        (64, 8, 1_000_000)
    );
    assert_eq!(delivery.thread_idle_timeout, Duration::from_secs(1));
    assert_eq!(delivery.worker_nice, 5);
    assert_eq!(delivery.attempt_log, 0);
    assert_eq!(delivery.attempt_retention, Duration::from_secs(3600));
    assert!(delivery.metrics_per_endpoint);
    let endpoint = &config.endpoints().unwrap()[0];
    assert_eq!(endpoint.tenant_name(), Some("acme"));
    assert_eq!(endpoint.max_in_flight, Some(3));
    let limit = endpoint.rate_limit.unwrap();
    assert_eq!((limit.to_string(), limit.burst()), ("50/s".to_owned(), 100));

    let file = |lines: &str| {
        err(&format!(
            "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\n{lines}\n"
        ))
    };
    assert_eq!(
        file("tenant = \"\""),
        "deskhook.toml:4:10: endpoint 'a': invalid tenant '': it is empty (give a non-empty name of at \
         most 128 bytes)"
    );
    assert_eq!(
        file("rate_limit = \"fast\""),
        "deskhook.toml:4:14: invalid configuration: invalid rate limit 'fast': no '/' \
         (write it like \"50/s\", \"300/m\" or \"5/10s\")"
    );
    assert_eq!(
        file("rate_burst = 5"),
        "deskhook.toml:4:14: endpoint 'a': rate_burst applies only with rate_limit; set that too (such \
         as \"50/s\"), or remove rate_burst"
    );
    // The error points into [delivery], not at an endpoint's key of the same name.
    assert_eq!(
        err(
            "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\nmax_in_flight = 4\n\
             [delivery]\nmax_in_flight = 0\n"
        ),
        "deskhook.toml:6:17: max_in_flight = 0 cannot work; give at least 1 (or leave it out)"
    );
    assert_eq!(
        err("[delivery]\nmax_threads = 0\n"),
        "deskhook.toml:2:15: max_threads = 0 cannot work; give at least 1 (or leave it out)"
    );
    assert!(
        err("[delivery]\nthread_idle_timeout = \"0s\"\n")
            .starts_with("deskhook.toml:2:23: thread_idle_timeout = 0s would end each worker"),
        "{}",
        err("[delivery]\nthread_idle_timeout = \"0s\"\n")
    );
    assert_eq!(
        err("[delivery]\nworker_nice = 20\n"),
        "deskhook.toml:2:15: worker_nice = 20 is past the lowest priority; give 0 (the \
         application's priority) to 19"
    );
}

#[test]
fn a_template_error_points_at_its_key_and_into_the_template() {
    let bad = err("[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\n\
         template = '{\"text\": \"{{ subject }\"}'\n");
    assert!(
        bad.starts_with("deskhook.toml:4:12: endpoint 'a': inline template: line 1, column"),
        "{bad}"
    );
    let missing =
        err("[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\ntemplate = \"telegram\"\n");
    assert!(missing.contains("template_vars.chat_id"), "{missing}");
    let good = Config::parse(
        "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\ntemplate = \"telegram\"\n\
         template_vars = { chat_id = \"-100\" }\n",
        Path::new("deskhook.toml"),
    )
    .unwrap();
    let endpoint = &good.endpoints().unwrap()[0];
    assert!(endpoint.payload_template().is_some());
}

#[test]
fn a_ca_file_that_cannot_be_read_or_parsed_is_named() {
    let ca = err(
        "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\nca_file = \"/nonexistent/ca.pem\"\n",
    );
    assert!(
        ca.starts_with(
            "deskhook.toml:4:11: endpoint 'a': cannot read ca_file '/nonexistent/ca.pem'"
        ),
        "{ca}"
    );
    assert!(!ca.contains("working directory"), "{ca}");
    // A relative path is the working directory's, not the file's: the error says which.
    let cwd = std::env::current_dir().unwrap();
    for (setting, says) in [
        ("ca_file", "cannot read ca_file 'nonexistent-ca.pem'"),
        (
            "template_file",
            "cannot read template file 'nonexistent-ca.pem'",
        ),
    ] {
        let relative = err(&format!(
            "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\n\
             {setting} = \"nonexistent-ca.pem\"\n"
        ));
        assert!(
            relative.contains(&format!(
                "{says} (relative to the working directory '{}'; give an absolute path)",
                cwd.display()
            )),
            "{relative}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate").unwrap();
    let text = format!(
        "[[endpoint]]\nname = \"a\"\nurl = \"https://x.example\"\nca_file = {:?}\n",
        path.display().to_string()
    );
    let bad = err(&text);
    assert!(bad.contains("no certificate in the CA PEM"), "{bad}");
}

#[test]
fn positions_count_lines_and_characters() {
    assert_eq!(line_column("ab\ncd", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
    assert_eq!(line_column("é\nx", 3), (2, 1));
}

#[test]
fn debug_shows_no_secret_of_the_file() {
    let config = Config::parse(
        r#"
[[endpoint]]
name = "crm"
url = "https://crm.example.com/hooks/PATHTOKEN"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
headers = { Authorization = "Bearer HEADERTOKEN" }
"#,
        "deskhook.toml",
    )
    .unwrap();
    let shown = format!("{config:?}");
    for secret in ["PATHTOKEN", "MfKQ9r8", "HEADERTOKEN"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(
        shown.contains("deskhook.toml") && shown.contains("crm"),
        "{shown}"
    );
}

#[cfg(feature = "file")]
#[test]
fn the_file_log_section_is_checked_with_its_position() {
    let refused = |toml: &str| {
        let config = Config::parse(toml, "deskhook.toml").unwrap();
        config.file_sink().unwrap_err().to_string()
    };
    let zero = refused("[file_log]\npath = \"events.jsonl\"\nrotate_bytes = 0\n");
    assert!(
        zero.starts_with("deskhook.toml:3:16: file log rotation size is 0 bytes"),
        "{zero}"
    );
    let mode = refused("[file_log]\npath = \"events.jsonl\"\nmode = 0o444\n");
    assert!(
        mode.starts_with("deskhook.toml:3:8: file log mode 0o444 must let its owner write"),
        "{mode}"
    );
}

#[test]
fn an_error_points_at_its_own_tables_key_whatever_the_text_around() {
    // An inline [delivery]: not the endpoint's key of the same name further down.
    let error = err("delivery = { max_in_flight = 0 }\n\
         [[endpoint]]\nname = \"a\"\nurl = \"https://crm.example/hook\"\nmax_in_flight = 4\n");
    assert!(error.starts_with("deskhook.toml:1:30:"), "{error}");
    // A template whose text has a line like a table's header, before the key at fault.
    let error = err(
        "[[endpoint]]\nname = \"a\"\nurl = \"https://crm.example/hook\"\n\
         template = '''\n[{\"t\": {{ event.ticket.code|tojson }}}]\n'''\n\
         max_in_flight = 0\n",
    );
    assert!(error.starts_with("deskhook.toml:7:17:"), "{error}");
    // A key inside the template's text is not the endpoint's.
    let error = err(
        "[[endpoint]]\nname = \"a\"\nurl = \"https://crm.example/hook\"\n\
         template = '''\nmax_in_flight = {{ event.ticket.code|tojson }}\n'''\n\
         max_in_flight = 0\n",
    );
    assert!(error.starts_with("deskhook.toml:7:17:"), "{error}");
}

#[test]
fn a_breaker_without_a_cool_down_is_refused_at_its_key() {
    let error =
        err("[delivery]\nqueue_capacity = 10\nbreaker = { failures = 3, cool_down = \"0s\" }\n");
    assert!(error.starts_with("deskhook.toml:3:11:"), "{error}");
    assert!(error.contains("failures = 0"), "{error}");
    // Turned off, its cool-down says nothing.
    Config::parse(
        "[delivery]\nbreaker = { failures = 0, cool_down = \"0s\" }\n",
        "deskhook.toml",
    )
    .unwrap();
}
