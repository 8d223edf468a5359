//! What changes a running relay's endpoints: the KV bucket it follows, and new sets of its
//! configured endpoints (a `--config` re-read on SIGHUP).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::delivery::DeliverySink;
use crate::endpoint_store::Change;
use crate::error::Error;

/// Applies the bucket's `changes` to the relay's registry as they come, each endpoint's
/// in revision order: `seen` holds the revision last applied of each (from the list the
/// relay started with), and `floor` the bucket's last revision before that list was read
/// (for endpoints not in it: removed, or unreadable). A change at or below these is
/// skipped: the watch may bring one twice (made while the list was read), or replay the
/// bucket's history (async-nats makes its consumer again from the start when it had seen
/// nothing yet), which would bring old URLs and secrets back for a moment, and removed
/// endpoints with them.
pub(super) async fn follow(
    http: DeliverySink,
    changes: impl futures_util::Stream<Item = Result<Change, Error>> + Send,
    (mut seen, floor): (HashMap<String, u64>, u64),
    revision: Arc<AtomicU64>,
    applied: Option<Arc<dyn Fn(u64) + Send + Sync>>,
) {
    use futures_util::StreamExt as _;
    let mut changes = std::pin::pin!(changes);
    while let Some(change) = changes.next().await {
        match change {
            Ok(change) => {
                let at = change.revision();
                let last = seen.get(change.name()).copied().unwrap_or(floor);
                if at <= last {
                    continue;
                }
                seen.insert(change.name().to_owned(), at);
                apply(&http, &change);
                // Changes of other names may come out of order: the highest applied.
                let now = revision.fetch_max(at, Ordering::Relaxed).max(at);
                log::info!(target: deskhook::LOG_TARGET, "endpoints at revision {now}");
                if let Some(applied) = &applied {
                    applied(now);
                }
            }
            Err(e) => log::warn!(target: deskhook::LOG_TARGET, "endpoints bucket: {e}; left out"),
        }
    }
}

/// Applies one change of the endpoints bucket; what cannot be applied is logged.
pub(super) fn apply(http: &DeliverySink, change: &Change) {
    let endpoints = http.endpoints();
    let result = match change {
        Change::Put(stored) => {
            let name = &stored.spec.name;
            endpoints
                .upsert_spec(&stored.spec)
                .map_err(crate::delivery::SpecError::into_error)
                .and_then(|_| {
                    let paused =
                        endpoints.get(name)?.state == crate::delivery::EndpointState::Paused;
                    match (stored.paused, paused) {
                        (true, false) => endpoints.pause(name),
                        (false, true) => endpoints.resume(name),
                        _ => Ok(()),
                    }
                })
        }
        Change::Removed { name, .. } => match endpoints.remove(name) {
            Ok(_) | Err(Error::UnknownEndpoint { .. }) => Ok(()),
            Err(e) => Err(e),
        },
        // Its old settings (an old URL, revoked secrets) must not go on: it is paused, and
        // its events wait, until a change this relay can read.
        Change::Unreadable { name, reason, .. } => {
            log::error!(
                target: deskhook::LOG_TARGET,
                "endpoints bucket, revision {}: endpoint '{name}' changed, but this relay cannot \
                 read the change ({reason}); it is paused here until it can",
                change.revision()
            );
            match endpoints.pause(name) {
                Ok(()) | Err(Error::UnknownEndpoint { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = result {
        // A change that cannot be applied here (a CA file missing on this relay, say) must
        // not leave the old settings delivering either: one registered already is paused.
        let paused = matches!(change, Change::Put(_)) && endpoints.pause(change.name()).is_ok();
        log::warn!(
            target: deskhook::LOG_TARGET,
            "endpoints bucket, revision {}: {e}; {}",
            change.revision(),
            if paused {
                "its endpoint is paused here until a change this relay can apply"
            } else {
                "left out"
            }
        );
    }
}

/// Applies each new set of the configuration's endpoints: upserts them, removes those of the
/// previous set that are gone.
pub(super) async fn reload(
    http: DeliverySink,
    mut current: Vec<String>,
    mut reloads: tokio::sync::mpsc::UnboundedReceiver<Reload>,
) {
    while let Some((set, applied)) = reloads.recv().await {
        let endpoints = http.endpoints();
        let names: Vec<String> = set.iter().map(|e| e.name().to_owned()).collect();
        for endpoint in set {
            let name = endpoint.name().to_owned();
            if let Err(e) = endpoints.upsert(endpoint) {
                log::warn!(target: deskhook::LOG_TARGET, "reload: endpoint '{name}': {e}; left as it was");
            }
        }
        for gone in current.iter().filter(|name| !names.contains(name)) {
            if let Err(e) = endpoints.remove(gone) {
                log::warn!(target: deskhook::LOG_TARGET, "reload: endpoint '{gone}': {e}");
            }
        }
        current = names;
        let _ = applied.send(());
    }
}

/// A new set of a relay's configured endpoints, and whom to tell once it is applied (see
/// [`Relay::reloads`](super::Relay::reloads)).
pub type Reload = (
    Vec<crate::delivery::Endpoint>,
    tokio::sync::oneshot::Sender<()>,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::EndpointSpec;
    use crate::endpoint_store::StoredEndpoint;

    fn put(url: &str, revision: u64) -> Result<Change, Error> {
        let mut spec = EndpointSpec::new("crm", url.to_owned());
        spec.allow_private = true;
        Ok(Change::Put(Box::new(StoredEndpoint {
            spec,
            paused: false,
            revision,
        })))
    }

    #[test]
    fn old_revisions_replayed_by_the_watch_are_skipped() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let (http, guard) = DeliverySink::builder()
                .dead_letter_path(dir.path().join("dead.jsonl"))
                .build_async()
                .unwrap();
            let revision = Arc::new(AtomicU64::new(0));
            // Started from a list holding revision 5 of crm, the bucket at revision 6 (erp
            // was removed at 6); the watch brings 5 again, then the bucket's history (3, 4,
            // and erp's put at 2), then a new change (7), then 6 late.
            let mut erp = put("http://127.0.0.1:1/erp", 2).unwrap();
            if let Change::Put(stored) = &mut erp {
                stored.spec.name = "erp".into();
            }
            let changes = futures_util::stream::iter([
                put("http://127.0.0.1:1/five", 5),
                put("http://127.0.0.1:1/three", 3),
                Ok(erp),
                put("http://127.0.0.1:1/four", 4),
                put("http://127.0.0.1:1/seven", 7),
                put("http://127.0.0.1:1/six", 6),
            ]);
            let seen = HashMap::from([("crm".to_owned(), 5)]);
            follow(http.clone(), changes, (seen, 6), revision.clone(), None).await;
            let lane = http.engine().registry().get("crm").unwrap();
            assert_eq!(
                lane.route().endpoint.url.as_str(),
                "http://127.0.0.1:1/seven"
            );
            assert_eq!(revision.load(Ordering::Relaxed), 7);
            // The removed endpoint does not come back from the history.
            assert!(http.endpoints().get("erp").is_err());
            guard
                .shutdown_async(std::time::Duration::from_secs(1))
                .await
                .unwrap();
        });
    }
}
