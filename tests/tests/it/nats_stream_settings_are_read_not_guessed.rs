//! `StreamSettings::of_existing` reads an existing stream's partition count and storage; a
//! stream it cannot look up (here the user may not ask for its info) is an error, not the
//! defaults: a relay that guessed 16 partitions for a stream of 4 was refused as a conflict,
//! told to delete the stream.
//!
//! `nats-server` runs on a free 127.0.0.1 port with two users.

use std::time::Duration;

use deskhook_tests::nats::{NatsServer, block_on};
use deskhook_transports::Error;
use deskhook_transports::nats::{StreamSettings, async_nats, connect};

#[test]
fn a_stream_that_cannot_be_looked_up_is_an_error_not_the_defaults() {
    let server = NatsServer::start_configured(
        r#"authorization {
  users = [
    { user: "owner", password: "owner" }
    { user: "blind", password: "blind", permissions: { publish: { deny: ["$JS.API.STREAM.INFO.>"] } } }
  ]
}
"#,
    );
    let as_user = |user: &str| {
        let url = server
            .url()
            .replace("nats://", &format!("nats://{user}:{user}@"));
        let options = async_nats::ConnectOptions::new();
        async move {
            connect(&url, options, Duration::from_millis(500))
                .await
                .expect("the test connects")
        }
    };
    block_on(async {
        let owner = as_user("owner").await;
        // No stream yet: the settings as given.
        let missing = StreamSettings::new().of_existing(&owner).await;
        assert_eq!(
            missing.expect("no stream is no error").partition_count(),
            16
        );
        StreamSettings::new()
            .partitions(4)
            .ensure(&owner)
            .await
            .expect("the stream is made");
        let found = StreamSettings::new().of_existing(&owner).await;
        assert_eq!(found.expect("the stream is read").partition_count(), 4);

        let blind = as_user("blind").await;
        match StreamSettings::new().of_existing(&blind).await {
            Err(Error::Nats { message, .. }) => {
                assert!(message.contains("cannot look up the stream"), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    });
}
