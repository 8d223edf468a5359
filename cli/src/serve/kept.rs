//! Idempotency keys kept on disk beside the spool: a client that retries after the daemon
//! restarted (its first request answered 202, the answer lost) gets that answer again,
//! rather than a second event under another id that receivers cannot tell from the first.
//!
//! One SQLite file in the spool's directory, [`FILE`]: a row per key accepted, written
//! before the 202, after the event's own commit (a crash between the two loses the key,
//! not the event: the retry is a second event, at least once). It keeps the last
//! [`IDEMPOTENCY_KEYS`] rows; a start reads them back into memory, oldest first, where the
//! daemon looks keys up. WAL and `synchronous = NORMAL`: a row survives the process's
//! end, not always the machine's (the spool's own rows do).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};

use super::keys::{BodyDigest, IDEMPOTENCY_KEYS, Key, Keys};

/// The file's name in the spool's directory.
pub(super) const FILE: &str = "idempotency-keys.sqlite";

/// The keys on disk.
pub(super) struct KeptKeys {
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for KeptKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeptKeys")
    }
}

impl KeptKeys {
    /// Opens (or makes) [`FILE`] in `dir`.
    pub(super) fn open(dir: &Path) -> Result<KeptKeys, String> {
        let path = dir.join(FILE);
        let failed = |e: &dyn std::fmt::Display| {
            format!(
                "cannot open the idempotency keys' file '{}': {e}",
                path.display()
            )
        };
        if !path.exists() {
            // Made here, before SQLite opens it, so that it is never readable by others (it
            // names tenants and their keys), as the spool's database is.
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(false);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(&path).map_err(|e| failed(&e))?;
        }
        let connection = Connection::open(&path).map_err(|e| failed(&e))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS idempotency_keys (
                     seq INTEGER PRIMARY KEY AUTOINCREMENT,
                     tenant TEXT NOT NULL,
                     key TEXT NOT NULL,
                     body BLOB NOT NULL,
                     reply TEXT NOT NULL,
                     UNIQUE (tenant, key)
                 );",
            )
            .map_err(|e| failed(&e))?;
        Ok(KeptKeys {
            connection: Mutex::new(connection),
        })
    }

    /// Reads the keys back into `keys`, oldest first; how many. A row that does not read
    /// (a value of another type, a reply that is not JSON, a digest of another length) is
    /// skipped, and counted in the second number.
    pub(super) fn load(&self, keys: &mut Keys) -> Result<(usize, usize), String> {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        let failed = |e: rusqlite::Error| format!("cannot read the idempotency keys: {e}");
        let mut statement = connection
            .prepare("SELECT tenant, key, body, reply FROM idempotency_keys ORDER BY seq")
            .map_err(failed)?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .map_err(failed)?;
        let (mut loaded, mut skipped) = (0, 0);
        for row in rows {
            let Ok((tenant, key, body, reply)) = row else {
                skipped += 1;
                continue;
            };
            let body: Result<BodyDigest, _> = body.try_into();
            match (body, serde_json::from_str(&reply)) {
                (Ok(body), Ok(reply)) => {
                    keys.accepted(&(tenant, key), body, std::sync::Arc::new(reply));
                    loaded += 1;
                }
                _ => skipped += 1,
            }
        }
        Ok((loaded, skipped))
    }

    /// Keeps `key`'s answer, and forgets the rows past the last [`IDEMPOTENCY_KEYS`].
    pub(super) fn keep(
        &self,
        key: &Key,
        body: &BodyDigest,
        reply: &serde_json::Value,
    ) -> Result<(), String> {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        let kept = connection
            .execute(
                "INSERT OR REPLACE INTO idempotency_keys (tenant, key, body, reply)
                 VALUES (?1, ?2, ?3, ?4)",
                params![key.0, key.1, &body[..], reply.to_string()],
            )
            .and_then(|_| {
                let last = connection.last_insert_rowid();
                let limit = i64::try_from(IDEMPOTENCY_KEYS).unwrap_or(i64::MAX);
                connection.execute(
                    "DELETE FROM idempotency_keys WHERE seq <= ?1",
                    params![last.saturating_sub(limit)],
                )
            });
        kept.map(drop)
            .map_err(|e| format!("cannot keep an idempotency key on disk: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::keys::Claim;

    #[test]
    fn keys_kept_are_read_back_and_only_the_last_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let key = |n: usize| ("acme".to_owned(), format!("k-{n}"));
        {
            let kept = KeptKeys::open(dir.path()).unwrap();
            for n in 0..3 {
                let reply = serde_json::json!({"id": format!("evt-{n}")});
                kept.keep(&key(n), &[n as u8; 32], &reply).unwrap();
            }
        }
        let kept = KeptKeys::open(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
        }
        let mut keys = Keys::default();
        assert_eq!(kept.load(&mut keys).unwrap(), (3, 0));
        match keys.claim(&key(1), [1; 32]) {
            Claim::Again(reply) => assert_eq!(reply["id"], "evt-1"),
            _ => panic!("the key's first answer"),
        }
        assert!(matches!(keys.claim(&key(1), [9; 32]), Claim::Refused(_)));
        assert!(matches!(keys.claim(&key(7), [7; 32]), Claim::New));

        // Past the limit, the oldest rows go.
        let connection = kept.connection.lock().unwrap();
        connection
            .execute(
                "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'idempotency_keys'",
                params![i64::try_from(IDEMPOTENCY_KEYS).unwrap() + 1],
            )
            .unwrap();
        drop(connection);
        kept.keep(&key(9), &[9; 32], &serde_json::json!({}))
            .unwrap();
        let rows: Vec<String> = {
            let connection = kept.connection.lock().unwrap();
            let mut statement = connection
                .prepare("SELECT key FROM idempotency_keys ORDER BY seq")
                .unwrap();
            statement
                .query_map([], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        // The new row's number is IDEMPOTENCY_KEYS + 2: of the others, only the one
        // numbered 3 is among the last IDEMPOTENCY_KEYS.
        assert_eq!(rows, ["k-2", "k-9"]);
    }
}
