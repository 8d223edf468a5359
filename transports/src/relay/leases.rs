//! Who owns which partition: leases in a JetStream KV bucket (`<durable>-leases`) whose
//! entries expire after the bucket's `max_age` (the lease) unless renewed.
//!
//! Keys: `m.<relay>` for each live relay (its membership), `p.<partition>` for each owned
//! partition, valued with the owner's id. A relay takes a free partition with a create (it
//! fails when the key exists), renews what it holds with an update at the revision it last
//! wrote (it fails when another relay took the key meanwhile), and gives a partition back by
//! deleting its key at that revision. Expiry needs no tombstone, so relays look at the
//! bucket every third of the lease as well as when it changes.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt as _;

use crate::endpoint_store::{leader_entry, open_bucket};
use crate::error::Error;

/// A relay's view of the leases bucket.
pub(super) struct Leases {
    kv: kv::Store,
    bucket: String,
    /// This relay's id.
    pub(super) me: String,
    /// How long an entry lives without renewal (the bucket's `max_age`).
    pub(super) lease: Duration,
}

/// What renewing a lease found.
pub(super) enum Renewed {
    /// Renewed, at this revision.
    At(u64),
    /// Found renewed at this revision by an earlier request whose answer was lost (so at
    /// a time not known).
    Earlier(u64),
    /// Another relay holds it now (ours expired).
    Lost,
    /// The servers did not answer; try again.
    Unknown(String),
}

/// What a relay should do to hold its share: partitions to take (in order of preference)
/// and how many to give back.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) take: Vec<u32>,
    pub(super) give: usize,
}

/// What to say when the leases bucket `bucket` exists with a lease (`found`) other than the
/// one this relay was given (`asked`): it is the bucket's that counts, for every relay.
fn other_lease(bucket: &str, asked: Duration, found: Duration) -> Option<String> {
    (asked != found && !found.is_zero()).then(|| {
        format!(
            "the relays' leases bucket '{bucket}' has leases of {found:?}, which this relay \
             uses, not the {asked:?} it was given (the bucket's is every relay's: to change \
             it, stop the relays and delete the bucket, nats kv del {bucket})"
        )
    })
}

/// A relay's share of `partitions` among `members` relays: a partition more than the even
/// share, so that every partition has room somewhere.
pub(super) fn share(partitions: u32, members: usize) -> usize {
    (partitions as usize).div_ceil(members.max(1))
}

/// The plan of relay `me` holding `held`, with `leased` partitions owned by anyone and
/// `members` relays alive: take free partitions up to its share, preferring those its id
/// ranks first (so that relays starting together mostly want different ones), or give back
/// what is over it.
pub(super) fn plan(
    partitions: u32,
    members: usize,
    held: usize,
    leased: &HashSet<u32>,
    me: &str,
) -> Plan {
    let share = share(partitions, members);
    if held > share {
        return Plan {
            take: Vec::new(),
            give: held - share,
        };
    }
    let mut free: Vec<u32> = (0..partitions).filter(|p| !leased.contains(p)).collect();
    free.sort_by_key(|p| rank(me, *p));
    free.truncate(share - held);
    Plan {
        take: free,
        give: 0,
    }
}

/// A stable pseudo-random rank of partition `p` for relay `me` (rendezvous hashing, FNV-1a).
pub(super) fn rank(me: &str, p: u32) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in me.bytes().chain(p.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn partition_key(p: u32) -> String {
    format!("p.{p}")
}

impl Leases {
    /// Opens the bucket `bucket` (made with `lease` as its entries' lifetime and `replicas`
    /// copies when it does not exist; an existing bucket keeps its own lifetime) for relay
    /// `me`.
    pub(super) async fn open(
        context: &jetstream::Context,
        bucket: &str,
        replicas: usize,
        lease: Duration,
        me: String,
    ) -> Result<Leases, Error> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::Config(format!(
                "the relays' leases bucket '{bucket}': cannot {what}: {e}"
            ))
        };
        let kv = open_bucket(
            context,
            bucket,
            "deskhook relays: who owns which partition",
            1,
            lease,
            replicas,
        )
        .await
        .map_err(|(what, e)| fail(what, &e))?;
        let mut stream = context
            .get_stream(format!("KV_{bucket}"))
            .await
            .map_err(|e| fail("read it", &e))?;
        let found = stream.info().await.map_err(|e| fail("read it", &e))?;
        let asked = lease;
        let lease = found.config.max_age;
        if let Some(note) = other_lease(bucket, asked, lease) {
            log::warn!(target: deskhook::LOG_TARGET, "{note}");
        }
        if lease.is_zero() {
            return Err(Error::Config(format!(
                "the relays' leases bucket '{bucket}' keeps its entries forever (no max_age), so \
                 a dead relay's partitions would never be freed: delete it (nats kv del \
                 {bucket}) and let the relays make it again"
            )));
        }
        Ok(Leases {
            kv,
            bucket: bucket.to_owned(),
            me,
            lease,
        })
    }

    fn failed(&self, what: &str, e: &dyn std::fmt::Display) -> String {
        format!("leases bucket '{}': cannot {what}: {e}", self.bucket)
    }

    /// Says this relay is alive (renewed with the leases).
    pub(super) async fn join(&self) -> Result<(), String> {
        self.kv
            .put(format!("m.{}", self.me), self.me.clone().into())
            .await
            .map(drop)
            .map_err(|e| self.failed("say this relay is alive", &e))
    }

    /// The live relays and the partitions owned by anyone.
    pub(super) async fn look(&self) -> Result<(HashSet<String>, HashSet<u32>), String> {
        let mut keys = self
            .kv
            .keys()
            .await
            .map_err(|e| self.failed("list it", &e))?;
        let mut members = HashSet::new();
        let mut leased = HashSet::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| self.failed("list it", &e))?;
            if let Some(member) = key.strip_prefix("m.") {
                members.insert(member.to_owned());
            } else if let Some(p) = key.strip_prefix("p.").and_then(|p| p.parse().ok()) {
                leased.insert(p);
            }
        }
        Ok((members, leased))
    }

    /// Takes partition `p` if it is free: its lease's revision, `Ok(None)` when another
    /// relay holds it, an error when the bucket did not say (the lease may have been
    /// written).
    pub(super) async fn take(&self, p: u32) -> Result<Option<u64>, String> {
        match self
            .kv
            .create(partition_key(p), self.me.clone().into())
            .await
        {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(self.failed("take a lease", &e)),
        }
    }

    /// Renews the lease of partition `p`, held at `revision`.
    pub(super) async fn renew(&self, p: u32, revision: u64) -> Renewed {
        let key = partition_key(p);
        match self.kv.update(&key, self.me.clone().into(), revision).await {
            Ok(revision) => Renewed::At(revision),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                // Our last renewal may have been written though its answer came too late
                // (a leader change): the lease is still ours if a later entry names us (a
                // replica behind would show the one we renewed from: read from the leader).
                match leader_entry(&self.kv, &key).await {
                    Ok(Some(entry))
                        if entry.operation == kv::Operation::Put
                            && entry.value == self.me
                            && entry.revision > revision =>
                    {
                        Renewed::Earlier(entry.revision)
                    }
                    Ok(_) => Renewed::Lost,
                    Err(e) => Renewed::Unknown(self.failed("read a lease", &e)),
                }
            }
            Err(e) => Renewed::Unknown(self.failed("renew a lease", &e)),
        }
    }

    /// The revision of partition `p`'s lease if it names this relay, `Ok(None)` when it
    /// does not, or why the bucket did not say.
    pub(super) async fn lease_of(&self, p: u32) -> Result<Option<u64>, String> {
        // From the leader: a replica behind could still name this relay after another took
        // the partition, whose consumer would then be deleted as this relay's stale one.
        match leader_entry(&self.kv, &partition_key(p)).await {
            Ok(Some(entry)) if entry.operation == kv::Operation::Put && entry.value == self.me => {
                Ok(Some(entry.revision))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(self.failed("read a lease", &e)),
        }
    }

    /// Gives partition `p` back at once, if this relay holds it.
    pub(super) async fn give_back(&self, p: u32) {
        let key = partition_key(p);
        let mut given = Ok(());
        // Twice: a renewal sent just before the renewer stopped may land between the read
        // and the delete.
        for _ in 0..2 {
            given = match self.kv.entry(&key).await {
                Ok(Some(entry))
                    if entry.operation == kv::Operation::Put && entry.value == self.me =>
                {
                    self.kv
                        .delete_expect_revision(&key, Some(entry.revision))
                        .await
                        .map_err(|e| self.failed("delete a lease", &e))
                }
                Ok(_) => Ok(()),
                Err(e) => Err(self.failed("read a lease", &e)),
            };
            if given.is_ok() {
                break;
            }
        }
        if let Err(e) = given {
            log::warn!(
                target: deskhook::LOG_TARGET,
                "relay: partition {p} not given back at once ({e}); it is free when its lease \
                 ends"
            );
        }
    }

    /// Says this relay is gone.
    pub(super) async fn leave(&self) {
        let _ = self.kv.delete(format!("m.{}", self.me)).await;
    }

    /// Changes to the bucket as they come (a relay joins or leaves, a lease is given back).
    pub(super) async fn changes(&self) -> Option<kv::Watch> {
        self.kv.watch_all().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_with_another_lease_is_said_to_win() {
        let (one, two) = (Duration::from_secs(1), Duration::from_secs(2));
        assert_eq!(other_lease("b", two, two), None);
        // No max_age is refused apart.
        assert_eq!(other_lease("b", two, Duration::ZERO), None);
        let note = other_lease("b", Duration::from_secs(10), one).unwrap();
        assert!(
            note.contains("has leases of 1s, which this relay uses, not the 10s"),
            "{note}"
        );
    }

    #[test]
    fn the_share_leaves_room_for_every_partition() {
        assert_eq!(share(16, 1), 16);
        assert_eq!(share(16, 3), 6);
        assert_eq!(share(16, 0), 16);
        assert_eq!(share(1, 4), 1);
    }

    #[test]
    fn a_relay_takes_free_partitions_up_to_its_share() {
        let leased: HashSet<u32> = (0..10).collect();
        let plan = plan(16, 2, 0, &leased, "a");
        assert_eq!(plan.give, 0);
        assert_eq!(plan.take.len(), 6, "only six are free");
        assert!(plan.take.iter().all(|p| *p >= 10));

        let plan = super::plan(16, 2, 3, &HashSet::from([0, 1, 2]), "a");
        assert_eq!(plan.take.len(), 5, "a share of 8 minus the 3 held");
    }

    #[test]
    fn a_relay_over_its_share_gives_back() {
        let leased: HashSet<u32> = (0..16).collect();
        assert_eq!(
            plan(16, 3, 16, &leased, "a"),
            Plan {
                take: Vec::new(),
                give: 10
            }
        );
    }

    #[test]
    fn relays_prefer_different_partitions() {
        let free = HashSet::new();
        let a = plan(16, 2, 0, &free, "relay-a").take;
        let b = plan(16, 2, 0, &free, "relay-b").take;
        let common = a.iter().filter(|p| b.contains(p)).count();
        assert!(
            common < 8,
            "two relays want the same 8 partitions: {a:?} {b:?}"
        );
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 8, "no partition twice");
    }
}
