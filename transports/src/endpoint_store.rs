//! The endpoint registry in a JetStream KV bucket (`deskhook_endpoints` by default), shared
//! by every relay and changed with `deskhook endpoints --nats …` (feature `nats`).
//!
//! Each endpoint is one key (its name, base64url-encoded: KV keys allow fewer characters
//! than endpoint names) whose value is a JSON record: the layout version, whether the
//! endpoint is paused, its settings (the fields of a `[[endpoint]]` table of `deskhook.toml`,
//! [`EndpointSpec`]) without what is sealed, and that sealed.
//!
//! # Secrets
//!
//! Signing secrets and header values (which often hold credentials) are never stored in
//! plain text: they are sealed with XChaCha20-Poly1305 under a 32-byte key every relay is
//! given ([`SecretsKey`], from the environment variable `DESKHOOK_SECRETS_KEY` by default),
//! bound to the endpoint's name so that a sealed value cannot be moved to another endpoint.
//! An endpoint can instead name an environment variable that holds its secret
//! (`secret_env`): only the name is stored. Storing an endpoint with secrets without a key
//! is refused; reading one without the key fails naming the endpoint.
//!
//! A URL can be a credential too: whoever has a Slack, Teams, Discord, Mattermost or
//! Telegram webhook URL can post to the channel. With a key, the URL (all but its origin,
//! which stays readable) and the template variables are sealed as well. Without one, an
//! endpoint with a chat preset is refused, since its URL is such a credential; other URLs
//! are stored as given, so give the key when yours carry tokens.
//!
//! # Layout
//!
//! A record carries its layout: 2 when its URL is sealed, 1 otherwise (what every deskhook
//! since the bucket reads, so that relays not yet upgraded keep working with endpoints
//! stored without a key). A record of a newer layout is refused with a message saying which
//! deskhook understands it, rather than read wrongly: a relay that predates sealed URLs
//! refuses a layout-2 record instead of posting to its origin alone.
//!
//! # Who reads it
//!
//! [`EndpointStore`] is the registry for code, with a watch that yields every change and its
//! revision; `deskhook endpoints --nats URL` is the same from the shell; a relay given the
//! bucket (`relay::Relay::endpoints_bucket`, feature `relay`) delivers to its endpoints and
//! applies each change as it comes. An endpoint a relay cannot use (sealed secrets without
//! the key, a newer layout, a setting that does not work there) is logged with its name and
//! left out (paused, if the relay had it from before: see [`Change::Unreadable`]); the
//! others are delivered to.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use crate::delivery::{EndpointSpec, SecretSpec};
use crate::error::Error;

/// The bucket's name unless told otherwise.
pub const DEFAULT_BUCKET: &str = "deskhook_endpoints";

/// The environment variable relays and `deskhook endpoints` read the secrets key from.
pub const SECRETS_KEY_ENV: &str = "DESKHOOK_SECRETS_KEY";

/// The newest record layout this deskhook writes and reads (it reads every older one).
pub const LAYOUT: u32 = 2;

/// The layout of a record whose URL is not sealed.
const LAYOUT_PLAIN_URL: u32 = 1;

/// The key that seals endpoints' secrets and header values: 32 bytes, written as base64.
#[derive(Clone)]
pub struct SecretsKey([u8; 32]);

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
        let bytes = STANDARD.decode(text.trim()).map_err(|_| {
            Error::Config(
                "the secrets key is not base64; make one with `deskhook endpoints new-key`".into(),
            )
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            Error::Config(format!(
                "the secrets key is {} bytes; it must be 32 (make one with `deskhook endpoints \
                 new-key`)",
                b.len()
            ))
        })?;
        Ok(SecretsKey(key))
    }

    /// The key in the environment variable `name`, if it is set.
    ///
    /// # Errors
    ///
    /// As [`SecretsKey::parse`], naming the variable.
    pub fn from_env(name: &str) -> Result<Option<SecretsKey>, Error> {
        match std::env::var(name) {
            Ok(text) if !text.trim().is_empty() => SecretsKey::parse(&text)
                .map(Some)
                .map_err(|e| Error::Config(format!("{name}: {e}"))),
            _ => Ok(None),
        }
    }

    /// A new random key.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the operating system's random generator fails.
    pub fn generate() -> Result<SecretsKey, Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| Error::Config(format!("the random generator failed: {e}")))?;
        Ok(SecretsKey(key))
    }

    /// The key as base64, to give to every relay.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    fn seal(&self, endpoint: &str, plain: &[u8]) -> Result<String, Error> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce)
            .map_err(|e| Error::Config(format!("the random generator failed: {e}")))?;
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: endpoint.as_bytes(),
                },
            )
            .map_err(|_| Error::Config(format!("endpoint '{endpoint}': sealing failed")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    fn open(&self, endpoint: &str, sealed: &str) -> Result<Vec<u8>, Error> {
        let wrong = || {
            Error::Config(format!(
                "endpoint '{endpoint}': its secrets cannot be opened with this secrets key; \
                 give every relay the key they were sealed with"
            ))
        };
        let bytes = STANDARD.decode(sealed).map_err(|_| wrong())?;
        if bytes.len() < 24 {
            return Err(wrong());
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: endpoint.as_bytes(),
                },
            )
            .map_err(|_| wrong())
    }
}

/// An endpoint as the bucket keeps it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StoredEndpoint {
    /// Its settings, secrets and header values opened.
    pub spec: EndpointSpec,
    /// Whether it is paused.
    pub paused: bool,
    /// The bucket's revision of this record.
    pub revision: u64,
}

/// A change to the bucket, as a watcher sees it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Change {
    /// An endpoint was added or changed.
    Put(Box<StoredEndpoint>),
    /// An endpoint was removed.
    Removed {
        /// Its name.
        name: String,
        /// The bucket's revision of the removal.
        revision: u64,
    },
    /// An endpoint was changed, but this watcher cannot read the change (a newer layout, a
    /// record sealed under a key it does not have): it must not go on with the old
    /// settings either.
    Unreadable {
        /// Its name.
        name: String,
        /// The bucket's revision of the change.
        revision: u64,
        /// Why it cannot be read.
        reason: String,
    },
}

impl Change {
    /// The name of the endpoint it changes.
    pub fn name(&self) -> &str {
        match self {
            Change::Put(stored) => &stored.spec.name,
            Change::Removed { name, .. } | Change::Unreadable { name, .. } => name,
        }
    }

    /// The bucket's revision of the change.
    pub fn revision(&self) -> u64 {
        match self {
            Change::Put(stored) => stored.revision,
            Change::Removed { revision, .. } | Change::Unreadable { revision, .. } => *revision,
        }
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
fn key_of(name: &str) -> String {
    URL_SAFE_NO_PAD.encode(name.as_bytes())
}

/// The endpoint name of a bucket's key.
fn name_of(key: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(key)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

/// The record of `spec`, its secrets sealed with `key`.
fn record_of(
    spec: &EndpointSpec,
    paused: bool,
    key: Option<&SecretsKey>,
) -> Result<Vec<u8>, Error> {
    let preset = spec
        .template
        .as_deref()
        .filter(|t| crate::template::PRESETS.iter().any(|p| p.name == *t));
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
    let sealed = if sealed.secrets.is_none() && sealed.headers.is_none() && sealed.url.is_none() {
        None
    } else {
        let key = key.ok_or_else(|| {
            Error::Config(format!(
                "endpoint '{}' has secrets or headers, which the bucket keeps sealed: set \
                 {SECRETS_KEY_ENV} (32 bytes, base64; `deskhook endpoints new-key` makes one, \
                 and every relay needs it), or give the secret as secret_env (the name of an \
                 environment variable every relay has)",
                spec.name
            ))
        })?;
        let plain = serde_json::to_vec(&sealed)
            .map_err(|e| Error::Config(format!("endpoint '{}': {e}", spec.name)))?;
        Some(key.seal(&spec.name, &plain)?)
    };
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
    let record = Record {
        layout,
        paused,
        spec: serde_json::to_value(&open)
            .map_err(|e| Error::Config(format!("endpoint '{}': {e}", spec.name)))?,
        sealed,
    };
    serde_json::to_vec(&record).map_err(|e| Error::Config(format!("endpoint '{}': {e}", spec.name)))
}

/// Reads a record of the endpoint `name`.
fn read_record(
    name: &str,
    value: &[u8],
    revision: u64,
    key: Option<&SecretsKey>,
) -> Result<StoredEndpoint, Error> {
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
    // A layout-2 record is written with a key, its URL sealed: one whose URL is in the
    // open was not written by deskhook (and its URL could have been changed without the key).
    if record.layout >= LAYOUT && record.sealed.is_none() {
        return Err(bad(format!(
            "record layout {} without sealed settings; write it again with `deskhook endpoints`",
            record.layout
        )));
    }
    if let Some(sealed) = &record.sealed {
        let key = key.ok_or_else(|| {
            Error::Config(format!(
                "endpoint '{name}' has sealed settings (secrets, header values, URL) and no \
                 secrets key was given: set {SECRETS_KEY_ENV} to the key they were sealed with"
            ))
        })?;
        let opened: Sealed = serde_json::from_slice(&key.open(name, sealed)?)
            .map_err(|e| bad(format!("sealed part: {e}")))?;
        spec.secrets = opened.secrets;
        spec.headers = opened.headers;
        match opened.url {
            Some(url) => spec.url = url,
            None if record.layout >= LAYOUT => {
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
    })
}

fn nats_error(bucket: &str, what: &str, e: impl fmt::Display) -> Error {
    Error::Config(format!("KV bucket '{bucket}': cannot {what}: {e}"))
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
        return Err(("create it", e.to_string()));
    }
    context
        .get_key_value(bucket)
        .await
        .map_err(|e| ("open it", e.to_string()))
}

/// The endpoints in a KV bucket.
#[derive(Clone)]
pub struct EndpointStore {
    kv: kv::Store,
    bucket: String,
    key: Option<SecretsKey>,
}

impl fmt::Debug for EndpointStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointStore")
            .field("bucket", &self.bucket)
            .field("key", &self.key.as_ref().map(|_| "…"))
            .finish()
    }
}

impl EndpointStore {
    /// Opens the bucket `bucket`, creating it (with `replicas` copies and a history of 5
    /// revisions per endpoint) when it does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the bucket can be neither found nor created.
    pub async fn open(
        context: &jetstream::Context,
        bucket: &str,
        replicas: usize,
        key: Option<SecretsKey>,
    ) -> Result<EndpointStore, Error> {
        let kv = open_bucket(
            context,
            bucket,
            "deskhook endpoints (deskhook endpoints --nats …)",
            5,
            Duration::ZERO,
            replicas,
        )
        .await
        .map_err(|(what, e)| nats_error(bucket, what, e))?;
        Ok(EndpointStore {
            kv,
            bucket: bucket.to_owned(),
            key,
        })
    }

    /// Every endpoint, by name.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the bucket cannot be read, or a record cannot (a newer layout,
    /// sealed secrets without the key), naming the endpoint.
    pub async fn list(&self) -> Result<Vec<StoredEndpoint>, Error> {
        let (found, unreadable) = self.readable().await?;
        match unreadable.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(found),
        }
    }

    /// The endpoints that can be read, by name, and the errors of those that cannot.
    async fn readable(&self) -> Result<(Vec<StoredEndpoint>, Vec<Error>), Error> {
        let mut keys = self
            .kv
            .keys()
            .await
            .map_err(|e| nats_error(&self.bucket, "list it", e))?;
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| nats_error(&self.bucket, "list it", e))?;
            if let Some(name) = name_of(&key) {
                names.push(name);
            }
        }
        names.sort();
        let mut found = Vec::with_capacity(names.len());
        let mut unreadable = Vec::new();
        for name in names {
            match self.get(&name).await {
                Ok(Some(stored)) => found.push(stored),
                Ok(None) => {}
                Err(error) => unreadable.push(error),
            }
        }
        Ok((found, unreadable))
    }

    /// The endpoint `name`, if the bucket has it.
    ///
    /// # Errors
    ///
    /// As [`EndpointStore::list`].
    pub async fn get(&self, name: &str) -> Result<Option<StoredEndpoint>, Error> {
        let entry = self
            .kv
            .entry(key_of(name))
            .await
            .map_err(|e| nats_error(&self.bucket, "read it", e))?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => Ok(Some(read_record(
                name,
                &entry.value,
                entry.revision,
                self.key.as_ref(),
            )?)),
            _ => Ok(None),
        }
    }

    /// Stores `spec` (paused or not) after checking it as `deskhook.toml` would (its
    /// `secret_env` is not looked up here: the relays read it); returns the revision.
    ///
    /// # Errors
    ///
    /// The [`SpecError`](crate::delivery::SpecError)'s message naming the field for an
    /// endpoint that cannot work; [`Error::Config`] for secrets without a key, or when the
    /// bucket cannot be written.
    pub async fn put(&self, spec: &EndpointSpec, paused: bool) -> Result<u64, Error> {
        let value = self.checked_record(spec, paused)?;
        self.kv
            .put(key_of(&spec.name), value.into())
            .await
            .map_err(|e| nats_error(&self.bucket, "write it", e))
    }

    /// As [`put`](EndpointStore::put), only if the endpoint is as last read: at revision
    /// `read` (as [`get`](EndpointStore::get) gave it), or missing when `None`. So two
    /// operators changing one endpoint at once do not undo each other's change unseen.
    ///
    /// # Errors
    ///
    /// As [`put`](EndpointStore::put); [`Error::Config`] saying so when the endpoint exists
    /// already (`None`) or was changed since `read`.
    pub async fn put_if(
        &self,
        spec: &EndpointSpec,
        paused: bool,
        read: Option<u64>,
    ) -> Result<u64, Error> {
        let value = self.checked_record(spec, paused)?;
        let name = &spec.name;
        match read {
            None => self
                .kv
                .create(key_of(name), value.into())
                .await
                .map_err(|e| match e.kind() {
                    kv::CreateErrorKind::AlreadyExists => Error::Config(format!(
                        "endpoint '{name}' exists already (added meanwhile?); change it with \
                         `update`"
                    )),
                    _ => nats_error(&self.bucket, "write it", e),
                }),
            Some(revision) => self
                .kv
                .update(key_of(name), value.into(), revision)
                .await
                .map_err(|e| match e.kind() {
                    kv::UpdateErrorKind::WrongLastRevision => Error::Config(format!(
                        "endpoint '{name}' was changed (or removed) by someone else since it \
                         was read at revision {revision}; look at it again, then retry"
                    )),
                    _ => nats_error(&self.bucket, "write it", e),
                }),
        }
    }

    /// The bucket's record of `spec`, checked as `deskhook.toml` would check it.
    fn checked_record(&self, spec: &EndpointSpec, paused: bool) -> Result<Vec<u8>, Error> {
        let mut check = spec.clone();
        check.secret_env = None;
        check.to_endpoint().map_err(|e| match e.field() {
            Some(field) => Error::Config(format!("{field}: {}", e.error())),
            None => e.into_error(),
        })?;
        record_of(spec, paused, self.key.as_ref())
    }

    /// Removes the endpoint `name`; whether it was there.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the bucket cannot be written.
    pub async fn remove(&self, name: &str) -> Result<bool, Error> {
        if self.get(name).await?.is_none() {
            return Ok(false);
        }
        self.kv
            .delete(key_of(name))
            .await
            .map_err(|e| nats_error(&self.bucket, "write it", e))?;
        Ok(true)
    }

    /// The bucket's last revision now: a watcher that starts after this and lists the
    /// endpoints has seen every change at or below it.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the bucket does not answer.
    pub async fn last_revision(&self) -> Result<u64, Error> {
        self.kv
            .stream
            .get_info()
            .await
            .map(|info| info.state.last_sequence)
            .map_err(|e| nats_error(&self.bucket, "read its state", e))
    }

    /// The endpoints now, and the bucket's changes from then on (a watcher starts from the
    /// whole registry). The watch starts before the endpoints are listed, so that nothing is
    /// missed; a change made in between may come twice (in the list, then as a change),
    /// which applying it again makes harmless. Records that cannot be read come as errors
    /// naming the endpoint; the stream goes on.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the watch cannot start.
    pub async fn watch(
        &self,
    ) -> Result<
        (
            Vec<StoredEndpoint>,
            impl futures_util::Stream<Item = Result<Change, Error>> + Send + use<>,
        ),
        Error,
    > {
        let watch = self
            .kv
            .watch_all()
            .await
            .map_err(|e| nats_error(&self.bucket, "watch it", e))?;
        // The endpoints now; one that cannot be read comes first in the stream, as an error.
        let (initial, unreadable) = self.readable().await?;
        let bucket = self.bucket.clone();
        let key = self.key.clone();
        let changes = watch.map(move |entry| {
            let entry = entry.map_err(|e| nats_error(&bucket, "watch it", e))?;
            let name = name_of(&entry.key).ok_or_else(|| {
                Error::Config(format!(
                    "KV bucket '{bucket}': key '{}' is not an endpoint",
                    entry.key
                ))
            })?;
            match entry.operation {
                kv::Operation::Put => Ok(
                    match read_record(&name, &entry.value, entry.revision, key.as_ref()) {
                        Ok(stored) => Change::Put(Box::new(stored)),
                        Err(e) => Change::Unreadable {
                            name,
                            revision: entry.revision,
                            reason: e.to_string(),
                        },
                    },
                ),
                kv::Operation::Delete | kv::Operation::Purge => Ok(Change::Removed {
                    name,
                    revision: entry.revision,
                }),
            }
        });
        Ok((
            initial,
            futures_util::stream::iter(unreadable.into_iter().map(Err)).chain(changes),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EndpointSpec {
        let mut spec = EndpointSpec::new("crm", "https://crm.example.com/hooks");
        spec.secrets = Some(vec![
            deskhook::Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap()
                .into(),
        ]);
        spec.headers = Some(BTreeMap::from([(
            "Authorization".into(),
            "Bearer t0k".into(),
        )]));
        spec.tenant = Some("acme".into());
        spec
    }

    #[test]
    fn secrets_and_header_values_are_sealed_and_opened_with_the_key() {
        let key = SecretsKey::generate().unwrap();
        let record = record_of(&spec(), true, Some(&key)).unwrap();
        let text = String::from_utf8(record.clone()).unwrap();
        assert!(
            !text.contains("MfKQ9r8G") && !text.contains("t0k"),
            "{text}"
        );
        assert!(text.contains("\"tenant\":\"acme\""), "{text}");
        // The URL is sealed but for its origin, and the record says so by its layout.
        assert!(!text.contains("/hooks"), "{text}");
        assert!(
            text.contains("\"url\":\"https://crm.example.com\"") && text.contains("\"layout\":2"),
            "{text}"
        );
        let back = read_record("crm", &record, 7, Some(&key)).unwrap();
        assert_eq!(back.spec, spec());
        assert!(back.paused);
        assert_eq!(back.revision, 7);
        // Another key, no key, another endpoint's name: refused, naming the endpoint.
        let other = SecretsKey::generate().unwrap();
        for err in [
            read_record("crm", &record, 7, Some(&other)).unwrap_err(),
            read_record("crm", &record, 7, None).unwrap_err(),
        ] {
            assert!(err.to_string().contains("endpoint 'crm'"), "{err}");
        }
        assert!(read_record("erp", &record, 7, Some(&key)).is_err());
    }

    #[test]
    fn a_record_naming_another_endpoint_or_with_an_open_url_in_layout_2_is_refused() {
        let mut plain = spec();
        plain.secrets = None;
        plain.headers = None;
        // Written under another key's name.
        let record = record_of(&plain, false, None).unwrap();
        let err = read_record("erp", &record, 1, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("endpoint 'erp'") && err.contains("names itself 'crm'"),
            "{err}"
        );
        // Layout 2 says the URL is sealed: in the open, it could have been changed unseen.
        let forged = String::from_utf8(record)
            .unwrap()
            .replace("\"layout\":1", "\"layout\":2");
        let err = read_record("crm", forged.as_bytes(), 1, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("without sealed settings"), "{err}");
    }

    #[test]
    fn secrets_without_a_key_are_refused_and_plain_endpoints_need_none() {
        let err = record_of(&spec(), false, None).unwrap_err().to_string();
        assert!(
            err.contains(SECRETS_KEY_ENV) && err.contains("secret_env"),
            "{err}"
        );
        let mut plain = spec();
        plain.secrets = None;
        plain.headers = None;
        plain.secret_env = Some("CRM_SECRET".into());
        let record = record_of(&plain, false, None).unwrap();
        assert_eq!(read_record("crm", &record, 1, None).unwrap().spec, plain);
    }

    #[test]
    fn a_newer_layout_is_refused_with_what_to_do() {
        let err = read_record("crm", br#"{"layout": 3, "spec": {}}"#, 1, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layout 3") && err.contains("upgrade deskhook"),
            "{err}"
        );
    }

    #[test]
    fn a_chat_webhook_url_and_template_variables_are_sealed_and_need_a_key() {
        let mut chat = EndpointSpec::new("ops", "https://hooks.slack.com/services/T0/B0/XyZ");
        chat.template = Some("slack".into());
        chat.template_vars = Some(BTreeMap::from([("lang".into(), "en".into())]));
        let err = record_of(&chat, false, None).unwrap_err().to_string();
        assert!(
            err.contains("endpoint 'ops'")
                && err.contains("slack")
                && err.contains(SECRETS_KEY_ENV),
            "{err}"
        );
        assert!(
            !err.contains("  "),
            "one sentence, no runs of blanks: {err}"
        );
        let key = SecretsKey::generate().unwrap();
        let record = record_of(&chat, false, Some(&key)).unwrap();
        let text = String::from_utf8(record.clone()).unwrap();
        assert!(
            !text.contains("XyZ") && !text.contains("\"lang\""),
            "{text}"
        );
        assert!(text.contains("https://hooks.slack.com"), "{text}");
        assert_eq!(
            read_record("ops", &record, 3, Some(&key)).unwrap().spec,
            chat
        );
        let err = read_record("ops", &record, 3, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("endpoint 'ops'") && err.contains("URL"),
            "{err}"
        );
    }

    #[test]
    fn a_record_of_layout_1_reads_as_it_did() {
        // What deskhook wrote before URLs were sealed: the URL in plain text.
        let key = SecretsKey::generate().unwrap();
        let record = br#"{"layout":1,"paused":false,"spec":{"name":"crm","url":"https://crm.example.com/hooks"}}"#;
        for key in [None, Some(&key)] {
            let back = read_record("crm", record, 1, key).unwrap();
            assert_eq!(back.spec.url, "https://crm.example.com/hooks");
        }
    }

    #[test]
    fn keys_carry_any_name() {
        for name in ["crm", "<img src=x>", "acme/crm.v2", "ü"] {
            let key = key_of(name);
            assert!(
                key.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(name_of(&key).as_deref(), Some(name));
        }
    }

    #[test]
    fn keys_parse_from_base64_of_32_bytes() {
        let key = SecretsKey::generate().unwrap();
        assert_eq!(SecretsKey::parse(&key.to_base64()).unwrap().0, key.0);
        assert!(
            SecretsKey::parse("c2hvcnQ=")
                .unwrap_err()
                .to_string()
                .contains("32")
        );
        assert!(format!("{key:?}").contains('…'));
    }
}
