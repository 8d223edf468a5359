//! Writing records again: in the current layout (after an upgrade, or for records written
//! without the key), and with the current key (a key rotation).

use super::record::{Trust, readers_own, seals_for_an_open_url};
use super::{EndpointStore, LAYOUT, SECRETS_KEY_ENV, StoredEndpoint, layout_of};
use crate::error::Error;

/// Why resealing cannot be done without a key.
fn no_key_to_reseal() -> Error {
    Error::Config(format!(
        "resealing needs the secrets key: set {SECRETS_KEY_ENV} (or name its variable with \
         --key-env)"
    ))
}

impl EndpointStore {
    /// The records [`reseal`](EndpointStore::reseal) would write again (those of an older
    /// layout, or written without the key), each read, or why it cannot be: for an operator
    /// to look at every setting before sealing makes readers that require sealed records
    /// trust them.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a key, or when the bucket cannot be listed.
    #[allow(clippy::type_complexity)]
    pub async fn unsealed(&self) -> Result<Vec<(String, Result<StoredEndpoint, Error>)>, Error> {
        let found = self.unsealed_records().await?;
        Ok(found
            .into_iter()
            .map(|(name, _, read)| (name, read))
            .collect())
    }

    /// [`unsealed`](EndpointStore::unsealed), with whether each seals its secrets for a URL
    /// in the open (layout 1).
    #[allow(clippy::type_complexity)]
    async fn unsealed_records(
        &self,
    ) -> Result<Vec<(String, bool, Result<StoredEndpoint, Error>)>, Error> {
        if self.keys.current.is_none() {
            return Err(no_key_to_reseal());
        }
        let mut found = Vec::new();
        for name in self.names().await? {
            let Some(entry) = self.entry(&name).await? else {
                continue;
            };
            if layout_of(&entry.value) == Some(LAYOUT) {
                continue;
            }
            let read = self
                .keys
                .read(&name, &entry.value, entry.revision, Trust::ToReseal);
            found.push((name, seals_for_an_open_url(&entry.value), read));
        }
        Ok(found)
    }

    /// Writes every record of an older layout again in the current one, sealed with this
    /// store's key: after an upgrade, and for records written without the key (which a
    /// reader that requires sealed records refuses). Returns, by name, the record written
    /// (its settings, for the operator to check, and its new revision;
    /// [`unsealed`](EndpointStore::unsealed) shows them before), or why it could not be (one that is sealed with another
    /// key, or was changed without the key, stays as it is: write it again, unread, with
    /// [`revision_of`](EndpointStore::revision_of) and [`put_if`](EndpointStore::put_if)
    /// (`deskhook endpoints add --replace`); one
    /// changed since it was read is left for another run). Records already in the current
    /// layout are left alone, and so are those that set `template_file`, `ca_file`,
    /// `secret_env`, `allow_private` or `allow_cidrs` (what reaches into the readers' own
    /// machines): those are sealed only by name, with
    /// [`reseal_checked`](EndpointStore::reseal_checked).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a key, or when the bucket cannot be listed.
    #[allow(clippy::type_complexity)]
    pub async fn reseal(&self) -> Result<Vec<(String, Result<StoredEndpoint, Error>)>, Error> {
        let mut done = Vec::new();
        for (name, open_url, read) in self.unsealed_records().await? {
            let written = match read {
                // Sealed, it would be trusted with the reader's files, environment or
                // networks, or its secrets with a URL anyone could have written: only once
                // the operator looked at it.
                Ok(stored) => match (readers_own(&stored.spec), open_url) {
                    (Some(setting), _) => Err(Error::Config(format!(
                        "endpoint '{name}' sets {setting}, which reaches into the readers' own \
                         files, environment or networks: it is sealed only when named, once \
                         checked; look at it with reseal --dry-run, then reseal \
                         {name}@{}",
                        stored.revision
                    ))),
                    (None, true) => Err(Error::Config(format!(
                        "endpoint '{name}' sealed its secrets and header values for a URL in \
                         the open, which whoever can write to the bucket could have changed: \
                         it is sealed again only when named, once checked; look at its URL \
                         with reseal --dry-run, then reseal {name}@{}",
                        stored.revision
                    ))),
                    (None, false) => self.seal_again(stored).await,
                },
                Err(e) => Err(e),
            };
            done.push((name, written));
        }
        Ok(done)
    }

    /// [`reseal`](EndpointStore::reseal) of the records named in `checked`, each only if
    /// it is still at the revision given (the one [`unsealed`](EndpointStore::unsealed)
    /// showed the operator): so that what is sealed is what was checked, not a record
    /// written in between.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a key; by name, a record that is gone, was changed since
    /// its revision, or is sealed in the current layout already.
    #[allow(clippy::type_complexity)]
    pub async fn reseal_checked(
        &self,
        checked: &[(String, u64)],
    ) -> Result<Vec<(String, Result<StoredEndpoint, Error>)>, Error> {
        if self.keys.current.is_none() {
            return Err(no_key_to_reseal());
        }
        let mut done = Vec::new();
        for (name, revision) in checked {
            let written = match self.entry(name).await? {
                None => Err(Error::Config(format!(
                    "endpoint '{name}' is not in the bucket"
                ))),
                Some(entry) if entry.revision != *revision => Err(Error::Config(format!(
                    "endpoint '{name}' was changed after revision {revision} (it is at {}): \
                     look at it again with reseal --dry-run",
                    entry.revision
                ))),
                Some(entry) if layout_of(&entry.value) == Some(LAYOUT) => Err(Error::Config(
                    format!("endpoint '{name}' is sealed in the current layout already"),
                )),
                Some(entry) => {
                    match self
                        .keys
                        .read(name, &entry.value, entry.revision, Trust::ToReseal)
                    {
                        Ok(stored) => self.seal_again(stored).await,
                        Err(e) => Err(e),
                    }
                }
            };
            done.push((name.clone(), written));
        }
        Ok(done)
    }

    /// Writes every record sealed with one of the [`previous_keys`](EndpointStore::previous_keys)
    /// again, sealed with this store's key, each only if unchanged since it was read: the
    /// step of a key rotation after every relay has both keys. Returns, by name, the record
    /// written (with its new revision), or why it could not be (one changed meanwhile is
    /// left for another run; one that opens with none of the keys stays as it is). Records
    /// of an older layout are left to [`reseal`](EndpointStore::reseal), which shows them
    /// for checking first (it opens them with the previous keys too): one sealed with a
    /// previous key is returned as an error that says so; those sealed with the current key
    /// are left alone.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a key, or when the bucket cannot be listed.
    #[allow(clippy::type_complexity)]
    pub async fn rekey(&self) -> Result<Vec<(String, Result<StoredEndpoint, Error>)>, Error> {
        if self.keys.current.is_none() {
            return Err(Error::Config(format!(
                "sealing with a new key needs it: set {SECRETS_KEY_ENV} to the new key (or name \
                 its variable with --key-env), and the old one(s) as previous keys"
            )));
        }
        let mut done = Vec::new();
        for name in self.names().await? {
            let Some(entry) = self.entry(&name).await? else {
                continue;
            };
            let layout = layout_of(&entry.value);
            if layout != Some(LAYOUT) {
                // Of an older layout and sealed with a previous key: said, not passed over
                // (the operator would take the old key away, and the record would no longer
                // open).
                if let Some(layout) = layout
                    && self
                        .keys
                        .read(&name, &entry.value, entry.revision, Trust::ToReseal)
                        .is_ok_and(|stored| stored.previous_key)
                {
                    done.push((
                        name.clone(),
                        Err(Error::Config(format!(
                            "endpoint '{name}': its record, of layout {layout}, is sealed with \
                             a previous key; seal it with the current key by `deskhook \
                             endpoints reseal` (which shows it for checking first), not rekey"
                        ))),
                    ));
                }
                continue;
            }
            match self
                .keys
                .read(&name, &entry.value, entry.revision, Trust::Sealed)
            {
                Ok(stored) if !stored.previous_key => {}
                Ok(stored) => done.push((name, self.seal_again(stored).await)),
                Err(e) => done.push((name, Err(e))),
            }
        }
        Ok(done)
    }

    /// Writes `stored` again, sealed in the current layout, if it is still at its revision.
    async fn seal_again(&self, stored: StoredEndpoint) -> Result<StoredEndpoint, Error> {
        self.put_if(&stored.spec, stored.paused, Some(stored.revision))
            .await
            .map(|revision| StoredEndpoint {
                revision,
                previous_key: false,
                layout: LAYOUT,
                ..stored
            })
    }
}
