//! The bucket's records: what is sealed (with [`SecretsKey`]) and what is not, written by
//! [`record_of`] and read back by [`read_record`], by layout.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{LAYOUT, LAYOUT_PLAIN_URL, LAYOUT_SEALED_URL, SECRETS_KEY_ENV, StoredEndpoint};
use crate::delivery::{EndpointSpec, SecretSpec};
use crate::error::Error;

/// The key that seals endpoints' secrets and header values: 32 bytes, written as base64.
/// Wiped from memory when dropped, as are the buffers it is read or made in, and the JSON
/// it seals and opens (not the settings read from that JSON).
#[derive(Clone)]
pub struct SecretsKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey(…)")
    }
}

impl SecretsKey {
    /// A key from its base64 text.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the text is not base64 of 32 bytes (the text is not repeated).
    pub fn parse(text: &str) -> Result<SecretsKey, Error> {
        SecretsKey::read(text).map_err(Error::Config)
    }

    /// [`parse`](SecretsKey::parse), the error as its message alone.
    fn read(text: &str) -> Result<SecretsKey, String> {
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
            "the secrets key is not base64; make one with `deskhook endpoints new-key`".to_owned()
        })?);
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != key.len() {
            return Err(format!(
                "the secrets key is {} bytes; it must be 32 (make one with `deskhook endpoints \
                 new-key`)",
                bytes.len()
            ));
        }
        key.copy_from_slice(&bytes);
        Ok(SecretsKey(key))
    }

    /// The key in the environment variable `name`, if it is set.
    ///
    /// # Errors
    ///
    /// As [`SecretsKey::parse`], naming the variable; and when it is set but empty (what
    /// `NAME=$UNSET` exports) or not UTF-8: records would otherwise be written unsealed,
    /// and read without a key, while the operator believes they are sealed.
    pub fn from_env(name: &str) -> Result<Option<SecretsKey>, Error> {
        Ok(match key_text(name)? {
            Some(text) => {
                Some(SecretsKey::read(&text).map_err(|e| Error::Config(format!("{name}: {e}")))?)
            }
            None => None,
        })
    }

    /// The keys in the environment variable `name`, comma-separated: the previous keys of a
    /// rotation ([`EndpointStore::previous_keys`](super::EndpointStore::previous_keys)).
    /// None when it is not set.
    ///
    /// # Errors
    ///
    /// As [`SecretsKey::parse`], naming the variable and which key of the list; and when it
    /// is not UTF-8. Set but empty, it is none: what a rotation's end leaves
    /// (`NAME=""` in a manifest).
    pub fn list_from_env(name: &str) -> Result<Vec<SecretsKey>, Error> {
        match std::env::var(name) {
            Ok(text) => SecretsKey::parse_list(&text, name),
            Err(std::env::VarError::NotPresent) => Ok(Vec::new()),
            Err(std::env::VarError::NotUnicode(_)) => Err(not_unicode(name)),
        }
    }

    /// Keys written comma-separated, read from `name` (for errors).
    fn parse_list(text: &str, name: &str) -> Result<Vec<SecretsKey>, Error> {
        text.split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .enumerate()
            .map(|(at, key)| {
                SecretsKey::read(key)
                    .map_err(|e| Error::Config(format!("{name}, key {}: {e}", at + 1)))
            })
            .collect()
    }

    /// A new random key.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the operating system's random generator fails.
    pub fn generate() -> Result<SecretsKey, Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *key)
            .map_err(|e| Error::Config(format!("the random generator failed: {e}")))?;
        Ok(SecretsKey(key))
    }

    /// The key as base64, to give to every relay.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.as_slice())
    }

    fn seal(&self, endpoint: &str, aad: &[u8], plain: &[u8]) -> Result<String, Error> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce)
            .map_err(|e| Error::Config(format!("the random generator failed: {e}")))?;
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
            .map_err(|_| Error::Config(format!("endpoint '{endpoint}': sealing failed")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    fn open(&self, endpoint: &str, aad: &Aad, sealed: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        let wrong = || {
            Error::Config(if aad.binds_settings {
                format!(
                    "endpoint '{endpoint}': its sealed part does not open with this secrets key \
                     for these settings: either it was sealed with another key (give every \
                     relay that key), or its settings were changed in the bucket without the \
                     key (write it again in one step, with `deskhook endpoints add --replace \
                     name={endpoint} …`: a remove then an add would leave the events in \
                     between to no endpoint)"
                )
            } else {
                format!(
                    "endpoint '{endpoint}': its secrets cannot be opened with this secrets key; \
                     give every relay the key they were sealed with"
                )
            })
        };
        let bytes = STANDARD.decode(sealed).map_err(|_| wrong())?;
        if bytes.len() < 24 {
            return Err(wrong());
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        XChaCha20Poly1305::new((&*self.0).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad.bytes,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| wrong())
    }
}

/// The key records are sealed with, and the keys of a rotation under way that older
/// records may still be sealed with (read only).
#[derive(Clone, Default)]
pub(super) struct Keys {
    pub(super) current: Option<SecretsKey>,
    pub(super) previous: Vec<SecretsKey>,
}

impl Keys {
    /// Reads a record of the endpoint `name` (see [`read_record`]), its sealed part opened
    /// with the current key or else a previous one.
    pub(super) fn read(
        &self,
        name: &str,
        value: &[u8],
        revision: u64,
        trust: Trust,
    ) -> Result<StoredEndpoint, Error> {
        read_record_with(name, value, revision, self, trust)
    }

    /// Opens `sealed` with the current key, else with a previous one: the text, and
    /// whether a previous key opened it. The error is the current key's.
    fn open(
        &self,
        name: &str,
        aad: &Aad,
        sealed: &str,
    ) -> Result<(Zeroizing<Vec<u8>>, bool), Error> {
        let key = self.current.as_ref().ok_or_else(|| {
            Error::Config(format!(
                "endpoint '{name}' has sealed settings (secrets, header values, URL) and no \
                 secrets key was given: set {SECRETS_KEY_ENV} to the key they were sealed with"
            ))
        })?;
        match key.open(name, aad, sealed) {
            Ok(plain) => Ok((plain, false)),
            Err(e) => self
                .previous
                .iter()
                .find_map(|key| key.open(name, aad, sealed).ok())
                .map(|plain| (plain, true))
                .ok_or(e),
        }
    }
}

/// The JSON of `sealed`, written into a buffer of its exact size (measured first): a
/// buffer that grew would leave parts of the secrets in the memory it freed.
fn sealed_json(sealed: &impl Serialize) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
    /// Counts what is written.
    struct Measure(usize);
    impl std::io::Write for Measure {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut measure = Measure(0);
    serde_json::to_writer(&mut measure, sealed)?;
    let mut json = Zeroizing::new(Vec::with_capacity(measure.0));
    serde_json::to_writer(&mut *json, sealed)?;
    Ok(json)
}

/// What a record's sealed part is bound to: its endpoint's name and, from layout 3, its
/// settings in the open (as the record holds them: their JSON, written and read back with
/// the same key order) and whether it is paused.
struct Aad {
    bytes: Vec<u8>,
    binds_settings: bool,
}

impl Aad {
    fn of(name: &str, record: (u32, bool, &serde_json::Value)) -> Result<Aad, Error> {
        let (layout, paused, spec) = record;
        if layout < LAYOUT {
            return Ok(Aad {
                bytes: name.as_bytes().to_vec(),
                binds_settings: false,
            });
        }
        let mut bytes = b"deskhook endpoint record 3\0".to_vec();
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.push(u8::from(paused));
        serde_json::to_writer(&mut bytes, spec)
            .map_err(|e| Error::Config(format!("endpoint '{name}': {e}")))?;
        Ok(Aad {
            bytes,
            binds_settings: true,
        })
    }
}

/// The record in the bucket.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    layout: u32,
    #[serde(default)]
    paused: bool,
    spec: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
}

/// What is sealed: the secrets and the header values; with a key, the URL and the template
/// variables too.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Sealed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secrets: Option<Vec<SecretSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    template_vars: Option<BTreeMap<String, String>>,
}

/// What of `url` stays readable when it is sealed: its origin (`https://hooks.slack.com`).
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.origin().is_tuple() => parsed.origin().ascii_serialization(),
        _ => "(sealed)".to_owned(),
    }
}

/// The bucket's key of an endpoint's name.
pub(super) fn key_of(name: &str) -> String {
    URL_SAFE_NO_PAD.encode(name.as_bytes())
}

/// The endpoint name of a bucket's key.
pub(super) fn name_of(key: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(key)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

/// The record of `spec`, its secrets sealed with `key`.
pub(super) fn record_of(
    spec: &EndpointSpec,
    paused: bool,
    key: Option<&SecretsKey>,
) -> Result<Vec<u8>, Error> {
    let preset = spec
        .template
        .as_deref()
        .and_then(crate::template::preset_named);
    if let (Some(preset), None) = (preset, key) {
        return Err(Error::Config(format!(
            "endpoint '{}' posts with the {preset} preset, whose webhook URL lets whoever has \
             it post to the channel, so the bucket keeps it sealed: set {SECRETS_KEY_ENV} \
             (32 bytes, base64; `deskhook endpoints new-key` makes one, and every relay \
             needs it)",
            spec.name
        )));
    }
    let sealed = Sealed {
        secrets: spec.secrets.clone().filter(|s| !s.is_empty()),
        headers: spec.headers.clone().filter(|h| !h.is_empty()),
        url: key.map(|_| spec.url.clone()),
        template_vars: spec
            .template_vars
            .clone()
            .filter(|v| key.is_some() && !v.is_empty()),
    };
    let nothing_sealed =
        sealed.secrets.is_none() && sealed.headers.is_none() && sealed.url.is_none();
    if !nothing_sealed && key.is_none() {
        return Err(Error::Config(format!(
            "endpoint '{}' has secrets or headers, which the bucket keeps sealed: set \
             {SECRETS_KEY_ENV} (32 bytes, base64; `deskhook endpoints new-key` makes one, \
             and every relay needs it), or give the secret as secret_env (the name of an \
             environment variable every relay has)",
            spec.name
        )));
    }
    let mut open = spec.clone();
    open.secrets = None;
    open.headers = None;
    let layout = if key.is_some() {
        open.url = shown_url(&spec.url);
        if open.template_vars.as_ref().is_some_and(|v| !v.is_empty()) {
            open.template_vars = None;
        }
        LAYOUT
    } else {
        LAYOUT_PLAIN_URL
    };
    let open = serde_json::to_value(&open)
        .map_err(|e| Error::Config(format!("endpoint '{}': {e}", spec.name)))?;
    let sealed = match key {
        // With a key the URL is sealed, so there is always something to seal.
        Some(key) => {
            let plain = sealed_json(&sealed)
                .map_err(|e| Error::Config(format!("endpoint '{}': {e}", spec.name)))?;
            let aad = Aad::of(&spec.name, (layout, paused, &open))?;
            Some(key.seal(&spec.name, &aad.bytes, &plain)?)
        }
        None => None,
    };
    let record = Record {
        layout,
        paused,
        spec: open,
        sealed,
    };
    serde_json::to_vec(&record).map_err(|e| Error::Config(format!("endpoint '{}': {e}", spec.name)))
}

/// The text of the environment variable `name` holding the key; `None` when it is not set.
fn key_text(name: &str) -> Result<Option<String>, Error> {
    match std::env::var(name) {
        Ok(text) if text.trim().is_empty() => Err(Error::Config(format!(
            "{name} is set but empty; export the key in it (`deskhook endpoints new-key` makes \
             one), or unset {name} to go without"
        ))),
        Ok(text) => Ok(Some(text)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(not_unicode(name)),
    }
}

/// The error of a key variable `name` that is not UTF-8.
fn not_unicode(name: &str) -> Error {
    Error::Config(format!(
        "{name} is not UTF-8 text; a key is written in base64"
    ))
}

/// How much of a record is believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Trust {
    /// With a key, only a record sealed in the current layout: one without a sealed part
    /// (layout 1), or whose seal does not bind its settings (layout 2), could have been
    /// written by anyone who can write to the bucket.
    Sealed,
    /// Every layout (the default, until every record is resealed), but, with a key, not an
    /// older record that names what is the reader's own: a file (`template_file`,
    /// `ca_file`), a variable of its environment (`secret_env`), or its private networks
    /// (`allow_private`, `allow_cidrs`). Whoever can write to the bucket could otherwise
    /// have the reader post them anywhere (`template_file = "/proc/self/environ"`).
    Lenient,
    /// Every layout, whatever it names: for the operator to check and reseal it.
    ToReseal,
}

/// The first setting of `spec` that names what is its reader's own (see
/// [`Trust::Lenient`]), as a record writes it.
pub(super) fn readers_own(spec: &EndpointSpec) -> Option<&'static str> {
    [
        ("template_file", spec.template_file.is_some()),
        ("ca_file", spec.ca_file.is_some()),
        ("secret_env", spec.secret_env.is_some()),
        ("allow_private", spec.allow_private),
        ("allow_cidrs", !spec.allow_cidrs.is_empty()),
    ]
    .into_iter()
    .find_map(|(setting, set)| set.then_some(setting))
}

/// Whether the record `value` seals secrets or header values for a URL in the open (layout
/// 1 with a sealed part): sealed again only once an operator checked that URL.
pub(super) fn seals_for_an_open_url(value: &[u8]) -> bool {
    serde_json::from_slice::<Record>(value)
        .is_ok_and(|record| record.layout < LAYOUT_SEALED_URL && record.sealed.is_some())
}

/// The layout a record says it has, if it reads as a record at all.
pub(super) fn layout_of(value: &[u8]) -> Option<u32> {
    let record: serde_json::Value = serde_json::from_slice(value).ok()?;
    record
        .get("layout")?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
}

/// Whether `keys` open the sealed part of the record `value` of the endpoint `name`. False
/// when they do not: sealed with another key, or (from layout 3, which binds the settings
/// to the seal) changed without the key. `None` when there is nothing to tell: no sealed
/// part, no key, not a record, or one of a newer layout (which this deskhook cannot judge).
pub(super) fn opens(name: &str, value: &[u8], keys: &Keys) -> Option<bool> {
    let record = serde_json::from_slice::<Record>(value).ok()?;
    if record.layout > LAYOUT {
        return None;
    }
    let sealed = record.sealed.as_ref()?;
    keys.current.as_ref()?;
    let aad = Aad::of(name, (record.layout, record.paused, &record.spec)).ok()?;
    Some(keys.open(name, &aad, sealed).is_ok())
}

/// Reads a record of the endpoint `name` with `key` alone.
#[cfg(test)]
pub(super) fn read_record(
    name: &str,
    value: &[u8],
    revision: u64,
    key: Option<&SecretsKey>,
    trust: Trust,
) -> Result<StoredEndpoint, Error> {
    let keys = Keys {
        current: key.cloned(),
        previous: Vec::new(),
    };
    read_record_with(name, value, revision, &keys, trust)
}

/// Reads a record of the endpoint `name` with `keys`.
fn read_record_with(
    name: &str,
    value: &[u8],
    revision: u64,
    keys: &Keys,
    trust: Trust,
) -> Result<StoredEndpoint, Error> {
    let key = keys.current.as_ref();
    let bad = |what: String| Error::Config(format!("endpoint '{name}' in the bucket: {what}"));
    let layout: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| bad(format!("not a deskhook record: {e}")))?;
    match layout.get("layout").and_then(serde_json::Value::as_u64) {
        Some(n) if (1..=u64::from(LAYOUT)).contains(&n) => {}
        Some(n) => {
            return Err(bad(format!(
                "record layout {n}, and this deskhook reads layouts up to {LAYOUT}; upgrade deskhook \
                 (relays and tools) to the version that wrote it"
            )));
        }
        None => return Err(bad("no layout: not a deskhook record".into())),
    }
    let record: Record =
        serde_json::from_value(layout).map_err(|e| bad(format!("not a deskhook record: {e}")))?;
    let aad = match &record.sealed {
        Some(_) => Some(Aad::of(name, (record.layout, record.paused, &record.spec))?),
        None => None,
    };
    let mut spec: EndpointSpec =
        serde_json::from_value(record.spec).map_err(|e| bad(e.to_string()))?;
    // Its key names it: a record that names another endpoint would be applied under that
    // name, and never removed with its key.
    if spec.name != name {
        return Err(bad(format!(
            "it names itself '{}'; a record is stored under its own name",
            spec.name
        )));
    }
    // A record of layout 2 or 3 is written with a key, its URL sealed: one whose URL is in
    // the open was not written by deskhook (and its URL could have been changed without the
    // key).
    if record.layout >= LAYOUT_SEALED_URL && record.sealed.is_none() {
        return Err(bad(format!(
            "record layout {} without sealed settings; write it again with `deskhook endpoints`",
            record.layout
        )));
    }
    if key.is_some() && trust == Trust::Sealed && record.layout < LAYOUT {
        return Err(bad(format!(
            "record layout {} {}, so whoever can write to the bucket could have written it; \
             if it is yours, seal it with `deskhook endpoints reseal` (with the secrets key)",
            record.layout,
            if record.sealed.is_none() {
                "has nothing sealed"
            } else {
                "does not bind its settings to what is sealed"
            }
        )));
    }
    if key.is_some()
        && trust == Trust::Lenient
        && record.layout < LAYOUT
        && let Some(setting) = readers_own(&spec)
    {
        return Err(bad(format!(
            "record layout {} sets {setting}, which reaches into the reader's own files, \
             environment or networks, and its seal does not bind it: whoever can write to the \
             bucket could have written it. If it is yours, check it with `deskhook endpoints \
             reseal --dry-run` and seal it by name with `deskhook endpoints reseal \
             {name}@{revision}` (with the secrets key)",
            record.layout
        )));
    }
    // Layout 1 sealed the secrets and header values bound to the name alone, its URL in the
    // open: whoever can write to the bucket could send them to a URL of theirs.
    if key.is_some()
        && trust == Trust::Lenient
        && record.layout < LAYOUT_SEALED_URL
        && record.sealed.is_some()
    {
        return Err(bad(format!(
            "record layout {} sends its sealed secrets and header values to a URL in the \
             open, which whoever can write to the bucket could have changed. If it is yours, \
             check it with `deskhook endpoints reseal --dry-run` and seal it by name with \
             `deskhook endpoints reseal {name}@{revision}` (with the secrets key)",
            record.layout
        )));
    }
    let mut previous_key = false;
    if let (Some(sealed), Some(aad)) = (&record.sealed, &aad) {
        let (plain, previous) = keys.open(name, aad, sealed)?;
        previous_key = previous;
        let opened: Sealed =
            serde_json::from_slice(&plain).map_err(|e| bad(format!("sealed part: {e}")))?;
        spec.secrets = opened.secrets;
        spec.headers = opened.headers;
        match opened.url {
            Some(url) => spec.url = url,
            None if record.layout >= LAYOUT_SEALED_URL => {
                return Err(bad(format!(
                    "record layout {} without its URL sealed; write it again with `deskhook \
                     endpoints`",
                    record.layout
                )));
            }
            None => {}
        }
        if opened.template_vars.is_some() {
            spec.template_vars = opened.template_vars;
        }
    }
    Ok(StoredEndpoint {
        spec,
        paused: record.paused,
        revision,
        previous_key,
        layout: record.layout,
    })
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
