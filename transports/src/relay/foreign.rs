//! Consumers of the stream that are not this relay group's: relays with another durable
//! name, or a consumer someone made by hand on a partition's subjects.
//!
//! A work-queue stream gives each message to one consumer, and the server refuses a second
//! consumer on the same subjects. So a relay never deletes such a consumer to make its own
//! (that is what relays of one group do with each other's, under the leases): two groups
//! deleting each other's consumers lose, repeat and reorder events. A relay refuses to start
//! while one exists ([`first_obstacle`]); one found later (two groups started at once) is
//! reported, and its partition left to it, until it goes.

use async_nats::jetstream::stream::Stream;
use futures_util::StreamExt as _;

use crate::error::Error;
use crate::nats::StreamSettings;

/// What relays write in their consumers' descriptions, before the partition.
pub(super) const DESCRIPTION: &str = "deskhook relay, partition ";

/// The partition and lease revision in consumer `name`, when it is one the relays named
/// `durable` make: `<durable>-<partition>-<lease revision>`.
pub(super) fn parse_name(durable: &str, name: &str) -> Option<(u32, u64)> {
    let rest = name.strip_prefix(durable)?.strip_prefix('-')?;
    let (partition, revision) = rest.split_once('-')?;
    let digits = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    if !digits(partition) || !digits(revision) {
        return None;
    }
    Some((partition.parse().ok()?, revision.parse().ok()?))
}

/// Whether consumer `name` is one the relays named `durable` make.
pub(super) fn is_ours(durable: &str, name: &str) -> bool {
    parse_name(durable, name).is_some()
}

/// Whether a consumer with the subject filters `filters` (none: every subject of the
/// stream) takes messages of `partition_filter`'s subjects: the server refuses a relay's
/// consumer of the partition while it exists.
pub(super) fn takes(filters: &[&str], partition_filter: &str) -> bool {
    filters.is_empty() || filters.iter().any(|f| overlap(f, partition_filter))
}

/// Whether two NATS subject filters match a subject in common (`*` is one token, `>` one
/// or more at the end).
fn overlap(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) if x == y || x == "*" || y == "*" => {}
            _ => return false,
        }
    }
}

/// The subject filters of a consumer's configuration: its `filter_subject`, or none (every
/// subject). One with several (`filter_subjects`, which async-nats reads only with its
/// `server_2_10` feature) shows as one with none here: taken for one that takes every
/// partition, which is safe (it is reported, never deleted).
pub(super) fn filters_of(config: &async_nats::jetstream::consumer::Config) -> Vec<&str> {
    Some(config.filter_subject.as_str())
        .filter(|f| !f.is_empty())
        .into_iter()
        .collect()
}

/// The durable name of the relays that made consumer `name` of `partition`, when its name
/// and `description` say relays made it.
fn group_of<'a>(name: &'a str, description: Option<&str>, partition: u32) -> Option<&'a str> {
    description?.strip_prefix(DESCRIPTION)?;
    let (head, revision) = name.rsplit_once('-')?;
    if revision.is_empty() || !revision.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    head.strip_suffix(&format!("-{partition}")[..])
        .filter(|group| !group.is_empty())
}

/// Why consumer `name` of `partition` (its `description` as the server has it) keeps the
/// relays named `durable` from `partition`, and what to do.
pub(super) fn explain(
    name: &str,
    description: Option<&str>,
    partition: u32,
    (stream, durable): (&str, &str),
) -> String {
    match group_of(name, description, partition) {
        Some(group) => format!(
            "consumer '{name}' of partition {partition} belongs to other relays, named \
             '{group}', and this one is named '{durable}'. Relays of one stream share one \
             durable name (the stream gives each message to one consumer): start this one with \
             --durable {group} (`Relay::durable`). If those relays are gone for good, delete \
             their consumers, '{group}-<partition>-<lease>' (`nats consumer rm {stream} \
             {name}`, …): the stream keeps what they did not acknowledge. What they parked is \
             delivered only by relays named '{group}' (`deskhook parked --durable {group}` \
             shows it)"
        ),
        None => format!(
            "consumer '{name}' on partition {partition}'s subjects is not a relay's, and the \
             stream gives each message to one consumer: the relays cannot pull that partition \
             while it exists. Delete it if it is not needed (`nats consumer rm {stream} \
             {name}`)"
        ),
    }
}

/// What keeps the relays named `durable` from one of the partitions of `stream`, if
/// anything: another group's consumer, or one on a partition's subjects that no relay made
/// (see the module). A consumer of this group's is no obstacle: a relay replaces it.
///
/// # Errors
///
/// [`Error::Nats`] when the consumers cannot be listed.
pub(super) async fn first_obstacle(
    stream: &Stream,
    settings: &StreamSettings,
    durable: &str,
    urls: &str,
) -> Result<Option<String>, Error> {
    let mut consumers = stream.consumers();
    while let Some(info) = consumers.next().await {
        let info = info.map_err(|e| {
            super::nats_error(urls, format!("cannot list the stream's consumers: {e}"))
        })?;
        let config = &info.config;
        let consumer = (
            &info.name[..],
            config.description.as_deref(),
            &filters_of(config)[..],
        );
        if let Some(why) = obstacle(consumer, settings, durable) {
            return Ok(Some(format!("stream '{}': {why}", settings.stream_name())));
        }
    }
    Ok(None)
}

/// Why the consumer `(name, description, filters)` keeps the relays named `durable` from a
/// partition of the stream of `settings`, if it does.
fn obstacle(
    (name, description, filters): (&str, Option<&str>, &[&str]),
    settings: &StreamSettings,
    durable: &str,
) -> Option<String> {
    if is_ours(durable, name) {
        return None;
    }
    let partition =
        (0..settings.partition_count()).find(|&p| takes(filters, &settings.partition_filter(p)))?;
    let names = (settings.stream_name(), durable);
    Some(explain(name, description, partition, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_groups_own_consumers_are_its_durable_a_partition_and_a_revision() {
        assert_eq!(
            parse_name("deskhook-relay", "deskhook-relay-3-17"),
            Some((3, 17))
        );
        assert_eq!(parse_name("relay-3", "relay-3-3-17"), Some((3, 17)));
        for (durable, name) in [
            ("deskhook-relay", "deskhook-relay-3"),
            ("deskhook-relay", "deskhook-relay-3-17-2"),
            ("deskhook-relay", "deskhook-relay-eu-3-17"),
            ("deskhook-relay", "other-3-17"),
            ("relay", "deskhook-relay-3-17"),
            ("deskhook-relay", "deskhook-relay--17"),
            ("relay", "relay-3-3-17"),
        ] {
            assert!(!is_ours(durable, name), "{name} is not {durable}'s");
        }
    }

    #[test]
    fn subject_filters_overlap_token_by_token() {
        let partition = "deskhook.*.*.3";
        for filter in [
            "deskhook.*.*.3",
            "deskhook.>",
            ">",
            "deskhook.zenlix.create.3",
            "deskhook.*.*.*",
            "*.zenlix.*.3",
        ] {
            assert!(takes(&[filter], partition), "{filter}");
        }
        for filter in [
            "deskhook.*.*.4",
            "deskhook.zenlix.create",
            "deskhook.*.*.3.x",
            "other.>",
            "deskhook-dead.>",
        ] {
            assert!(!takes(&[filter], partition), "{filter}");
        }
        assert!(takes(&[], partition), "no filter: every subject");
        assert!(takes(&["other.>", "deskhook.*.*.3"], partition));
    }

    #[test]
    fn another_groups_consumer_is_named_by_its_group() {
        let said = |name: &str, description: Option<&str>| {
            explain(name, description, 3, ("DESKHOOK", "eu"))
        };
        let relays = said("deskhook-relay-3-17", Some("deskhook relay, partition 3"));
        assert!(
            relays.starts_with(
                "consumer 'deskhook-relay-3-17' of partition 3 belongs to other relays, named \
                 'deskhook-relay', and this one is named 'eu'."
            ) && relays.contains("--durable deskhook-relay"),
            "{relays}"
        );
        // A group whose name has numbers in it.
        let numbered = said("relay-3-3-17", Some("deskhook relay, partition 3"));
        assert!(numbered.contains("named 'relay-3'"), "{numbered}");
        for (name, description) in [
            ("audit", None),
            ("deskhook-relay-3-17", None),
            ("audit-3-1", Some("mine")),
        ] {
            let by_hand = said(name, description);
            assert!(
                by_hand.starts_with(&format!(
                    "consumer '{name}' on partition 3's subjects is not a relay's"
                )) && by_hand.ends_with(&format!("(`nats consumer rm DESKHOOK {name}`)")),
                "{by_hand}"
            );
        }
    }

    #[test]
    fn only_consumers_that_take_a_partition_and_are_not_the_groups_are_obstacles() {
        let settings = StreamSettings::new().partitions(4);
        let relay = Some("deskhook relay, partition 2");
        assert_eq!(
            obstacle(("eu-2-5", relay, &["deskhook.*.*.2"]), &settings, "eu"),
            None
        );
        assert!(obstacle(("us-2-5", relay, &["deskhook.*.*.2"]), &settings, "eu").is_some());
        let by_hand = obstacle(("audit", None, &["deskhook.*.*.1"]), &settings, "eu");
        assert!(
            by_hand.is_some_and(|why| why.contains("on partition 1's subjects")),
            "the partition it takes"
        );
        let everything = obstacle(("audit", None, &[]), &settings, "eu");
        assert!(everything.is_some_and(|why| why.contains("on partition 0's subjects")));
        assert_eq!(
            obstacle(("audit", None, &["other.>"]), &settings, "eu"),
            None
        );
    }
}
