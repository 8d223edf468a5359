//! The keys of Standard Webhooks: HMAC secrets (`whsec_`), ed25519 signing keys (`whsk_`) and
//! ed25519 public keys (`whpk_`), parsed, generated and written back.
//!
//! Nothing here signs or verifies; the parent module does, with the keys held here.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

/// Standard base64 that reads keys with or without their `=` padding.
const PADDING_OPTIONAL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
use ed25519_dalek::{PUBLIC_KEY_LENGTH, SECRET_KEY_LENGTH, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Error;

pub(super) type HmacSha256 = Hmac<Sha256>;

// The keyed HMAC states (a Signer's, each request's clone, a verification's) and the raw
// key are wiped when dropped: an HMAC state is two SHA-256 states and a block buffer, each
// wiped by its own `Drop`. This stops compiling if the `zeroize` features of `hmac` and
// `sha2` are left out.
const _: () = {
    use hmac::digest::block_api::{Buffer, CoreProxy};
    const fn wiped<T: zeroize::ZeroizeOnDrop>() {}
    wiped::<<Sha256 as CoreProxy>::Core>();
    wiped::<Buffer<hmac::block_api::HmacCore<Sha256>>>();
    wiped::<Zeroizing<Box<[u8]>>>();
};

const HMAC_PREFIX: &str = "whsec_";
const SIGNING_PREFIX: &str = "whsk_";
const PUBLIC_PREFIX: &str = "whpk_";
const MIN_SECRET_LEN: usize = 24;
const MAX_SECRET_LEN: usize = 64;
const GENERATED_SECRET_LEN: usize = 32;
/// A seed followed by its public key, as Go's crypto/ed25519, libsodium and Svix write it.
const KEYPAIR_LEN: usize = SECRET_KEY_LENGTH + PUBLIC_KEY_LENGTH;
const HOW_TO_GENERATE: &str = "generate one with `deskhook secret new` or \
                               `deskhook::Secret::generate()`, or write 'whsec_' before the \
                               output of `openssl rand -base64 32`";
const HOW_TO_GENERATE_ED25519: &str = "generate one with `deskhook secret new --ed25519` or \
                                       `deskhook::Secret::generate_ed25519()`";

/// A key for Standard Webhooks signatures: an HMAC secret shared by the sender and the
/// receivers, an ed25519 signing key kept by the sender, or the ed25519 public key that
/// receivers check its signatures with.
///
/// The written form says which, by its prefix:
///
/// - `whsec_` and the standard base64 of 24 to 64 random bytes, as in
///   `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`: an HMAC-SHA256 secret; it signs and verifies
///   `v1` entries.
/// - `whsk_` and the standard base64 of an ed25519 signing key: 64 bytes (the 32-byte seed
///   followed by the public key, as Go's `crypto/ed25519`, libsodium and Svix write it) or the
///   32-byte seed alone. It signs `v1a` entries, and verifies them as its public key does.
/// - `whpk_` and the standard base64 of a 32-byte ed25519 public key: it verifies `v1a`
///   entries and cannot sign. It is not secret, and may be published.
///
/// Parse one with [`Secret::parse`] (or `str::parse`, or serde from a configuration file), make
/// a new one with [`Secret::generate`] or [`Secret::generate_ed25519`], and give a receiver of
/// ed25519 signatures the [`Secret::public_key`] of the sender's key.
///
/// Secrets are kept out of logs: `Debug` prints `Secret(whsec_…)` or `Secret(whsk_…)` (and a
/// public key in full), there is no `Display` and no `Serialize`, and parse errors never quote
/// the key. [`Secret::reveal`] is the one way to get it back out. Two secrets are equal
/// (`==`, compared in constant time) when they are the same key.
///
/// Secrets are wiped from memory when dropped: the key's bytes, the buffers it was decoded
/// or generated in, and the keyed HMAC states made from it (a [`Signer`]'s, and each
/// signature's and verification's). What stays is outside this type: the text it was parsed
/// from (a configuration file, an environment variable), [`Secret::reveal`]'s string, and the
/// 64-byte block the `hmac` crate keys its state with, left on the stack.
///
/// [`Signer`]: crate::signature::Signer
///
/// # Examples
///
/// ```
/// use deskhook::Secret;
/// use deskhook::signature::SecretKind;
///
/// # fn main() -> Result<(), deskhook::Error> {
/// let sender = Secret::generate_ed25519()?;
/// let receiver = sender.public_key().expect("an ed25519 key has a public key");
/// assert_eq!(receiver.kind(), SecretKind::Ed25519Public);
/// assert!(sender.can_sign() && !receiver.can_sign());
/// assert!(receiver.reveal().starts_with("whpk_"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Secret {
    key: Key,
}

impl PartialEq for Secret {
    /// Whether both are the same key: of the same kind, with the same bytes, compared in
    /// constant time (no early exit at the first byte that differs; keys of different
    /// lengths differ at once).
    fn eq(&self, other: &Secret) -> bool {
        match (&self.key, &other.key) {
            (Key::Hmac(a), Key::Hmac(b)) => same_bytes(a, b),
            // dalek compares signing keys in constant time.
            (Key::Ed25519(a), Key::Ed25519(b)) => a == b,
            (Key::Ed25519Public(a), Key::Ed25519Public(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Secret {}

/// Whether `a` and `b` hold the same bytes, looking at all of them whatever they hold
/// (`subtle`'s comparison, which the optimizer cannot shorten).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.ct_eq(b).into()
}

/// What a [`Secret`] holds, ready to use: the raw HMAC key, or the ed25519 keys with their
/// curve points already computed. Both kinds of secret key are wiped when dropped.
#[derive(Clone)]
pub(super) enum Key {
    Hmac(Zeroizing<Box<[u8]>>),
    /// Boxed: a signing key with its public point is about 250 bytes.
    Ed25519(Box<SigningKey>),
    Ed25519Public(VerifyingKey),
}

/// The kind of a [`Secret`], told by the prefix of its written form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretKind {
    /// An HMAC-SHA256 secret, written `whsec_…`: it signs and verifies `v1` entries, and the
    /// sender and every receiver hold the same one.
    Hmac,
    /// An ed25519 signing key, written `whsk_…`: it signs `v1a` entries and verifies them. The
    /// sender keeps it; receivers get its [`Secret::public_key`].
    Ed25519,
    /// An ed25519 public key, written `whpk_…`: it verifies `v1a` entries and cannot sign. It
    /// is not secret.
    Ed25519Public,
}

impl Secret {
    /// Parses the written form of a key: `whsec_`, `whsk_` or `whpk_` followed by standard
    /// base64, with or without its `=` padding; whitespace around it is ignored.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSecret`] when the prefix is none of the three, the rest is not standard
    /// base64, the key has the wrong length for its kind (24 to 64 bytes for `whsec_`, 64 or 32
    /// for `whsk_`, 32 for `whpk_`), the public half of a 64-byte `whsk_` key is not the public
    /// key of its seed, or a `whpk_` key is not a usable ed25519 public key. The message says
    /// which, and never contains the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use deskhook::Secret;
    /// use deskhook::signature::SecretKind;
    ///
    /// let hmac = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    /// assert_eq!(hmac.kind(), SecretKind::Hmac);
    ///
    /// let err = Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err();
    /// assert!(err.to_string().contains("write 'whsec_' before it"));
    /// ```
    pub fn parse(s: &str) -> Result<Secret, Error> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::InvalidSecret(format!(
                "secret is empty; it must be 'whsec_', 'whsk_' or 'whpk_' followed by base64 \
                 ({HOW_TO_GENERATE})"
            )));
        }
        let (prefix, encoded) = [HMAC_PREFIX, SIGNING_PREFIX, PUBLIC_PREFIX]
            .into_iter()
            .find_map(|prefix| Some((prefix, s.strip_prefix(prefix)?)))
            .ok_or_else(|| unknown_prefix(s))?;
        // Padding is optional: a key cut from a tool that leaves out the '=' is the same key,
        // and a short one then gets the message about its length.
        let key = Zeroizing::new(PADDING_OPTIONAL.decode(encoded).map_err(|e| {
            Error::InvalidSecret(format!(
                "secret '{prefix}…' is not valid base64: {}",
                describe_base64_error(&e, prefix)
            ))
        })?);
        match prefix {
            HMAC_PREFIX => Secret::from_bytes(&key),
            SIGNING_PREFIX => signing_key(&key),
            _ => public_key(&key),
        }
    }

    /// Makes an HMAC secret (`whsec_`) from raw key bytes.
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
        Ok(Secret {
            key: Key::Hmac(Zeroizing::new(key.into())),
        })
    }

    /// Makes a new HMAC secret (`whsec_`) of 32 bytes from the operating system's random
    /// source.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSecret`] when the random source fails (it does not on any supported
    /// system once booted).
    pub fn generate() -> Result<Secret, Error> {
        let mut key = Zeroizing::new(Box::new([0u8; GENERATED_SECRET_LEN]) as Box<[u8]>);
        random(&mut key)?;
        Ok(Secret {
            key: Key::Hmac(key),
        })
    }

    /// Makes a new ed25519 signing key (`whsk_`) from a 32-byte seed drawn from the operating
    /// system's random source. Give receivers its [`Secret::public_key`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSecret`] when the random source fails (it does not on any supported
    /// system once booted).
    pub fn generate_ed25519() -> Result<Secret, Error> {
        let mut seed = Zeroizing::new([0u8; SECRET_KEY_LENGTH]);
        random(&mut *seed)?;
        Ok(Secret {
            key: Key::Ed25519(Box::new(SigningKey::from_bytes(&seed))),
        })
    }

    /// The kind of this key: HMAC secret, ed25519 signing key, or ed25519 public key.
    pub fn kind(&self) -> SecretKind {
        match self.key {
            Key::Hmac(_) => SecretKind::Hmac,
            Key::Ed25519(_) => SecretKind::Ed25519,
            Key::Ed25519Public(_) => SecretKind::Ed25519Public,
        }
    }

    /// Whether this key can make signatures: true for `whsec_` and `whsk_` keys, false for a
    /// `whpk_` public key.
    pub fn can_sign(&self) -> bool {
        !matches!(self.key, Key::Ed25519Public(_))
    }

    /// The public key (`whpk_`) that checks this key's signatures: that of an ed25519 signing
    /// key, the key itself for a public key, and `None` for an HMAC secret, which has none.
    pub fn public_key(&self) -> Option<Secret> {
        match &self.key {
            Key::Hmac(_) => None,
            Key::Ed25519(signing) => Some(Secret {
                key: Key::Ed25519Public(signing.verifying_key()),
            }),
            Key::Ed25519Public(_) => Some(self.clone()),
        }
    }

    /// The key in its written form, `whsec_…`, `whsk_…` or `whpk_…`, to hand to a receiver or
    /// store in a configuration file; a signing key is always written in its 64-byte form
    /// (seed and public key). Handle the result with the same care as the key (a `whpk_`
    /// public key excepted).
    pub fn reveal(&self) -> String {
        match &self.key {
            Key::Hmac(key) => written(HMAC_PREFIX, key),
            Key::Ed25519(signing) => {
                written(SIGNING_PREFIX, &*Zeroizing::new(signing.to_keypair_bytes()))
            }
            Key::Ed25519Public(public) => written(PUBLIC_PREFIX, public.as_bytes()),
        }
    }

    /// The key as it is used.
    pub(super) fn key(&self) -> &Key {
        &self.key
    }

    /// The key as it is used, taken out.
    pub(super) fn into_key(self) -> Key {
        self.key
    }

    /// An HMAC-SHA256 state keyed with this secret, or `None` when it is an ed25519 key.
    pub(super) fn mac(&self) -> Option<HmacSha256> {
        match &self.key {
            // HMAC takes keys of any length; the length was checked when the secret was made.
            Key::Hmac(key) => {
                Some(HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length"))
            }
            Key::Ed25519(_) | Key::Ed25519Public(_) => None,
        }
    }

    /// The public key that checks `v1a` entries, or `None` for an HMAC secret.
    pub(super) fn verifying_key(&self) -> Option<&VerifyingKey> {
        match &self.key {
            Key::Hmac(_) => None,
            Key::Ed25519(signing) => Some(<SigningKey as AsRef<VerifyingKey>>::as_ref(signing)),
            Key::Ed25519Public(public) => Some(public),
        }
    }
}

/// The prefix and the standard base64 of `key`.
fn written(prefix: &str, key: &[u8]) -> String {
    let mut out = String::with_capacity(prefix.len() + key.len().div_ceil(3) * 4);
    out.push_str(prefix);
    STANDARD.encode_string(key, &mut out);
    out
}

/// Fills `bytes` from the operating system's random source (in place: the key is not
/// copied through the stack on its way to the wiped buffer that keeps it).
fn random(bytes: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(bytes).map_err(|e| {
        Error::InvalidSecret(format!(
            "cannot generate a secret: the system random source failed: {e}"
        ))
    })
}

/// The error for a key written with none of the three prefixes.
fn unknown_prefix(s: &str) -> Error {
    // Perhaps the key itself, its prefix left out: wiped once measured.
    let looks_like_base64 = PADDING_OPTIONAL
        .decode(s)
        .map(Zeroizing::new)
        .is_ok_and(|key| (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&key.len()));
    Error::InvalidSecret(if looks_like_base64 {
        "secret must start with 'whsec_' (it looks like the base64 part alone: write 'whsec_' \
         before it)"
            .to_owned()
    } else {
        format!(
            "secret must start with 'whsec_' (HMAC), 'whsk_' (ed25519 signing key) or 'whpk_' \
             (ed25519 public key) ({HOW_TO_GENERATE})"
        )
    })
}

/// A `whsk_` key from its decoded bytes: the seed and its public key, or the seed alone.
fn signing_key(bytes: &[u8]) -> Result<Secret, Error> {
    let (seed, public) = match bytes.len() {
        KEYPAIR_LEN => bytes.split_at(SECRET_KEY_LENGTH),
        SECRET_KEY_LENGTH => (bytes, &[][..]),
        len => {
            return Err(Error::InvalidSecret(format!(
                "secret 'whsk_…' is {len} bytes; an ed25519 signing key is {KEYPAIR_LEN} bytes \
                 (seed and public key) or {SECRET_KEY_LENGTH} (seed alone) \
                 ({HOW_TO_GENERATE_ED25519})"
            )));
        }
    };
    let seed: &[u8; SECRET_KEY_LENGTH] = seed.try_into().expect("split at the seed's length");
    let signing = SigningKey::from_bytes(seed);
    // Compared as bytes: a public half that is no curve point, or not in canonical form, is
    // refused the same way.
    if !public.is_empty() && public != signing.verifying_key().as_bytes() {
        return Err(Error::InvalidSecret(format!(
            "secret 'whsk_…' is not a key pair: its last {PUBLIC_KEY_LENGTH} bytes are not the \
             public key of its first {SECRET_KEY_LENGTH} (the seed); check that both halves come \
             from the same key, or write the seed alone"
        )));
    }
    Ok(Secret {
        key: Key::Ed25519(Box::new(signing)),
    })
}

/// A `whpk_` key from its decoded bytes.
fn public_key(bytes: &[u8]) -> Result<Secret, Error> {
    let Ok(bytes) = <&[u8; PUBLIC_KEY_LENGTH]>::try_from(bytes) else {
        let hint = if bytes.len() == KEYPAIR_LEN {
            " (is it a whsk_ signing key? its public key is the last 32 bytes)"
        } else {
            ""
        };
        return Err(Error::InvalidSecret(format!(
            "public key 'whpk_…' is {} bytes; an ed25519 public key is {PUBLIC_KEY_LENGTH} \
             bytes{hint}",
            bytes.len()
        )));
    };
    let public = VerifyingKey::from_bytes(bytes).map_err(|_| {
        Error::InvalidSecret(
            "public key 'whpk_…' is not an ed25519 public key (not a point on the curve); copy \
             it again from the sender"
                .to_owned(),
        )
    })?;
    if public.is_weak() {
        return Err(Error::InvalidSecret(
            "public key 'whpk_…' is a weak ed25519 key (of small order) that no signature can \
             be checked against; ask the sender for its real public key"
                .to_owned(),
        ));
    }
    Ok(Secret {
        key: Key::Ed25519Public(public),
    })
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Key::Hmac(_) => f.write_str("Secret(whsec_…)"),
            Key::Ed25519(_) => f.write_str("Secret(whsk_…)"),
            // Not secret; printed whole so that logs tell keys apart.
            Key::Ed25519Public(_) => write!(f, "Secret({})", self.reveal()),
        }
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
                f.write_str("a webhook key ('whsec_', 'whsk_' or 'whpk_' followed by base64)")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Secret, E> {
                Secret::parse(s).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(SecretVisitor)
    }
}

/// Says what is wrong with the base64 part of a key written after `prefix`, without quoting
/// any of it: characters are shown only when they cannot be part of a standard base64 key.
fn describe_base64_error(e: &base64::DecodeError, prefix: &str) -> String {
    use base64::DecodeError;
    let at = |offset: usize| offset + prefix.len();
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

#[cfg(test)]
mod tests;
