//! Name rules for spaces, segments, sequences and other user-chosen names.

use crate::error::{Error, Result};

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Accepts a name that is non-empty, at most [`MAX_NAME_LEN`] bytes and free
/// of control characters (`0x00..=0x1F`, `0x7F`); anything else is
/// [`Error::InvalidName`]. `kind` says what the name names (`"space"`,
/// `"segment"`, `"sequence"`, ...).
pub fn validate_name(kind: &'static str, name: &str) -> Result<()> {
    let reject = |reason: String| {
        Err(Error::InvalidName {
            kind,
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return reject("must not be empty".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return reject(format!(
            "is {} bytes, at most {MAX_NAME_LEN} allowed",
            name.len()
        ));
    }
    if let Some((at, c)) = name.char_indices().find(|(_, c)| c.is_ascii_control()) {
        return reject(format!(
            "control character {:#04x} at byte {at}",
            u32::from(c)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_accept_ordinary_names() {
        for name in ["orders", "a-b_c.d/e:f", "ünïcödé", "*", &"x".repeat(255)] {
            assert!(validate_name("space", name).is_ok(), "{name}");
        }
    }

    #[test]
    fn should_reject_empty_name() {
        assert!(matches!(
            validate_name("segment", ""),
            Err(Error::InvalidName {
                kind: "segment",
                ..
            })
        ));
    }

    #[test]
    fn should_reject_overlong_name() {
        assert!(validate_name("space", &"x".repeat(256)).is_err());
    }

    #[test]
    fn should_reject_forbidden_bytes() {
        for name in ["a\0b", "tab\t", "del\x7f", "\x1f"] {
            assert!(
                matches!(
                    validate_name("sequence", name),
                    Err(Error::InvalidName { .. })
                ),
                "{name:?}"
            );
        }
    }
}
