//! The parent's model of everything acknowledged, and the checks run on the
//! reopened store after each kill.
//!
//! Violations are counted in three groups:
//!
//! * **lost**: an acknowledged write is missing or differs (a sequence-key
//!   record, a gap-free caller record, a produce batch or one of its
//!   entries);
//! * **reissued**: a number was handed out twice or went backwards: two
//!   acknowledged ranges of one sequence overlap, a sequence would next hand
//!   out a value at or below one already acknowledged, the same for sequence
//!   keys, segment sequences and commit numbers, or a later run acknowledged
//!   a number below one acknowledged by an earlier run;
//! * **other**: a sequence skipped more than one block (plus what was in
//!   flight at the kill), a segment is not dense, a produce batch is visible
//!   in part, timestamps go backwards, or the child reported an unexpected
//!   error.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::{Context, Result};
use seq_stream::{SegmentQuery, SequenceDef, Store};

use crate::Backend;
use crate::proto::{self, SEGMENTS, SPACE};

/// One sequence's acknowledged history, in ticks.
#[derive(Debug, Default)]
struct SeqModel {
    /// Acknowledged ranges: first tick → count.
    ranges: BTreeMap<u64, u64>,
    /// Highest tick acknowledged by earlier runs (`None` before any).
    max_before: Option<u64>,
    /// Highest tick acknowledged so far.
    max_acked: Option<u64>,
    /// The next tick the store offered at the previous check.
    last_peek: u64,
    /// Ticks requested by operations in flight at the last kill.
    in_flight: u64,
}

/// One produce batch as acknowledged.
#[derive(Debug, Clone)]
struct Batch {
    segment: String,
    first: u64,
    last: u64,
    commit: u64,
}

/// Everything acknowledged over all runs on one store.
#[derive(Debug, Default)]
pub(crate) struct Model {
    sequences: BTreeMap<String, SeqModel>,
    /// Gap-free caller records: (sequence, value).
    inv_records: Vec<(String, i64)>,
    /// Sequence keys: key → (prefix, version, value).
    keys: BTreeMap<String, (String, u64, String)>,
    /// Per prefix: the highest key acknowledged by earlier runs.
    key_max_before: HashMap<String, String>,
    /// Per prefix: keys acknowledged in the current run.
    keys_this_run: HashMap<String, Vec<String>>,
    /// Produce batches by id.
    batches: BTreeMap<String, Batch>,
    /// Per segment: acknowledged ranges, first sequence → (last, batch).
    segment_ranges: HashMap<String, BTreeMap<u64, (u64, String)>>,
    /// Per segment: highest sequence acknowledged by earlier runs.
    segment_max_before: HashMap<String, u64>,
    /// Commit numbers acknowledged.
    commits: BTreeSet<u64>,
    /// Highest commit acknowledged by earlier runs.
    commit_max_before: u64,
    /// Cursors: name → highest sequence acknowledged.
    cursors: BTreeMap<String, u64>,
    /// Leases: key → tokens acknowledged.
    tokens: BTreeMap<String, BTreeSet<u64>>,
    /// Per lease key: highest token acknowledged by earlier runs.
    token_max_before: HashMap<String, u64>,
    /// Problems found while reading the child's lines.
    pending: Vec<Problem>,
    /// The run (iteration) whose lines were absorbed last.
    iteration: u64,
}

/// A violation found by the checks.
#[derive(Debug, Clone)]
pub(crate) enum Problem {
    Lost(String),
    Reissued(String),
    Other(String),
}

/// The outcome of one check.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) lost: u64,
    pub(crate) reissued: u64,
    pub(crate) other: u64,
    pub(crate) problems: Vec<String>,
}

impl Report {
    fn add(&mut self, problem: Problem) {
        match problem {
            Problem::Lost(p) => {
                self.lost += 1;
                self.problems.push(format!("LOST: {p}"));
            }
            Problem::Reissued(p) => {
                self.reissued += 1;
                self.problems.push(format!("REISSUED: {p}"));
            }
            Problem::Other(p) => {
                self.other += 1;
                self.problems.push(p);
            }
        }
    }
}

fn defs() -> HashMap<&'static str, SequenceDef> {
    proto::sequences()
        .into_iter()
        .filter_map(|(name, options, _)| options.validate().ok().map(|def| (name, def)))
        .collect()
}

/// The tick of `value` in `def` (`None` when it is not one of its values).
fn tick_of(def: &SequenceDef, value: i64) -> Option<u64> {
    let offset = i128::from(value) - i128::from(def.start);
    let step = i128::from(def.increment);
    if offset % step != 0 {
        return None;
    }
    u64::try_from(offset / step).ok()
}

impl Model {
    /// A one-line description of what the model holds.
    pub(crate) fn summary(&self) -> String {
        let values: u64 = self
            .sequences
            .values()
            .flat_map(|s| s.ranges.values())
            .sum();
        let tokens: usize = self.tokens.values().map(BTreeSet::len).sum();
        format!(
            "model: {values} sequence values, {} gap-free records, {} sequence keys, {} batches, {} commit numbers, {} cursors, {tokens} fencing tokens",
            self.inv_records.len(),
            self.keys.len(),
            self.batches.len(),
            self.commits.len(),
            self.cursors.len()
        )
    }

    /// Takes in one run's lines; returns how many acknowledgements it held.
    pub(crate) fn absorb(&mut self, iteration: u64, lines: &[String]) -> u64 {
        self.iteration = iteration;
        let defs = defs();
        let mut begun: HashMap<String, Vec<String>> = HashMap::new();
        let mut acks = 0;
        for s in self.sequences.values_mut() {
            s.in_flight = 0;
        }
        self.keys_this_run.clear();
        for line in lines {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                [proto_ready] if *proto_ready == proto::READY => {}
                ["B", task, rest @ ..] => {
                    begun.insert(
                        (*task).to_owned(),
                        rest.iter().map(|s| (*s).to_owned()).collect(),
                    );
                }
                ["E", task, op, error @ ..] => {
                    begun.remove(*task);
                    let error = error.join(" ");
                    // A caller-chosen commit number may lose a race with
                    // another task: the expected, typed refusal.
                    if !(*op == "key" && error.contains("invalid sequence number")) {
                        self.pending.push(Problem::Other(format!(
                            "the workload's {op} failed unexpectedly: {error}"
                        )));
                    }
                }
                ["A", task, rest @ ..] => {
                    begun.remove(*task);
                    acks += 1;
                    if let Err(problem) = self.ack(&defs, rest) {
                        self.pending.push(problem);
                    }
                }
                _ => self.pending.push(Problem::Other(format!(
                    "unreadable line from the child: {line:?}"
                ))),
            }
        }
        // What was in flight at the kill may or may not have happened.
        for op in begun.values() {
            if let [op, name, n] = op.as_slice()
                && op == "seq"
            {
                self.sequences.entry(name.clone()).or_default().in_flight +=
                    n.parse::<u64>().unwrap_or(0);
            }
            if let [op, name] = op.as_slice()
                && op == "inv"
            {
                self.sequences.entry(name.clone()).or_default().in_flight += 1;
            }
        }
        acks
    }

    fn ack(&mut self, defs: &HashMap<&str, SequenceDef>, fields: &[&str]) -> Result<(), Problem> {
        let bad = || Problem::Other(format!("malformed acknowledgement {fields:?}"));
        let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
        match fields {
            ["seq", name, first, n] => {
                let first: i64 = first.parse().map_err(|_| bad())?;
                let n = num(n)?;
                self.ack_ticks(defs, name, first, n)
            }
            ["inv", name, value] => {
                let value: i64 = value.parse().map_err(|_| bad())?;
                self.inv_records.push(((*name).to_owned(), value));
                self.ack_ticks(defs, name, value, 1)
            }
            ["key", prefix, key, version, value] => {
                let version = num(version)?;
                self.ack_commit(version, &format!("sequence key {key}"))?;
                if let Some(max) = self.key_max_before.get(*prefix)
                    && key <= &max.as_str()
                {
                    return Err(Problem::Reissued(format!(
                        "sequence key {key} acknowledged after {max} (an earlier run's)"
                    )));
                }
                let record = ((*prefix).to_owned(), version, (*value).to_owned());
                if self.keys.insert((*key).to_owned(), record).is_some() {
                    return Err(Problem::Reissued(format!(
                        "sequence key {key} acknowledged twice"
                    )));
                }
                self.keys_this_run
                    .entry((*prefix).to_owned())
                    .or_default()
                    .push((*key).to_owned());
                Ok(())
            }
            ["prod", segment, batch, first, last, commit] => {
                let (first, last, commit) = (num(first)?, num(last)?, num(commit)?);
                self.ack_commit(commit, &format!("produce {batch}"))?;
                let before = self.segment_max_before.get(*segment).copied().unwrap_or(0);
                if first <= before {
                    return Err(Problem::Reissued(format!(
                        "segment {segment} sequence {first} (batch {batch}) acknowledged after an earlier run acknowledged {before}"
                    )));
                }
                let ranges = self
                    .segment_ranges
                    .entry((*segment).to_owned())
                    .or_default();
                if let Some((&other_first, (other_last, other))) = ranges.range(..=last).next_back()
                    && *other_last >= first
                {
                    return Err(Problem::Reissued(format!(
                        "segment {segment} sequences {first}..={last} (batch {batch}) overlap batch {other} ({other_first}..={other_last})"
                    )));
                }
                ranges.insert(first, (last, (*batch).to_owned()));
                let value = Batch {
                    segment: (*segment).to_owned(),
                    first,
                    last,
                    commit,
                };
                self.batches.insert((*batch).to_owned(), value);
                Ok(())
            }
            ["flush", commit] => self.ack_commit(num(commit)?, "flush"),
            ["cur", name, sequence, commit] => {
                let sequence = num(sequence)?;
                self.ack_commit(num(commit)?, &format!("cursor {name}"))?;
                let stored = self.cursors.entry((*name).to_owned()).or_default();
                if sequence <= *stored {
                    return Err(Problem::Other(format!(
                        "cursor {name}: committed {sequence} after {stored} (the workload only moves it forward)"
                    )));
                }
                *stored = sequence;
                Ok(())
            }
            ["lease", key, token] => {
                let token = num(token)?;
                let before = self.token_max_before.get(*key).copied().unwrap_or(0);
                if token <= before {
                    return Err(Problem::Reissued(format!(
                        "lease {key}: fencing token {token} granted after an earlier run was granted {before}"
                    )));
                }
                if !self
                    .tokens
                    .entry((*key).to_owned())
                    .or_default()
                    .insert(token)
                {
                    return Err(Problem::Reissued(format!(
                        "lease {key}: fencing token {token} granted twice"
                    )));
                }
                Ok(())
            }
            _ => Err(bad()),
        }
    }

    fn ack_commit(&mut self, commit: u64, what: &str) -> Result<(), Problem> {
        if commit <= self.commit_max_before {
            return Err(Problem::Reissued(format!(
                "commit number {commit} ({what}) acknowledged after an earlier run acknowledged {}",
                self.commit_max_before
            )));
        }
        if !self.commits.insert(commit) {
            return Err(Problem::Reissued(format!(
                "commit number {commit} ({what}) acknowledged twice"
            )));
        }
        Ok(())
    }

    fn ack_ticks(
        &mut self,
        defs: &HashMap<&str, SequenceDef>,
        name: &str,
        first: i64,
        n: u64,
    ) -> Result<(), Problem> {
        let def = defs
            .get(name)
            .ok_or_else(|| Problem::Other(format!("unknown sequence {name}")))?;
        let tick = tick_of(def, first).ok_or_else(|| {
            Problem::Other(format!("{name}: {first} is not a value of the sequence"))
        })?;
        let seq = self.sequences.entry(name.to_owned()).or_default();
        if let Some(before) = seq.max_before
            && tick <= before
        {
            return Err(Problem::Reissued(format!(
                "{name}: value {first} (tick {tick}) acknowledged after an earlier run acknowledged tick {before}"
            )));
        }
        let last = tick + n - 1;
        let below = seq.ranges.range(..=last).next_back();
        if let Some((&start, &count)) = below
            && start + count > tick
        {
            return Err(Problem::Reissued(format!(
                "{name}: ticks {tick}..={last} overlap ticks {start}..{} acknowledged before",
                start + count
            )));
        }
        seq.ranges.insert(tick, n);
        seq.max_acked = Some(seq.max_acked.map_or(last, |m| m.max(last)));
        Ok(())
    }

    /// Ends a run: what it acknowledged becomes "earlier runs".
    fn end_run(&mut self) {
        for seq in self.sequences.values_mut() {
            seq.max_before = seq.max_acked;
        }
        for (prefix, keys) in &self.keys_this_run {
            if let Some(max) = keys.iter().max() {
                let entry = self.key_max_before.entry(prefix.clone()).or_default();
                if max > entry {
                    entry.clone_from(max);
                }
            }
        }
        for batch in self.batches.values() {
            let entry = self
                .segment_max_before
                .entry(batch.segment.clone())
                .or_default();
            *entry = (*entry).max(batch.last);
        }
        self.commit_max_before = self.commits.last().copied().unwrap_or(0);
        for (key, tokens) in &self.tokens {
            if let Some(&max) = tokens.last() {
                self.token_max_before.insert(key.clone(), max);
            }
        }
    }
}

/// Reopens the store in `dir` and checks it against `model`.
pub(crate) async fn verify(
    backend: Backend,
    dir: &Path,
    model: &mut Model,
    iteration: u64,
) -> Result<Report> {
    let mut report = Report::default();
    for problem in model.pending.drain(..) {
        report.add(problem);
    }
    let store = backend.open(dir).with_context(|| {
        format!("iteration {iteration}: reopening the store after the kill failed")
    })?;
    let mut problems = Vec::new();
    check_sequences(&store, model, &mut problems).await?;
    check_keys(&store, model, &mut problems).await?;
    check_segments(&store, model, &mut problems).await?;
    check_cursors_and_leases(&store, model, &mut problems).await?;
    check_commits(&store, model, &mut problems);
    for problem in problems {
        report.add(problem);
    }
    store.close().await.context("closing the checked store")?;
    drop(store);
    model.end_run();
    Ok(report)
}

async fn check_sequences(
    store: &Store,
    model: &mut Model,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    let defs = defs();
    for (name, _, _) in proto::sequences() {
        let Some(def) = defs.get(name) else { continue };
        let seq = store
            .sequence(name)
            .await
            .with_context(|| format!("opening sequence {name} after the kill"))?;
        let peek = seq.peek().with_context(|| format!("peeking {name}"))?;
        let Some(next) = tick_of(def, peek) else {
            problems.push(Problem::Other(format!(
                "{name}: peek {peek} is not a value of the sequence"
            )));
            continue;
        };
        let state = model.sequences.entry(name.to_owned()).or_default();
        if next < state.last_peek {
            problems.push(Problem::Reissued(format!(
                "{name}: went backwards: next tick {next} after {} at the previous reopen",
                state.last_peek
            )));
        }
        if let Some(max) = state.max_acked
            && next <= max
        {
            problems.push(Problem::Reissued(format!(
                "{name}: would hand out tick {next} (value {peek}) again; tick {max} was acknowledged"
            )));
        }
        // The gap bound: at most one block reserved but unissued, plus what
        // was being allocated when the child was killed.
        let base = state.max_acked.map_or(0, |m| m + 1).max(state.last_peek);
        let block = if def.block_size > 1 {
            def.block_size
        } else {
            0
        };
        let allowed = block + state.in_flight;
        let gap = next.saturating_sub(base);
        if gap > allowed {
            problems.push(Problem::Other(format!(
                "{name}: skipped {gap} ticks after a crash (next {next}, first unacknowledged {base}); \
                 allowed: block {block} + {} in flight",
                state.in_flight
            )));
        }
        state.last_peek = next;
    }
    let records: HashMap<Vec<u8>, bytes::Bytes> =
        store.scan_records(b"inv/").await?.into_iter().collect();
    for (name, value) in &model.inv_records {
        let key = proto::inv_key(name, *value);
        let stored = records.get(key.as_bytes());
        if stored.map(|b| &b[..]) != Some(value.to_string().as_bytes()) {
            problems.push(Problem::Lost(format!(
                "gap-free record {key} written with value {value}: found {stored:?}"
            )));
        }
    }
    Ok(())
}

async fn check_keys(store: &Store, model: &Model, problems: &mut Vec<Problem>) -> Result<()> {
    // One scan per prefix rather than a read per key: the model grows with
    // every run and is checked in full after every kill.
    let mut stored = HashMap::new();
    for (prefix, _) in proto::PREFIXES {
        for record in store.range_sequenced(prefix, usize::MAX).await? {
            stored.insert(record.key.clone(), record);
        }
    }
    for (key, (_, version, value)) in &model.keys {
        match stored.get(key) {
            Some(record) if record.version == *version && record.value == value.as_bytes() => {}
            other => problems.push(Problem::Lost(format!(
                "sequence key {key} (version {version}, value {value}): found {other:?}"
            ))),
        }
    }
    Ok(())
}

async fn check_segments(store: &Store, model: &Model, problems: &mut Vec<Problem>) -> Result<()> {
    for segment in SEGMENTS {
        let status = store.status(SPACE, segment).await?;
        let mut stream = store.consume_segment(SPACE, segment, SegmentQuery::default())?;
        let mut entries = Vec::new();
        while let Some(entry) = stream.next().await? {
            entries.push(entry);
        }
        // Dense, starting at the status's first sequence, ending at its last.
        let expected: Vec<u64> = (status.first_sequence..=status.last_sequence).collect();
        let got: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
        if got != expected || status.count != got.len() as u64 {
            problems.push(Problem::Other(format!(
                "segment {segment} is not dense: status {}..={} count {}, entries {} (first {:?}, last {:?})",
                status.first_sequence,
                status.last_sequence,
                status.count,
                got.len(),
                got.first(),
                got.last()
            )));
        }
        for pair in entries.windows(2) {
            if pair[1].timestamp < pair[0].timestamp {
                problems.push(Problem::Other(format!(
                    "segment {segment}: timestamp goes back from {} (seq {}) to {} (seq {})",
                    pair[0].timestamp, pair[0].sequence, pair[1].timestamp, pair[1].sequence
                )));
            }
        }
        // Whole batches only.
        let mut by_batch: BTreeMap<&str, Vec<&seq_stream::Entry>> = BTreeMap::new();
        for entry in &entries {
            match entry.metadata.get("batch") {
                Some(batch) => by_batch.entry(batch.as_str()).or_default().push(entry),
                None => problems.push(Problem::Other(format!(
                    "segment {segment} seq {} has no batch metadata",
                    entry.sequence
                ))),
            }
        }
        for (batch, members) in &by_batch {
            let n: u64 = members[0]
                .metadata
                .get("n")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let whole = members.len() as u64 == n
                && members.iter().enumerate().all(|(i, e)| {
                    e.metadata.get("i").and_then(|v| v.parse::<u64>().ok()) == Some(i as u64)
                        && e.sequence == members[0].sequence + i as u64
                        && e.payload == proto::payload(batch, i as u64).as_bytes()
                        && e.trx.number == members[0].trx.number
                });
            if !whole {
                problems.push(Problem::Other(format!(
                    "segment {segment}: batch {batch} is visible in part or out of order: {} of {n} entries at sequences {:?}",
                    members.len(),
                    members.iter().map(|e| e.sequence).collect::<Vec<_>>()
                )));
            }
        }
        // Every acknowledged batch, exactly where it was acknowledged.
        for (batch, acked) in model.batches.iter().filter(|(_, b)| b.segment == *segment) {
            let found = by_batch.get(batch.as_str());
            let ok = found.is_some_and(|members| {
                members.first().map(|e| e.sequence) == Some(acked.first)
                    && members.last().map(|e| e.sequence) == Some(acked.last)
                    && members.iter().all(|e| e.trx.number == acked.commit)
            });
            if !ok {
                problems.push(Problem::Lost(format!(
                    "segment {segment}: acknowledged batch {batch} ({}..={}, commit {}) found as {:?}",
                    acked.first,
                    acked.last,
                    acked.commit,
                    found.map(|m| m.iter().map(|e| (e.sequence, e.trx.number)).collect::<Vec<_>>())
                )));
            }
            if status.last_sequence < acked.last {
                problems.push(Problem::Reissued(format!(
                    "segment {segment}: last sequence {} is below acknowledged {} (batch {batch}): the next produce would reuse it",
                    status.last_sequence, acked.last
                )));
            }
        }
    }
    Ok(())
}

async fn check_cursors_and_leases(
    store: &Store,
    model: &Model,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    for (name, &acked) in &model.cursors {
        let stored = store
            .load_cursor(name)
            .await?
            .and_then(|c| c.position.segment(SPACE, SEGMENTS[0]));
        // A commit in flight at the kill may have moved it further.
        if stored.is_none_or(|s| s < acked) {
            problems.push(Problem::Lost(format!(
                "cursor {name}: committed {acked}, found {stored:?}"
            )));
        }
    }
    for (key, tokens) in &model.tokens {
        let Some(&max) = tokens.last() else { continue };
        let info = store.lease_info(key).await?;
        if info.is_none_or(|i| i.token < max) {
            problems.push(Problem::Reissued(format!(
                "lease {key}: token {max} was granted, the reopened store holds {:?}: the next grant would reuse it",
                info.map(|i| i.token)
            )));
        }
    }
    Ok(())
}

fn check_commits(store: &Store, model: &Model, problems: &mut Vec<Problem>) {
    let current = store.commit_seqnum();
    if let Some(&max) = model.commits.last()
        && current < max
    {
        problems.push(Problem::Reissued(format!(
            "the commit oracle reopened at {current}, below acknowledged commit {max}"
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn should_flag_overlapping_sequence_ranges_as_reissued() {
        let mut model = Model::default();
        model.absorb(
            1,
            &lines(&[
                "READY",
                "B 0 seq blk16 3",
                "A 0 seq blk16 1 3",
                "A 1 seq blk16 3 1",
            ]),
        );
        assert!(
            matches!(model.pending.as_slice(), [Problem::Reissued(_)]),
            "{:?}",
            model.pending
        );
    }

    #[test]
    fn should_flag_values_below_an_earlier_run_as_reissued() {
        let mut model = Model::default();
        model.absorb(1, &lines(&["A 0 seq down64 -5 2", "A 0 flush 7"]));
        model.end_run();
        // down64 counts down from -1: -5 is tick 4, -4 tick 3.
        model.absorb(2, &lines(&["A 0 seq down64 -4 1", "A 0 flush 7"]));
        assert_eq!(model.pending.len(), 2, "{:?}", model.pending);
        assert!(
            model
                .pending
                .iter()
                .all(|p| matches!(p, Problem::Reissued(_)))
        );
    }

    #[test]
    fn should_count_in_flight_allocations() {
        let mut model = Model::default();
        model.absorb(
            1,
            &lines(&[
                "B 0 seq blk16 7",
                "B 1 inv gapfree",
                "B 2 seq blk16 2",
                "A 2 seq blk16 1 2",
            ]),
        );
        assert!(model.pending.is_empty(), "{:?}", model.pending);
        assert_eq!(model.sequences["blk16"].in_flight, 7);
        assert_eq!(model.sequences["gapfree"].in_flight, 1);
    }

    #[test]
    fn should_accept_a_lost_seqnum_race_but_not_other_errors() {
        let mut model = Model::default();
        model.absorb(1, &lines(&[
            "E 0 key invalid sequence number: must be greater than the current max (provided=3, current=9)",
            "E 1 prod storage error: disk on fire",
        ]));
        assert!(
            matches!(model.pending.as_slice(), [Problem::Other(_)]),
            "{:?}",
            model.pending
        );
    }

    #[test]
    fn should_map_values_to_ticks() {
        let defs = defs();
        assert_eq!(tick_of(&defs["blk16"], 1), Some(0));
        assert_eq!(tick_of(&defs["down64"], -1), Some(0));
        assert_eq!(tick_of(&defs["down64"], -10), Some(9));
        assert_eq!(tick_of(&defs["blk16"], 0), None);
    }
}
