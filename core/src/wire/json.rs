//! The Zenlix body written straight into bytes, the way `emit` writes it.
//!
//! The model's layout is known when it is compiled: each key is a constant copied whole,
//! each string is tested for escapes sixteen bytes at a time and copied in runs, and no
//! serializer state is kept between values. The bytes are serde_json's (tested against it,
//! and `serde_json` itself writes the free-form `Value`s), so receivers, signatures and the
//! reference fixtures see no difference. The vendor formats, whose objects remember their
//! keys' order, are written with sonic-rs.

use jiff::civil::DateTime;
use serde_json::{Map, Value};

use crate::wire::{TimeText, format_time};

/// A value the crate writes as JSON without serde: the Zenlix model and its parts.
pub(crate) trait WriteJson {
    /// Appends the value's JSON to `out`: the bytes `serde_json::to_writer` writes for it.
    ///
    /// # Errors
    ///
    /// What serde_json would refuse: an `extra` key that repeats one of the struct's own
    /// keys, or a free-form value serde_json cannot write.
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error>;
}

impl WriteJson for String {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        write_str(out, self);
        Ok(())
    }
}

impl WriteJson for Value {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(&mut *out, self)
    }
}

impl<T: WriteJson> WriteJson for Vec<T> {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        out.push(b'[');
        for (n, item) in self.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            item.write_json(out)?;
        }
        out.push(b']');
        Ok(())
    }
}

/// Writes `"key":` for the next key of an object whose `{` is written: with a comma before
/// it unless it is the first. `key` is the quoted key and its colon, such as `"code":`, made
/// at compile time from a key that needs no escape.
pub(crate) fn key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.extend_from_slice(key.as_bytes());
}

/// Writes the `extra` entries of an object after its own keys, then closes it.
pub(crate) fn close_with_extra(
    out: &mut Vec<u8>,
    mut first: bool,
    extra: &Map<String, Value>,
) -> Result<(), serde_json::Error> {
    for (name, value) in extra {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        value.write_json(out)?;
    }
    out.push(b'}');
    Ok(())
}

/// Writes a time as the wire's `"YYYY-MM-DD HH:MM:SS"`.
pub(crate) fn write_time(out: &mut Vec<u8>, dt: DateTime) {
    match format_time(dt) {
        TimeText::Fixed(digits) => {
            out.push(b'"');
            out.extend_from_slice(&digits);
            out.push(b'"');
        }
        TimeText::Other(text) => write_str(out, &text),
    }
}

/// How many bytes of a long string are tested for escapes at once.
const WIDE: usize = 64;

/// How many bytes of what is left are tested at once, and of the last bytes, padded.
const BLOCK: usize = 16;

/// Whether JSON needs `b` escaped inside a string. serde_json escapes exactly these: the
/// quote, the backslash and the control characters; not DEL, `/` or anything past ASCII.
const fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether no byte of `block` needs an escape. Branch-free, so that the compiler tests the
/// block in a few vector instructions.
#[inline(always)]
fn clean<const N: usize>(block: &[u8; N]) -> bool {
    !block.iter().fold(false, |any, &b| any | needs_escape(b))
}

/// Writes `s` as a JSON string, escaped as serde_json escapes it.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `from`: where the bytes not yet written start. Runs without escapes are copied whole,
    // and the bytes of a block that has an escape are looked at one by one.
    let (wide, rest) = bytes.as_chunks::<WIDE>();
    let mut from = escape_blocks(out, bytes, 0, 0, wide);
    let (blocks, tail) = rest.as_chunks::<BLOCK>();
    from = escape_blocks(out, bytes, from, wide.len() * WIDE, blocks);
    // The last bytes, padded with a byte that needs no escape, are tested the same way.
    let mut last = [b' '; BLOCK];
    last[..tail.len()].copy_from_slice(tail);
    if !clean(&last) {
        from = escape_run(out, bytes, from, bytes.len() - tail.len()..bytes.len());
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

/// Escapes the bytes of `blocks`, which start at `bytes[start]`, that need it (see
/// [`escape_run`]); returns where the bytes not yet written start.
#[inline(always)]
fn escape_blocks<const N: usize>(
    out: &mut Vec<u8>,
    bytes: &[u8],
    mut from: usize,
    start: usize,
    blocks: &[[u8; N]],
) -> usize {
    for (n, block) in blocks.iter().enumerate() {
        if !clean(block) {
            let at = start + n * N;
            from = escape_run(out, bytes, from, at..at + N);
        }
    }
    from
}

/// Writes what precedes each byte of `bytes[range]` that needs an escape, then its escape;
/// returns where the bytes not yet written start.
fn escape_run(
    out: &mut Vec<u8>,
    bytes: &[u8],
    mut from: usize,
    range: std::ops::Range<usize>,
) -> usize {
    for at in range {
        let b = bytes[at];
        if needs_escape(b) {
            out.extend_from_slice(&bytes[from..at]);
            push_escape(out, b);
            from = at + 1;
        }
    }
    from
}

/// Writes the escape of `b`, one of the bytes [`needs_escape`] names, as serde_json does:
/// the short escapes where JSON has one, else `\u00XX` in lower-case hex.
fn push_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_str(&mut out, s);
        out
    }

    #[test]
    fn every_byte_is_escaped_as_serde_json_escapes_it() {
        // Each ASCII byte at every position of a wide block, the blocks after it and the tail.
        for b in 0u8..0x80 {
            let c = char::from(b);
            for at in 0..WIDE + 2 * BLOCK + 3 {
                let s = format!("{}{c}{}", "a".repeat(at), "é".repeat(at % 5));
                assert_eq!(
                    written(&s),
                    serde_json::to_vec(&s).unwrap(),
                    "byte {b:#04x} at {at}"
                );
            }
        }
        for s in ["", "\u{7f}\u{2028}😀/", &"\"\\\n".repeat(40)] {
            assert_eq!(written(s), serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn an_owned_event_is_written_as_serde_json_writes_it() {
        // `emit` writes an `EventRef`; the owned `Event`'s writer, made by the same macro as
        // the ticket's, is held to the same bytes.
        for action in crate::Action::ALL {
            let mut event = crate::sample::event(action);
            event
                .extra
                .insert("x-note".into(), serde_json::json!({"a": [1.5, null]}));
            event.ticket.deadline_time = None;
            let mut out = Vec::new();
            event.write_json(&mut out).unwrap();
            assert_eq!(out, serde_json::to_vec(&event).unwrap(), "{action}");
        }
    }

    #[test]
    fn times_outside_four_digit_years_are_written_as_serde_json_writes_them() {
        for dt in [
            DateTime::constant(2019, 6, 11, 11, 24, 18, 0),
            DateTime::constant(-12, 1, 2, 3, 4, 5, 0),
        ] {
            let mut out = Vec::new();
            write_time(&mut out, dt);
            let expected = serde_json::to_vec(&crate::wire::time::Ser(&dt)).unwrap();
            assert_eq!(out, expected);
        }
    }
}
