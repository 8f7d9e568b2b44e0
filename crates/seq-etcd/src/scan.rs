//! Paged, snapshot-consistent scans.
//!
//! etcd 3.4 answers a range read by first walking its in-memory index over
//! the *whole* range, whatever the limit, and a descending read by reading
//! and sorting every key of the range. Paging naively through a large range
//! would therefore cost time proportional to the rest of the range for every
//! page, and "the newest entry of a long segment" (a reverse scan with limit
//! 1) would grow with the segment.
//!
//! So a scan reads its range a *window* at a time: a stretch of the key
//! space holding at most [`WINDOW_PAGES`] pages of keys, read in pages of
//! [`EtcdOptions::scan_page_len`](crate::EtcdOptions::scan_page_len). Windows
//! are found with count-only reads, which etcd answers from its index without
//! reading values: the next window is guessed as wide (in key space) as the
//! last one, and bisected when the guess holds too many keys. A forward scan
//! starts with a plain first page (small ranges cost one round trip); a
//! reverse scan starts with a count (two). When keys are so clustered that
//! bisection makes no progress, the scan reads the rest of its range plainly:
//! slower on etcd 3.4, never wrong.

use std::collections::VecDeque;

use bytes::Bytes;
use etcd_client::{GetOptions, SortOrder, SortTarget};
use seq_storage::{Direction, KeyValue, Result};

use crate::EtcdStorage;

/// How many pages a window holds at most (etcd reads a whole window for
/// each descending page of it): 2048 keys at the default page length.
const WINDOW_PAGES: usize = 4;

/// Count probes a window search may make before it reads the rest plainly.
const MAX_PROBES: usize = 40;

/// A scan in progress: `[lo, hi)` in etcd's keyspace is what is left to read,
/// every read is at `revision` (the first read's), and `buffer` holds the
/// entries read but not yet returned.
pub(crate) struct Scan<'a> {
    store: &'a EtcdStorage,
    lo: Vec<u8>,
    hi: Vec<u8>,
    direction: Direction,
    /// Entries still wanted beyond those buffered, when limited.
    wanted: Option<usize>,
    /// The snapshot revision; 0 until the first read answers.
    revision: i64,
    buffer: VecDeque<KeyValue>,
    /// Whether etcd may hold more entries than those read so far.
    more: bool,
    page_len: usize,
    /// The most keys a window holds.
    window_max: usize,
    /// The far end of the window being read: `[lo, window)` forward,
    /// `[window, hi)` in reverse.
    window: Option<Vec<u8>>,
    /// The width of the last window, as a base-256 fraction (see
    /// [`frac_sub`]).
    width: Option<Vec<u8>>,
    /// Whether a read was made.
    started: bool,
}

impl<'a> Scan<'a> {
    /// Starts a scan of `[lo, hi)` and makes its first read, which fixes
    /// the snapshot.
    pub(crate) fn start(
        store: &'a EtcdStorage,
        lo: Vec<u8>,
        hi: Vec<u8>,
        direction: Direction,
        limit: Option<usize>,
    ) -> Result<Self> {
        let empty = lo >= hi || limit == Some(0);
        let page_len = store.options.scan_page_len.max(1);
        let mut scan = Self {
            store,
            lo,
            hi,
            direction,
            wanted: limit,
            revision: 0,
            buffer: VecDeque::new(),
            more: !empty,
            page_len,
            window_max: page_len.saturating_mul(WINDOW_PAGES),
            window: None,
            width: None,
            started: false,
        };
        if !empty {
            scan.fetch()?;
        }
        Ok(scan)
    }

    /// Reads the next page into the buffer.
    fn fetch(&mut self) -> Result<()> {
        let len = match self.wanted {
            Some(wanted) => wanted.min(self.page_len),
            None => self.page_len,
        };
        let count = match self.direction {
            Direction::Forward => self.fetch_forward(len)?,
            Direction::Reverse => self.fetch_reverse(len)?,
        };
        if let Some(wanted) = &mut self.wanted {
            *wanted = wanted.saturating_sub(count);
            if *wanted == 0 {
                self.more = false;
            }
        }
        Ok(())
    }

    fn fetch_forward(&mut self, len: usize) -> Result<usize> {
        let first = !self.started;
        let end = if first {
            self.hi.clone()
        } else {
            match self.window()? {
                Some(end) => end,
                None => return Ok(0),
            }
        };
        let options = GetOptions::new().with_range(end.clone());
        let page = self.read(self.lo.clone(), options, len)?;
        let count = self.take(page.kvs)?;
        if page.more {
            let next = match self.buffer.back() {
                Some((key, _)) => self.store.namespace.key_successor(key),
                None => end,
            };
            if first {
                self.width = frac_sub(&next, &self.lo);
            }
            self.lo = next;
        } else {
            self.more = end < self.hi;
            self.lo = end;
            self.window = None;
        }
        Ok(count)
    }

    fn fetch_reverse(&mut self, len: usize) -> Result<usize> {
        let Some(start) = self.window()? else {
            return Ok(0);
        };
        let options = GetOptions::new()
            .with_range(self.hi.clone())
            .with_sort(SortTarget::Key, SortOrder::Descend);
        let page = self.read(start.clone(), options, len)?;
        let count = self.take(page.kvs)?;
        match self.buffer.back() {
            Some((key, _)) if page.more => self.hi = self.store.namespace.key(key),
            _ => {
                self.more = start > self.lo;
                self.hi = start;
                self.window = None;
            }
        }
        Ok(count)
    }

    /// The far end of the window being read, finding the next window when
    /// there is none; `None` (and no more to read) when the range is empty.
    fn window(&mut self) -> Result<Option<Vec<u8>>> {
        if let Some(window) = &self.window {
            return Ok(Some(window.clone()));
        }
        let window = self.next_window()?;
        if window.is_none() {
            self.more = false;
        }
        self.window.clone_from(&window);
        Ok(window)
    }

    /// The far end of a window holding 1 to `window_max` keys, or of the
    /// rest of the range when that is small or bisection makes no progress;
    /// `None` when the rest is empty.
    fn next_window(&mut self) -> Result<Option<Vec<u8>>> {
        let forward = self.direction == Direction::Forward;
        let (near, far) = if forward {
            (self.lo.clone(), self.hi.clone())
        } else {
            (self.hi.clone(), self.lo.clone())
        };
        let inside = |key: &[u8]| {
            if forward {
                near.as_slice() < key && key < far.as_slice()
            } else {
                far.as_slice() < key && key < near.as_slice()
            }
        };
        // Invariants: the window to `inner` holds at most `window_max` keys,
        // the window to `outer` more.
        let max = self.window_max;
        let mut inner = near.clone();
        let mut outer = None;
        let guess = self.width.as_ref().and_then(|width| {
            if forward {
                frac_add(&near, width)
            } else {
                frac_sub(&near, width)
            }
        });
        if let Some(guess) = guess.filter(|g| inside(g)) {
            let count = self.count_window(&guess)?;
            if (1..=max).contains(&count) {
                if count < max / 4 {
                    // Sparse: look twice as far next time.
                    self.width = self.width.as_ref().and_then(|w| frac_add(w, w));
                }
                return Ok(Some(guess));
            }
            if count > max {
                outer = Some(guess);
            } else {
                inner = guess;
            }
        }
        let mut outer = match outer {
            Some(outer) => outer,
            None => match self.count_window(&far)? {
                0 => return Ok(None),
                count if count <= max => return Ok(Some(far)),
                _ => far.clone(),
            },
        };
        for _ in 0..MAX_PROBES {
            let probe = if forward {
                midpoint(&inner, &outer)
            } else {
                midpoint(&outer, &inner)
            };
            let Some(probe) = probe else {
                break;
            };
            let count = self.count_window(&probe)?;
            if count > max {
                outer = probe;
            } else {
                inner = probe;
                if count > 0 {
                    self.width = if forward {
                        frac_sub(&inner, &near)
                    } else {
                        frac_sub(&near, &inner)
                    };
                    return Ok(Some(inner));
                }
            }
        }
        Ok(Some(far))
    }

    /// Keys in the window whose far end is `end`: `[lo, end)` forward,
    /// `[end, hi)` in reverse.
    fn count_window(&mut self, end: &[u8]) -> Result<usize> {
        let (from, to) = match self.direction {
            Direction::Forward => (self.lo.clone(), end.to_vec()),
            Direction::Reverse => (end.to_vec(), self.hi.clone()),
        };
        let options = GetOptions::new().with_range(to).with_count_only();
        let page = self.read(from, options, 1)?;
        Ok(usize::try_from(page.count).unwrap_or(0))
    }

    /// One range read at the scan's revision (which the first read fixes).
    fn read(&mut self, from: Vec<u8>, options: GetOptions, len: usize) -> Result<Page> {
        let options = options.with_revision(self.revision);
        let page = self.store.range(from, options, len, self.revision)?;
        self.started = true;
        if self.revision == 0 {
            self.revision = page.revision;
        }
        if page.page_len < len {
            self.page_len = page.page_len;
        }
        Ok(page)
    }

    /// Buffers a page's entries; returns how many.
    fn take(&mut self, kvs: Vec<(Vec<u8>, Vec<u8>)>) -> Result<usize> {
        let count = kvs.len();
        for (key, value) in kvs {
            let key = self.store.namespace.strip(key)?;
            self.buffer.push_back((key, Bytes::from(value)));
        }
        Ok(count)
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<KeyValue>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.buffer.pop_front() {
                return Some(Ok(entry));
            }
            if !self.more {
                return None;
            }
            if let Err(err) = self.fetch() {
                self.more = false;
                return Some(Err(err));
            }
        }
    }
}

/// One answer of a range read.
pub(crate) struct Page {
    pub(crate) kvs: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) more: bool,
    /// Keys in the range (for a count-only read).
    pub(crate) count: i64,
    /// The revision the page was read at.
    pub(crate) revision: i64,
    /// The page length that worked (smaller than asked when the answer was
    /// too large to decode).
    pub(crate) page_len: usize,
}

// Keys as base-256 fractions: `k` is `0.k[0] k[1] …`, so byte order is
// numeric order (keys that differ only by trailing zero bytes are equal
// fractions, and adjacent keys).

/// `a` and `b` padded with zero bytes to one length, plus one more byte for
/// the precision of a halving.
fn aligned(a: &[u8], b: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let len = a.len().max(b.len()) + 1;
    let pad = |x: &[u8]| {
        let mut v = x.to_vec();
        v.resize(len, 0);
        v
    };
    (pad(a), pad(b))
}

/// A key strictly between `a` and `b` (near the middle of them as
/// fractions), or `None` when there is none worth probing.
fn midpoint(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let (x, y) = aligned(a, b);
    // (x + y) / 2, byte by byte from the most significant, carrying halves.
    let mut sum = vec![0u16; x.len()];
    let mut carry = 0u16;
    for i in (0..x.len()).rev() {
        let s = u16::from(x[i]) + u16::from(y[i]) + carry;
        sum[i] = s & 0xFF;
        carry = s >> 8;
    }
    let mut mid = Vec::with_capacity(x.len());
    let mut rem = carry;
    for s in sum {
        let v = (rem << 8) | s;
        mid.push(u8::try_from(v >> 1).unwrap_or(u8::MAX));
        rem = v & 1;
    }
    trim(&mut mid);
    (a < mid.as_slice() && mid.as_slice() < b).then_some(mid)
}

/// `a - b` as fractions, trimmed, or `None` when `b > a`.
fn frac_sub(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let (x, y) = aligned(a, b);
    let mut out = vec![0u8; x.len()];
    let mut borrow = 0i16;
    for i in (0..x.len()).rev() {
        let mut d = i16::from(x[i]) - i16::from(y[i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = u8::try_from(d).unwrap_or(0);
    }
    if borrow != 0 {
        return None;
    }
    trim(&mut out);
    Some(out)
}

/// `a + b` as fractions, trimmed, or `None` when the sum reaches 1 (no key
/// is that large).
fn frac_add(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let (x, y) = aligned(a, b);
    let mut out = vec![0u8; x.len()];
    let mut carry = 0u16;
    for i in (0..x.len()).rev() {
        let s = u16::from(x[i]) + u16::from(y[i]) + carry;
        out[i] = u8::try_from(s & 0xFF).unwrap_or(0);
        carry = s >> 8;
    }
    if carry != 0 {
        return None;
    }
    trim(&mut out);
    Some(out)
}

fn trim(v: &mut Vec<u8>) {
    while v.last() == Some(&0) {
        v.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midpoint_lies_strictly_between() {
        let pairs: [(&[u8], &[u8]); 5] = [
            (b"a", b"c"),
            (b"a", b"b"),
            (b"n/\x00\x00", b"n0"),
            (b"\xff\xfe", b"\xff\xff"),
            (b"x", b"x\x00\x01"),
        ];
        for (a, b) in pairs {
            let m = midpoint(a, b).expect("a key between");
            assert!(a < m.as_slice() && m.as_slice() < b, "{a:?} {m:?} {b:?}");
        }
        assert_eq!(midpoint(b"x", b"x\x00"), None, "adjacent keys");
        assert_eq!(midpoint(b"b", b"a"), None);
        assert_eq!(midpoint(b"a", b"c"), Some(b"b".to_vec()));
    }

    #[test]
    fn fraction_subtraction_undoes_addition_of_widths() {
        assert_eq!(frac_sub(b"c", b"a"), Some(vec![2]));
        assert_eq!(frac_sub(b"b\x00", b"a\x80"), Some(vec![0, 0x80]));
        assert_eq!(frac_sub(b"a", b"b"), None);
        let width = frac_sub(b"k\x10", b"k\x08").expect("positive");
        assert_eq!(frac_sub(b"k\x08", &width), Some(b"k".to_vec()));
        assert_eq!(frac_add(b"k", &width), Some(b"k\x08".to_vec()));
        assert_eq!(frac_add(b"\xff", b"\x01"), None);
    }
}
