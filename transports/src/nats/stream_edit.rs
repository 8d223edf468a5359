//! The edits deskhook makes to an existing stream it publishes to: the discard policy an
//! earlier deskhook set, and the partition count of a stream made by hand.

use async_nats::jetstream::{self, stream};

use super::{StreamSettings, Trouble, description, partitions_of};

impl StreamSettings {
    /// A stream deskhook made before it set the discard policy (its description names
    /// its partitions), with a size or message limit and the policy that deletes the oldest
    /// messages when full: changed to refuse new ones instead, as deskhook makes it now (the
    /// server allows the edit). A stream of someone else's is left to [`check`].
    ///
    /// [`check`]: StreamSettings::check
    pub(super) async fn discard_new(
        &self,
        context: &jetstream::Context,
        info: stream::Info,
    ) -> Result<stream::Info, Trouble> {
        let config = &info.config;
        let limited = config.max_bytes > 0 || config.max_messages > 0;
        if !limited
            || config.discard == stream::DiscardPolicy::New
            || partitions_of(config).is_none()
        {
            return Ok(info);
        }
        let changed = stream::Config {
            discard: stream::DiscardPolicy::New,
            ..config.clone()
        };
        let updated = context.update_stream(changed).await.map_err(|e| {
            Trouble::Transient(format!(
                "cannot set discard new on stream '{}' (a full stream would delete \
                 undelivered events): {e}",
                self.name
            ))
        })?;
        log::warn!(
            target: deskhook::LOG_TARGET,
            "JetStream stream '{}' deleted its oldest events when full (discard old, as an \
             earlier deskhook made it); set to discard new: a full stream now refuses \
             publishes, which are retried",
            self.name
        );
        Ok(updated)
    }

    /// A stream that does not record its partition count (made by hand, or by other
    /// tooling) is given these settings' in its description, so that relays and publishers
    /// that assume another count refuse it (a running relay stops), rather than leave the
    /// partitions past theirs undelivered. One that cannot be changed (a user who may not
    /// edit streams) is kept as it is, with the warning `check` logged.
    pub(super) async fn record_partitions(
        &self,
        context: &jetstream::Context,
        info: stream::Info,
    ) -> stream::Info {
        if partitions_of(&info.config).is_some() {
            return info;
        }
        let recorded = match info.config.description.as_deref() {
            Some(own) if !own.trim().is_empty() => {
                format!("{own}; partitions={}", self.partitions)
            }
            _ => description(self.partitions),
        };
        let changed = stream::Config {
            description: Some(recorded),
            ..info.config.clone()
        };
        match context.update_stream(changed).await {
            Ok(updated) => {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "JetStream stream '{}' did not record its partition count; recorded {} \
                     in its description: relays and publishers that assume another count now \
                     refuse it",
                    self.name,
                    self.partitions
                );
                updated
            }
            Err(e) => {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "JetStream stream '{}' does not record its partition count, and it could \
                     not be recorded ({e}): put 'partitions={}' in its description",
                    self.name,
                    self.partitions
                );
                info
            }
        }
    }
}
