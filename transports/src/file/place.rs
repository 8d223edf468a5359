//! Where the file log writes: its own rotations, and the file at the path followed when
//! something outside moves or removes it (see the [module docs](super)).

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use super::{Rotation, Shared, State, open};
use crate::error::Error;

/// Whether the file `state` writes to is in no directory any more (lines written to it are
/// lost).
#[cfg(unix)]
pub(super) fn unlinked(state: &State) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    state
        .writer
        .get_ref()
        .metadata()
        .is_ok_and(|m| m.nlink() == 0)
}

#[cfg(not(unix))]
pub(super) fn unlinked(_state: &State) -> bool {
    false
}

/// What of `buffered` (whole lines) a file did not take after it took `written` bytes: from
/// the start of the line it cut, so that the line is written whole elsewhere.
pub(super) fn from_cut_line(buffered: &[u8], written: usize) -> &[u8] {
    let taken = &buffered[..written.min(buffered.len())];
    let start = taken
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |end| end + 1);
    &buffered[start..]
}

/// How a rotation keeping `keep` files makes room at `.1`, given which numbers are `taken`:
/// the numbered file to remove, if any, then the numbers to move up by one, in order. Files
/// move up only as far as the first free number: a rotation whose last rename failed left
/// `.1` free, and the next one then removes nothing (were `.keep` removed each time, every
/// event would delete one old file while the rename kept failing).
pub(super) fn make_room(
    keep: usize,
    taken: impl Fn(usize) -> bool,
) -> (Option<usize>, std::iter::Rev<std::ops::Range<usize>>) {
    let free = (1..=keep).find(|&n| !taken(n));
    (
        free.is_none().then_some(keep),
        (1..free.unwrap_or(keep)).rev(),
    )
}

impl Shared {
    /// Opens the path again for a state that lost it (see [`State::detached`]). On failure
    /// the lines go on into the file it has (moved to `.1`, say), and the next append tries
    /// again; unless that file is gone from every directory (removed, or rotated with
    /// `keep = 0`), where a line would be lost: then the append fails, and says why.
    pub(super) fn reattach(&self, state: &mut State) -> Result<(), Error> {
        // Lines still buffered go to the file at the path when the one written to is in no
        // directory any more (flushed there, they would be lost), or will not take them.
        let gone = unlinked(state);
        let (pending, refused) = if gone {
            (state.writer.buffer().to_vec(), None)
        } else {
            self.flush_moved(state)
        };
        match open(&self.path, Some(state.writer.get_ref()), self.mode) {
            Ok(mut fresh) => {
                if !pending.is_empty() {
                    let carried = if fresh.needs_newline {
                        fresh.writer.write_all(b"\n")
                    } else {
                        Ok(())
                    }
                    .and_then(|()| fresh.writer.write_all(&pending));
                    if let Err(e) = carried {
                        // Not flushed when dropped: the lines stay with the old buffer, for
                        // the next try.
                        drop(fresh.writer.into_parts());
                        if let Some(refused) = refused {
                            state.said.push(refused.to_string());
                        }
                        return Err(self.write_error(e));
                    }
                    fresh.size += pending.len() as u64 + u64::from(fresh.needs_newline);
                    fresh.needs_newline = false;
                    fresh.dirty = true;
                }
                let said = std::mem::take(&mut state.said);
                let old = std::mem::replace(state, fresh);
                state.said = said;
                if let Some(err) = refused {
                    state.said.push(format!(
                        "{err}; what it did not take went to the new file at the path ({} \
                         byte(s), from the start of the line it cut)",
                        pending.len()
                    ));
                }
                // Its buffer went to the new file: dropped unwritten, not flushed again.
                drop(old.writer.into_parts());
                Ok(())
            }
            Err(err) if gone => Err(err),
            Err(err) => {
                state.said.push(match refused {
                    Some(refused) => format!(
                        "{refused}; {err}; writing on to the moved file (its lines are kept for \
                         the next try)"
                    ),
                    None => format!("{err}; writing on to the moved file"),
                });
                Ok(())
            }
        }
    }

    /// Flushes the buffered lines into the file written to, moved from the path but still in
    /// a directory. What it does not take (a full disk, an I/O error) is returned with why,
    /// from the start of the line the failure cut: that line's head stays behind as a line
    /// cut short by a crash would, and the whole line goes to the new file with the rest. (A
    /// line an earlier failure cut stays cut: its rest comes first, as a line of its own.)
    pub(super) fn flush_moved(&self, state: &mut State) -> (Vec<u8>, Option<Error>) {
        let buffered = state.writer.buffer().to_vec();
        match state.writer.flush() {
            Ok(()) => (Vec::new(), None),
            Err(err) => {
                let written = buffered.len() - state.writer.buffer().len();
                let rest = from_cut_line(&buffered, written).to_vec();
                (rest, Some(self.write_error(err)))
            }
        }
    }

    /// Whether the path still names the file written to: not when it was moved or removed
    /// from outside (by an operator, a log rotator), which the next append then follows.
    #[cfg(unix)]
    pub(super) fn still_ours(&self, state: &State) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        match (fs::metadata(&self.path), state.writer.get_ref().metadata()) {
            (Ok(path), Ok(ours)) => path.dev() == ours.dev() && path.ino() == ours.ino(),
            _ => false,
        }
    }

    #[cfg(not(unix))]
    pub(super) fn still_ours(&self, _state: &State) -> bool {
        self.path.exists()
    }

    pub(super) fn rotate(&self, state: &mut State, rotation: Rotation) -> Result<(), Error> {
        let rotate_error = |source| Error::Rotate {
            path: self.path.clone(),
            source,
        };
        // Moved or removed from outside: there is nothing to move, only a file to open, and
        // the lines still buffered go where `reattach` puts them (first: flushed, they would
        // go into a removed file).
        if !self.still_ours(state) {
            state.detached = true;
            return self.reattach(state);
        }
        state.writer.flush().map_err(rotate_error)?;
        let numbered = |n: usize| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        if rotation.keep == 0 {
            fs::remove_file(&self.path).map_err(rotate_error)?;
        } else {
            let taken = |n| {
                !fs::symlink_metadata(numbered(n))
                    .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
            };
            let (remove, shift) = make_room(rotation.keep, taken);
            if let Some(n) = remove {
                match fs::remove_file(numbered(n)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(rotate_error(e)),
                }
            }
            for n in shift {
                match fs::rename(numbered(n), numbered(n + 1)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(rotate_error(e)),
                }
            }
            fs::rename(&self.path, numbered(1)).map_err(rotate_error)?;
        }
        // The live file is gone from the path: until a new one opens, write on into it (now
        // `.1`) rather than rotate it away.
        state.detached = true;
        let said = std::mem::take(&mut state.said);
        match open(&self.path, Some(state.writer.get_ref()), self.mode) {
            Ok(fresh) => *state = fresh,
            Err(e) => {
                state.said = said;
                return Err(e);
            }
        }
        // What was said before the rotation is still to be logged.
        state.said = said;
        Ok(())
    }
}
