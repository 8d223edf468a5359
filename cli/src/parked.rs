//! `deskhook parked --nats URL`: what the relays have parked, by endpoint.

use std::process::ExitCode;

/// Show what relays have parked for failing endpoints, by endpoint
///
/// Parked events are those failing endpoints hold up: a relay writes them to the KV bucket
/// DURABLE-parked (and acknowledges them in the stream) so that its partitions go on without
/// them (see `deskhook relay --park-after`). They are retried on their endpoints'
/// schedules, and delivered by the next relay if this one stops.
///
/// One line per endpoint, most events first:
///
///   crm  120 event(s)  partitions 0,3,7  oldest parked 2026-12-01T14:02:11Z (182 s ago)
///
/// or `nothing is parked`; a --durable no relay has run with is an error naming those
/// that have. Entries this deskhook cannot read (written by a newer one's relays) are
/// said on stderr, left out of the lines, and make the exit status 1. An event counts for
/// each endpoint its entry named when it was parked (one that delivered it since still
/// counts until the others have). With --json, one object per endpoint and line:
/// {"endpoint":"crm","events":120,"partitions":[0,3,7],"oldest":"2026-12-01T14:02:11Z"}.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    nats: crate::flags::Nats,
    /// The relays' durable name (`deskhook relay --durable`).
    #[arg(long, value_name = "NAME", default_value = "deskhook-relay")]
    durable: String,
    /// One JSON object per endpoint and line.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    let summary = args.nats.with_context(async |context| {
        deskhook_transports::relay::parked(&context, &args.durable)
            .await
            .map_err(|e| e.to_string())
    })?;
    let endpoints = &summary.endpoints;
    if endpoints.is_empty() && summary.unreadable.is_empty() && !args.json {
        crate::send::print_out("nothing is parked")?;
    }
    let now = jiff::Timestamp::now();
    for endpoint in endpoints {
        let partitions: Vec<String> = endpoint.partitions.iter().map(u32::to_string).collect();
        let oldest = endpoint.oldest.map(|at| format!("{at:.0}"));
        let line = if args.json {
            serde_json::json!({
                "endpoint": endpoint.endpoint,
                "events": endpoint.events,
                "partitions": endpoint.partitions,
                "oldest": oldest,
            })
            .to_string()
        } else {
            let since = match (&oldest, endpoint.oldest) {
                (Some(shown), Some(at)) => format!(
                    "  oldest parked {shown} ({} s ago)",
                    now.duration_since(at).as_secs().max(0)
                ),
                _ => String::new(),
            };
            // The name as the entry's header says it, written by anyone who can write there.
            format!(
                "{}  {} event(s)  partitions {}{since}",
                crate::printable(&endpoint.endpoint),
                endpoint.events,
                partitions.join(",")
            )
        };
        crate::send::print_out(&line)?;
    }
    if summary.unreadable.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    // Left out of the lines above: said, and the exit status says the list is not whole.
    for why in &summary.unreadable {
        eprintln!("deskhook: {}", crate::printable(why));
    }
    eprintln!(
        "deskhook: {} parked entr{} could not be read, and their events are not counted \
         above: run a deskhook as new as the relays that wrote them",
        summary.unreadable.len(),
        if summary.unreadable.len() == 1 {
            "y"
        } else {
            "ies"
        }
    );
    Ok(ExitCode::FAILURE)
}
