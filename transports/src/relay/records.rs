//! What a batch has delivered while it waits for the rest: records in a JetStream KV bucket
//! (`<durable>-batches`), so that a ticket need not wait for its neighbours' endpoints.
//!
//! A batch message is acknowledged once all its events have finished, and a ticket's next
//! event waits for that (see `gate`). When a batch has waited longer than
//! [`Relay::batch_wait`](super::Relay::batch_wait) and tickets wait on it, the relay records
//! which of its events have finished, under `<partition>.<stream sequence>`, then lets those
//! tickets go on. A partition's next owner reads its records when it takes the partition,
//! and does not deliver again the events a record names when the batch comes back to it. A
//! record is removed when its batch is acknowledged.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt as _;

use crate::endpoint_store::open_bucket;
use crate::error::Error;

/// The events recorded as finished, by the stream sequence of their batch.
pub(super) type Finished = HashMap<u64, HashSet<Box<str>>>;

/// The records bucket.
pub(super) struct Records {
    kv: kv::Store,
}

impl Records {
    /// Opens `bucket`, making it (with `replicas` copies, entries kept until removed) if it
    /// is missing.
    pub(super) async fn open(
        context: &jetstream::Context,
        bucket: &str,
        replicas: usize,
    ) -> Result<Records, Error> {
        let kv = open_bucket(
            context,
            bucket,
            "deskhook relays: the events of batches delivered while the batch waits",
            1,
            std::time::Duration::ZERO,
            replicas,
        )
        .await
        .map_err(|(what, e)| {
            Error::Config(format!(
                "the relays' batch records bucket '{bucket}': cannot {what}: {e}"
            ))
        })?;
        Ok(Records { kv })
    }

    /// Records `ids` as the finished events of the batch at `sequence` of `partition`.
    pub(super) async fn write(
        &self,
        partition: u32,
        sequence: u64,
        ids: &[Arc<str>],
    ) -> Result<(), String> {
        let value = ids.iter().map(|id| &**id).collect::<Vec<&str>>().join("\n");
        self.kv
            .put(key(partition, sequence), value.into_bytes().into())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Removes the record of the batch at `sequence` of `partition` (acknowledged).
    pub(super) async fn remove(&self, partition: u32, sequence: u64) -> Result<(), String> {
        self.kv
            .purge(key(partition, sequence))
            .await
            .map_err(|e| e.to_string())
    }

    /// The records of `partition`.
    pub(super) async fn of_partition(&self, partition: u32) -> Result<Finished, String> {
        let prefix = format!("{partition}.");
        let mut keys = self.kv.keys().await.map_err(|e| e.to_string())?;
        let mut found = Finished::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| e.to_string())?;
            let Some(sequence) = key.strip_prefix(&prefix).and_then(|s| s.parse().ok()) else {
                continue;
            };
            let Some(value) = self.kv.get(&key).await.map_err(|e| e.to_string())? else {
                continue;
            };
            let ids = String::from_utf8_lossy(&value)
                .lines()
                .map(Into::into)
                .collect();
            found.insert(sequence, ids);
        }
        Ok(found)
    }
}

fn key(partition: u32, sequence: u64) -> String {
    format!("{partition}.{sequence}")
}
