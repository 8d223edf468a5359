//! `deskhook publish`: events into the relays' stream, as a helpdesk's NatsSink publishes
//! them.

use std::process::ExitCode;
use std::time::Duration;

use deskhook::Dispatcher;
use deskhook::policy::RetrySchedule;
use deskhook_transports::delivery::{AttemptOutcome, AttemptRecord};
use deskhook_transports::nats::{NatsSink, StreamSettings, partition_of};

/// How long the command waits for JetStream to store the events.
const WAIT: Duration = Duration::from_secs(30);

/// Publish events to the relays' JetStream stream, as a helpdesk's NatsSink does
///
/// The events are made as `deskhook send` makes them (the same --format, --action,
/// --all-actions, --event, --description and --tenant) and published through a NatsSink to
/// the stream (made if missing, as a NatsSink makes it). Running relays (`deskhook relay`)
/// then deliver them to their endpoints: a way to try relays, and their endpoints bucket,
/// from the shell. Prints a line per event once JetStream has stored it:
///
///   published  create   E3XK  partition 5 of 16
///
/// then how many were stored. Waits 30 s at most; exits 0 only if every event was stored
/// (what was not is dead-lettered, and the file named).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    nats: crate::flags::Nats,
    /// The JetStream stream (as the relays' --stream).
    #[arg(long, value_name = "NAME", default_value = deskhook_transports::nats::DEFAULT_STREAM)]
    stream: String,
    /// The subject prefix (as the relays' --subject-prefix).
    #[arg(long, value_name = "PREFIX", default_value = deskhook_transports::nats::DEFAULT_SUBJECT_PREFIX)]
    subject_prefix: String,
    #[command(flatten)]
    events: crate::events::EventArgs,
}

/// The stream's settings: its partition count and storage when it exists (as relays take
/// them), so that publishing into a stream made with other settings is not a conflict.
fn stream_settings(args: &Args) -> Result<StreamSettings, String> {
    let settings = StreamSettings::new()
        .name(&args.stream)
        .subject_prefix(&args.subject_prefix);
    args.nats.with_context(async |context| {
        settings
            .of_existing(&context)
            .await
            .map_err(|e| e.to_string())
    })
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    args.events.check("publish");
    let events = args.events.events()?;
    let count = events.event_types().len();
    let stream = stream_settings(&args)?;
    let dead_letters = crate::send::temporary_dead_letter_file()?;
    let of = stream.partition_count();
    let observer = move |record: &AttemptRecord<'_>| {
        let line = match record.outcome {
            AttemptOutcome::Delivered => format!(
                "published  {:<8} {}  partition {} of {of}",
                record.event_type,
                crate::printable(record.ticket),
                partition_of(record.ticket, of)
            ),
            _ => crate::send::attempt_line(record, 4),
        };
        crate::send::print_line(&line);
    };
    let retry: RetrySchedule = "0s,1s,2s"
        .parse()
        .map_err(|e| format!("the retry schedule: {e}"))?;
    let (sink, guard) = NatsSink::builder(&args.nats.urls)
        .stream(stream)
        .require_server(true)
        .retry(retry)
        .dead_letter_path(&dead_letters)
        .observer(observer)
        .build()
        .map_err(|e| {
            let _ = std::fs::remove_file(&dead_letters);
            e.to_string()
        })?;
    let stream = sink.stream().stream_name().to_owned();
    let dispatcher = Dispatcher::builder().sink("nats", sink.clone()).build();
    events.emit(&dispatcher, args.events.tenant.as_deref());
    let finished = guard.shutdown(WAIT);
    let totals = sink.delivery().totals();
    let mut summary = format!(
        "{} of {count} event(s) stored in stream {stream}",
        totals.delivered
    );
    if totals.dropped > 0 {
        summary.push_str(&format!(", {} dropped (queue full)", totals.dropped));
    }
    if finished.is_err() {
        summary.push_str(&format!("; stopped waiting after {}s", WAIT.as_secs()));
    }
    if totals.dead_lettered > 0 {
        summary.push_str(&format!(
            "\ndead letters: {} (see them with: deskhook dead-letters list --file {0})",
            dead_letters.display()
        ));
    } else {
        let _ = std::fs::remove_file(&dead_letters);
    }
    crate::send::print_line(&summary);
    Ok(if totals.delivered == count as u64 && finished.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
