//! What changes a running relay's endpoints: the KV bucket it follows, and new sets of its
//! configured endpoints (a `--config` re-read on SIGHUP).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::delivery::DeliverySink;
use crate::endpoint_store::Change;
use crate::error::Error;

/// Applies the bucket's `changes` to the relay's registry as they come.
pub(super) async fn follow(
    http: DeliverySink,
    changes: impl futures_util::Stream<Item = Result<Change, Error>> + Send,
    revision: Arc<AtomicU64>,
    applied: Option<Arc<dyn Fn(u64) + Send + Sync>>,
) {
    use futures_util::StreamExt as _;
    let mut changes = std::pin::pin!(changes);
    while let Some(change) = changes.next().await {
        match change {
            Ok(change) => {
                apply(&http, &change);
                let at = change.revision();
                revision.fetch_max(at, Ordering::Relaxed);
                log::info!(target: deskhook::LOG_TARGET, "endpoints at revision {at}");
                if let Some(applied) = &applied {
                    applied(at);
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
        log::warn!(
            target: deskhook::LOG_TARGET,
            "endpoints bucket, revision {}: {e}; left out",
            change.revision()
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
