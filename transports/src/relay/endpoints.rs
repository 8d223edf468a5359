//! What changes a running relay's endpoints: the KV bucket it follows, and new sets of its
//! configured endpoints (a `--config` re-read on SIGHUP).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::delivery::{DeliverySink, Endpoint, lock};
use crate::endpoint_store::Change;
use crate::error::Error;

/// Applies the bucket's `changes` to the relay's registry as they come, each endpoint's
/// in revision order: `seen` holds the revision last applied of each (from the list the
/// relay started with), and `floor` the bucket's last revision before that list was read
/// (for endpoints not in it: removed, or unreadable). A change at or below these is
/// skipped: the watch brings again the changes the list already had, and may replay the
/// bucket's history (async-nats makes its consumer again when it reconnects), which would
/// bring old URLs and secrets back for a moment, and removed endpoints with them.
/// `revision` follows the watch, which brings every change after `floor` in order: each
/// change it brings, applied or skipped, is the last one up to which all are applied.
pub(super) async fn follow(
    http: DeliverySink,
    sources: Arc<Mutex<Sources>>,
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
                if at > last {
                    seen.insert(change.name().to_owned(), at);
                    // What cannot be used is logged; no start to refuse any more.
                    let _ = from_bucket(&http, &sources, &change);
                }
                if revision.fetch_max(at, Ordering::Relaxed) < at {
                    log::info!(target: deskhook::LOG_TARGET, "endpoints at revision {at}");
                    if let Some(applied) = &applied {
                        applied(at);
                    }
                }
            }
            Err(e) => log::warn!(target: deskhook::LOG_TARGET, "endpoints bucket: {e}; left out"),
        }
    }
    // Aborted at the relay's stop, so only a watch that ended of itself comes here.
    log::error!(
        target: deskhook::LOG_TARGET,
        "endpoints bucket: its watch ended; this relay no longer applies the bucket's changes \
         (restart it to follow them again)"
    );
}

/// Where a relay's endpoints come from when it has both a configuration and an endpoints
/// bucket. A name is the bucket's when the bucket has a record of it: the configuration's
/// endpoint of that name is set aside (logged), and takes over again when the bucket's
/// record is removed. So moving an endpoint from `--config` to the bucket (`deskhook
/// endpoints add`, then its `[[endpoint]]` table deleted and SIGHUP) never removes it, and
/// a SIGHUP never puts an old URL or revoked secrets back over the bucket's record.
#[derive(Default)]
pub(super) struct Sources {
    /// The configuration's endpoints, its last set (a file's: few).
    configured: Vec<Endpoint>,
    /// The names the bucket has a record of.
    in_bucket: HashSet<String>,
}

impl Sources {
    /// The sources of a relay started with the configuration's `configured` endpoints.
    pub(super) fn new(configured: Vec<Endpoint>) -> Arc<Mutex<Sources>> {
        Arc::new(Mutex::new(Sources {
            configured,
            in_bucket: HashSet::new(),
        }))
    }

    fn configured(&self, name: &str) -> Option<&Endpoint> {
        self.configured.iter().find(|e| e.name() == name)
    }
}

/// Applies one change of the endpoints bucket, the bucket's record winning over the
/// configuration's endpoint of the same name (see [`Sources`]).
///
/// # Errors
///
/// Why the change's record cannot be used here (logged already): an endpoint the relay had
/// is paused then, one it had not is left out.
pub(super) fn from_bucket(
    http: &DeliverySink,
    sources: &Mutex<Sources>,
    change: &Change,
) -> Result<(), String> {
    let mut sources = lock(sources);
    let name = change.name();
    if let Change::Removed { .. } = change {
        sources.in_bucket.remove(name);
        if let Some(endpoint) = sources.configured(name) {
            log::info!(
                target: deskhook::LOG_TARGET,
                "endpoints bucket, revision {}: endpoint '{name}' removed; the relay's \
                 configured endpoint of that name takes over again",
                change.revision()
            );
            let endpoints = http.endpoints();
            if let Err(e) = endpoints
                .upsert(endpoint.clone())
                .and_then(|_| endpoints.resume(name))
            {
                // Not with the removed record's settings either: its events wait.
                let paused = endpoints.pause(name).is_ok();
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "endpoint '{name}': {e}{}",
                    if paused { "; paused until a change this relay can apply" } else { "" }
                );
                return Err(e.reason());
            }
            return Ok(());
        }
    } else if sources.in_bucket.insert(name.to_owned()) && sources.configured(name).is_some() {
        log::warn!(
            target: deskhook::LOG_TARGET,
            "endpoints bucket, revision {}: endpoint '{name}' is also in the relay's \
             configuration; the bucket's record is used, the configuration's set aside until \
             the bucket's is removed",
            change.revision()
        );
    }
    apply(http, change)
}

/// Applies one change of the endpoints bucket; what cannot be applied is logged, and
/// returned.
fn apply(http: &DeliverySink, change: &Change) -> Result<(), String> {
    let endpoints = http.endpoints();
    let mut unusable = None;
    let result = match change {
        Change::Put(stored) => {
            let name = &stored.spec.name;
            // One to be paused is paused before it takes the new settings, which it must
            // not try. (An unknown name is not asked for: its error would look for a name
            // like it among all, and a relay loads thousands of records at its start.)
            let paused_first = if stored.paused && endpoints.contains(name) {
                match endpoints.pause(name) {
                    Err(Error::UnknownEndpoint { .. }) => Ok(()),
                    done => done,
                }
            } else {
                Ok(())
            };
            paused_first
                .map_err(crate::delivery::SpecError::whole)
                .and_then(|()| endpoints.upsert_spec_paused(&stored.spec, stored.paused))
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
            unusable = Some(reason.clone());
            log::error!(
                target: deskhook::LOG_TARGET,
                "endpoints bucket, revision {}: this relay cannot read the record of endpoint \
                 '{name}' ({reason}); it is paused here, if it delivers here, until a record \
                 it can read",
                change.revision()
            );
            match endpoints.contains(name).then(|| endpoints.pause(name)) {
                None | Some(Ok(()) | Err(Error::UnknownEndpoint { .. })) => Ok(()),
                Some(Err(e)) => Err(e),
            }
        }
    };
    if let Err(e) = result {
        // A change that cannot be applied here (a CA file missing on this relay, say) must
        // not leave the old settings delivering either: one registered already is paused,
        // one that is not is held.
        let kept = match change {
            Change::Put(_) if endpoints.contains(change.name()) => {
                endpoints.pause(change.name()).is_ok()
            }
            Change::Put(stored) => hold(&endpoints, &stored.spec),
            _ => false,
        };
        log::warn!(
            target: deskhook::LOG_TARGET,
            "endpoints bucket, revision {}: {e}; {}",
            change.revision(),
            if kept {
                "its endpoint is paused here, its events kept, until a change this relay can \
                 apply"
            } else {
                "left out"
            }
        );
        return Err(e.reason());
    }
    unusable.map_or(Ok(()), Err)
}

/// Registers a stand-in for an endpoint whose record was read (and, with a key, its seal
/// checked) but whose settings do not work on this relay (a `ca_file` or `template_file`
/// missing here, a `secret_env` not set): paused, with the record's URL, tenant and event
/// types and no more, so that its events are kept (parked) for it rather than acknowledged
/// as no endpoint's. It never delivers: a change this relay can apply replaces it (and
/// resumes it, unless paused); a removal dead-letters what it kept. Whether it is
/// registered.
fn hold(endpoints: &crate::delivery::Endpoints, spec: &crate::delivery::EndpointSpec) -> bool {
    let mut stand_in = crate::delivery::EndpointSpec::new(spec.name.clone(), spec.url.clone());
    stand_in.tenant.clone_from(&spec.tenant);
    stand_in.actions.clone_from(&spec.actions);
    stand_in.allow_private = spec.allow_private;
    stand_in.allow_cidrs.clone_from(&spec.allow_cidrs);
    endpoints.upsert_spec_paused(&stand_in, true).is_ok()
}

/// Applies each new set of the configuration's endpoints: upserts them, removes those of the
/// previous set that are gone; names the bucket has are left to the bucket (see
/// [`Sources`]).
pub(super) async fn reload(
    http: DeliverySink,
    sources: Arc<Mutex<Sources>>,
    mut reloads: tokio::sync::mpsc::UnboundedReceiver<Reload>,
) {
    while let Some((set, applied)) = reloads.recv().await {
        reload_one(&http, &mut lock(&sources), set);
        let _ = applied.send(());
    }
}

fn reload_one(http: &DeliverySink, sources: &mut Sources, set: Vec<Endpoint>) {
    let endpoints = http.endpoints();
    for endpoint in &set {
        let name = endpoint.name();
        if sources.in_bucket.contains(name) {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "reload: endpoint '{name}' is in the endpoints bucket, whose record is used; \
                 the configuration's is set aside"
            );
        } else if let Err(e) = endpoints.upsert(endpoint.clone()) {
            log::warn!(target: deskhook::LOG_TARGET, "reload: endpoint '{name}': {e}; left as it was");
        }
    }
    let gone = sources
        .configured
        .iter()
        .map(Endpoint::name)
        .filter(|name| {
            !set.iter().any(|e| e.name() == *name) && !sources.in_bucket.contains(*name)
        });
    for name in gone {
        if let Err(e) = endpoints.remove(name) {
            log::warn!(target: deskhook::LOG_TARGET, "reload: endpoint '{name}': {e}");
        }
    }
    sources.configured = set;
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
        put_as("crm", url, revision)
    }

    fn put_as(name: &str, url: &str, revision: u64) -> Result<Change, Error> {
        let mut spec = EndpointSpec::new(name, url.to_owned());
        spec.allow_private = true;
        Ok(Change::Put(Box::new(StoredEndpoint {
            spec,
            paused: false,
            revision,
            previous_key: false,
            layout: crate::endpoint_store::LAYOUT,
        })))
    }

    /// Runs `test` with a sink on a runtime of its own, then shuts the sink down.
    fn with_sink<F: std::future::Future<Output = ()>>(test: impl FnOnce(DeliverySink) -> F) {
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
            test(http).await;
            guard
                .shutdown_async(std::time::Duration::from_secs(1))
                .await
                .unwrap();
        });
    }

    #[test]
    fn old_revisions_replayed_by_the_watch_are_skipped() {
        with_sink(|http| async move {
            let revision = Arc::new(AtomicU64::new(0));
            // Started from a list holding revision 5 of crm, the bucket at revision 6 (erp
            // was removed at 6); the watch brings 5 again, then the bucket's history (3, 4,
            // and erp's put at 2), then a new change (7), then 6 late.
            let changes = futures_util::stream::iter([
                put("http://127.0.0.1:1/five", 5),
                put("http://127.0.0.1:1/three", 3),
                put_as("erp", "http://127.0.0.1:1/erp", 2),
                put("http://127.0.0.1:1/four", 4),
                put("http://127.0.0.1:1/seven", 7),
                put("http://127.0.0.1:1/six", 6),
            ]);
            let seen = HashMap::from([("crm".to_owned(), 5)]);
            let sources = Sources::new(Vec::new());
            follow(
                http.clone(),
                sources,
                changes,
                (seen, 6),
                revision.clone(),
                None,
            )
            .await;
            let lane = http.engine().registry().get("crm").unwrap();
            assert_eq!(
                lane.route().endpoint.url.as_str(),
                "http://127.0.0.1:1/seven"
            );
            assert_eq!(revision.load(Ordering::Relaxed), 7);
            // The removed endpoint does not come back from the history.
            assert!(http.endpoints().get("erp").is_err());
        });
    }

    #[test]
    fn the_revision_told_is_the_last_up_to_which_every_change_is_applied() {
        with_sink(|http| async move {
            // The bucket was at 6 when the relay started; its list already held crm's
            // change 8, made meanwhile. The watch brings every change after 6 in order:
            // erp's 7, then crm's 8 again. 8 is told only once 7 is applied.
            let changes = futures_util::stream::iter([
                put_as("erp", "http://127.0.0.1:1/erp", 7),
                put("http://127.0.0.1:1/8", 8),
            ]);
            let told = Arc::new(Mutex::new(Vec::new()));
            let tell = {
                let told = told.clone();
                Arc::new(move |revision| told.lock().unwrap().push(revision))
                    as Arc<dyn Fn(u64) + Send + Sync>
            };
            let revision = Arc::new(AtomicU64::new(6));
            let seen = HashMap::from([("crm".to_owned(), 8)]);
            let sources = Sources::new(Vec::new());
            follow(
                http.clone(),
                sources,
                changes,
                (seen, 6),
                revision.clone(),
                Some(tell),
            )
            .await;
            assert_eq!(*told.lock().unwrap(), [7u64, 8]);
            assert_eq!(revision.load(Ordering::Relaxed), 8);
            assert!(http.endpoints().get("erp").is_ok());
            // crm's 8 was the list's to apply: not applied again here.
            assert!(http.endpoints().get("crm").is_err());
        });
    }

    #[test]
    fn the_buckets_record_of_a_name_wins_over_the_configurations() {
        let dir = tempfile::tempdir().unwrap();
        let configured = |url: &str| {
            crate::delivery::Endpoint::new("crm", url)
                .unwrap()
                .allow_private(true)
        };
        let (http, guard) = DeliverySink::builder()
            .dead_letter_path(dir.path().join("dead.jsonl"))
            .endpoint(configured("http://127.0.0.1:1/file"))
            .build_async()
            .unwrap();
        let url = |http: &DeliverySink| {
            let lane = http.engine().registry().get("crm").unwrap();
            lane.route().endpoint.url.as_str().to_owned()
        };
        let sources = Sources::new(vec![configured("http://127.0.0.1:1/file")]);
        // The bucket's record replaces the configuration's endpoint.
        from_bucket(
            &http,
            &sources,
            &put("http://127.0.0.1:1/bucket", 2).unwrap(),
        )
        .unwrap();
        assert_eq!(url(&http), "http://127.0.0.1:1/bucket");
        // A reload that still has it, with another URL, does not put it back; one without
        // it does not remove the bucket's.
        reload_one(
            &http,
            &mut lock(&sources),
            vec![configured("http://127.0.0.1:1/file2")],
        );
        assert_eq!(url(&http), "http://127.0.0.1:1/bucket");
        reload_one(&http, &mut lock(&sources), Vec::new());
        assert_eq!(url(&http), "http://127.0.0.1:1/bucket");
        // Removed from the bucket: the configuration's takes over again if it has the name
        // (active, whatever the bucket's state was), and is gone if it has not.
        let removed = Change::Removed {
            name: "crm".into(),
            revision: 3,
        };
        from_bucket(&http, &sources, &removed).unwrap();
        assert!(http.endpoints().get("crm").is_err());
        from_bucket(
            &http,
            &sources,
            &put("http://127.0.0.1:1/bucket", 4).unwrap(),
        )
        .unwrap();
        http.endpoints().pause("crm").unwrap();
        reload_one(
            &http,
            &mut lock(&sources),
            vec![configured("http://127.0.0.1:1/file3")],
        );
        from_bucket(&http, &sources, &removed).unwrap();
        assert_eq!(url(&http), "http://127.0.0.1:1/file3");
        let state = |http: &DeliverySink| http.endpoints().get("crm").unwrap().state;
        assert_eq!(state(&http), crate::delivery::EndpointState::Active);
        // A record this relay cannot read (at its start, or changed so) claims the name
        // too: the configured endpoint is paused, and a reload does not put it back.
        let unreadable = Change::Unreadable {
            name: "crm".into(),
            revision: 5,
            reason: "sealed under another key".into(),
        };
        assert_eq!(
            from_bucket(&http, &sources, &unreadable).unwrap_err(),
            "sealed under another key"
        );
        assert_eq!(state(&http), crate::delivery::EndpointState::Paused);
        reload_one(
            &http,
            &mut lock(&sources),
            vec![configured("http://127.0.0.1:1/file4")],
        );
        assert_eq!(url(&http), "http://127.0.0.1:1/file3");
        assert_eq!(state(&http), crate::delivery::EndpointState::Paused);
        guard.shutdown(std::time::Duration::from_secs(1)).unwrap();
    }
}
