//! The KV bucket itself, for the endpoints and for the relays' own buckets: its name,
//! opening (or making) it, and the error for one that does not exist.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt as _;

use crate::error::Error;

/// The error of a bucket that could not be used: what could not be done, and why.
pub(super) fn nats_error(bucket: &str, what: &str, e: impl fmt::Display) -> Error {
    Error::Config(format!("KV bucket '{bucket}': cannot {what}: {e}"))
}

/// Checks that `bucket` can name a KV bucket: letters, digits, `-` and `_` (JetStream's
/// rule), before any server is asked. Done by every call that opens a bucket; a command line
/// calls it to refuse a bad name before it connects.
///
/// # Errors
///
/// [`Error::Config`] naming the characters the name may not have.
///
/// # Examples
///
/// ```
/// use deskhook_transports::endpoint_store::check_bucket_name;
///
/// assert!(check_bucket_name("deskhook-endpoints").is_ok());
/// let err = check_bucket_name("my endpoints!").unwrap_err().to_string();
/// assert!(err.ends_with("has ' ' and '!'"), "{err}");
/// ```
pub fn check_bucket_name(bucket: &str) -> Result<(), Error> {
    match bucket_name_fault(bucket) {
        Some(fault) => Err(Error::Config(format!("KV bucket '{bucket}': {fault}"))),
        None => Ok(()),
    }
}

/// The error for `bucket`, which `get_key_value` could not open (`e`): when the servers
/// have no such bucket, it says so, with the bucket of theirs its name is closest to, or
/// the ones they have, and how it is made (by adding an endpoint, or `made_else`);
/// otherwise `e`.
pub(super) async fn not_opened(
    context: &jetstream::Context,
    bucket: &str,
    e: impl fmt::Display,
    made_else: &str,
) -> Error {
    // Not listed: the error as the server gave it.
    let Some(mut buckets) = bucket_names(context).await else {
        return nats_error(bucket, "open it", e);
    };
    if buckets.iter().any(|b| b == bucket) {
        return nats_error(bucket, "open it", e);
    }
    // Not the relays' own buckets: no endpoints bucket is named like them.
    buckets.retain(|b| !b.ends_with("-leases") && !b.ends_with("-parked"));
    Error::Config(format!(
        "there is no KV bucket '{bucket}' on these servers{}; a bucket is made by the first \
         endpoint added to it (`deskhook endpoints --bucket NAME add …`), {made_else}",
        others(bucket, buckets)
    ))
}

/// The names of the KV buckets on the servers of `context`; `None` when they cannot be
/// listed.
pub(crate) async fn bucket_names(context: &jetstream::Context) -> Option<Vec<String>> {
    let mut names = context.stream_names();
    let mut buckets = Vec::new();
    while let Some(name) = names.next().await {
        buckets.extend(name.ok()?.strip_prefix("KV_").map(str::to_owned));
    }
    Some(buckets)
}

/// How `not_opened` points to the buckets there are, instead of `bucket`.
fn others(bucket: &str, mut buckets: Vec<String>) -> String {
    let closest = buckets
        .iter()
        .map(|known| (strsim::jaro_winkler(bucket, known), known))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((_, known)) = closest {
        return format!(" (did you mean '{known}'?)");
    }
    buckets.sort();
    match buckets.len() {
        0 => " (nor any other)".to_owned(),
        1..=8 => format!(" (those there: {})", buckets.join(", ")),
        n => format!(" (there are {n} others: `nats kv ls` lists them)"),
    }
}

/// What is wrong with `bucket` as a KV bucket's name, if anything.
pub(crate) fn bucket_name_fault(bucket: &str) -> Option<String> {
    const RULE: &str = "a bucket's name is letters, digits, '-' and '_'";
    if bucket.is_empty() {
        return Some(format!("{RULE}, and cannot be empty"));
    }
    let mut bad: Vec<String> = Vec::new();
    for c in bucket.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
            continue;
        }
        let shown = format!("{c:?}");
        if !bad.contains(&shown) {
            bad.push(shown);
        }
    }
    let last = bad.pop()?;
    let listed = if bad.is_empty() {
        last
    } else {
        format!("{} and {last}", bad.join(", "))
    };
    Some(format!("{RULE}; this one has {listed}"))
}

/// Opens the KV bucket `bucket`, made when it does not exist with `history` values per key,
/// entries living `max_age` (zero: for ever) and `replicas` copies. The bucket's stream is
/// made here, as `create_key_value` makes it, because that call first reads the account's
/// limits in a shape nats-server 2.9 does not answer in. An error says what could not be
/// done ("create it", "open it") and why.
pub(crate) async fn open_bucket(
    context: &jetstream::Context,
    bucket: &str,
    description: &str,
    history: i64,
    max_age: Duration,
    replicas: usize,
) -> Result<kv::Store, (&'static str, String)> {
    if let Some(fault) = bucket_name_fault(bucket) {
        return Err(("use it", fault));
    }
    if let Ok(kv) = context.get_key_value(bucket).await {
        return Ok(kv);
    }
    let duplicate_window = if max_age.is_zero() {
        Duration::from_secs(120)
    } else {
        max_age.min(Duration::from_secs(120))
    };
    let made = context
        .get_or_create_stream(jetstream::stream::Config {
            name: format!("KV_{bucket}"),
            description: Some(description.to_owned()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: history,
            max_age,
            duplicate_window,
            max_bytes: -1,
            max_message_size: -1,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: replicas.max(1),
            discard: jetstream::stream::DiscardPolicy::New,
            ..jetstream::stream::Config::default()
        })
        .await;
    if let Err(e) = made {
        return Err((
            "create it",
            format!(
                "{e} (check that this user may create streams, and the account's JetStream \
                 limits: `nats account info`; or have an operator create it)"
            ),
        ));
    }
    context
        .get_key_value(bucket)
        .await
        .map_err(|e| ("open it", e.to_string()))
}

/// The last entry of `key` in `kv`, read from its stream's leader. The buckets allow direct
/// gets, which `kv.entry` makes and which any replica may answer, one behind the others too:
/// with an older entry, or none. A relay's starting list of endpoints read so could keep an
/// old URL or a secret revoked since (the watch that follows starts after them), and a lease
/// read so could name a relay that lost it.
///
/// # Errors
///
/// What the server said, when it did not answer with the entry or its absence.
pub(crate) async fn leader_entry(kv: &kv::Store, key: &str) -> Result<Option<kv::Entry>, String> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let message = match kv
        .stream
        .get_last_raw_message_by_subject(&format!("{}{key}", kv.prefix))
        .await
    {
        Ok(message) => message,
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    // As async-nats reads an entry: its operation header, or a marker's reason (a TTL's).
    let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_owned());
    let operation = match (header("KV-Operation"), header("Nats-Marker-Reason")) {
        (Some(op), _) => match op.as_str() {
            "PUT" => kv::Operation::Put,
            "DEL" => kv::Operation::Delete,
            "PURGE" => kv::Operation::Purge,
            other => return Err(format!("entry '{key}' has an unknown operation '{other}'")),
        },
        (None, Some(reason)) => match reason.as_str() {
            "MaxAge" | "Purge" => kv::Operation::Purge,
            "Remove" => kv::Operation::Delete,
            other => return Err(format!("entry '{key}' has an unknown marker '{other}'")),
        },
        (None, None) => kv::Operation::Put,
    };
    Ok(Some(kv::Entry {
        bucket: kv.name.clone(),
        key: key.to_owned(),
        value: message.payload,
        revision: message.sequence,
        delta: 0,
        created: message.time,
        operation,
        seen_current: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::{bucket_name_fault, others};

    #[test]
    fn a_missing_bucket_points_to_the_closest_or_lists_those_there() {
        let there = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
        assert_eq!(
            others(
                "deskhook_endpoint",
                there(&["deskhook-relay-leases", "deskhook_endpoints"])
            ),
            " (did you mean 'deskhook_endpoints'?)"
        );
        assert_eq!(
            others(
                "crm",
                there(&["staging_endpoints", "deskhook-relay-leases"])
            ),
            " (those there: deskhook-relay-leases, staging_endpoints)"
        );
        assert_eq!(others("crm", Vec::new()), " (nor any other)");
        let many: Vec<String> = (0..9).map(|n| format!("tenant-{n}")).collect();
        assert_eq!(
            others("crm", many),
            " (there are 9 others: `nats kv ls` lists them)"
        );
    }

    #[test]
    fn a_bucket_name_out_of_jetstreams_rule_names_each_character_once() {
        assert_eq!(bucket_name_fault("deskhook_endpoints-2"), None);
        assert_eq!(
            bucket_name_fault("a.b.c").as_deref(),
            Some("a bucket's name is letters, digits, '-' and '_'; this one has '.'")
        );
        assert_eq!(
            bucket_name_fault("é/x y").as_deref(),
            Some("a bucket's name is letters, digits, '-' and '_'; this one has 'é', '/' and ' '")
        );
        assert!(
            bucket_name_fault("")
                .unwrap()
                .ends_with("and cannot be empty")
        );
    }
}
