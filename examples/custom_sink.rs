//! cargo run --example custom_sink
//!
//! Two sinks of your own. `QueueSink` hands each event to a worker thread through a bounded
//! queue, so `emit` never waits on the slow part, and counts what it must drop when the
//! queue is full. `Audit` is an async sink subscribed to two actions only. Offline; exits by
//! itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use deskhook::sink::{AsyncEventSink, Emitted, EventId, EventSink};
use deskhook::{Action, Dispatcher, Error, sample};

/// What the worker needs: the body (a reference-counted `Bytes`, so no copy) and ids.
enum Job {
    Event {
        id: EventId,
        action: Action,
        ticket: String,
        body: bytes::Bytes,
    },
    Flush(mpsc::Sender<()>),
}

struct QueueSink {
    queue: SyncSender<Job>,
    dropped: AtomicU64,
    worker: Mutex<Option<JoinHandle<Vec<String>>>>,
}

impl QueueSink {
    fn new(capacity: usize) -> QueueSink {
        let (queue, jobs) = mpsc::sync_channel(capacity);
        let worker = std::thread::spawn(move || work(jobs));
        QueueSink {
            queue,
            dropped: AtomicU64::new(0),
            worker: Mutex::new(Some(worker)),
        }
    }

    /// Stops the worker and returns what it delivered.
    fn finish(self) -> Vec<String> {
        let worker = self.worker.lock().ok().and_then(|mut w| w.take());
        drop(self.queue);
        worker
            .map(|w| w.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

fn work(jobs: Receiver<Job>) -> Vec<String> {
    let mut delivered = Vec::new();
    for job in jobs {
        match job {
            // A real sink would POST the body, write it to a queue, a database…
            Job::Event {
                id,
                action,
                ticket,
                body,
            } => {
                delivered.push(format!("{id} {action:<8} {ticket} {} bytes", body.len()));
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
    delivered
}

impl EventSink for QueueSink {
    fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        let job = Job::Event {
            id: event.id(),
            action: event.action(),
            ticket: event.ordering_key().to_owned(),
            body: event.body().clone(),
        };
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Err(Error::sink(format!(
                    "queue full, event {} dropped",
                    event.id()
                )))
            }
            Err(TrySendError::Disconnected(_)) => Err(Error::sink("worker stopped")),
        }
    }

    fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let (done, wait) = mpsc::channel();
        self.queue
            .send(Job::Flush(done))
            .map_err(|_| Error::sink("worker stopped"))?;
        wait.recv_timeout(timeout)
            .map_err(|_| Error::sink(format!("queue not drained within {timeout:?}")))
    }
}

#[derive(Default)]
struct Audit(Mutex<Vec<String>>);

#[deskhook::sink::async_trait]
impl AsyncEventSink for Audit {
    async fn send(&self, event: &Emitted<'_>) -> Result<(), Error> {
        // Subscribed to two Zenlix actions only, so every event here is a Zenlix one.
        let Some(zenlix) = event.event() else {
            return Ok(());
        };
        let user = &zenlix.initial_user().email;
        let line = format!("{} by {user}", event.action());
        self.0
            .lock()
            .map_err(|_| Error::sink("audit lock poisoned"))?
            .push(line);
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue = Arc::new(QueueSink::new(64));
    let audit = Arc::new(Audit::default());
    let dispatcher = Dispatcher::builder()
        .sink("queue", queue.clone())
        .async_sink_for("audit", audit.clone(), [Action::Delete, Action::Restore])
        .build();

    let ticket = sample::ticket();
    let user = sample::user();
    for action in Action::ALL {
        dispatcher.emit(action, &ticket, &user);
    }
    dispatcher.flush(Duration::from_secs(5))?;

    let stats = dispatcher.stats();
    drop(dispatcher);
    let queue = Arc::try_unwrap(queue).map_err(|_| "queue sink still shared")?;
    let dropped = queue.dropped.load(Ordering::Relaxed);
    let delivered = queue.finish();

    println!(
        "The worker delivered {} events ({dropped} dropped):",
        delivered.len()
    );
    for line in &delivered {
        println!("  {line}");
    }
    println!("The audit sink saw:");
    for line in audit.0.lock().map_err(|_| "audit lock poisoned")?.iter() {
        println!("  {line}");
    }
    for sink in &stats.sinks {
        println!(
            "sink {:<5} subscribed to {:<14} sent {:>2}",
            sink.name,
            sink.subscription.to_string(),
            sink.sent
        );
    }
    if delivered.len() != 12 || audit.0.lock().map_err(|_| "poisoned")?.len() != 2 {
        return Err("the sinks did not receive what they subscribed to".into());
    }
    Ok(())
}
