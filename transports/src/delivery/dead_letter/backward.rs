//! A file's lines read from its end, last first: the newest dead letters without the ones
//! before them. A page of the newest letters reads the end of the file only, and a reader
//! holds one block and the longest line it met, whatever the file's size.
//!
//! It does not open, lock, parse or write anything: the caller hands it an open file and
//! where the lines to read end.

use std::io::{self, Read, Seek, SeekFrom};

/// How much is read at a time. A line longer than that doubles it, until the line fits.
pub(crate) const BLOCK: usize = 64 * 1024;

/// One line: the offset of its first byte in the file, and its bytes without the line break.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Line {
    /// Where it starts.
    pub(crate) start: u64,
    /// Its bytes.
    pub(crate) bytes: Vec<u8>,
}

/// The lines of a file's bytes `[0, end)`, last first.
#[derive(Debug)]
pub(crate) struct Backward<F> {
    file: F,
    /// The offset of `tail[0]` in the file: the bytes before it are not read yet.
    from: u64,
    /// The file's bytes from `from` on, up to where the next line to give ends.
    tail: Vec<u8>,
    block: usize,
    /// Whether the first line is to be left out when `end` cuts it (no line break before
    /// `end`): a cursor made before the file was rewritten can point inside a line.
    drop_cut: bool,
}

impl<F: Read + Seek> Backward<F> {
    /// The lines of `file` that start before `end`. With `drop_cut`, a line that `end`
    /// cuts is left out; without it, it is given as far as `end`.
    pub(crate) fn new(file: F, end: u64, drop_cut: bool) -> Backward<F> {
        Backward::with_block(file, end, drop_cut, BLOCK)
    }

    /// As [`new`](Backward::new), reading `block` bytes at a time (tests use small ones).
    pub(crate) fn with_block(file: F, end: u64, drop_cut: bool, block: usize) -> Backward<F> {
        Backward {
            file,
            from: end,
            tail: Vec::new(),
            block: block.max(1),
            drop_cut,
        }
    }

    /// The next line, going back; `None` once the file's start is reached.
    ///
    /// # Errors
    ///
    /// When the file cannot be read (it was cut shorter than `end` meanwhile, for one).
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            let ended = self.tail.last() == Some(&b'\n');
            let body = self.tail.len() - usize::from(ended);
            let start = match memchr::memrchr(b'\n', &self.tail[..body]) {
                Some(at) => at + 1,
                None if self.from == 0 && !self.tail.is_empty() => 0,
                None if self.from == 0 => return Ok(None),
                None => {
                    if let Err(e) = self.read_before() {
                        // Said once: the lines before cannot be read.
                        self.from = 0;
                        self.tail.clear();
                        return Err(e);
                    }
                    continue;
                }
            };
            let line = Line {
                start: self.from + start as u64,
                bytes: self.tail[start..body].to_vec(),
            };
            self.tail.truncate(start);
            if std::mem::take(&mut self.drop_cut) && !ended {
                continue;
            }
            return Ok(Some(line));
        }
    }

    /// Puts the block before `from` in front of `tail`.
    fn read_before(&mut self) -> io::Result<()> {
        let want = u64::try_from(self.block.max(self.tail.len())).unwrap_or(u64::MAX);
        let n = want.min(self.from);
        // At most `block` or `tail.len()`, so it fits.
        let len = usize::try_from(n).unwrap_or(usize::MAX);
        let mut bytes = vec![0; len + self.tail.len()];
        self.file.seek(SeekFrom::Start(self.from - n))?;
        self.file.read_exact(&mut bytes[..len])?;
        bytes[len..].copy_from_slice(&self.tail);
        self.tail = bytes;
        self.from -= n;
        Ok(())
    }
}

impl<F: Read + Seek> Iterator for Backward<F> {
    type Item = io::Result<Line>;

    fn next(&mut self) -> Option<io::Result<Line>> {
        self.next_line().transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// Every line of `text[..end]` read back with a `block`-byte block, as (start, text).
    fn lines(text: &str, end: usize, drop_cut: bool, block: usize) -> Vec<(u64, String)> {
        Backward::with_block(Cursor::new(text.as_bytes()), end as u64, drop_cut, block)
            .map(|line| {
                let line = line.unwrap();
                (line.start, String::from_utf8(line.bytes).unwrap())
            })
            .collect()
    }

    #[test]
    fn lines_come_last_first_with_their_start_whatever_the_block() {
        let text = "one\ntwo\n\nfour four four\n";
        let expected = vec![
            (9, "four four four".to_owned()),
            (8, String::new()),
            (4, "two".to_owned()),
            (0, "one".to_owned()),
        ];
        for block in [1, 2, 3, 5, 7, 64, BLOCK] {
            assert_eq!(
                lines(text, text.len(), false, block),
                expected,
                "block {block}"
            );
            // A cursor at a line's end changes nothing.
            assert_eq!(
                lines(text, text.len(), true, block),
                expected,
                "block {block}"
            );
        }
    }

    #[test]
    fn a_last_line_without_a_break_is_given_unless_a_cursor_cut_it() {
        let text = "one\ntwo\nthr";
        for block in [1, 4, 64] {
            assert_eq!(
                lines(text, text.len(), false, block),
                [
                    (8, "thr".to_owned()),
                    (4, "two".to_owned()),
                    (0, "one".to_owned())
                ]
            );
            assert_eq!(
                lines(text, text.len(), true, block),
                [(4, "two".to_owned()), (0, "one".to_owned())]
            );
        }
    }

    #[test]
    fn an_end_inside_a_line_leaves_it_out_and_the_ones_before_in() {
        let text = "one\ntwo\nthree\n";
        // Ends inside "three", inside "two", just after "one\n", inside "one", at the start.
        assert_eq!(
            lines(text, 10, true, 2),
            [(4, "two".to_owned()), (0, "one".to_owned())]
        );
        assert_eq!(lines(text, 6, true, 2), [(0, "one".to_owned())]);
        assert_eq!(lines(text, 4, true, 2), [(0, "one".to_owned())]);
        assert_eq!(lines(text, 2, true, 2), []);
        assert_eq!(lines(text, 0, true, 2), []);
        assert_eq!(lines("", 0, false, 2), []);
    }

    #[test]
    fn a_file_shorter_than_its_end_is_an_error_said_once_not_a_panic() {
        let mut lines = Backward::with_block(Cursor::new(b"one\n".to_vec()), 40, false, 8);
        let err = lines.next().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(lines.next().is_none());
    }
}
