//! Idempotency keys of `POST /v1/events`: a retried request with the same key and body is
//! the same event; another body under a used key is refused.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use deskhook_console::Problem;
use sha2::{Digest as _, Sha256};

/// Idempotency keys remembered at most (the oldest are forgotten first).
pub(super) const IDEMPOTENCY_KEYS: usize = 100_000;

/// Memory the remembered keys may take at most, as [`cost`] counts it (the oldest are
/// forgotten first): an answer can name 16 refusals of 300 bytes each, and 100,000 of those
/// would hold a gigabyte.
pub(super) const IDEMPOTENCY_BYTES: usize = 64 * 1024 * 1024;

/// What a key costs beyond its text and its answer's: two map entries and their boxes.
const KEY_OVERHEAD: usize = 256;

/// The memory a remembered key holds, counted: its text twice (the map, the order), its
/// answer's JSON text twice (a parsed JSON value takes about that), and [`KEY_OVERHEAD`].
fn cost(key: &Key, seen: &Seen) -> usize {
    let reply = match seen {
        Seen::Pending { .. } => 0,
        Seen::Accepted { reply, .. } => 2 * reply.to_string().len(),
    };
    2 * (key.0.len() + key.1.len()) + reply + KEY_OVERHEAD
}

/// A tenant ("" for none) and a key.
pub(super) type Key = (String, String);

/// What tells a retried request from another event under the same key: a SHA-256 of the
/// format it was read as and of the body.
pub(super) type BodyDigest = [u8; 32];

/// The [`BodyDigest`] of `body` read as `format` (the format's name, whether a header named
/// it or the body's keys told it).
pub(super) fn digest(format: &str, body: &[u8]) -> BodyDigest {
    let mut hasher = Sha256::new();
    hasher.update(format.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().into()
}

/// What became of an Idempotency-Key.
enum Seen {
    /// Being accepted by another request now.
    Pending { body: BodyDigest },
    /// Accepted: the reply's body, which a retry gets again.
    Accepted {
        body: BodyDigest,
        reply: Arc<serde_json::Value>,
    },
}

/// Idempotency keys, by tenant and key, with the order to forget them in.
pub(super) struct Keys {
    /// Each key, with the number of its claim and its [`cost`].
    seen: HashMap<Key, (u64, Seen, usize)>,
    /// Claims, oldest first. One whose number is no longer its key's in `seen` was forgotten
    /// (and maybe claimed again): skipped when met.
    order: VecDeque<(u64, Key)>,
    claims: u64,
    limit: usize,
    /// The [`cost`] of what `seen` holds, and its limit.
    bytes: usize,
    max_bytes: usize,
}

impl Default for Keys {
    fn default() -> Self {
        Keys::with_limits(IDEMPOTENCY_KEYS, IDEMPOTENCY_BYTES)
    }
}

/// What an Idempotency-Key says about a request.
pub(super) enum Claim {
    /// A new key: accept the event, then [`Keys::accepted`] (or [`Keys::forget`]).
    New,
    /// Accepted already: answer the same (this body).
    Again(Arc<serde_json::Value>),
    /// Refused with this problem.
    Refused(Problem),
}

impl Keys {
    /// Keys remembering at most `limit` of them, and at most `max_bytes` as [`cost`]
    /// counts.
    pub(super) fn with_limits(limit: usize, max_bytes: usize) -> Keys {
        Keys {
            seen: HashMap::new(),
            order: VecDeque::new(),
            claims: 0,
            limit: limit.max(1),
            bytes: 0,
            max_bytes,
        }
    }

    /// Whether a key more (of `bytes`) would pass a limit.
    fn full(&self, bytes: usize) -> bool {
        self.seen.len() >= self.limit || self.bytes + bytes > self.max_bytes
    }

    pub(super) fn claim(&mut self, key: &Key, body: BodyDigest) -> Claim {
        match self.seen.get(key).map(|(_, seen, _)| seen) {
            Some(Seen::Accepted { body: b, reply }) if *b == body => Claim::Again(reply.clone()),
            Some(Seen::Pending { body: b }) if *b == body => Claim::Refused(Problem::new(
                StatusCode::CONFLICT,
                "a request with this Idempotency-Key is being accepted now; retry in a moment",
            )),
            Some(_) => Claim::Refused(Problem {
                field: Some("Idempotency-Key".into()),
                ..Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "this Idempotency-Key came with another body; use a new key for another event",
                )
            }),
            None => {
                let pending = Seen::Pending { body };
                let bytes = cost(key, &pending);
                while self.full(bytes) {
                    if !self.forget_oldest() {
                        return Claim::Refused(Problem::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!(
                                "{} requests with an Idempotency-Key are being accepted at \
                                 once; retry in a moment",
                                self.seen.len()
                            ),
                        ));
                    }
                }
                self.remember(key.clone(), pending, bytes);
                Claim::New
            }
        }
    }

    pub(super) fn accepted(&mut self, key: &Key, body: BodyDigest, reply: Arc<serde_json::Value>) {
        let accepted = Seen::Accepted { body, reply };
        let bytes = cost(key, &accepted);
        match self.seen.get_mut(key) {
            Some((_, seen, was)) => {
                self.bytes = self.bytes - *was + bytes;
                (*seen, *was) = (accepted, bytes);
            }
            // Forgotten meanwhile (it is not, while pending): remembered anew.
            None => self.remember(key.clone(), accepted, bytes),
        }
        // Its answer may pass the limit on bytes: the oldest go (this one last).
        while self.bytes > self.max_bytes && self.forget_oldest() {}
    }

    pub(super) fn forget(&mut self, key: &Key) {
        if let Some((_, _, bytes)) = self.seen.remove(key) {
            self.bytes -= bytes;
        }
    }

    fn remember(&mut self, key: Key, seen: Seen, bytes: usize) {
        // Forgotten claims leave their place in `order`: dropped once they are half of it.
        if self.order.len() >= 2 * self.limit {
            let seen_now = &self.seen;
            self.order
                .retain(|(n, key)| seen_now.get(key).is_some_and(|(m, _, _)| m == n));
        }
        self.claims += 1;
        self.order.push_back((self.claims, key.clone()));
        self.bytes += bytes;
        self.seen.insert(key, (self.claims, seen, bytes));
    }

    /// Forgets the oldest key that is not being accepted now: false when every key is (a
    /// key being accepted must stay, or its retry would be a second event).
    fn forget_oldest(&mut self) -> bool {
        let mut pending = Vec::new();
        let mut forgot = false;
        while let Some((n, key)) = self.order.pop_front() {
            match self.seen.get(&key) {
                Some((m, Seen::Accepted { .. }, _)) if *m == n => {
                    self.forget(&key);
                    forgot = true;
                    break;
                }
                Some((m, Seen::Pending { .. }, _)) if *m == n => pending.push((n, key)),
                // Forgotten, or claimed again since (a later place).
                _ => {}
            }
        }
        for claim in pending.into_iter().rev() {
            self.order.push_front(claim);
        }
        forgot
    }
}

/// An Idempotency-Key claimed by a request under way: forgotten if the request ends before
/// it says what became of the event.
pub(super) struct Claimed<'a> {
    pub(super) keys: &'a Mutex<Keys>,
    pub(super) key: Option<&'a Key>,
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.keys
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use deskhook::sink::EventId;

    const ONE: BodyDigest = [1; 32];
    const TWO: BodyDigest = [2; 32];

    fn key(name: &str) -> Key {
        ("acme".to_owned(), name.to_owned())
    }

    /// A reply naming event `id`.
    fn reply(id: EventId) -> Arc<serde_json::Value> {
        Arc::new(serde_json::json!({ "id": id.to_string() }))
    }

    /// Whether `claim` answers again with the reply of event `id`.
    fn again(claim: &Claim, id: EventId) -> bool {
        matches!(claim, Claim::Again(reply) if reply["id"] == id.to_string())
    }

    #[test]
    fn keys_accept_once_and_refuse_another_body() {
        let mut keys = Keys::default();
        let key = key("k1");
        assert!(matches!(keys.claim(&key, ONE), Claim::New));
        assert!(matches!(keys.claim(&key, ONE), Claim::Refused(p) if p.status == 409));
        let id = EventId::new();
        keys.accepted(&key, ONE, reply(id));
        assert!(again(&keys.claim(&key, ONE), id));
        assert!(matches!(keys.claim(&key, TWO), Claim::Refused(p) if p.status == 422));
        keys.forget(&key);
        assert!(matches!(keys.claim(&key, TWO), Claim::New));
        // The same key of another tenant is another key.
        assert!(matches!(
            keys.claim(&("globex".into(), "k1".into()), ONE),
            Claim::New
        ));
    }

    #[test]
    fn a_claim_dropped_unfinished_frees_its_key() {
        let keys = Mutex::new(Keys::default());
        let key = key("k1");
        assert!(matches!(keys.lock().unwrap().claim(&key, ONE), Claim::New));
        // The request's handler dropped in its await (the client went away).
        drop(Claimed {
            keys: &keys,
            key: Some(&key),
        });
        assert!(matches!(keys.lock().unwrap().claim(&key, ONE), Claim::New));
        // One that finished leaves what it recorded.
        let id = EventId::new();
        keys.lock().unwrap().accepted(&key, ONE, reply(id));
        drop(Claimed {
            keys: &keys,
            key: None,
        });
        assert!(again(&keys.lock().unwrap().claim(&key, ONE), id));
    }

    #[test]
    fn the_oldest_accepted_key_is_forgotten_never_one_being_accepted() {
        let mut keys = Keys::with_limits(3, IDEMPOTENCY_BYTES);
        let (a, b, c, d) = (key("a"), key("b"), key("c"), key("d"));
        // "a" is being accepted for the whole test; "b" and "c" were accepted.
        for k in [&a, &b, &c] {
            assert!(matches!(keys.claim(k, ONE), Claim::New));
        }
        keys.accepted(&b, ONE, reply(EventId::new()));
        keys.accepted(&c, ONE, reply(EventId::new()));
        // Full: "d" takes the place of "b", the oldest accepted, and "b" again that of "c".
        assert!(matches!(keys.claim(&d, ONE), Claim::New));
        assert!(matches!(keys.claim(&b, TWO), Claim::New), "b is forgotten");
        assert!(matches!(keys.claim(&a, ONE), Claim::Refused(p) if p.status == 409));
        // Now "a", "d" and "b" are all being accepted: nothing can be forgotten.
        assert!(matches!(keys.claim(&c, ONE), Claim::Refused(p) if p.status == 503));
        keys.accepted(&a, ONE, reply(EventId::new()));
        assert!(matches!(keys.claim(&c, ONE), Claim::New));
        assert!(keys.seen.len() <= 3);
    }

    #[test]
    fn forgotten_claims_do_not_grow_the_order_without_bound() {
        let mut keys = Keys::with_limits(4, IDEMPOTENCY_BYTES);
        // A storm of refused requests: each key claimed, then forgotten (a 503).
        for i in 0..1000 {
            let k = key(&i.to_string());
            assert!(matches!(keys.claim(&k, ONE), Claim::New));
            keys.forget(&k);
        }
        assert!(keys.seen.is_empty());
        assert!(keys.order.len() <= 8, "{}", keys.order.len());
    }

    #[test]
    fn keys_are_forgotten_oldest_first_to_stay_within_their_bytes() {
        // Room for about three keys with answers of 1 KB.
        let large = || Arc::new(serde_json::json!({ "reason": "x".repeat(1000) }));
        let per_key = cost(
            &key("a"),
            &Seen::Accepted {
                body: ONE,
                reply: large(),
            },
        );
        let mut keys = Keys::with_limits(1000, 3 * per_key + per_key / 2);
        for name in ["a", "b", "c", "d"] {
            assert!(matches!(keys.claim(&key(name), ONE), Claim::New));
            keys.accepted(&key(name), ONE, large());
        }
        assert!(
            keys.bytes <= keys.max_bytes,
            "{} > {}",
            keys.bytes,
            keys.max_bytes
        );
        assert!(
            matches!(keys.claim(&key("a"), TWO), Claim::New),
            "a is forgotten"
        );
        for name in ["c", "d"] {
            assert!(
                matches!(keys.claim(&key(name), ONE), Claim::Again(_)),
                "{name}"
            );
        }
        // What is counted is what is held: forgetting gives every byte back.
        for name in ["a", "b", "c", "d"] {
            keys.forget(&key(name));
        }
        assert_eq!((keys.seen.len(), keys.bytes), (0, 0));
    }

    #[test]
    fn the_digest_tells_the_format_and_the_body_apart() {
        assert_eq!(digest("", b"{}"), digest("", b"{}"));
        assert_ne!(digest("", b"{}"), digest("", b"{ }"));
        assert_ne!(digest("usedesk", b"{}"), digest("", b"{}"));
    }
}
