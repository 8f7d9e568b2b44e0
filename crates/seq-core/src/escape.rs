//! The order-preserving, prefix-free byte-string escape used inside keys:
//! `0x00` becomes `0x00 0xFF` and the string ends with `0x00 0x01`.
//!
//! Because the terminator sorts below every escaped byte (`0x01 < 0xFF`, and
//! `0x00 < ` any other first byte), byte order of encodings equals byte order
//! of the strings, and no encoding is a prefix of another, so whatever follows
//! in a key can never change the order decided by the string.

use crate::error::{Error, Result};

const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;

/// Appends the escaped, terminated form of `bytes` to `out`.
pub(crate) fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    for &b in bytes {
        out.push(b);
        if b == ESCAPE {
            out.push(ESCAPED_ZERO);
        }
    }
    out.extend_from_slice(&[ESCAPE, TERMINATOR]);
}

/// Reads one escaped, terminated string from the front of `input`; returns it
/// and the number of input bytes consumed.
pub(crate) fn unescape(input: &[u8]) -> Result<(Vec<u8>, usize)> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b != ESCAPE {
            out.push(b);
            i += 1;
            continue;
        }
        match input.get(i + 1) {
            Some(&ESCAPED_ZERO) => out.push(ESCAPE),
            Some(&TERMINATOR) => return Ok((out, i + 2)),
            Some(&other) => {
                return Err(Error::corrupt(format!(
                    "invalid escape 0x00 {other:#04x} at byte {i}"
                )));
            }
            None => break,
        }
        i += 2;
    }
    Err(Error::corrupt("unterminated string component"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        escape_into(&mut out, b);
        out
    }

    #[test]
    fn should_escape_zero_and_terminate() {
        assert_eq!(esc(b""), [0, 1]);
        assert_eq!(esc(b"a\0b"), [b'a', 0, 0xFF, b'b', 0, 1]);
    }

    #[test]
    fn should_round_trip_and_report_consumed() {
        let mut buf = esc(b"\0\xff\x01");
        buf.extend_from_slice(b"tail");
        let (s, used) = unescape(&buf).unwrap();
        assert_eq!(s, b"\0\xff\x01");
        assert_eq!(&buf[used..], b"tail");
    }

    #[test]
    fn should_sort_prefix_before_extension() {
        assert!(esc(b"a") < esc(b"a\0"));
        assert!(esc(b"a") < esc(b"ab"));
        assert!(esc(b"") < esc(b"\0"));
    }

    #[test]
    fn should_reject_bad_escapes() {
        assert!(unescape(b"abc").is_err());
        assert!(unescape(b"abc\0").is_err());
        assert!(unescape(b"a\0\x02").is_err());
    }
}
