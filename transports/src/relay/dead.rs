//! Where a relay's dead letters go besides its dead-letter file: the stream
//! `<stream>_DEAD`, under `<prefix>-dead.<endpoint>`.

use async_nats::jetstream::{self, stream};

use super::nats_error;
use crate::delivery::DeadLetter;
use crate::error::Error;
use crate::nats::StreamSettings;

/// The stream dead letters are published to: `<stream>_DEAD`, subjects `<prefix>-dead.>`.
pub(super) async fn dead_letter_stream(
    context: &jetstream::Context,
    settings: &StreamSettings,
    urls: &str,
) -> Result<String, Error> {
    let name = format!("{}_DEAD", settings.stream_name());
    context
        .get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}-dead.>", settings.prefix())],
            description: Some("deskhook dead letters, published by deskhook relay".to_owned()),
            ..Default::default()
        })
        .await
        .map_err(|e| {
            nats_error(
                urls,
                format!("cannot make the dead-letter stream '{name}': {e}"),
            )
        })?;
    Ok(name)
}

/// Publishes a dead letter; what cannot be published is in the relay's dead-letter file
/// (`in_file`), or else only in the log, where the engine wrote it whole.
pub(super) async fn publish_dead_letter(
    context: &jetstream::Context,
    prefix: &str,
    stream: &str,
    letter: &DeadLetter,
    in_file: bool,
) {
    let token: String = letter
        .endpoint
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() || ".*>".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let subject = format!("{prefix}-dead.{token}");
    let Ok(payload) = serde_json::to_vec(letter) else {
        return;
    };
    let acked = match context.publish(subject, payload.into()).await {
        Ok(ack) => ack.await.map(drop).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = acked {
        let place = if in_file {
            "it is in the relay's dead-letter file"
        } else {
            "the relay's dead-letter file could not take it either: it is only in the log, \
             logged whole at error level"
        };
        log::warn!(
            target: deskhook::LOG_TARGET,
            "dead letter {} not published to stream '{stream}' ({e}); {place}",
            letter.id
        );
    }
}
