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

/// Whether consumer `name` is one the relays named `durable` make:
/// `<durable>-<partition>-<lease revision>`.
pub(super) fn is_ours(durable: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(durable).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    let numbers: Vec<&str> = rest.split('-').collect();
    numbers.len() == 2
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
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
             --durable {group} (`Relay::durable`). If those relays are gone for good, run one \
             relay named '{group}' and stop it: it deletes their consumers as it hands their \
             partitions back (what they parked waits for relays of that name: `deskhook parked \
             --durable {group}`)"
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
            &config.filter_subject[..],
        );
        if let Some(why) = obstacle(consumer, settings, durable) {
            return Ok(Some(format!("stream '{}': {why}", settings.stream_name())));
        }
    }
    Ok(None)
}

/// Why the consumer `(name, description, filter)` keeps the relays named `durable` from a
/// partition of the stream of `settings`, if it does.
fn obstacle(
    (name, description, filter): (&str, Option<&str>, &str),
    settings: &StreamSettings,
    durable: &str,
) -> Option<String> {
    if is_ours(durable, name) {
        return None;
    }
    let partition = description
        .and_then(|d| d.strip_prefix(DESCRIPTION))
        .and_then(|n| n.parse().ok())
        .or_else(|| partition_filtered(settings, filter))?;
    let names = (settings.stream_name(), durable);
    Some(explain(name, description, partition, names))
}

/// The partition whose subjects `filter` is, when it is one of the stream's partition
/// filters.
fn partition_filtered(settings: &StreamSettings, filter: &str) -> Option<u32> {
    (0..settings.partition_count()).find(|&p| settings.partition_filter(p) == filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_groups_own_consumers_are_its_durable_a_partition_and_a_revision() {
        assert!(is_ours("deskhook-relay", "deskhook-relay-3-17"));
        assert!(!is_ours("deskhook-relay", "deskhook-relay-3"));
        assert!(!is_ours("deskhook-relay", "deskhook-relay-3-17-2"));
        assert!(!is_ours("deskhook-relay", "deskhook-relay-eu-3-17"));
        assert!(!is_ours("deskhook-relay", "other-3-17"));
        assert!(!is_ours("relay", "deskhook-relay-3-17"));
        assert!(!is_ours("deskhook-relay", "deskhook-relay--17"));
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
    fn only_partition_filters_and_relays_descriptions_are_obstacles() {
        let settings = StreamSettings::new().partitions(4);
        let info = |name, description, filter| (name, description, filter);
        let ours = info(
            "eu-2-5",
            Some("deskhook relay, partition 2"),
            "deskhook.*.*.2",
        );
        assert_eq!(obstacle(ours, &settings, "eu"), None);
        let theirs = info(
            "us-2-5",
            Some("deskhook relay, partition 2"),
            "deskhook.*.*.2",
        );
        assert!(obstacle(theirs, &settings, "eu").is_some());
        let by_hand = info("audit", None, "deskhook.*.*.1");
        assert!(obstacle(by_hand, &settings, "eu").is_some());
        let elsewhere = info("audit", None, "other.>");
        assert_eq!(obstacle(elsewhere, &settings, "eu"), None);
    }
}
