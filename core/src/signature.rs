//! Signing and verifying webhooks the [Standard Webhooks] way (version `v1`).
//!
//! Every request carries three headers:
//!
//! - `webhook-id`: the message id, the same on every retry of one event (deskhook uses the
//!   event id), so that receivers can drop duplicates;
//! - `webhook-timestamp`: when the request was signed, in whole seconds since the Unix epoch,
//!   so that receivers can refuse old requests replayed by someone who captured them;
//! - `webhook-signature`: `v1,` followed by the standard base64 of
//!   HMAC-SHA256(secret, `"{webhook-id}.{webhook-timestamp}.{body}"`).
//!
//! A secret is written `whsec_` followed by the standard base64 of its 24 to 64 raw bytes
//! (see [`Secret`]).
//!
//! # Rotating secrets
//!
//! The `webhook-signature` header holds several space-separated entries, one per secret. To
//! rotate, the sender signs with the old and the new secret at once
//! ([`sign`] and [`Signer`] take a list), receivers switch to the new secret at their own
//! pace ([`verify`] accepts a request if any entry matches any of its secrets), and the old
//! secret is dropped once every receiver has moved. Entries of other versions (`v1a,…`) and
//! malformed entries are ignored.
//!
//! # Sending and receiving
//!
//! ```
//! use deskhook::signature::{DEFAULT_TOLERANCE, Secret, verify_at};
//!
//! # fn main() -> Result<(), deskhook::Error> {
//! let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
//! let body = br#"{"test": 2432232314}"#;
//!
//! // The sender.
//! let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
//! let signature = deskhook::sign(id, 1614265330, body, &[secret.clone()]);
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
//! [`hub_signature`] makes the `X-Hub-Signature-256` value of GitHub-style webhooks for
//! receivers that expect that instead.
//!
//! [Standard Webhooks]: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Error;
use crate::error::shorten;

type HmacSha256 = Hmac<Sha256>;

/// The name of the header with the message id.
pub const HEADER_ID: &str = "webhook-id";
/// The name of the header with the signing time, in Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The name of the header with the signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How far `webhook-timestamp` may be from the receiver's clock, either way: 5 minutes, the
/// value the Standard Webhooks specification recommends.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

const PREFIX: &str = "whsec_";
const MIN_SECRET_LEN: usize = 24;
const MAX_SECRET_LEN: usize = 64;
const GENERATED_SECRET_LEN: usize = 32;
const VERSION: &str = "v1";
/// `v1,` and the 44 base64 characters of a 32-byte HMAC-SHA256.
const ENTRY_LEN: usize = VERSION.len() + 1 + ENCODED_TAG_LEN;
const ENCODED_TAG_LEN: usize = 44;
const HOW_TO_GENERATE: &str = "generate one with `deskhook::Secret::generate()`, or write \
                               'whsec_' before the output of `openssl rand -base64 32`";

/// An HMAC key shared by the sender and the receivers of webhooks.
///
/// Written `whsec_` followed by the standard base64 of 24 to 64 random bytes, as in
/// `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`. Parse one with [`Secret::parse`] (or `str::parse`,
/// or serde from a configuration file), make a new one with [`Secret::generate`].
///
/// The value is kept out of logs: `Debug` prints `Secret(whsec_…)`, there is no `Display`
/// and no `Serialize`, and parse errors never quote it. [`Secret::to_whsec`] is the one way
/// to get it back out.
#[derive(Clone)]
pub struct Secret {
    key: Box<[u8]>,
}

impl Secret {
    /// Parses `whsec_` followed by the standard base64 (with `=` padding) of 24 to 64 bytes;
    /// whitespace around it is ignored.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSecret`] when the prefix is missing, the rest is not standard base64,
    /// or the key is shorter than 24 or longer than 64 bytes. The message says which, and
    /// never contains the secret.
    pub fn parse(s: &str) -> Result<Secret, Error> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::InvalidSecret(format!(
                "secret is empty; it must be 'whsec_' followed by base64 ({HOW_TO_GENERATE})"
            )));
        }
        let Some(encoded) = s.strip_prefix(PREFIX) else {
            let looks_like_base64 = STANDARD
                .decode(s)
                .is_ok_and(|key| (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&key.len()));
            return Err(Error::InvalidSecret(if looks_like_base64 {
                "secret must start with 'whsec_' (it looks like the base64 part alone: write \
                 'whsec_' before it)"
                    .to_owned()
            } else {
                format!("secret must start with 'whsec_' ({HOW_TO_GENERATE})")
            }));
        };
        let key = STANDARD.decode(encoded).map_err(|e| {
            Error::InvalidSecret(format!(
                "secret 'whsec_…' is not valid base64: {}",
                describe_base64_error(&e)
            ))
        })?;
        Secret::from_bytes(&key)
    }

    /// Makes a secret from raw key bytes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSecret`] when `key` is shorter than 24 or longer than 64 bytes.
    pub fn from_bytes(key: &[u8]) -> Result<Secret, Error> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&key.len()) {
            return Err(Error::InvalidSecret(format!(
                "secret is {} bytes; it must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes \
                 ({HOW_TO_GENERATE})",
                key.len()
            )));
        }
        Ok(Secret { key: key.into() })
    }

    /// Makes a new secret of 32 bytes from the operating system's random source.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSecret`] when the random source fails (it does not on any supported
    /// system once booted).
    pub fn generate() -> Result<Secret, Error> {
        let mut key = [0u8; GENERATED_SECRET_LEN];
        getrandom::fill(&mut key).map_err(|e| {
            Error::InvalidSecret(format!(
                "cannot generate a secret: the system random source failed: {e}"
            ))
        })?;
        Ok(Secret { key: key.into() })
    }

    /// The secret in its written form, `whsec_` and base64, to hand to a receiver or store in
    /// a configuration file. Handle the result with the same care as the secret.
    pub fn to_whsec(&self) -> String {
        let mut out = String::with_capacity(PREFIX.len() + self.key.len().div_ceil(3) * 4);
        out.push_str(PREFIX);
        STANDARD.encode_string(&self.key, &mut out);
        out
    }

    /// An HMAC-SHA256 state keyed with this secret.
    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; the length was checked when the secret was made.
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(whsec_…)")
    }
}

impl FromStr for Secret {
    type Err = Error;

    fn from_str(s: &str) -> Result<Secret, Error> {
        Secret::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        struct SecretVisitor;

        impl serde::de::Visitor<'_> for SecretVisitor {
            type Value = Secret;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a webhook secret ('whsec_' followed by base64)")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Secret, E> {
                Secret::parse(s).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(SecretVisitor)
    }
}

/// Says what is wrong with the base64 part of a secret without quoting any of it: characters
/// are shown only when they cannot be part of a standard base64 key.
fn describe_base64_error(e: &base64::DecodeError) -> String {
    use base64::DecodeError;
    let at = |offset: usize| offset + PREFIX.len();
    match *e {
        DecodeError::InvalidByte(offset, b'-' | b'_') => format!(
            "the character at offset {} is URL-safe base64 ('-' or '_'); use standard \
             base64 ('+' and '/')",
            at(offset)
        ),
        DecodeError::InvalidByte(offset, byte)
            if byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/' =>
        {
            format!(
                "unexpected character at offset {} (after the '=' padding?)",
                at(offset)
            )
        }
        DecodeError::InvalidByte(offset, byte) if byte.is_ascii_graphic() || byte == b' ' => {
            format!(
                "invalid character '{}' at offset {}",
                char::from(byte),
                at(offset)
            )
        }
        DecodeError::InvalidByte(offset, byte) => {
            format!("invalid byte 0x{byte:02x} at offset {}", at(offset))
        }
        DecodeError::InvalidLength(_) => {
            "its length is impossible for base64 (cut short, or extra characters?)".to_owned()
        }
        DecodeError::InvalidLastSymbol(offset, _) => format!(
            "the character at offset {} cannot end base64 (cut short?)",
            at(offset)
        ),
        DecodeError::InvalidPadding => "the '=' padding at the end is missing or wrong".to_owned(),
    }
}

/// Makes the `webhook-signature` header value: one `v1,<base64>` entry per secret, in the
/// order given, separated by single spaces.
///
/// Each entry is the HMAC-SHA256, under that secret, of `"{id}.{timestamp}.{body}"`. With no
/// secrets the result is empty. A sender that signs many requests with the same secrets
/// should keep a [`Signer`], which keys the HMACs once.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), deskhook::Error> {
/// let secret = deskhook::Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let header = deskhook::sign(
///     "msg_p5jXN8AQM9LWM0D4loKWxJek",
///     1614265330,
///     br#"{"test": 2432232314}"#,
///     &[secret],
/// );
/// assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
/// # Ok(()) }
/// ```
pub fn sign(id: &str, timestamp: i64, body: &[u8], secrets: &[Secret]) -> String {
    sign_with(
        secrets.iter().map(Secret::mac),
        secrets.len(),
        id,
        timestamp,
        body,
    )
}

/// Signs requests with a fixed list of secrets, keeping the keyed HMAC states so that each
/// signature costs one clone of a state, the hashing of the message, and one allocation for
/// the returned header value.
///
/// It gives the same result as [`sign`] with the same secrets.
#[derive(Clone)]
pub struct Signer {
    macs: Vec<HmacSha256>,
}

impl Signer {
    /// A signer for these secrets, in this order (during a rotation, old and new). With no
    /// secrets, [`Signer::sign`] returns an empty string.
    pub fn new(secrets: Vec<Secret>) -> Signer {
        Signer {
            macs: secrets.iter().map(Secret::mac).collect(),
        }
    }

    /// The `webhook-signature` header value for one request; see [`sign`].
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        sign_with(
            self.macs.iter().cloned(),
            self.macs.len(),
            id,
            timestamp,
            body,
        )
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("secrets", &self.macs.len())
            .finish()
    }
}

fn sign_with(
    macs: impl Iterator<Item = HmacSha256>,
    count: usize,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut digits = [0u8; I64_MAX_DIGITS];
    let timestamp = format_i64(timestamp, &mut digits);
    let mut out = String::with_capacity((count * (ENTRY_LEN + 1)).saturating_sub(1));
    for (i, mut mac) in macs.enumerate() {
        if i > 0 {
            out.push(' ');
        }
        feed(&mut mac, id, timestamp, body);
        out.push_str(VERSION);
        out.push(',');
        STANDARD.encode_string(mac.finalize().into_bytes(), &mut out);
    }
    out
}

/// Hashes the signed content, `"{id}.{timestamp}.{body}"`, without building it.
fn feed(mac: &mut HmacSha256, id: &str, timestamp: &[u8], body: &[u8]) {
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp);
    mac.update(b".");
    mac.update(body);
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

/// The `X-Hub-Signature-256` value of GitHub-style webhooks: `sha256=` and the lowercase hex
/// of HMAC-SHA256(secret, body).
///
/// Unlike the Standard Webhooks signature it covers the body alone, with no id or timestamp,
/// so it does not protect against replays.
pub fn hub_signature(secret: &Secret, body: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut mac = secret.mac();
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity("sha256=".len() + 2 * tag.len());
    out.push_str("sha256=");
    for byte in tag {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// The headers of a received request, looked up by name regardless of ASCII case.
///
/// Implemented for lists of pairs (`[(K, V)]`, `[(K, V); N]`, `Vec<(K, V)>`, with `K` and `V`
/// anything `AsRef<str>`) and for `HashMap<String, String>` and `BTreeMap<String, String>`.
/// Implement it for the header map of your HTTP framework in a few lines:
///
/// ```
/// struct MyRequest { headers: Vec<(String, String)> }
///
/// impl deskhook::signature::Headers for MyRequest {
///     fn header(&self, name: &str) -> Option<&str> {
///         self.headers.header(name)
///     }
/// }
/// ```
pub trait Headers {
    /// The value of the header `name` (given in lowercase), compared without regard to ASCII
    /// case; the first one when there are several.
    fn header(&self, name: &str) -> Option<&str>;
}

impl<T: Headers + ?Sized> Headers for &T {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Headers for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<S: BuildHasher> Headers for HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
            .or_else(|| {
                self.iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value)
            })
            .map(String::as_str)
    }
}

impl Headers for BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
            .or_else(|| {
                self.iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value)
            })
            .map(String::as_str)
    }
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
}

/// Checks the Standard Webhooks signature of a received request against the system clock.
///
/// `body` must be the raw bytes received, before any parsing. The request passes when its
/// `webhook-timestamp` is within `tolerance` of now (either way; use [`DEFAULT_TOLERANCE`])
/// and some `v1` entry of `webhook-signature` matches under some secret of `secrets` (the
/// comparison takes constant time). Entries of other versions and malformed entries are
/// skipped.
///
/// # Errors
///
/// In this order: [`Error::MissingHeader`] when `webhook-id`, `webhook-timestamp` or
/// `webhook-signature` is absent; [`Error::InvalidTimestamp`] when the timestamp is not an
/// integer; [`Error::TimestampOutOfTolerance`] when it is too far in the past or future;
/// [`Error::NoMatchingSignature`] when no entry matches (always, if `secrets` is empty). For
/// all of them [`Error::is_signature_error`] is true.
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use std::time::{SystemTime, UNIX_EPOCH};
///
/// use deskhook::signature::{DEFAULT_TOLERANCE, Secret};
///
/// # fn main() -> Result<(), deskhook::Error> {
/// let secret = Secret::generate()?;
/// let body = br#"{"action":"create"}"#;
/// let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
///
/// let headers = HashMap::from([
///     ("webhook-id".to_owned(), "msg_1".to_owned()),
///     ("webhook-timestamp".to_owned(), now.to_string()),
///     ("webhook-signature".to_owned(), deskhook::sign("msg_1", now, body, &[secret.clone()])),
/// ]);
/// let verified = deskhook::verify(&headers, body, &[secret], DEFAULT_TOLERANCE)?;
/// assert_eq!(verified.id, "msg_1");
///
/// let other = Secret::generate()?;
/// let err = deskhook::verify(&headers, body, &[other], DEFAULT_TOLERANCE).unwrap_err();
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
    let id = required(HEADER_ID)?;
    let raw_timestamp = required(HEADER_TIMESTAMP)?;
    let signatures = required(HEADER_SIGNATURE)?;

    let timestamp: i64 = raw_timestamp
        .trim()
        .parse()
        .map_err(|_| Error::InvalidTimestamp(shorten(raw_timestamp)))?;
    if timestamp.abs_diff(now_unix) > tolerance.as_secs() {
        return Err(Error::TimestampOutOfTolerance {
            timestamp,
            now: now_unix,
            tolerance,
        });
    }

    // The signed content is hashed once per secret; each entry then costs a clone and the
    // finalization. Like the reference implementation, the timestamp is signed as it parsed.
    let mut digits = [0u8; I64_MAX_DIGITS];
    let timestamp_digits = format_i64(timestamp, &mut digits);
    let macs: Vec<HmacSha256> = secrets
        .iter()
        .map(|secret| {
            let mut mac = secret.mac();
            feed(&mut mac, id, timestamp_digits, body);
            mac
        })
        .collect();

    for entry in signatures.split_ascii_whitespace() {
        let Some((VERSION, encoded)) = entry.split_once(',') else {
            continue;
        };
        if encoded.len() != ENCODED_TAG_LEN {
            continue;
        }
        let mut tag = [0u8; 32];
        let Ok(32) = STANDARD.decode_slice(encoded, &mut tag) else {
            continue;
        };
        // `verify_slice` compares in constant time.
        if macs
            .iter()
            .any(|mac| mac.clone().verify_slice(&tag).is_ok())
        {
            return Ok(Verified {
                id: id.to_owned(),
                timestamp,
            });
        }
    }
    Err(Error::NoMatchingSignature {
        secrets: secrets.len(),
    })
}

/// The system clock in Unix seconds (negative before 1970).
fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published with the Standard Webhooks specification.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret(s: &str) -> Secret {
        Secret::parse(s).unwrap()
    }

    fn headers(id: &str, timestamp: i64, signature: &str) -> Vec<(String, String)> {
        vec![
            ("webhook-id".to_owned(), id.to_owned()),
            ("webhook-timestamp".to_owned(), timestamp.to_string()),
            ("webhook-signature".to_owned(), signature.to_owned()),
        ]
    }

    fn verify_spec(signature: &str, secrets: &[Secret], now: i64) -> Result<Verified, Error> {
        let headers = headers(SPEC_ID, SPEC_TIMESTAMP, signature);
        verify_at(&headers, SPEC_BODY, secrets, DEFAULT_TOLERANCE, now)
    }

    /// The reference implementation's `verify`, which takes an `http::HeaderMap`; the map is
    /// built through type inference because `http` is not a dependency of ours.
    fn their_verify(
        webhook: &standardwebhooks::Webhook,
        id: &str,
        timestamp: i64,
        signature: &str,
        body: &[u8],
    ) -> Result<(), standardwebhooks::WebhookError> {
        let mut map = Default::default();
        // This call fixes the type of `map`; without headers it fails.
        assert!(webhook.verify(body, &map).is_err());
        map.insert(HEADER_ID, id.parse().unwrap());
        map.insert(HEADER_TIMESTAMP, timestamp.to_string().parse().unwrap());
        map.insert(HEADER_SIGNATURE, signature.parse().unwrap());
        webhook.verify(body, &map)
    }

    #[test]
    fn the_spec_test_vector_signs_and_verifies() {
        let spec = secret(SPEC_SECRET);
        assert_eq!(
            sign(
                SPEC_ID,
                SPEC_TIMESTAMP,
                SPEC_BODY,
                std::slice::from_ref(&spec)
            ),
            SPEC_SIGNATURE
        );
        assert_eq!(
            Signer::new(vec![spec.clone()]).sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY),
            SPEC_SIGNATURE
        );
        assert_eq!(
            verify_spec(SPEC_SIGNATURE, &[spec], SPEC_TIMESTAMP).unwrap(),
            Verified {
                id: SPEC_ID.to_owned(),
                timestamp: SPEC_TIMESTAMP
            }
        );
        // The reference implementation agrees on the vector.
        let theirs = standardwebhooks::Webhook::new(SPEC_SECRET).unwrap();
        assert_eq!(
            theirs.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY).unwrap(),
            SPEC_SIGNATURE
        );
    }

    #[test]
    fn signatures_agree_with_the_reference_implementation_both_ways() {
        let bodies: [&[u8]; 4] = [
            b"",
            b"{}",
            "{\"action\":\"comment\",\"description\":\"Заявка прокомментирована\"}".as_bytes(),
            &[b'x'; 10_000],
        ];
        for _ in 0..3 {
            let ours = Secret::generate().unwrap();
            let theirs = standardwebhooks::Webhook::new(&ours.to_whsec()).unwrap();
            for body in bodies {
                // Ours signs, theirs verifies (against the real clock, which is all it has).
                let now = unix_now();
                let signature = sign("msg_cross", now, body, std::slice::from_ref(&ours));
                their_verify(&theirs, "msg_cross", now, &signature, body).unwrap();

                // Theirs signs, ours verifies.
                let signature = theirs.sign("msg_cross", SPEC_TIMESTAMP, body).unwrap();
                let headers = headers("msg_cross", SPEC_TIMESTAMP, &signature);
                verify_at(
                    &headers,
                    body,
                    std::slice::from_ref(&ours),
                    DEFAULT_TOLERANCE,
                    SPEC_TIMESTAMP,
                )
                .unwrap();
            }
        }
    }

    #[test]
    fn rotation_signs_with_every_secret_and_verifies_with_any() {
        let old = Secret::generate().unwrap();
        let new = Secret::generate().unwrap();
        let stranger = Secret::generate().unwrap();
        let both = [old.clone(), new.clone()];

        let signature = sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, &both);
        let entries: Vec<&str> = signature.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0],
            sign(
                SPEC_ID,
                SPEC_TIMESTAMP,
                SPEC_BODY,
                std::slice::from_ref(&old)
            )
        );
        assert_eq!(
            entries[1],
            sign(
                SPEC_ID,
                SPEC_TIMESTAMP,
                SPEC_BODY,
                std::slice::from_ref(&new)
            )
        );
        assert_eq!(
            Signer::new(both.to_vec()).sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY),
            signature
        );

        for secrets in [
            vec![old.clone()],
            vec![new.clone()],
            vec![stranger.clone(), new],
            vec![old, stranger.clone()],
        ] {
            verify_spec(&signature, &secrets, SPEC_TIMESTAMP).unwrap();
        }
        assert!(matches!(
            verify_spec(&signature, &[stranger], SPEC_TIMESTAMP),
            Err(Error::NoMatchingSignature { secrets: 1 })
        ));
    }

    #[test]
    fn a_signer_allocates_the_exact_length() {
        let secrets: Vec<Secret> = (0..3).map(|_| Secret::generate().unwrap()).collect();
        let signer = Signer::new(secrets.clone());
        let signature = signer.sign("msg_1", -1, b"body");
        assert_eq!(signature.len(), 3 * ENTRY_LEN + 2);
        assert_eq!(signature.capacity(), signature.len());
        assert_eq!(signature, sign("msg_1", -1, b"body", &secrets));
        assert_eq!(Signer::new(Vec::new()).sign("msg_1", 1, b"body"), "");
        assert_eq!(sign("msg_1", 1, b"body", &[]), "");
        assert_eq!(format!("{signer:?}"), "Signer { secrets: 3 }");
    }

    #[test]
    fn timestamps_are_written_like_to_string() {
        for n in [0, 7, -1, 10, 1614265330, i64::MAX, i64::MIN, i64::MIN + 1] {
            let mut buf = [0u8; I64_MAX_DIGITS];
            assert_eq!(format_i64(n, &mut buf), n.to_string().as_bytes());
        }
    }

    #[test]
    fn every_error_displays_its_value() {
        let spec = [secret(SPEC_SECRET)];
        let cases: Vec<(Error, &str)> = vec![
            (
                verify_at(
                    &[("webhook-timestamp", "1"), ("webhook-signature", "v1,x")],
                    b"",
                    &spec,
                    DEFAULT_TOLERANCE,
                    1,
                )
                .unwrap_err(),
                "missing header 'webhook-id'",
            ),
            (
                verify_at(
                    &[("webhook-id", "m"), ("webhook-signature", "v1,x")],
                    b"",
                    &spec,
                    DEFAULT_TOLERANCE,
                    1,
                )
                .unwrap_err(),
                "missing header 'webhook-timestamp'",
            ),
            (
                verify_at(
                    &[("webhook-id", "m"), ("webhook-timestamp", "1")],
                    b"",
                    &spec,
                    DEFAULT_TOLERANCE,
                    1,
                )
                .unwrap_err(),
                "missing header 'webhook-signature'",
            ),
            (
                verify_at(
                    &[
                        ("webhook-id", "m"),
                        ("webhook-timestamp", "2021-02-25T15:02:10Z"),
                        ("webhook-signature", "v1,x"),
                    ],
                    b"",
                    &spec,
                    DEFAULT_TOLERANCE,
                    1,
                )
                .unwrap_err(),
                "invalid webhook-timestamp '2021-02-25T15:02:10Z' (expected Unix seconds, like \
                 1700000000)",
            ),
            (
                verify_spec(SPEC_SIGNATURE, &spec, SPEC_TIMESTAMP + 301).unwrap_err(),
                "webhook-timestamp 1614265330 is 301 s in the past, beyond the 300 s tolerance \
                 (check the clocks, or widen the tolerance)",
            ),
            (
                verify_spec(SPEC_SIGNATURE, &spec, SPEC_TIMESTAMP - 301).unwrap_err(),
                "webhook-timestamp 1614265330 is 301 s in the future, beyond the 300 s tolerance \
                 (check the clocks, or widen the tolerance)",
            ),
            (
                verify_spec(
                    SPEC_SIGNATURE,
                    &[Secret::generate().unwrap(), Secret::generate().unwrap()],
                    SPEC_TIMESTAMP,
                )
                .unwrap_err(),
                "no signature in webhook-signature matches any of the 2 secret(s) (wrong secret, \
                 or the body was changed in transit)",
            ),
            (
                verify_spec(SPEC_SIGNATURE, &[], SPEC_TIMESTAMP).unwrap_err(),
                "no secret to check webhook-signature against (configure at least one secret)",
            ),
            (
                Secret::parse("").unwrap_err(),
                "secret is empty; it must be 'whsec_' followed by base64 (generate one with \
                 `deskhook::Secret::generate()`, or write 'whsec_' before the output of \
                 `openssl rand -base64 32`)",
            ),
            (
                Secret::parse("wh_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
                "secret must start with 'whsec_' (generate one with \
                 `deskhook::Secret::generate()`, or write 'whsec_' before the output of \
                 `openssl rand -base64 32`)",
            ),
            (
                Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
                "secret must start with 'whsec_' (it looks like the base64 part alone: write \
                 'whsec_' before it)",
            ),
            (
                Secret::parse("whsec_MfKQ9r8GKYqrTwjU-D8ILPZIo2LaLaSw").unwrap_err(),
                "secret 'whsec_…' is not valid base64: the character at offset 22 is URL-safe \
                 base64 ('-' or '_'); use standard base64 ('+' and '/')",
            ),
            (
                Secret::parse("whsec_MfKQ9r8GKYqrTwjU!D8ILPZIo2LaLaSw").unwrap_err(),
                "secret 'whsec_…' is not valid base64: invalid character '!' at offset 22",
            ),
            (
                Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS").unwrap_err(),
                "secret 'whsec_…' is not valid base64: the '=' padding at the end is missing or \
                 wrong",
            ),
            (
                Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa==").unwrap_err(),
                "secret 'whsec_…' is not valid base64: the character at offset 35 cannot end \
                 base64 (cut short?)",
            ),
            (
                Secret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAA==").unwrap_err(),
                "secret is 16 bytes; it must be 24 to 64 bytes (generate one with \
                 `deskhook::Secret::generate()`, or write 'whsec_' before the output of \
                 `openssl rand -base64 32`)",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
            let expected_signature_error = !matches!(err, Error::InvalidSecret(_));
            assert_eq!(err.is_signature_error(), expected_signature_error, "{err}");
        }
    }

    #[test]
    fn a_long_invalid_timestamp_is_cut_short_in_the_error() {
        let long = "9".repeat(100);
        let headers = [
            ("webhook-id", "m"),
            ("webhook-timestamp", long.as_str()),
            ("webhook-signature", SPEC_SIGNATURE),
        ];
        let err =
            verify_at(&headers, b"", &[secret(SPEC_SECRET)], DEFAULT_TOLERANCE, 0).unwrap_err();
        let Error::InvalidTimestamp(value) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(value, &format!("{}…", "9".repeat(64)));
    }

    #[test]
    fn tampering_and_wrong_secrets_fail() {
        let spec = [secret(SPEC_SECRET)];
        let no_match = |result: Result<Verified, Error>| {
            assert!(
                matches!(result, Err(Error::NoMatchingSignature { secrets: 1 })),
                "{result:?}"
            );
        };
        // Another body.
        let headers = headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE);
        no_match(verify_at(
            &headers,
            br#"{"test": 2432232315}"#,
            &spec,
            DEFAULT_TOLERANCE,
            SPEC_TIMESTAMP,
        ));
        // Another id, another timestamp.
        let headers = self::headers("msg_other", SPEC_TIMESTAMP, SPEC_SIGNATURE);
        no_match(verify_at(
            &headers,
            SPEC_BODY,
            &spec,
            DEFAULT_TOLERANCE,
            SPEC_TIMESTAMP,
        ));
        let headers = self::headers(SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_SIGNATURE);
        no_match(verify_at(
            &headers,
            SPEC_BODY,
            &spec,
            DEFAULT_TOLERANCE,
            SPEC_TIMESTAMP,
        ));
        // Another secret.
        no_match(verify_spec(
            SPEC_SIGNATURE,
            &[Secret::generate().unwrap()],
            SPEC_TIMESTAMP,
        ));
        // The right signature with one character changed.
        no_match(verify_spec(
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
            &spec,
            SPEC_TIMESTAMP,
        ));
    }

    #[test]
    fn malformed_and_foreign_entries_are_skipped() {
        let spec = [secret(SPEC_SECRET)];
        let tag = SPEC_SIGNATURE.strip_prefix("v1,").unwrap();
        let junk = [
            "",
            "v1",
            "v1,",
            "v1,!!!!",
            "v1,g0hM9SsE",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE==",
            "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1,,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "garbage",
            ",",
        ];
        for entry in junk {
            assert!(
                matches!(
                    verify_spec(entry, &spec, SPEC_TIMESTAMP),
                    Err(Error::NoMatchingSignature { .. })
                ),
                "{entry:?}"
            );
            // A good entry after the junk still passes.
            verify_spec(&format!("{entry} {SPEC_SIGNATURE}"), &spec, SPEC_TIMESTAMP).unwrap();
        }
        // The right tag under another version is not accepted.
        for version in ["v1a", "v2", "V1", "v0"] {
            assert!(verify_spec(&format!("{version},{tag}"), &spec, SPEC_TIMESTAMP).is_err());
        }
        // Extra whitespace between entries is tolerated.
        verify_spec(
            &format!("  v1a,{tag}\t {SPEC_SIGNATURE}  "),
            &spec,
            SPEC_TIMESTAMP,
        )
        .unwrap();
    }

    #[test]
    fn timestamps_pass_at_the_tolerance_and_fail_beyond_it_both_ways() {
        let spec = [secret(SPEC_SECRET)];
        let tolerance = DEFAULT_TOLERANCE.as_secs() as i64;
        verify_spec(SPEC_SIGNATURE, &spec, SPEC_TIMESTAMP + tolerance).unwrap();
        verify_spec(SPEC_SIGNATURE, &spec, SPEC_TIMESTAMP - tolerance).unwrap();
        for now in [
            SPEC_TIMESTAMP + tolerance + 1,
            SPEC_TIMESTAMP - tolerance - 1,
        ] {
            let err = verify_spec(SPEC_SIGNATURE, &spec, now).unwrap_err();
            let Error::TimestampOutOfTolerance {
                timestamp,
                now: at,
                tolerance,
            } = err
            else {
                panic!("{err:?}")
            };
            assert_eq!(
                (timestamp, at, tolerance),
                (SPEC_TIMESTAMP, now, DEFAULT_TOLERANCE)
            );
        }
        // A custom tolerance, and a zero one.
        let headers = headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE);
        let at = |tolerance, now| verify_at(&headers, SPEC_BODY, &spec, tolerance, now);
        at(Duration::from_secs(3600), SPEC_TIMESTAMP - 3600).unwrap();
        at(Duration::from_secs(3600), SPEC_TIMESTAMP - 3601).unwrap_err();
        at(Duration::ZERO, SPEC_TIMESTAMP).unwrap();
        at(Duration::ZERO, SPEC_TIMESTAMP + 1).unwrap_err();
        // No overflow at the ends of the range.
        at(DEFAULT_TOLERANCE, i64::MIN).unwrap_err();
        at(DEFAULT_TOLERANCE, i64::MAX).unwrap_err();
        at(Duration::MAX, i64::MIN).unwrap();
    }

    #[test]
    fn headers_are_found_in_any_case_in_every_container() {
        let signature = SPEC_SIGNATURE.to_owned();
        let timestamp = SPEC_TIMESTAMP.to_string();
        let pairs = [
            ("Webhook-Id", SPEC_ID),
            ("WEBHOOK-TIMESTAMP", timestamp.as_str()),
            ("webhook-Signature", signature.as_str()),
        ];
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let hash: HashMap<String, String> = owned.iter().cloned().collect();
        let btree: BTreeMap<String, String> = owned.iter().cloned().collect();
        let spec = [secret(SPEC_SECRET)];
        let check = |headers: &dyn Headers| {
            assert_eq!(headers.header("webhook-id"), Some(SPEC_ID));
            assert_eq!(headers.header("webhook-nope"), None);
            verify_at(headers, SPEC_BODY, &spec, DEFAULT_TOLERANCE, SPEC_TIMESTAMP).unwrap();
        };
        check(&pairs);
        check(&pairs.as_slice());
        check(&owned);
        check(&hash);
        check(&btree);
        check(&&btree);
    }

    #[test]
    fn secrets_parse_with_the_length_and_format_rules() {
        // 24 and 64 bytes are the bounds; whitespace around is ignored.
        for len in [24, 32, 64] {
            let written = format!("whsec_{}", STANDARD.encode(vec![7u8; len]));
            let parsed = secret(&format!(" \t{written}\n"));
            assert_eq!(parsed.to_whsec(), written);
            assert_eq!(written.parse::<Secret>().unwrap().to_whsec(), written);
            assert_eq!(
                Secret::from_bytes(&vec![7u8; len]).unwrap().to_whsec(),
                written
            );
        }
        for len in [0, 16, 23, 65, 100] {
            let err = Secret::from_bytes(&vec![7u8; len]).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("secret is {len} bytes; it must be 24 to 64 bytes")),
                "{err}"
            );
            let written = format!("whsec_{}", STANDARD.encode(vec![7u8; len]));
            assert_eq!(
                Secret::parse(&written).unwrap_err().to_string(),
                err.to_string()
            );
        }
        assert_eq!(secret(SPEC_SECRET).to_whsec(), SPEC_SECRET);
    }

    #[test]
    fn a_secret_never_shows_in_debug_or_errors() {
        let spec = secret(SPEC_SECRET);
        assert_eq!(format!("{spec:?}"), "Secret(whsec_…)");
        assert_eq!(format!("{:?}", [spec]), "[Secret(whsec_…)]");

        let value = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let bad = [
            value.to_owned(),
            format!("whsec{value}"),
            format!("WHSEC_{value}"),
            format!("whsec_{value}x"),
            format!("whsec_{value}=x"),
            format!("whsec_{}", &value[..30]),
            format!("whsec_{}-", &value[..31]),
            format!("whsec_{}é", &value[..31]),
            format!("whsec_{}", &value[..20]),
            format!("whsec_{value}{value}{value}"),
            format!("whsec_{}", STANDARD.encode([1u8; 65])),
        ];
        for input in &bad {
            let err = Secret::parse(input).unwrap_err();
            assert!(matches!(err, Error::InvalidSecret(_)));
            for text in [err.to_string(), format!("{err:?}")] {
                for leak in [&value[..8], &value[10..18], &value[24..]] {
                    assert!(!text.contains(leak), "{input:?} leaks in {text:?}");
                }
                assert!(!text.contains("AQEBAQEB"), "{input:?} leaks in {text:?}");
            }
            // The same through serde, as from a configuration file.
            let json = serde_json::to_string(input).unwrap();
            let err = serde_json::from_str::<Secret>(&json)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("secret"), "{err}");
            assert!(!err.contains(&value[..8]), "{err}");
        }
    }

    #[test]
    fn secrets_deserialize_from_configuration() {
        #[derive(Debug, serde::Deserialize)]
        struct Config {
            secrets: Vec<Secret>,
        }
        let config: Config = serde_json::from_str(&format!(
            r#"{{"secrets": ["{SPEC_SECRET}", " {SPEC_SECRET} "]}}"#
        ))
        .unwrap();
        assert_eq!(config.secrets.len(), 2);
        assert_eq!(config.secrets[1].to_whsec(), SPEC_SECRET);
        let err = serde_json::from_str::<Config>(r#"{"secrets": [42]}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a webhook secret ('whsec_' followed by base64)"),
            "{err}"
        );
    }

    #[test]
    fn generated_secrets_are_32_random_bytes() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert_eq!(a.key.len(), 32);
        assert_eq!(a.to_whsec().len(), "whsec_".len() + 44);
        assert_ne!(a.to_whsec(), b.to_whsec());
        assert_eq!(secret(&a.to_whsec()).to_whsec(), a.to_whsec());
    }

    #[test]
    fn hub_signatures_match_known_values() {
        // From GitHub's documentation ("Validating webhook deliveries"); the same value comes
        // out of `python3 -c 'import hmac,hashlib; print(hmac.new(b"It\x27s a Secret to
        // Everybody", b"Hello, World!", hashlib.sha256).hexdigest())'`.
        let github = Secret::from_bytes(b"It's a Secret to Everybody").unwrap();
        assert_eq!(
            hub_signature(&github, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        // Computed with `python3 -c 'import hmac,hashlib,base64;
        // k=base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        // print(hmac.new(k, b"{\"test\": 2432232314}", hashlib.sha256).hexdigest())'`.
        let spec = secret(SPEC_SECRET);
        assert_eq!(
            hub_signature(&spec, SPEC_BODY),
            "sha256=e2cb4f5251572539d458bfb8a7adb533b08801e6a794467e06f771debbb0818b"
        );
        // The same with an empty body.
        assert_eq!(
            hub_signature(&spec, b""),
            "sha256=fd9de8dedd17b98b1f3d0def84ae1d8bf94dbfc3c77dbaf0c510fe56e7be79e6"
        );
    }
}
