//! The registry of a running sink: endpoints added, changed, paused, resumed and removed
//! while events flow, tenants routing events, rate limits, bad input for every call.

mod changes;
mod routing;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use deskhook_tests::{Answer, Received, Receiver, WAIT};
use deskhook_transports::delivery::{DeliverySink, Endpoint};

/// An endpoint named `name` on `receiver`, at path `/<name>`.
fn at(name: &str, receiver: &Receiver) -> Endpoint {
    let url = format!("{}/{name}", receiver.url.trim_end_matches("/hook"));
    Endpoint::new(name, &url)
        .unwrap()
        .allow_private(true)
        .retry("0s,10ms,10ms".parse().unwrap())
        .timeout(Duration::from_secs(5))
}

/// The ticket codes each path got, in the order of arrival.
fn by_path(requests: &[Received]) -> BTreeMap<String, Vec<String>> {
    let mut sorted: Vec<&Received> = requests.iter().collect();
    sorted.sort_by_key(|r| r.index);
    let mut paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in sorted {
        let code = request.json()["ticket"]["code"]
            .as_str()
            .unwrap()
            .to_owned();
        paths.entry(request.path.clone()).or_default().push(code);
    }
    paths
}

/// Waits until `sink` has `n` attempts in flight.
fn wait_in_flight(sink: &DeliverySink, n: usize) {
    let deadline = std::time::Instant::now() + WAIT;
    while sink.totals().in_flight < n {
        assert!(std::time::Instant::now() < deadline, "not {n} in flight");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A receiver that holds every request until the test releases it (one release each), then
/// answers with `status(n)` for the n-th request.
fn holding(status: impl Fn(usize) -> u16 + Send + Sync + 'static) -> (Receiver, mpsc::Sender<()>) {
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let receiver = Receiver::start(move |_, n| {
        let _ = released.lock().unwrap().recv_timeout(WAIT);
        Answer::status(status(n))
    });
    (receiver, release)
}
