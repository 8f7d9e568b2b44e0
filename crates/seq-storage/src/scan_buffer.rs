//! [`ScanBuffer`]: where a backend's scan copies the keys and values it reads.

use bytes::{Bytes, BytesMut};

use crate::KeyValue;

/// Size of the buffers a [`ScanBuffer`] copies into.
pub const SCAN_BUFFER_BYTES: usize = 32 << 10;

/// Where a scan copies what it reads out of a backend's pages: consecutive
/// keys and values share one [`SCAN_BUFFER_BYTES`]-sized buffer, so a scan
/// allocates once per buffer rather than twice per entry. A key and value
/// larger than a quarter of a buffer get allocations of their own.
///
/// A key or value kept after the scan keeps its whole buffer alive: copy it
/// (`Bytes::copy_from_slice`) to keep it long without its neighbours.
///
/// ```
/// use seq_storage::ScanBuffer;
///
/// let mut buffer = ScanBuffer::default();
/// let (key, value) = buffer.copy(b"k1", b"v1");
/// assert_eq!((&key[..], &value[..]), (&b"k1"[..], &b"v1"[..]));
/// ```
#[derive(Debug, Default)]
pub struct ScanBuffer {
    buf: BytesMut,
}

impl ScanBuffer {
    /// Copies a key and its value, returning both as slices of a shared
    /// buffer.
    pub fn copy(&mut self, key: &[u8], value: &[u8]) -> KeyValue {
        let len = key.len() + value.len();
        if len > SCAN_BUFFER_BYTES / 4 {
            return (Bytes::copy_from_slice(key), Bytes::copy_from_slice(value));
        }
        if self.buf.capacity() - self.buf.len() < len {
            self.buf = BytesMut::with_capacity(SCAN_BUFFER_BYTES);
        }
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        let mut key = self.buf.split().freeze();
        let value = key.split_off(key.len() - value.len());
        (key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_entries_share_one_buffer_and_large_ones_get_their_own() {
        let mut buffer = ScanBuffer::default();
        let (k1, v1) = buffer.copy(b"a", b"first");
        let (k2, v2) = buffer.copy(b"b", b"second");
        assert_eq!(
            (&k1[..], &v1[..], &k2[..], &v2[..]),
            (&b"a"[..], &b"first"[..], &b"b"[..], &b"second"[..])
        );
        // Consecutive in one allocation: each slice starts where the last ended.
        assert_eq!(v1.as_ptr(), k1.as_ptr().wrapping_add(k1.len()));
        assert_eq!(k2.as_ptr(), v1.as_ptr().wrapping_add(v1.len()));

        let big = vec![7u8; SCAN_BUFFER_BYTES];
        let (k3, v3) = buffer.copy(b"c", &big);
        assert_eq!((&k3[..], &v3[..]), (&b"c"[..], &big[..]));
        assert_ne!(v3.as_ptr(), k3.as_ptr().wrapping_add(k3.len()));
        // Small entries go on sharing after a large one.
        let (k4, _) = buffer.copy(b"d", b"");
        assert_eq!(k4.as_ptr(), v2.as_ptr().wrapping_add(v2.len()));
    }
}
