//! Eight threads emit through the global facade into one file log at once; every line comes
//! out whole, once, and in each thread's own order.

use std::collections::HashMap;

use deskhook::{Action, Dispatcher, Ticket, sample};
use deskhook_transports::file::{FileSink, FlushPolicy};
use serde_json::Value;

const THREADS: usize = 8;
const PER_THREAD: usize = 125;

#[test]
fn lines_from_eight_threads_are_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    // Buffered (written out whenever the next line would not fit in 64 KiB): lines of
    // ~9 KiB from eight threads, each written whole under the sink's lock.
    let sink = FileSink::builder(&path)
        .flush(FlushPolicy::Never)
        .build()
        .unwrap();
    deskhook::set_dispatcher(Dispatcher::builder().sink("file", sink).build()).unwrap();

    let user = sample::user();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let user = &user;
            s.spawn(move || {
                let mut ticket = sample::ticket();
                ticket.code = format!("T{t}");
                for i in 0..PER_THREAD {
                    ticket.subject = format!("{i}");
                    let action = Action::ALL[i % Action::ALL.len()];
                    deskhook::emit(action, &ticket, user);
                }
            });
        }
    });
    deskhook::flush().unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let mut next_per_ticket: HashMap<String, usize> = HashMap::new();
    let mut ids = std::collections::HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {} is not whole JSON: {e}", n + 1));
        let event = deskhook::Event::from_json(line["event"].to_string().as_bytes()).unwrap();
        let Ticket { code, subject, .. } = &event.ticket;
        let expected = next_per_ticket.entry(code.clone()).or_default();
        assert_eq!(subject, &expected.to_string(), "ticket {code} out of order");
        assert_eq!(line["action"], Action::ALL[*expected % 12].as_str());
        assert_eq!(event.action.as_str(), line["action"]);
        *expected += 1;
        assert!(
            ids.insert(line["id"].as_str().unwrap().to_owned()),
            "duplicate id"
        );
    }
    assert_eq!(ids.len(), THREADS * PER_THREAD);
    assert!(next_per_ticket.values().all(|n| *n == PER_THREAD));
    let stats = deskhook::dispatch::dispatcher().unwrap().stats();
    assert_eq!(stats.sinks[0].sent, (THREADS * PER_THREAD) as u64);
    assert_eq!(stats.sinks[0].failed, 0);
}
