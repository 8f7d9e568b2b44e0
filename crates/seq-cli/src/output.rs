//! Output: human-readable tables by default, JSON with `--json`.

use std::io::Write;

use anyhow::Result;
use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

/// Where a command's results go, and in which form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    /// Tables (`json == false`) or JSON.
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether `--json` was given.
    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// Prints one result: `value` as pretty JSON, or the text `human` builds.
    pub(crate) fn emit<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> Result<()> {
        if self.json {
            let text = serde_json::to_string_pretty(value)?;
            self.line(&text)
        } else {
            self.line(&human())
        }
    }

    /// Prints one item of a stream: a compact JSON object per line, or the
    /// text `human` builds.
    pub(crate) fn item<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> Result<()> {
        if self.json {
            let text = serde_json::to_string(value)?;
            self.line(&text)
        } else {
            self.line(&human())
        }
    }

    /// Writes `text` and a newline to stdout and flushes (so a reader on a
    /// pipe sees followed entries at once).
    pub(crate) fn line(&self, text: &str) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}")?;
        stdout.flush()?;
        Ok(())
    }

    /// Writes `text` to stdout as is.
    pub(crate) fn write(&self, text: &str) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        Ok(())
    }
}

/// A table with `headers` and `rows`.
pub(crate) fn table<R, C>(headers: &[&str], rows: R) -> String
where
    R: IntoIterator<Item = C>,
    C: IntoIterator<Item = String>,
{
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    table.to_string()
}

/// A two-column `field | value` table for one object.
pub(crate) fn fields<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> String {
    table(
        &["field", "value"],
        pairs.into_iter().map(|(k, v)| [k.to_owned(), v]),
    )
}

/// Renders a payload for a terminal: UTF-8 text as is (control characters
/// escaped), anything else as `0x` hex.
pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.escape_debug().to_string(),
        Err(_) => format!("0x{}", hex(bytes)),
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A rate for humans: `12,345/s`.
pub(crate) fn per_second(count: u64, elapsed: std::time::Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    format!("{}/s", thousands((count as f64 / secs).round() as u64))
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds since the Unix epoch as RFC 3339-like UTC text.
pub(crate) fn timestamp(micros: u64) -> String {
    if micros == 0 {
        return "-".into();
    }
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_group_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn should_format_timestamps_as_utc() {
        assert_eq!(timestamp(0), "-");
        assert_eq!(timestamp(1), "1970-01-01T00:00:00.000001Z");
        // 2024-02-29T12:34:56Z
        assert_eq!(
            timestamp(1_709_210_096_000_000),
            "2024-02-29T12:34:56.000000Z"
        );
    }

    #[test]
    fn should_show_binary_payloads_as_hex() {
        assert_eq!(show_bytes(b"hi\n"), "hi\\n");
        assert_eq!(show_bytes(&[0xff, 0x00]), "0xff00");
    }
}
