//! The spool directory's lock: one process at a time, and one `Spool` in it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::LOCK_FILE;
use crate::error::Error;

/// The spool directories this process holds the lock of (canonical paths): a second open
/// of one is told it is this process's, which the process id in the lock file cannot say
/// (two containers may both run as process 1).
static HELD_HERE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// The lock of a spool directory, held until dropped: its lock file, locked.
#[derive(Debug)]
pub(crate) struct SpoolLock {
    file: Option<File>,
    /// The directory, as [`HELD_HERE`] has it.
    dir: PathBuf,
}

impl Drop for SpoolLock {
    /// Closes the file (which releases the lock) and forgets the directory in one step for
    /// [`take_lock`], which looks at both under [`HELD_HERE`]'s lock.
    fn drop(&mut self) {
        let mut held = crate::delivery::lock(&HELD_HERE);
        drop(self.file.take());
        if let Some(at) = held.iter().position(|dir| *dir == self.dir) {
            held.swap_remove(at);
        }
    }
}

/// Takes the spool's lock file, writing this process's id into it.
pub(super) fn take_lock(dir: &Path) -> Result<SpoolLock, Error> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::Spool {
            path: path.clone(),
            message: format!("cannot open the lock file: {e}"),
        })?;
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    // Held from the lock's try to the note of its taking, so that another thread of this
    // process sees both or neither.
    let mut held = crate::delivery::lock(&HELD_HERE);
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let holder = if held.contains(&canonical) {
                "this process already (another `Spool` of the same directory: open it once \
                 and share it)"
                    .to_owned()
            } else {
                match pid.trim() {
                    "" => "another process".to_owned(),
                    pid => format!("another process (process {pid})"),
                }
            };
            return Err(Error::SpoolLocked {
                path: dir.to_path_buf(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Error::Spool {
                path,
                message: format!("cannot lock the spool: {e}"),
            });
        }
    }
    held.push(canonical.clone());
    drop(held);
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    if let Err(e) = written {
        log::warn!(target: deskhook::LOG_TARGET, "cannot write the process id to {}: {e}", path.display());
    }
    Ok(SpoolLock {
        file: Some(file),
        dir: canonical,
    })
}
