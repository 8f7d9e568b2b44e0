//! The [`Sequence`] handle: the caller-thread fast path, the shared refill,
//! and gap-free allocation through the writer.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use seq_core::{BlockAllocator, BlockRecord, SequenceDef};

use super::record::{self, SeqRecord};
use super::{SequenceInfo, not_found, user};
use crate::error::{Error, Result};
use crate::options::WriteOptions;
use crate::store::Store;
use crate::writer::GroupTx;

/// A caller's records for [`Sequence::next_with`]: `(user key, value)` pairs.
pub type UserRecords = Vec<(Vec<u8>, Bytes)>;

/// Locks `mutex`, recovering from poisoning: every critical section here
/// leaves the allocator consistent before anything can panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Top up once half the block is used. At most one block is ever reserved
/// ahead (invariant 5), so a top-up started with `r` ticks left adds
/// `block - r` ticks, and callers run dry unless the `r` ticks last the
/// write's latency `L`: sustained `next()` throughput is at most
/// `min(r, block - r) / L`, best at `r = block / 2` (`block / (2 L)`: about
/// 16M numbers/s for block 4096 at a 130 µs synced write). A quarter, as
/// before, halved that.
fn low_watermark(block_size: u64) -> u64 {
    block_size / 2
}

/// The unused end of a reservation, to give back on a clean close: ticks
/// `[next, end)` were never handed out, and `end` is where this store's
/// reservation ends.
pub(crate) struct GiveBack<'a> {
    pub(crate) name: &'a str,
    pub(crate) created: u64,
    pub(crate) next: u64,
    pub(crate) end: u64,
}

/// State shared by every handle of one sequence in one store.
#[derive(Debug)]
pub(crate) struct Shared {
    name: String,
    def: SequenceDef,
    created: u64,
    gap_free: bool,
    /// The store shares its storage with other writers: blocks go wherever
    /// the store-wide reservation ends, not necessarily right after ours.
    multi: bool,
    /// Ticks below this map to values; `None` when every `u64` tick does
    /// (cycling sequences, or bounds beyond the tick space).
    limit: Option<u64>,
    /// Top the reservation up when at most this many ticks remain.
    low_watermark: u64,
    state: Mutex<State>,
    /// Held by whoever moves the end of the reservation (a refill, a waiting
    /// caller's block write, an advance): one block write at a time, and
    /// waiting callers share it.
    refill: Arc<tokio::sync::Mutex<()>>,
    dropped: AtomicBool,
}

#[derive(Debug)]
struct State {
    /// Ticks in `[peek, reserved_end)` are durable and unissued.
    alloc: BlockAllocator,
    /// Multi-writer mode: a durable block that does not continue `alloc`
    /// (another writer reserved in between), used once `alloc` runs dry.
    /// `alloc`'s rest plus this never exceed one block.
    pending: Option<BlockRecord>,
    /// A background top-up is spawned or running.
    refilling: bool,
    /// The last background top-up failed: leave refills to waiting callers
    /// (who see the error) instead of retrying on every call.
    background_failed: bool,
    /// The store is shutting down: the unused reservation is being given
    /// back, so nothing more may be taken from it.
    closing: bool,
}

impl Shared {
    pub(crate) fn new(name: String, record: SeqRecord, multi: bool) -> Result<Self> {
        let def = record.def;
        let limit = if def.cycle {
            None
        } else {
            let bound = if def.increment > 0 { def.max } else { def.min };
            match def.tick_after_value(bound) {
                Ok(tick) => Some(tick),
                Err(seq_core::Error::Exhausted { .. }) => None,
                Err(other) => return Err(Error::from(other)),
            }
        };
        let alloc = BlockAllocator::resume(record.block, def.block_size)?;
        Ok(Self {
            name,
            def,
            created: record.created,
            gap_free: def.block_size == 1,
            multi,
            limit,
            low_watermark: low_watermark(def.block_size),
            state: Mutex::new(State {
                alloc,
                pending: None,
                refilling: false,
                closing: false,
                background_failed: false,
            }),
            refill: Arc::new(tokio::sync::Mutex::new(())),
            dropped: AtomicBool::new(false),
        })
    }

    /// Stops allocation for good and returns what to give back — or `None`
    /// when there is nothing (dropped, gap-free, or no unused reservation).
    pub(crate) fn close_for_give_back(&self) -> Option<GiveBack<'_>> {
        let mut state = lock(&self.state);
        state.closing = true;
        // With a pending block only that block can be given back: the rest
        // of `alloc` lies below it, possibly below another writer's block.
        let (next, end) = match state.pending {
            Some(pending) => (pending.base, pending.end()),
            None => (state.alloc.peek(), state.alloc.reserved_end()),
        };
        let live = !self.dropped.load(Ordering::Acquire) && !self.gap_free;
        (end > next && live).then_some(GiveBack {
            name: &self.name,
            created: self.created,
            next,
            end,
        })
    }

    pub(crate) fn mark_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
    }

    /// `Exhausted` unless ticks `[first, first + n)` all map to values.
    fn check_limit(&self, first: u64, n: u64) -> Result<()> {
        let end = first.checked_add(n);
        let fits = match (end, self.limit) {
            (None, _) => false,
            (Some(end), Some(limit)) => end <= limit,
            (Some(_), None) => true,
        };
        if fits {
            return Ok(());
        }
        let bound = if self.def.increment > 0 {
            self.def.max
        } else {
            self.def.min
        };
        Err(Error::Exhausted {
            what: format!(
                "sequence {:?} cannot hand out {n} more value(s): it reached its bound {bound}",
                self.name
            ),
        })
    }

    /// Whether a background top-up should start now.
    fn wants_refill(&self, state: &State) -> bool {
        !self.gap_free
            && !state.refilling
            && !state.background_failed
            && state.pending.is_none()
            && self
                .limit
                .is_none_or(|limit| state.alloc.reserved_end() < limit)
            && state.alloc.refill(self.low_watermark).is_some()
    }

    /// The error for an `advance_to(value)` that would go backwards.
    fn backwards(&self, value: i64, next_tick: u64) -> Error {
        let next = self
            .def
            .value_at(next_tick)
            .map_or_else(|_| "past its bound".to_owned(), |v| v.to_string());
        Error::invalid(format!(
            "advance_to({value}) would move sequence {:?} backwards: its next value is {next}",
            self.name
        ))
    }

    /// Mirrors a durable gap-free block into the in-memory allocator.
    fn observe_durable(&self, block: BlockRecord) -> Result<()> {
        let mut state = lock(&self.state);
        if block.end() > state.alloc.reserved_end() {
            state.alloc = BlockAllocator::resume(Some(block), self.def.block_size)?;
        }
        Ok(())
    }
}

/// A handle on a named sequence, from [`Store::create_sequence`] and
/// [`Store::sequence`]. Cheap to clone; all clones (and all handles of the same
/// name from the same store) share one reservation.
///
/// A handle keeps its store open.
#[derive(Clone)]
pub struct Sequence {
    store: Store,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequence")
            .field("name", &self.shared.name)
            .field("def", &self.shared.def)
            .finish_non_exhaustive()
    }
}

/// A contiguous range of ticks handed out by [`Sequence::next_n`], with the
/// values they map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceRange {
    first_tick: u64,
    count: u64,
    first: i64,
    last: i64,
    def: SequenceDef,
}

impl SequenceRange {
    fn new(first_tick: u64, count: u64, def: SequenceDef) -> Result<Self> {
        let first = def.value_at(first_tick)?;
        let last = def.value_at(first_tick + (count - 1))?;
        Ok(Self {
            first_tick,
            count,
            first,
            last,
            def,
        })
    }

    /// The first value.
    pub fn first(&self) -> i64 {
        self.first
    }

    /// The last value.
    pub fn last(&self) -> i64 {
        self.last
    }

    /// How many values the range holds (at least 1).
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Always false: a range holds at least one value.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The tick of the first value (`value = start + tick * increment`).
    pub fn first_tick(&self) -> u64 {
        self.first_tick
    }

    /// The definition the values follow.
    pub fn def(&self) -> &SequenceDef {
        &self.def
    }

    /// The values in allocation order (wrapping at the bound for cycling
    /// sequences).
    pub fn values(&self) -> SequenceValues {
        SequenceValues {
            next: self.first_tick,
            end: self.first_tick + self.count,
            def: self.def,
        }
    }
}

impl IntoIterator for SequenceRange {
    type Item = i64;
    type IntoIter = SequenceValues;

    fn into_iter(self) -> SequenceValues {
        self.values()
    }
}

/// Iterator over the values of a [`SequenceRange`].
#[derive(Debug, Clone)]
pub struct SequenceValues {
    next: u64,
    end: u64,
    def: SequenceDef,
}

impl Iterator for SequenceValues {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        if self.next >= self.end {
            return None;
        }
        let value = self.def.value_at(self.next).ok()?;
        self.next += 1;
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.end - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl Sequence {
    pub(crate) fn new(store: Store, shared: Arc<Shared>) -> Self {
        Self { store, shared }
    }

    /// The sequence's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The sequence's definition.
    pub fn def(&self) -> &SequenceDef {
        &self.shared.def
    }

    /// True for a gap-free sequence (`block_size == 1`).
    pub fn is_gap_free(&self) -> bool {
        self.shared.gap_free
    }

    /// The definition and the durable reservation as this store knows it.
    pub fn info(&self) -> SequenceInfo {
        let reserved_end = lock(&self.shared.state).alloc.reserved_end();
        SequenceInfo {
            name: self.shared.name.clone(),
            def: self.shared.def,
            reserved_end,
            created: self.shared.created,
        }
    }

    /// The next value.
    ///
    /// On a block sequence this normally returns at once from the durable
    /// reservation, on the caller's thread; it waits for a block write only
    /// when the reservation is empty. On a gap-free sequence it is one durable
    /// write through the writer.
    ///
    /// # Errors
    ///
    /// * [`Error::Exhausted`]: the sequence reached its bound (without
    ///   `cycle`); nothing is consumed.
    /// * [`Error::NotFound`]: the sequence was dropped.
    /// * [`Error::Closed`]: the store is closed.
    /// * [`Error::Storage`]: the block write failed; the reservation is
    ///   unchanged and no number of the unwritten block is handed out.
    pub async fn next(&self) -> Result<i64> {
        let first = self.take(1).await?;
        Ok(self.shared.def.value_at(first)?)
    }

    /// `n` contiguous values (`n` consecutive ticks; they may span blocks).
    /// A request larger than a block reserves exactly what it needs.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for `n == 0`; otherwise as
    /// [`Sequence::next`] (`Exhausted` when not all `n` values fit before the
    /// bound: nothing is consumed then).
    pub async fn next_n(&self, n: u64) -> Result<SequenceRange> {
        let first = self.take(n).await?;
        SequenceRange::new(first, n, self.shared.def)
    }

    /// The value [`Sequence::next`] would return now, without consuming it.
    /// (After a clean close and reopen this continues exactly; after a crash
    /// it is the first value after the last persisted block.)
    ///
    /// # Errors
    ///
    /// [`Error::Exhausted`] when no value is left; [`Error::NotFound`] /
    /// [`Error::Closed`] for a dropped sequence or a closed store.
    pub fn peek(&self) -> Result<i64> {
        self.check_live()?;
        let tick = lock(&self.shared.state).alloc.peek();
        self.shared.check_limit(tick, 1)?;
        Ok(self.shared.def.value_at(tick)?)
    }

    /// Moves the sequence forward so that the next value handed out is the
    /// first one beyond `value` (PostgreSQL `setval(value, true)`). Durable
    /// before it returns when it moves past the reservation.
    ///
    /// Positions are ticks: on a cycling sequence `value` is taken on the
    /// first lap, so once a sequence has wrapped, advancing to an earlier-lap
    /// position is backwards.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidArgument`]: `value` is outside `[min, max]`, or it
    ///   would move the sequence backwards (the next value already follows
    ///   it); nothing changes.
    /// * As [`Sequence::next`] for a dropped sequence, a closed store or a
    ///   failed write.
    pub async fn advance_to(&self, value: i64) -> Result<()> {
        let tick = self.shared.def.tick_after_value(value)?;
        if self.shared.gap_free {
            return self.advance_through_writer(value, tick).await;
        }
        if self.shared.multi {
            return self.advance_shared(value, tick).await;
        }
        let _guard = self.shared.refill.lock().await;
        self.check_live()?;
        let block = {
            let state = lock(&self.shared.state);
            let mut copy = state.alloc;
            copy.advance_to_tick(tick)
                .map_err(|_| self.shared.backwards(value, copy.peek()))?
        };
        if let Some(block) = block {
            self.write_block(block).await?;
        }
        let mut state = lock(&self.shared.state);
        let next = state.alloc.peek();
        state
            .alloc
            .advance_to_tick(tick)
            .map_err(|_| self.shared.backwards(value, next))?;
        Ok(())
    }

    /// **The invoice-numbering API.** Takes the next value of a gap-free
    /// sequence and commits it in one atomic, durable write together with the
    /// records `build(value)` returns. Either both the number and every record
    /// are durable, or neither is; a crash never leaves a gap.
    ///
    /// Records live in their own keyspace (user keys are arbitrary bytes,
    /// escaped so they cannot collide with internal keys); read them back with
    /// [`Store::get_record`] and [`Store::scan_records`]. A record replaces an
    /// earlier one with the same key.
    ///
    /// `build` runs on the store's writer thread while it assembles a commit
    /// group: keep it short and free of I/O. In multi-writer mode it may run
    /// more than once (the group is prepared again after losing a race to
    /// another writer, with the next free value); only the records of the
    /// run that commits are written.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidArgument`]: the sequence is not gap-free
    ///   (`block_size > 1`: its numbers come from a reservation written
    ///   ahead, so they cannot share the caller's batch), or `build`
    ///   panicked. Nothing is written.
    /// * As [`Sequence::next`] otherwise.
    pub async fn next_with<F>(&self, build: F) -> Result<i64>
    where
        F: FnMut(i64) -> UserRecords + Send + 'static,
    {
        if !self.shared.gap_free {
            return Err(Error::invalid(format!(
                "next_with needs a gap-free sequence (block_size 1); {:?} has block_size {}",
                self.shared.name, self.shared.def.block_size
            )));
        }
        let first = self.take_through_writer(1, Some(Box::new(build))).await?;
        Ok(self.shared.def.value_at(first)?)
    }

    fn check_live(&self) -> Result<()> {
        if self.shared.dropped.load(Ordering::Acquire) {
            return Err(not_found(&self.shared.name));
        }
        if self.store.is_closed() {
            return Err(Error::closed("store is closed"));
        }
        Ok(())
    }

    /// Takes `n` contiguous ticks; returns the first.
    async fn take(&self, n: u64) -> Result<u64> {
        if n == 0 {
            return Err(Error::invalid("cannot take 0 values from a sequence"));
        }
        if self.shared.gap_free {
            return self.take_through_writer(n, None).await;
        }
        match self.try_take(n)? {
            Some(first) => Ok(first),
            None => self.take_slow(n).await,
        }
    }

    /// The fast path: `n` ticks from the durable reservation, or `None` when
    /// it holds fewer. Starts a background top-up at the low watermark.
    fn try_take(&self, n: u64) -> Result<Option<u64>> {
        self.check_live()?;
        let shared = &*self.shared;
        let mut state = lock(&shared.state);
        if state.closing {
            return Err(Error::closed("store is closed"));
        }
        if state.alloc.remaining() < n
            && let Some(pending) = state.pending
            && pending.size >= n
        {
            // What is left of the current block is skipped (a gap).
            state.alloc =
                BlockAllocator::reserved(pending.base, pending.end(), shared.def.block_size)?;
            state.pending = None;
        }
        shared.check_limit(state.alloc.peek(), n)?;
        let Some(first) = state.alloc.take_reserved(n) else {
            return Ok(None);
        };
        let spawn = shared.wants_refill(&state);
        if spawn {
            state.refilling = true;
        }
        drop(state);
        if spawn {
            self.spawn_refill();
        }
        Ok(Some(first))
    }

    /// The reservation is short: write a block (or wait for the one being
    /// written) and take from it.
    async fn take_slow(&self, n: u64) -> Result<u64> {
        let _guard = self.shared.refill.lock().await;
        // Whoever held the lock before may have refilled already.
        if let Some(first) = self.try_take(n)? {
            return Ok(first);
        }
        let (before, first, need, block) = {
            let mut state = lock(&self.shared.state);
            self.shared.check_limit(state.alloc.peek(), n)?;
            let before = state.alloc;
            let remaining = before.remaining();
            // `try_take` failed under the refill lock, and only its holder
            // grows the reservation, so fewer than `n` remain.
            let need = n.saturating_sub(remaining).max(1);
            let block_size = before.block_size();
            // Shared storage may place the block anywhere past another
            // writer's: size it to hold all `n` on its own.
            let want = if self.shared.multi { n } else { need };
            let wanted = if n > block_size {
                want
            } else {
                want.max(block_size)
            };
            let room = u64::MAX - before.reserved_end();
            let block = BlockRecord::new(before.reserved_end(), wanted.min(room).max(need))?;
            // Claim the rest of the reservation so the range stays
            // contiguous; nobody can take from an empty reservation while
            // the block is written.
            if remaining > 0 {
                state.alloc.take_reserved(remaining);
            }
            (before, before.peek(), need, block)
        };
        let block = match self.write_block(block).await {
            Ok(written) => written,
            Err(error) => {
                // Unchanged since the claim: the reservation was empty and
                // only the refill-lock holder (us) moves its end.
                lock(&self.shared.state).alloc = before;
                return Err(error);
            }
        };
        let mut state = lock(&self.shared.state);
        let first = if block.base == state.alloc.reserved_end() {
            state.alloc.extend(block)?;
            let taken = state.alloc.take_reserved(need);
            debug_assert_eq!(taken, Some(block.base));
            first
        } else {
            // Another writer reserved in between: the claimed rest of our
            // reservation (and any pending block) is skipped, a gap.
            state.pending = None;
            state.alloc =
                BlockAllocator::reserved(block.base, block.end(), self.shared.def.block_size)?;
            let taken = state.alloc.take_reserved(n);
            taken.ok_or_else(|| Error::closed("internal: a fresh block is smaller than asked"))?
        };
        state.background_failed = false;
        let spawn = self.shared.wants_refill(&state);
        if spawn {
            state.refilling = true;
        }
        drop(state);
        if spawn {
            self.spawn_refill();
        }
        Ok(first)
    }

    fn spawn_refill(&self) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let this = self.clone();
                runtime.spawn(async move { this.background_refill().await });
            }
            // No runtime to run it on: a caller refills when it runs dry.
            Err(_) => lock(&self.shared.state).refilling = false,
        }
    }

    async fn background_refill(self) {
        let guard = self.shared.refill.lock().await;
        let outcome = self.top_up().await;
        {
            let mut state = lock(&self.shared.state);
            state.refilling = false;
            state.background_failed = outcome.is_err();
        }
        drop(guard);
        if let Err(error) = outcome {
            tracing::debug!(sequence = %self.shared.name, %error, "seq: background block reservation failed");
        }
    }

    /// Tops the reservation up to one block (called holding the refill lock).
    async fn top_up(&self) -> Result<()> {
        self.check_live()?;
        let plan = {
            let state = lock(&self.shared.state);
            let limited = self
                .shared
                .limit
                .is_some_and(|l| state.alloc.reserved_end() >= l);
            if limited {
                None
            } else {
                state.alloc.refill(self.shared.low_watermark)
            }
        };
        let Some(block) = plan else { return Ok(()) };
        let block = self.write_block(block).await?;
        let mut state = lock(&self.shared.state);
        if block.base == state.alloc.reserved_end() {
            state.alloc.extend(block)?;
        } else {
            state.pending = Some(block);
        }
        Ok(())
    }

    /// Makes `block` (continuing the stored reservation) durable and
    /// returns the block written.
    ///
    /// In multi-writer mode the stored reservation may have moved since this
    /// store last saw it: on (another writer took blocks), so the block of
    /// the same size goes where it now ends; or back (the writer of the
    /// latest block closed and gave its unused rest back), so the block
    /// starts where this store's reservation ends and the given-back ticks
    /// are skipped. Either way the block lies above everything this store
    /// has handed out, and that block is what is returned.
    async fn write_block(&self, block: BlockRecord) -> Result<BlockRecord> {
        let shared = self.shared.clone();
        let key = record::key(&shared.name);
        let (written, _) = self
            .store
            .execute(WriteOptions::durable(), move |tx| {
                let mut stored = load_current(tx, &key, &shared)?;
                let block = if shared.multi {
                    BlockRecord::new(stored.reserved_end().max(block.base), block.size)?
                } else if stored.reserved_end() == block.base {
                    block
                } else {
                    return Err(Error::Conflict {
                        what: format!(
                            "sequence {:?}: the stored reservation ends at tick {}, expected {}",
                            shared.name,
                            stored.reserved_end(),
                            block.base
                        ),
                    });
                };
                stored.block = Some(block);
                tx.put(key.clone(), stored.encode());
                Ok(block)
            })
            .await?;
        Ok(written)
    }

    /// `advance_to` in multi-writer mode: the store-wide reservation moves
    /// to at least `tick` (other writers' later blocks start there), and
    /// this store skips what it holds below `tick`.
    async fn advance_shared(&self, value: i64, tick: u64) -> Result<()> {
        let _guard = self.shared.refill.lock().await;
        self.check_live()?;
        let next = lock(&self.shared.state).alloc.peek();
        if tick < next {
            return Err(self.shared.backwards(value, next));
        }
        let shared = self.shared.clone();
        let key = record::key(&shared.name);
        self.store
            .execute(WriteOptions::durable(), move |tx| {
                let mut stored = load_current(tx, &key, &shared)?;
                let end = stored.reserved_end();
                if tick > end {
                    stored.block = Some(BlockRecord::new(end, tick - end)?);
                    tx.put(key.clone(), stored.encode());
                }
                Ok(())
            })
            .await?;
        let mut state = lock(&self.shared.state);
        let block_size = self.shared.def.block_size;
        if tick <= state.alloc.reserved_end() {
            state.alloc.advance_to_tick(tick)?;
        } else if let Some(pending) = state.pending.take_if(|p| p.end() > tick) {
            state.alloc =
                BlockAllocator::reserved(pending.base.max(tick), pending.end(), block_size)?;
        } else {
            // Nothing held at or past `tick`: the next take reserves a
            // block where the store-wide reservation ends.
            state.pending = None;
            state.alloc = BlockAllocator::reserved(tick, tick, block_size)?;
        }
        Ok(())
    }

    /// Gap-free allocation: the block record `{ end, n }` (and the caller's
    /// records) in one durable commit.
    async fn take_through_writer(
        &self,
        n: u64,
        build: Option<Box<dyn FnMut(i64) -> UserRecords + Send>>,
    ) -> Result<u64> {
        self.check_live()?;
        let shared = self.shared.clone();
        let key = record::key(&shared.name);
        let mut build = build;
        let (block, _) = self
            .store
            .execute(WriteOptions::durable(), move |tx| {
                let mut stored = load_current(tx, &key, &shared)?;
                let first = stored.reserved_end();
                shared.check_limit(first, n)?;
                let block = BlockRecord::new(first, n)?;
                if let Some(build) = build.as_mut() {
                    let value = shared.def.value_at(first)?;
                    let records = std::panic::catch_unwind(AssertUnwindSafe(|| build(value)))
                        .map_err(|_| Error::invalid("the record builder of next_with panicked"))?;
                    for (user_key, value) in records {
                        tx.put(user::key(&user_key), user::encode(&value));
                    }
                }
                stored.block = Some(block);
                tx.put(key.clone(), stored.encode());
                Ok(block)
            })
            .await?;
        self.shared.observe_durable(block)?;
        Ok(block.base)
    }

    async fn advance_through_writer(&self, value: i64, tick: u64) -> Result<()> {
        self.check_live()?;
        let shared = self.shared.clone();
        let key = record::key(&shared.name);
        let (block, _) = self
            .store
            .execute(WriteOptions::durable(), move |tx| {
                let mut stored = load_current(tx, &key, &shared)?;
                let end = stored.reserved_end();
                if tick < end {
                    return Err(shared.backwards(value, end));
                }
                if tick == end {
                    return Ok(None);
                }
                let block = BlockRecord::new(end, tick - end)?;
                stored.block = Some(block);
                tx.put(key.clone(), stored.encode());
                Ok(Some(block))
            })
            .await?;
        if let Some(block) = block {
            self.shared.observe_durable(block)?;
        }
        Ok(())
    }
}

/// The stored record of `shared`'s sequence, as the writer sees it now;
/// `NotFound` when it was dropped (or dropped and re-created).
fn load_current(tx: &GroupTx<'_>, key: &[u8], shared: &Shared) -> Result<SeqRecord> {
    let bytes = tx.get(key)?.ok_or_else(|| not_found(&shared.name))?;
    let stored = SeqRecord::decode(key, &bytes)?;
    if stored.created != shared.created {
        return Err(not_found(&shared.name));
    }
    Ok(stored)
}
