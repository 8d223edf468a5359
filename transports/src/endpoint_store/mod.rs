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
//! The key is rotated without giving any secret again: every relay is given the new key and
//! the old one as a previous key (`DESKHOOK_SECRETS_KEY_PREVIOUS`,
//! [`EndpointStore::previous_keys`]) and reads records sealed with either; `deskhook
//! endpoints rekey` ([`EndpointStore::rekey`]) seals each again with the new key; then the
//! old key is taken away. A record still sealed with a previous key is logged by its
//! readers and marked in `deskhook endpoints list`.
//!
//! A URL can be a credential too: whoever has a Slack, Teams, Discord, Mattermost or
//! Telegram webhook URL can post to the channel. With a key, the URL (all but its origin,
//! which stays readable) and the template variables are sealed as well. Without one, an
//! endpoint with a chat preset is refused, since its URL is such a credential; other URLs
//! are stored as given, so give the key when yours carry tokens.
//!
//! # Layout
//!
//! A record carries its layout: 3 when it is written with a key, 1 otherwise (what every
//! deskhook since the bucket reads, so that relays not yet upgraded keep working with
//! endpoints stored without a key). A record of a newer layout is refused with a message
//! saying which deskhook understands it, rather than read wrongly: a relay that predates
//! sealed URLs refuses a sealed record instead of posting to its origin alone.
//!
//! In layout 3 the sealed part is bound to the settings in the open and to whether the endpoint
//! is paused, as well as to its name: whoever can write to the bucket without the key cannot
//! change a sealed record (move an endpoint to another tenant, widen its event types, change
//! its format, resume it) without readers refusing it (relays pause the endpoint). They can
//! still write a record of an older layout in its place, which readers take with a warning
//! until they require sealed records (below). A record with nothing sealed (layout 1) or whose
//! seal binds only its name (layout 2) could be anyone's: a reader with the key reads it with a
//! warning naming it, and refuses it once told to require sealed records
//! ([`EndpointStore::require_sealed`], a relay's `--require-sealed`). Even before, it refuses
//! such a record when it sets what reaches into the reader's own machine: `template_file` or
//! `ca_file` (files of the reader's disk: `template_file = "/proc/self/environ"` would post its
//! environment, the key among it), `secret_env` (a variable of its environment),
//! `allow_private` or `allow_cidrs` (its networks). To get there, `deskhook endpoints reseal`
//! ([`EndpointStore::reseal`]) writes every older record again in layout 3, printing every
//! setting it sealed, but for those that set what reaches into the reader's machine; `reseal
//! --dry-run` ([`EndpointStore::unsealed`]) prints them first, for the operator to check before
//! sealing makes them trusted, and `reseal NAME@REVISION…` ([`EndpointStore::reseal_checked`])
//! seals only those, each only if unchanged since. A reader without a key reads layout 1 as it
//! always did: it believes the whole bucket, those settings included, so keep write access to
//! it to the operators.
//!
//! What the seal does not prevent: a record written again as it was earlier. Whoever can
//! write to the bucket can put back the bytes of an older sealed record of the same
//! endpoint (the bucket keeps a few revisions, or they were copied before), which readers
//! take as the latest: an endpoint paused or removed since comes back, a URL or secret
//! replaced since is used again. Nothing in a record says how recent it is beyond the
//! bucket's revision, which the writer sets. Keep write access to the bucket to the
//! operators (NATS accounts and permissions): the seal keeps secrets from those who can
//! read it, and settings from those who change it without the key, not from replays.
//!
//! Nor does it bind a record to its bucket: a record sealed with a key reads in any bucket
//! whose readers have that key. Give each bucket (staging and production, each region) a
//! key of its own, or a record copied from one to another is taken there, its URL, secrets
//! and tenant with it.
//!
//! # Who reads it
//!
//! [`EndpointStore`] is the registry for code, with a watch that yields every change and its
//! revision; `deskhook endpoints --nats URL` is the same from the shell; a relay given the
//! bucket (`relay::Relay::endpoints_bucket`, feature `relay`) delivers to its endpoints and
//! applies each change as it comes. A relay refuses to start while the bucket has a record it
//! cannot read (sealed secrets without the key, a newer layout), naming each, unless told to
//! leave them out; once it runs, such a record is logged with its name and left out (paused,
//! if the relay had it from before: see [`Change::Unreadable`]). One it reads whose settings
//! do not work there (a file missing on its machine) is held, paused, its events kept; the
//! others are delivered to.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt as _;

use crate::delivery::EndpointSpec;
use crate::error::Error;

mod bucket;
mod record;
mod reseal;

pub use bucket::check_bucket_name;
#[cfg(feature = "relay")]
pub(crate) use bucket::{bucket_name_fault, bucket_names};
pub(crate) use bucket::{leader_entry, open_bucket};
use bucket::{nats_error, not_opened};
pub use record::SecretsKey;
use record::{Keys, Trust, key_of, layout_of, name_of, record_of};

/// Warns when a reader with a key reads a record not bound to its settings (an older
/// layout: it could have been written without the key), or one sealed with a previous key
/// (a rotation not finished).
fn warn_of_old_seal(name: &str, value: &[u8], stored: &StoredEndpoint, keys: &Keys) {
    if let (Some(_), Some(layout)) = (&keys.current, layout_of(value))
        && layout < LAYOUT
    {
        log::warn!(
            target: deskhook::LOG_TARGET,
            "endpoint '{name}': record layout {layout} is not bound to its settings (anyone \
             who can write to the bucket could have written it); seal it with `deskhook \
             endpoints reseal`, then have relays require sealed records (--require-sealed)"
        );
    } else if stored.previous_key {
        log::warn!(
            target: deskhook::LOG_TARGET,
            "endpoint '{name}': sealed with a previous secrets key; seal it with the current \
             one (`deskhook endpoints rekey`), then take the previous key away"
        );
    }
}

/// The bucket's name unless told otherwise.
pub const DEFAULT_BUCKET: &str = "deskhook_endpoints";

/// The environment variable relays and `deskhook endpoints` read the secrets key from.
pub const SECRETS_KEY_ENV: &str = "DESKHOOK_SECRETS_KEY";

/// The environment variable relays and `deskhook endpoints` read the previous secrets keys
/// of a rotation from, comma-separated.
pub const PREVIOUS_KEYS_ENV: &str = "DESKHOOK_SECRETS_KEY_PREVIOUS";

/// The newest record layout this deskhook writes and reads (it reads every older one).
pub const LAYOUT: u32 = 3;

/// The layout of a record whose URL is sealed and whose settings in the open are not bound
/// to what is sealed (read, no longer written).
const LAYOUT_SEALED_URL: u32 = 2;

/// The layout of a record whose URL is not sealed.
const LAYOUT_PLAIN_URL: u32 = 1;

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
    /// Whether its sealed part opened with one of the
    /// [`previous_keys`](EndpointStore::previous_keys), not the current key:
    /// [`rekey`](EndpointStore::rekey) seals it with the current one (of the current
    /// [`layout`](StoredEndpoint::layout); an older one, [`reseal`](EndpointStore::reseal)).
    pub previous_key: bool,
    /// The record's layout: [`LAYOUT`] as this deskhook writes it, lower for a record
    /// written by an older one (which [`reseal`](EndpointStore::reseal) writes again).
    pub layout: u32,
}

/// A record of the bucket that cannot be read, as
/// [`EndpointStore::list_each`] gives it.
#[derive(Debug)]
#[non_exhaustive]
pub struct UnreadableRecord {
    /// The endpoint's name (its key in the bucket).
    pub name: String,
    /// The bucket's revision of the record.
    pub revision: u64,
    /// Why it cannot be read, naming the endpoint.
    pub error: Error,
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
    /// An endpoint whose record this watcher cannot read (a newer layout, a record sealed
    /// under a key it does not have), in the list it starts from or changed so later: it
    /// must not go on with older settings of it either.
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

/// The endpoints in a KV bucket.
#[derive(Clone)]
pub struct EndpointStore {
    kv: kv::Store,
    bucket: String,
    keys: Keys,
    require_sealed: bool,
}

impl fmt::Debug for EndpointStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointStore")
            .field("bucket", &self.bucket)
            .field("key", &self.keys.current.as_ref().map(|_| "…"))
            .field("previous_keys", &self.keys.previous.len())
            .field("require_sealed", &self.require_sealed)
            .finish()
    }
}

impl EndpointStore {
    /// The bucket's name.
    #[cfg(feature = "relay")]
    pub(crate) fn bucket_name(&self) -> &str {
        &self.bucket
    }

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
        Ok(EndpointStore::of(kv, bucket, key))
    }

    /// Opens the bucket `bucket` if it exists; unlike [`open`](EndpointStore::open), one
    /// that does not is not made, for what only reads or changes what a bucket holds (a
    /// misspelt name would otherwise make an empty bucket, and list nothing).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when there is no such bucket, or it cannot be opened.
    pub async fn open_existing(
        context: &jetstream::Context,
        bucket: &str,
        key: Option<SecretsKey>,
    ) -> Result<EndpointStore, Error> {
        Self::open_existing_or(context, bucket, key, "not by reading it").await
    }

    /// [`open_existing`](EndpointStore::open_existing), whose error for a bucket that does
    /// not exist ends with `made_else`: how else than by adding an endpoint the caller can
    /// have it made.
    ///
    /// # Errors
    ///
    /// As [`open_existing`](EndpointStore::open_existing).
    pub(crate) async fn open_existing_or(
        context: &jetstream::Context,
        bucket: &str,
        key: Option<SecretsKey>,
        made_else: &str,
    ) -> Result<EndpointStore, Error> {
        check_bucket_name(bucket)?;
        match context.get_key_value(bucket).await {
            Ok(kv) => Ok(EndpointStore::of(kv, bucket, key)),
            Err(e) => Err(not_opened(context, bucket, e, made_else).await),
        }
    }

    fn of(kv: kv::Store, bucket: &str, key: Option<SecretsKey>) -> EndpointStore {
        EndpointStore {
            kv,
            bucket: bucket.to_owned(),
            keys: Keys {
                current: key,
                previous: Vec::new(),
            },
            require_sealed: false,
        }
    }

    /// Believes, with a key, only records sealed in the current layout: one with nothing
    /// sealed (layout 1) or whose seal binds only its name (layout 2) could have been written
    /// by anyone who can write to the bucket, to move an endpoint to another tenant, say, and
    /// is refused (a relay pauses such an endpoint; one it did not have keeps it from
    /// starting, or is left out with `Relay::leave_out_unusable`, or once it runs). Turn it
    /// on once
    /// every record is in the current layout: [`reseal`](EndpointStore::reseal) writes
    /// them, but for those that reach into the reader's machine, which
    /// [`reseal_checked`](EndpointStore::reseal_checked) seals by name.
    /// Defaults to false: older records are read, with a warning naming each, but for
    /// those that set what reaches into the reader's own machine (`template_file`,
    /// `ca_file`, `secret_env`, `allow_private`, `allow_cidrs`), refused with a key.
    #[must_use]
    pub fn require_sealed(mut self, require: bool) -> Self {
        self.require_sealed = require;
        self
    }

    /// The keys of a rotation under way: records whose sealed part does not open with this
    /// store's key are opened with these (each marked
    /// [`previous_key`](StoredEndpoint::previous_key), and logged), and what the store
    /// writes is sealed with its own key. Used only with a key of its own. Defaults to none.
    ///
    /// To rotate the key: give every relay the new key and the old one as a previous key
    /// (`DESKHOOK_SECRETS_KEY` and `DESKHOOK_SECRETS_KEY_PREVIOUS`) and restart them; run
    /// [`rekey`](EndpointStore::rekey) (`deskhook endpoints rekey`, with both keys); then
    /// take the old key away from the relays.
    #[must_use]
    pub fn previous_keys(mut self, keys: Vec<SecretsKey>) -> Self {
        self.keys.previous = keys;
        self
    }

    /// How much of a record this store believes.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when sealed records are required and there is no key to check a
    /// seal with: nothing would be checked (a store built with a key read from a variable
    /// that is not set), and it must not read as if it were.
    fn trust(&self) -> Result<Trust, Error> {
        match (self.require_sealed, &self.keys.current) {
            (false, _) => Ok(Trust::Lenient),
            (true, Some(_)) => Ok(Trust::Sealed),
            (true, None) => Err(Error::Config(format!(
                "KV bucket '{}': sealed records are required, and no secrets key is given to \
                 check a seal with (give the key the records were sealed with, or leave \
                 require_sealed off)",
                self.bucket
            ))),
        }
    }

    /// Every endpoint, by name.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the bucket cannot be read, or a record cannot (a newer layout,
    /// sealed secrets without the key), naming the endpoint. See
    /// [`list_each`](EndpointStore::list_each) for the others all the same.
    pub async fn list(&self) -> Result<Vec<StoredEndpoint>, Error> {
        let (found, unreadable) = self.list_each().await?;
        match unreadable.into_iter().next() {
            Some(record) => Err(record.error),
            None => Ok(found),
        }
    }

    /// Every endpoint that can be read, by name, and apart, each record that cannot (what
    /// `deskhook endpoints list` shows): one record sealed with another key, or written by
    /// a newer deskhook, does not hide the others.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the bucket cannot be read.
    pub async fn list_each(&self) -> Result<(Vec<StoredEndpoint>, Vec<UnreadableRecord>), Error> {
        let names = self.names().await?;
        let trust = self.trust()?;
        let mut found = Vec::with_capacity(names.len());
        let mut unreadable = Vec::new();
        for name in names {
            let Some(entry) = self.entry(&name).await? else {
                continue;
            };
            let (value, revision) = (&entry.value, entry.revision);
            match self.keys.read(&name, value, revision, trust) {
                Ok(stored) => {
                    warn_of_old_seal(&name, value, &stored, &self.keys);
                    found.push(stored);
                }
                Err(error) => unreadable.push(UnreadableRecord {
                    name,
                    revision,
                    error,
                }),
            }
        }
        Ok((found, unreadable))
    }

    /// The names of the bucket's endpoints, sorted.
    async fn names(&self) -> Result<Vec<String>, Error> {
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
        Ok(names)
    }

    /// The endpoint `name`, if the bucket has it.
    ///
    /// # Errors
    ///
    /// As [`EndpointStore::list`].
    pub async fn get(&self, name: &str) -> Result<Option<StoredEndpoint>, Error> {
        match self.entry(name).await? {
            Some(entry) => {
                let stored = self
                    .keys
                    .read(name, &entry.value, entry.revision, self.trust()?)?;
                warn_of_old_seal(name, &entry.value, &stored, &self.keys);
                Ok(Some(stored))
            }
            None => Ok(None),
        }
    }

    /// The endpoint `name` read to be written again (changed, paused, resumed): with a key,
    /// only a record sealed in the current layout is taken, whatever
    /// [`require_sealed`](EndpointStore::require_sealed) says, so that a change never seals
    /// settings nobody checked (an older record is for
    /// [`reseal`](EndpointStore::reseal), which shows them).
    ///
    /// # Errors
    ///
    /// As [`EndpointStore::get`], and an older record with a key.
    pub async fn get_to_change(&self, name: &str) -> Result<Option<StoredEndpoint>, Error> {
        match self.entry(name).await? {
            Some(entry) => Ok(Some(self.keys.read(
                name,
                &entry.value,
                entry.revision,
                Trust::Sealed,
            )?)),
            None => Ok(None),
        }
    }

    /// The names of the bucket's sealed records (but `except`'s) when not one of them opens
    /// with this store's keys: they were most likely sealed with another key, and what this
    /// store writes would be unreadable to the relays that read them. Empty when one does
    /// (the records are looked at in name order until one opens, so this costs a read or two
    /// when the key is theirs), when none is sealed, or without a key.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the bucket cannot be read.
    pub async fn not_opened_by_key(&self, except: Option<&str>) -> Result<Vec<String>, Error> {
        let mut shut = Vec::new();
        if self.keys.current.is_none() {
            return Ok(shut);
        }
        for name in self.names().await? {
            if except == Some(&name[..]) {
                continue;
            }
            let Some(entry) = self.entry(&name).await? else {
                continue;
            };
            match record::opens(&name, &entry.value, &self.keys) {
                Some(true) => return Ok(Vec::new()),
                Some(false) => shut.push(name),
                None => {}
            }
        }
        Ok(shut)
    }

    /// The bucket's revision of the record of `name`, if it has one, without reading it:
    /// to write over a record that cannot be read (see
    /// [`put_if`](EndpointStore::put_if)).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the bucket cannot be read.
    pub async fn revision_of(&self, name: &str) -> Result<Option<u64>, Error> {
        Ok(self.entry(name).await?.map(|entry| entry.revision))
    }

    /// The bucket's entry of `name`, unread, if it has one: from the stream's leader (see
    /// [`leader_entry`]).
    async fn entry(&self, name: &str) -> Result<Option<kv::Entry>, Error> {
        let entry = leader_entry(&self.kv, &key_of(name))
            .await
            .map_err(|e| nats_error(&self.bucket, "read it", e))?;
        Ok(entry.filter(|entry| entry.operation == kv::Operation::Put))
    }

    /// Stores `spec` (paused or not) after checking it as `deskhook.toml` would (its
    /// `secret_env`, `ca_file` and `template_file` are not read here: the relays read them);
    /// returns the revision.
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

    /// Checks `spec` as [`put_if`](EndpointStore::put_if) does, without a bucket: as
    /// `deskhook.toml` would check it, except what only the relays read. That is the
    /// environment variable of `secret_env`, and the files of `ca_file` and `template_file`,
    /// paths on the relays' machines, not on the operator's (an endpoint whose file a relay
    /// cannot read is paused there, and logged). So an operator can pause an endpoint from
    /// any machine, and a command line can refuse a bad one before it connects.
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the setting at fault; with several, [`Error::Config`] naming
    /// each, a line each.
    pub fn check(spec: &EndpointSpec) -> Result<(), Error> {
        let mut check = spec.clone();
        check.ca_file = None;
        // Not read here, nor what reads it (`hub_signature`, the secrets it gives).
        let elsewhere: &[&str] = match check.secret_env.take() {
            Some(_) => &["secret_env"],
            None => &[],
        };
        if check.template.is_none() && check.template_file.take().is_some() {
            // A stand-in for the settings that go with a template: it renders "0", which
            // is JSON and text of every kind, and fits any template_max_output.
            check.template = Some("{% if true %}0{% endif %}".to_owned());
        }
        let mut problems = check.problems_besides(elsewhere);
        let one = |e: &crate::delivery::SpecError| match e.field() {
            Some(field) => format!("{field}: {}", e.error()),
            None => e.error().to_string(),
        };
        match problems.len() {
            0 => Ok(()),
            1 if problems[0].field().is_none() => Err(problems.remove(0).into_error()),
            _ => Err(Error::Config(
                problems.iter().map(one).collect::<Vec<_>>().join("\n"),
            )),
        }
    }

    /// The bucket's record of `spec`, [checked](EndpointStore::check).
    fn checked_record(&self, spec: &EndpointSpec, paused: bool) -> Result<Vec<u8>, Error> {
        EndpointStore::check(spec)?;
        record_of(spec, paused, self.keys.current.as_ref())
    }

    /// Removes the endpoint `name`, as it is now (only if nobody changes it meanwhile);
    /// whether it was there.
    ///
    /// # Errors
    ///
    /// As [`remove_if`](EndpointStore::remove_if).
    pub async fn remove(&self, name: &str) -> Result<bool, Error> {
        self.remove_if(name, None).await
    }

    /// Removes the endpoint `name` only if it is at revision `read` (as
    /// [`get`](EndpointStore::get) gave it), or, when `None`, unchanged since this reads it:
    /// a change made meanwhile by someone else is not removed unseen. Whether it was there.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] saying so when it was changed since `read`, or when the bucket
    /// cannot be written.
    pub async fn remove_if(&self, name: &str, read: Option<u64>) -> Result<bool, Error> {
        // Not read: a record no reader believes (changed without the key) can go too.
        let Some(entry) = self.entry(name).await? else {
            return Ok(false);
        };
        let revision = read.unwrap_or(entry.revision);
        self.kv
            .delete_expect_revision(key_of(name), Some(revision))
            .await
            .map_err(|e| match e.kind() {
                kv::UpdateErrorKind::WrongLastRevision => Error::Config(format!(
                    "endpoint '{name}' was changed by someone else since revision {revision} \
                     (it is at {} now, or later); nothing was removed: look at it again, then \
                     remove it",
                    entry.revision
                )),
                _ => nats_error(&self.bucket, "write it", e),
            })?;
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

    /// How many copies of the bucket the servers keep (its stream's replicas).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the bucket does not answer.
    pub async fn replicas(&self) -> Result<usize, Error> {
        self.kv
            .stream
            .get_info()
            .await
            .map(|info| info.config.num_replicas)
            .map_err(|e| nats_error(&self.bucket, "read its settings", e))
    }

    /// The endpoints now, each as a [`Change::Put`], or a [`Change::Unreadable`] naming it
    /// when its record cannot be read here (a watcher starts from the whole registry), and
    /// every change of the bucket after revision `after` (from
    /// [`last_revision`](EndpointStore::last_revision), read first), in order. The list is
    /// read after the watch starts, so that nothing is missed: a change it already has
    /// comes again in the stream, and the watch may replay the bucket's history (async-nats
    /// makes its consumer again when it reconnects). So skip a change whose revision is at
    /// or below the last one applied for its endpoint (or, for an endpoint not in the list,
    /// at or below `after`), as a relay does: applying an old one again would bring back,
    /// for a moment, an old URL, revoked secrets or a removed endpoint. Every change up to
    /// `after` is in the list; each one the stream brings is the last up to which all are. A record changed later
    /// into one that cannot be read comes as [`Change::Unreadable`]; the stream goes on.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the watch cannot start.
    pub async fn watch(
        &self,
        after: u64,
    ) -> Result<
        (
            Vec<Change>,
            impl futures_util::Stream<Item = Result<Change, Error>> + Send + use<>,
        ),
        Error,
    > {
        let watch = self
            .kv
            .watch_all_from_revision(after + 1)
            .await
            .map_err(|e| nats_error(&self.bucket, "watch it", e))?;
        let (found, unreadable) = self.list_each().await?;
        let mut initial: Vec<Change> = found
            .into_iter()
            .map(|stored| Change::Put(Box::new(stored)))
            .collect();
        initial.extend(unreadable.into_iter().map(|record| Change::Unreadable {
            name: record.name,
            revision: record.revision,
            reason: record.error.reason(),
        }));
        let bucket = self.bucket.clone();
        let keys = self.keys.clone();
        let trust = self.trust()?;
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
                    match keys.read(&name, &entry.value, entry.revision, trust) {
                        Ok(stored) => {
                            warn_of_old_seal(&name, &entry.value, &stored, &keys);
                            Change::Put(Box::new(stored))
                        }
                        Err(e) => Change::Unreadable {
                            name,
                            revision: entry.revision,
                            reason: e.reason(),
                        },
                    },
                ),
                kv::Operation::Delete | kv::Operation::Purge => Ok(Change::Removed {
                    name,
                    revision: entry.revision,
                }),
            }
        });
        Ok((initial, changes))
    }
}
