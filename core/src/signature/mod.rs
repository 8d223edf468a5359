//! Signing and verifying webhooks the [Standard Webhooks] way: version `v1` (HMAC-SHA256) and
//! version `v1a` (ed25519).
//!
//! Every request carries three headers:
//!
//! - `webhook-id`: the message id, the same on every retry of one event (deskhook uses the
//!   event id), so that receivers can drop duplicates;
//! - `webhook-timestamp`: when the request was signed, in whole seconds since the Unix epoch,
//!   so that receivers can refuse old requests replayed by someone who captured them;
//! - `webhook-signature`: space-separated entries, each a version, a comma and the standard
//!   base64 of a signature of `"{webhook-id}.{webhook-timestamp}.{body}"`: `v1,` and the
//!   HMAC-SHA256 under a shared secret, or `v1a,` and the 64-byte ed25519 signature under a
//!   signing key.
//!
//! # Keys
//!
//! A [`Secret`] is any of the three keys of the specification, told apart by its prefix:
//!
//! - `whsec_…`, an HMAC secret of 24 to 64 bytes: the sender and every receiver hold the same
//!   one; it signs and checks `v1` entries.
//! - `whsk_…`, an ed25519 signing key: only the sender holds it; it signs `v1a` entries.
//! - `whpk_…`, the ed25519 public key of a signing key: receivers hold it; it checks `v1a`
//!   entries and cannot sign, so a receiver that leaks it lets no one forge a request. It is
//!   not secret.
//!
//! # Rotating keys
//!
//! The sender signs with every key of its list ([`sign`] and [`Signer`] take one), one entry
//! each, and [`verify`] accepts a request if any entry matches any of the receiver's keys.
//! To rotate, the sender signs with the old and the new key at once, receivers switch to the
//! new key at their own pace, and the old key is dropped once every receiver has moved.
//!
//! A move from HMAC to ed25519 is a rotation too: during it the sender signs with its
//! `whsec_` secret and its `whsk_` key, so that the header carries a `v1` and a `v1a` entry;
//! receivers that still hold the `whsec_` secret check the first, receivers given the `whpk_`
//! public key check the second. Entries of other versions and malformed entries are skipped.
//!
//! # Sending and receiving
//!
//! ```
//! use deskhook::Secret;
//! use deskhook::signature::{DEFAULT_TOLERANCE, verify_at};
//!
//! # fn main() -> Result<(), deskhook::Error> {
//! let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
//! let body = br#"{"test": 2432232314}"#;
//!
//! // The sender.
//! let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
//! let signature = deskhook::signature::sign(id, 1614265330, body, &[secret.clone()])?;
//! assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//!
//! // The receiver, with the request's headers and raw body.
//! let headers = [
//!     ("Webhook-Id", id),
//!     ("Webhook-Timestamp", "1614265330"),
//!     ("Webhook-Signature", signature.as_str()),
//! ];
//! let now = 1614265330 + 20; // `verify` reads the system clock instead
//! let verified = verify_at(&headers, body, &[secret], DEFAULT_TOLERANCE, now)?;
//! assert_eq!(verified.id, id);
//! # Ok(()) }
//! ```
//!
//! With ed25519, the receiver holds only the public key, which cannot sign:
//!
//! ```
//! use deskhook::Secret;
//! use deskhook::signature::{DEFAULT_TOLERANCE, verify_at};
//!
//! # fn main() -> Result<(), deskhook::Error> {
//! // The sender keeps the signing key and publishes its public key.
//! let signing_key = Secret::generate_ed25519()?;
//! let published: String = signing_key.public_key().unwrap().reveal(); // "whpk_…"
//! let body = br#"{"action":"create"}"#;
//! let signature = deskhook::signature::sign("msg_1", 1700000000, body, &[signing_key])?;
//! assert!(signature.starts_with("v1a,"));
//!
//! // The receiver.
//! let public_key: Secret = published.parse()?;
//! let headers = [
//!     ("webhook-id", "msg_1"),
//!     ("webhook-timestamp", "1700000000"),
//!     ("webhook-signature", signature.as_str()),
//! ];
//! let verified = verify_at(&headers, body, &[public_key.clone()], DEFAULT_TOLERANCE, 1700000000)?;
//! assert_eq!(verified.id, "msg_1");
//!
//! // A public key does not sign.
//! assert!(deskhook::signature::sign("msg_2", 1700000000, body, &[public_key]).is_err());
//! # Ok(()) }
//! ```
//!
//! [`hub_signature`] makes the `X-Hub-Signature-256` value of GitHub-style webhooks for
//! receivers that expect that instead, and [`verify_hub_signature`] checks one.
//!
//! [Standard Webhooks]: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SIGNATURE_LENGTH, Signature, Signer as _, SigningKey};
use hmac::Mac;

use crate::Error;
use crate::error::shorten;

mod hub;
pub(crate) mod secret;
#[cfg(test)]
mod tests;

pub use hub::{hub_signature, verify_hub_signature};
pub use secret::SecretKind;
use secret::{HmacSha256, Key, Secret};

/// The name of the header with the message id.
pub const HEADER_ID: &str = "webhook-id";
/// The name of the header with the signing time, in Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The name of the header with the signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// The names Svix-powered senders give the three headers (`svix-id`, `svix-timestamp`,
/// `svix-signature`), with the same contents: [`verify`] reads them when a request has no
/// `webhook-id`.
pub const SVIX_HEADERS: [&str; 3] = ["svix-id", "svix-timestamp", "svix-signature"];

/// The names of the id, timestamp and signature headers of a received request: Standard
/// Webhooks', or Svix's when it has `svix-id` and no `webhook-id`.
pub(crate) fn header_names(headers: &(impl Headers + ?Sized)) -> [&'static str; 3] {
    if headers.header(HEADER_ID).is_none() && headers.header(SVIX_HEADERS[0]).is_some() {
        return SVIX_HEADERS;
    }
    [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE]
}

/// How far `webhook-timestamp` may be from the receiver's clock, either way: 5 minutes, the
/// value the Standard Webhooks specification recommends.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

const HMAC_VERSION: &str = "v1";
const ED25519_VERSION: &str = "v1a";
/// The entries of `webhook-signature` [`verify`] looks at, at most: a sender signs with one
/// secret, or a few during a rotation; a header of thousands of entries would cost an ed25519
/// verification each, asked by anyone, before anything is authenticated.
pub const MAX_SIGNATURE_ENTRIES: usize = 16;

/// The base64 length of a 32-byte HMAC-SHA256 tag.
const ENCODED_TAG_LEN: usize = 44;
/// The base64 length of a 64-byte ed25519 signature.
const ENCODED_SIGNATURE_LEN: usize = 88;
/// `v1,` and the base64 of an HMAC-SHA256 tag.
const HMAC_ENTRY_LEN: usize = HMAC_VERSION.len() + 1 + ENCODED_TAG_LEN;
/// `v1a,` and the base64 of an ed25519 signature.
const ED25519_ENTRY_LEN: usize = ED25519_VERSION.len() + 1 + ENCODED_SIGNATURE_LEN;

/// Makes the `webhook-signature` header value: one entry per secret, in the order given,
/// separated by single spaces.
///
/// An HMAC secret (`whsec_`) gives a `v1` entry, the HMAC-SHA256 of
/// `"{id}.{timestamp}.{body}"`; an ed25519 signing key (`whsk_`) gives a `v1a` entry, the
/// ed25519 signature of the same content. With no secrets the result is empty. A sender that
/// signs many requests with the same secrets should keep a [`Signer`], which keys the HMACs
/// once.
///
/// # Errors
///
/// [`Error::InvalidSecret`] when one of `secrets` is an ed25519 public key (`whpk_`), which
/// cannot sign.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), deskhook::Error> {
/// let secret = deskhook::Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let header = deskhook::signature::sign(
///     "msg_p5jXN8AQM9LWM0D4loKWxJek",
///     1614265330,
///     br#"{"test": 2432232314}"#,
///     &[secret],
/// )?;
/// assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
/// # Ok(()) }
/// ```
pub fn sign(id: &str, timestamp: i64, body: &[u8], secrets: &[Secret]) -> Result<String, Error> {
    let keys = secrets
        .iter()
        .enumerate()
        .map(|(i, secret)| match (secret.mac(), secret.key()) {
            (Some(mac), _) => Ok(Signing::Hmac(mac)),
            (None, Key::Ed25519(key)) => Ok(Signing::Ed25519(key)),
            (None, _) => Err(cannot_sign(i, secrets.len())),
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let len = header_len(keys.iter().map(Signing::entry_len));
    Ok(sign_with(keys.into_iter(), len, id, timestamp, body))
}

/// Signs requests with a fixed list of secrets, keeping the keyed HMAC states and the ed25519
/// signing keys (with their public points) ready, so that each signature costs the hashing or
/// the ed25519 signature of the message and one allocation for the returned header value
/// (two when there is an ed25519 key: the message is then built once in memory).
///
/// It gives the same result as [`sign`] with the same secrets. An ed25519 signature costs tens
/// of microseconds (about 40 µs for a 1 KiB body on one x86-64 core), many times an HMAC.
#[derive(Clone)]
pub struct Signer {
    keys: Vec<SignerKey>,
    /// The exact length of every header value made.
    len: usize,
}

/// A key of a [`Signer`].
#[derive(Clone)]
enum SignerKey {
    Hmac(HmacSha256),
    Ed25519(Box<SigningKey>),
}

impl Signer {
    /// A signer for these secrets, in this order (during a rotation, old and new). With no
    /// secrets, [`Signer::sign`] returns an empty string.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSecret`] when one of `secrets` is an ed25519 public key (`whpk_`), which
    /// cannot sign.
    pub fn new(secrets: Vec<Secret>) -> Result<Signer, Error> {
        let count = secrets.len();
        // Pushed into room for all: a reallocation would leave copies of the keyed HMAC
        // states, as good as the keys, in freed memory.
        let mut keys = Vec::with_capacity(count);
        for (i, secret) in secrets.into_iter().enumerate() {
            keys.push(match (secret.mac(), secret.into_key()) {
                (Some(mac), _) => SignerKey::Hmac(mac),
                (None, Key::Ed25519(key)) => SignerKey::Ed25519(key),
                (None, _) => return Err(cannot_sign(i, count)),
            });
        }
        let len = header_len(keys.iter().map(|key| match key {
            SignerKey::Hmac(_) => HMAC_ENTRY_LEN,
            SignerKey::Ed25519(_) => ED25519_ENTRY_LEN,
        }));
        Ok(Signer { keys, len })
    }

    /// The `webhook-signature` header value for one request; see [`sign`].
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        sign_with(
            self.keys.iter().map(SignerKey::signing),
            self.len,
            id,
            timestamp,
            body,
        )
    }
}

impl SignerKey {
    /// The key to sign one request with: a clone of the keyed HMAC state, or the ed25519 key.
    fn signing(&self) -> Signing<'_> {
        match self {
            SignerKey::Hmac(mac) => Signing::Hmac(mac.clone()),
            SignerKey::Ed25519(key) => Signing::Ed25519(key),
        }
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("secrets", &self.keys.len())
            .finish()
    }
}

/// A key ready to sign one request.
enum Signing<'a> {
    /// Keyed, and not yet fed.
    Hmac(HmacSha256),
    Ed25519(&'a SigningKey),
}

impl Signing<'_> {
    /// The length of the entry this key makes.
    fn entry_len(&self) -> usize {
        match self {
            Signing::Hmac(_) => HMAC_ENTRY_LEN,
            Signing::Ed25519(_) => ED25519_ENTRY_LEN,
        }
    }
}

/// The error for the secret at `index` (of `count`), a public key, given to sign with.
fn cannot_sign(index: usize, count: usize) -> Error {
    Error::InvalidSecret(format!(
        "secret {} of {count} is an ed25519 public key (whpk_): it verifies signatures but \
         cannot make them; give the sender the whsk_ key it was made from",
        index + 1
    ))
}

/// The length of a header value with entries of these lengths, a space between each two.
fn header_len(entries: impl Iterator<Item = usize>) -> usize {
    entries.map(|len| len + 1).sum::<usize>().saturating_sub(1)
}

fn sign_with<'a>(
    keys: impl Iterator<Item = Signing<'a>>,
    len: usize,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut digits = [0u8; I64_MAX_DIGITS];
    let timestamp = format_i64(timestamp, &mut digits);
    let mut out = String::with_capacity(len);
    // The signed content, built at the first ed25519 key: ed25519 reads the message twice.
    let mut message = None;
    for (i, key) in keys.enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match key {
            Signing::Hmac(mut mac) => {
                feed(&mut mac, id, timestamp, body);
                out.push_str(HMAC_VERSION);
                out.push(',');
                STANDARD.encode_string(mac.finalize().into_bytes(), &mut out);
            }
            Signing::Ed25519(key) => {
                let message = message.get_or_insert_with(|| signed_content(id, timestamp, body));
                push_ed25519_entry(key, message, &mut out);
            }
        }
    }
    out
}

/// Appends the `v1a` entry of `message` under `key` to `out`.
fn push_ed25519_entry(key: &SigningKey, message: &[u8], out: &mut String) {
    out.push_str(ED25519_VERSION);
    out.push(',');
    STANDARD.encode_string(key.sign(message).to_bytes(), out);
}

/// Hashes the signed content, `"{id}.{timestamp}.{body}"`, without building it.
fn feed(mac: &mut HmacSha256, id: &str, timestamp: &[u8], body: &[u8]) {
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp);
    mac.update(b".");
    mac.update(body);
}

/// The signed content, `"{id}.{timestamp}.{body}"`, in one buffer.
fn signed_content(id: &str, timestamp: &[u8], body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    message.extend_from_slice(id.as_bytes());
    message.push(b'.');
    message.extend_from_slice(timestamp);
    message.push(b'.');
    message.extend_from_slice(body);
    message
}

/// The length of `i64::MIN` written in decimal.
const I64_MAX_DIGITS: usize = 20;

/// Writes `n` in decimal into the end of `buf`, as `n.to_string()` would, without allocating.
fn format_i64(n: i64, buf: &mut [u8; I64_MAX_DIGITS]) -> &[u8] {
    let mut start = buf.len();
    let mut rest = n.unsigned_abs();
    loop {
        start -= 1;
        // `rest % 10` is a single digit.
        buf[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        start -= 1;
        buf[start] = b'-';
    }
    &buf[start..]
}

/// The headers of a received request, looked up by name regardless of ASCII case.
///
/// Implemented for lists of pairs (`[(K, V)]`, `[(K, V); N]`, `Vec<(K, V)>`, with `K` and `V`
/// anything `AsRef<str>`), for `HashMap<String, String>` and `BTreeMap<String, String>`, and
/// with the `http` feature for `http::HeaderMap` (axum's, hyper's, reqwest's). Implement it
/// for the header type of another framework in a few lines:
///
/// ```
/// struct MyRequest { headers: Vec<(String, String)> }
///
/// impl deskhook::signature::Headers for MyRequest {
///     fn header(&self, name: &str) -> Option<&str> {
///         self.headers.header(name)
///     }
///
///     fn header_values(&self, name: &str) -> Vec<&str> {
///         self.headers.header_values(name)
///     }
/// }
/// ```
pub trait Headers {
    /// The value of the header `name` (given in lowercase), compared without regard to ASCII
    /// case; the first one when there are several.
    fn header(&self, name: &str) -> Option<&str>;

    /// Every value of the header `name`, in the order they came: a header sent as several
    /// lines (RFC 9110 reads them as one list). [`verify`] reads every line of
    /// `webhook-signature`, so that a sender or proxy that put each signature of a
    /// rotation on a line of its own is verified. Defaults to the one
    /// [`header`](Headers::header) gives: implement it where a header can come twice.
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.header(name).into_iter().collect()
    }
}

impl<T: Headers + ?Sized> Headers for &T {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }

    fn header_values(&self, name: &str) -> Vec<&str> {
        (**self).header_values(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }

    fn header_values(&self, name: &str) -> Vec<&str> {
        self.iter()
            .filter(|(key, _)| key.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
            .collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Headers for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }

    fn header_values(&self, name: &str) -> Vec<&str> {
        self.as_slice().header_values(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }

    fn header_values(&self, name: &str) -> Vec<&str> {
        self.as_slice().header_values(name)
    }
}

/// A value that is not visible ASCII (`HeaderValue::to_str` refuses it) is no value: a
/// signature, an id or a timestamp never holds one.
#[cfg(feature = "http")]
impl Headers for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        // The first line that is a value, as `header_values` reads them.
        self.get_all(name)
            .iter()
            .find_map(|value| value.to_str().ok())
    }

    fn header_values(&self, name: &str) -> Vec<&str> {
        self.get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect()
    }
}

impl<S: BuildHasher> Headers for HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        map_header(self.get(name), self.iter(), name)
    }
}

impl Headers for BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        map_header(self.get(name), self.iter(), name)
    }
}

/// A map's header: the entry under `name` as written, else the first whose key matches it
/// regardless of ASCII case.
fn map_header<'a>(
    exact: Option<&'a String>,
    mut entries: impl Iterator<Item = (&'a String, &'a String)>,
    name: &str,
) -> Option<&'a str> {
    exact
        .or_else(|| {
            entries
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value)
        })
        .map(String::as_str)
}

/// What [`verify`] vouches for: the request was signed with one of the secrets, within the
/// tolerance.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The `webhook-id` header: the message id, the same on every retry of one event. Use it
    /// to drop duplicates.
    pub id: String,
    /// The `webhook-timestamp` header, in Unix seconds.
    pub timestamp: i64,
    /// The place in the `secrets` given of the key that matched the first entry that
    /// matched (a sender signing with both keys of a rotation may list the old one first):
    /// once no sender signs with the old key any more, it can go.
    pub key_index: usize,
}

/// Checks the Standard Webhooks signature of a received request against the system clock.
///
/// `body` must be the raw bytes received, before any parsing. The request passes when its
/// `webhook-timestamp` is within `tolerance` of now (either way; use [`DEFAULT_TOLERANCE`])
/// and some entry of `webhook-signature` matches under some key of `secrets`: a `v1` entry
/// under an HMAC secret (`whsec_`; the comparison takes constant time), a `v1a` entry under
/// the public key of an ed25519 key (`whsk_` or `whpk_`; checked with the strict rules of
/// RFC 8032, which refuse malleable signatures). Entries of other versions and malformed
/// entries are skipped, and only the first [`MAX_SIGNATURE_ENTRIES`] are looked at. Two
/// header lines a proxy folded into one (`"v1,… , v1,…"` joined with `", "`) are read as
/// their entries. A request from a Svix-powered sender, whose headers are named
/// `svix-id`, `svix-timestamp` and `svix-signature` ([`SVIX_HEADERS`]), is read by those
/// names when it has no `webhook-id`.
///
/// It costs an HMAC of the body per HMAC secret when the header has a `v1` entry, and an
/// ed25519 verification (tens of microseconds) per `v1a` entry and ed25519 key tried.
///
/// # Errors
///
/// In this order: [`Error::MissingHeader`] when `webhook-id`, `webhook-timestamp` or
/// `webhook-signature` is absent; [`Error::InvalidTimestamp`] when the timestamp is not an
/// integer; [`Error::TimestampOutOfTolerance`] when it is too far in the past or future;
/// [`Error::NoMatchingSignature`] when no entry matches (always, if `secrets` is empty). For
/// all of them [`Error::is_signature_error`] is true, but for the last when `secrets` is
/// empty: that one is the receiver's own setup ([`Error::is_receiver_setup_error`]).
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use std::time::{SystemTime, UNIX_EPOCH};
///
/// use deskhook::Secret;
/// use deskhook::signature::DEFAULT_TOLERANCE;
///
/// # fn main() -> Result<(), deskhook::Error> {
/// let secret = Secret::generate()?;
/// let body = br#"{"action":"create"}"#;
/// let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
///
/// let headers = HashMap::from([
///     ("webhook-id".to_owned(), "msg_1".to_owned()),
///     ("webhook-timestamp".to_owned(), now.to_string()),
///     ("webhook-signature".to_owned(), deskhook::signature::sign("msg_1", now, body, &[secret.clone()])?),
/// ]);
/// let verified = deskhook::signature::verify(&headers, body, &[secret], DEFAULT_TOLERANCE)?;
/// assert_eq!(verified.id, "msg_1");
///
/// let other = Secret::generate()?;
/// let err = deskhook::signature::verify(&headers, body, &[other], DEFAULT_TOLERANCE).unwrap_err();
/// assert!(err.is_signature_error());
/// # Ok(()) }
/// ```
pub fn verify(
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    secrets: &[Secret],
    tolerance: Duration,
) -> Result<Verified, Error> {
    verify_at(headers, body, secrets, tolerance, unix_now())
}

/// [`verify`] with the receiver's clock given as `now_unix`, in Unix seconds; for tests and
/// for receivers with a clock of their own.
///
/// # Errors
///
/// As [`verify`].
pub fn verify_at(
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    secrets: &[Secret],
    tolerance: Duration,
    now_unix: i64,
) -> Result<Verified, Error> {
    let required = |name: &'static str| headers.header(name).ok_or(Error::MissingHeader(name));
    let [id_name, timestamp_name, signature_name] = header_names(headers);
    let id = required(id_name)?;
    let raw_timestamp = required(timestamp_name)?;
    // Every line of it: a sender or proxy may put each entry on a line of its own.
    let signatures = headers.header_values(signature_name);
    if signatures.is_empty() {
        return Err(Error::MissingHeader(signature_name));
    }
    let entries = || signatures.iter().flat_map(|line| entries(line));

    let timestamp: i64 = raw_timestamp
        .trim()
        .parse()
        .map_err(|_| Error::InvalidTimestamp(shorten(raw_timestamp)))?;
    // (Without a key nothing can match, whatever the time: that is the receiver's to mend,
    // said below, not a late request.)
    if !secrets.is_empty() && timestamp.abs_diff(now_unix) > tolerance.as_secs() {
        return Err(Error::TimestampOutOfTolerance {
            timestamp,
            now: now_unix,
            tolerance,
        });
    }

    // Like the reference implementation, the timestamp is signed as it parsed. The signed
    // content is hashed once per HMAC secret at the first `v1` entry (each entry then costs a
    // clone and the finalization), and built in memory at the first `v1a` entry.
    let mut digits = [0u8; I64_MAX_DIGITS];
    let timestamp_digits = format_i64(timestamp, &mut digits);
    let mut macs: Option<Vec<(usize, HmacSha256)>> = None;
    let mut message: Option<Vec<u8>> = None;
    // For the error's message: which kinds of entry there were, and how many were not
    // signatures at all.
    let (mut v1_entries, mut v1a_entries) = (0, 0);
    let (mut malformed_v1_entries, mut malformed_v1a_entries) = (0, 0);

    for entry in entries().take(MAX_SIGNATURE_ENTRIES) {
        let (well_formed, malformed, matched) = match entry.split_once(',') {
            Some((HMAC_VERSION, encoded)) => {
                let macs = macs.get_or_insert_with(|| {
                    // Pushed into room for all: a reallocation would leave copies of the
                    // keyed states, as good as the keys, in freed memory.
                    let mut macs = Vec::with_capacity(secrets.len());
                    for (at, secret) in secrets.iter().enumerate() {
                        if let Some(mut mac) = secret.mac() {
                            feed(&mut mac, id, timestamp_digits, body);
                            macs.push((at, mac));
                        }
                    }
                    macs
                });
                let matched = hmac_entry_matches(encoded, macs);
                (&mut v1_entries, &mut malformed_v1_entries, matched)
            }
            Some((ED25519_VERSION, encoded)) => {
                let matched = ed25519_entry_matches(encoded, secrets, || {
                    message.get_or_insert_with(|| signed_content(id, timestamp_digits, body))
                });
                (&mut v1a_entries, &mut malformed_v1a_entries, matched)
            }
            _ => continue,
        };
        let Some(matched) = matched else {
            *malformed += 1;
            continue;
        };
        *well_formed += 1;
        if let Some(secret) = matched {
            return Ok(Verified {
                id: id.to_owned(),
                timestamp,
                key_index: secret,
            });
        }
    }
    Err(Error::NoMatchingSignature {
        secrets: secrets.len(),
        hmac_secrets: secrets
            .iter()
            .filter(|s| s.kind() == SecretKind::Hmac)
            .count(),
        v1_entries,
        v1a_entries,
        malformed_v1_entries,
        malformed_v1a_entries,
        unread_entries: entries().skip(MAX_SIGNATURE_ENTRIES).count(),
    })
}

/// The entries of a `webhook-signature` value, space-separated. A proxy that folded two
/// header lines into one joined them with a comma and perhaps spaces (RFC 9110, 5.3): an
/// entry is a version and a signature, and neither holds a comma, so a comma after the
/// signature ends the entry.
fn entries(signatures: &str) -> impl Iterator<Item = &str> {
    signatures.split_ascii_whitespace().flat_map(|token| {
        let mut rest = token;
        std::iter::from_fn(move || {
            // A comma after a space (`"v1,… ,v1,…"`), or an empty element (`",,"`).
            rest = rest.trim_start_matches(',');
            if rest.is_empty() {
                return None;
            }
            // The comma after the version, then the one after the signature, if any.
            let end = rest
                .find(',')
                .and_then(|first| rest[first + 1..].find(',').map(|second| first + 1 + second));
            let (entry, next) = match end {
                Some(end) => (&rest[..end], &rest[end + 1..]),
                None => (rest, ""),
            };
            rest = next;
            Some(entry)
        })
    })
}

/// Which of `macs` (each with the place of its secret), fed the signed content, the base64
/// tag of a `v1` entry is that of, if any; `None` when it is not the base64 of a 32-byte
/// tag.
fn hmac_entry_matches(encoded: &str, macs: &[(usize, HmacSha256)]) -> Option<Option<usize>> {
    if encoded.len() != ENCODED_TAG_LEN {
        return None;
    }
    let mut tag = [0u8; 32];
    let Ok(32) = STANDARD.decode_slice(encoded, &mut tag) else {
        return None;
    };
    // `verify_slice` compares in constant time.
    Some(
        macs.iter()
            .find(|(_, mac)| mac.clone().verify_slice(&tag).is_ok())
            .map(|(at, _)| *at),
    )
}

/// Which of the ed25519 keys of `secrets` (its place there) the base64 signature of a `v1a`
/// entry verifies under, over the content `message` gives, if any; `None` when it is not
/// the base64 of a 64-byte signature.
fn ed25519_entry_matches<'m>(
    encoded: &str,
    secrets: &[Secret],
    message: impl FnOnce() -> &'m [u8],
) -> Option<Option<usize>> {
    if encoded.len() != ENCODED_SIGNATURE_LEN {
        return None;
    }
    let mut signature = [0u8; SIGNATURE_LENGTH];
    let Ok(SIGNATURE_LENGTH) = STANDARD.decode_slice(encoded, &mut signature) else {
        return None;
    };
    let mut keys = secrets
        .iter()
        .enumerate()
        .filter_map(|(at, secret)| Some((at, secret.verifying_key()?)))
        .peekable();
    if keys.peek().is_none() {
        return Some(None);
    }
    let signature = Signature::from_bytes(&signature);
    let message = message();
    Some(
        keys.find(|(_, key)| key.verify_strict(message, &signature).is_ok())
            .map(|(at, _)| at),
    )
}

/// The system clock in Unix seconds (negative before 1970).
fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}
