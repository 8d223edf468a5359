//! The registry's locks against the lanes': an update, or a look at every endpoint's state,
//! that meets a lane a worker holds waits for it out of the registry's lock, so that routing
//! (every emit) and other changes go on meanwhile.

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::Engine;
use super::tests::{OUT_OF_THE_READ_LOCK, endpoint, engine_of};
use crate::delivery::{Lane, SinkBuilder, lock};

/// How long a test waits for what must not be held up.
const WAIT: Duration = Duration::from_secs(30);

/// An engine with one endpoint, `crm`, and its lane.
fn crm(dir: &tempfile::TempDir) -> (Arc<Engine>, Arc<Lane>) {
    let engine = engine_of(
        SinkBuilder::new(),
        vec![endpoint("crm", Duration::from_secs(60))],
        1,
        dir,
    );
    let lane = engine.registry().get("crm").expect("crm");
    (engine, lane)
}

/// An update of an endpoint whose lane is locked (a worker reading the spool holds it)
/// sets the new settings and lets go of the registry before it waits for the lane: routing,
/// which every emit does, is not held up meanwhile.
#[test]
fn an_update_waits_for_its_lane_without_holding_up_routing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (engine, lane) = crm(&dir);
    let before = lane.route();
    std::thread::scope(|scope| {
        let held = lock(&lane.state);
        let updating = scope.spawn(|| {
            crate::delivery::Endpoints::new(engine.clone())
                .upsert(endpoint("crm", Duration::from_secs(30)))
        });
        let deadline = Instant::now() + WAIT;
        while Arc::ptr_eq(&lane.route(), &before) {
            assert!(Instant::now() < deadline, "the settings were not set");
            std::thread::sleep(Duration::from_millis(1));
        }
        let (routed, routing) = mpsc::channel();
        let registry = engine.clone();
        scope.spawn(move || routed.send(registry.registry().get("crm").is_some()));
        assert_eq!(routing.recv_timeout(WAIT), Ok(true), "routing was held up");
        assert!(!updating.is_finished(), "the update waits for the lane");
        drop(held);
        let updated = updating.join().expect("the update ends");
        assert_eq!(
            updated.expect("updated"),
            crate::delivery::Upserted::Updated
        );
    });
}

/// A look at every endpoint's state (a count by state, a page of the active ones) while a
/// worker holds one lane's lock: it waits for that lane out of the registry's read lock, so
/// an upsert meanwhile, and every emit's routing behind it, are not held up.
#[test]
fn a_look_at_the_states_holds_up_no_upsert() {
    use crate::delivery::{EndpointQuery, EndpointState, Endpoints};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (engine, lane) = crm(&dir);
    std::thread::scope(|scope| {
        let held = lock(&lane.state);
        // Each walk says when it is out of the registry's read lock, about to wait for crm.
        let (out, walks_out) = mpsc::channel();
        let (counted, counting_engine) = (out.clone(), engine.clone());
        let counting = scope.spawn(move || {
            OUT_OF_THE_READ_LOCK.set(Some(Box::new(move || counted.send(()).unwrap())));
            Endpoints::new(counting_engine).count_by_state()
        });
        let paging_engine = engine.clone();
        let paging = scope.spawn(move || {
            OUT_OF_THE_READ_LOCK.set(Some(Box::new(move || out.send(()).unwrap())));
            let query = EndpointQuery {
                state: Some(EndpointState::Active),
                ..EndpointQuery::new()
            };
            Endpoints::new(paging_engine).page(&query)
        });
        for _ in 0..2 {
            assert_eq!(
                walks_out.recv_timeout(WAIT),
                Ok(()),
                "a walk kept the read lock"
            );
        }
        let (added, adding) = mpsc::channel();
        let registry = engine.clone();
        scope.spawn(move || {
            let upserted = Endpoints::new(registry).upsert(endpoint("audit", Duration::ZERO));
            added.send(upserted.is_ok())
        });
        assert_eq!(
            adding.recv_timeout(WAIT),
            Ok(true),
            "the upsert was held up"
        );
        assert!(!counting.is_finished() && !paging.is_finished());
        drop(held);
        let counts = counting.join().expect("the count ends");
        assert_eq!(counts[0].0, EndpointState::Active);
        assert!(counts[0].1 >= 1, "{counts:?}");
        let page = paging.join().expect("the page ends");
        assert!(page.items.iter().any(|e| e.name == "crm"), "{page:?}");
    });
}
