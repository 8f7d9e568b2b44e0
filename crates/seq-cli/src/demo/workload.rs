//! The demo's concurrent parts: producers taking order ids from a sequence
//! and appending to segments, and a space-merged follow consumer.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use seq_core::SpaceOffset;
use seq_stream::{ProduceOptions, Record, SpaceQuery, Store};

/// The space every order goes to.
pub(crate) const SPACE: &str = "orders";
/// The sequence order ids come from.
pub(crate) const ORDER_SEQUENCE: &str = "order-id";
/// Orders per produce call (one atomic batch).
pub(crate) const BATCH: u64 = 10;
/// Customers orders are spread over (each gets invoice keys).
pub(crate) const CUSTOMERS: u64 = 8;

/// The segment names for `n` segments.
pub(crate) fn segment_names(n: usize) -> Vec<String> {
    const REGIONS: [&str; 4] = ["eu", "us", "apac", "latam"];
    (0..n)
        .map(|i| match REGIONS.get(i) {
            Some(name) if n <= REGIONS.len() => (*name).to_owned(),
            _ => format!("region-{i}"),
        })
        .collect()
}

/// The sequence-key prefix of a customer's invoices.
pub(crate) fn invoice_prefix(customer: u64) -> String {
    format!("invoice/cust-{customer}")
}

/// What one producer did.
#[derive(Debug, Default)]
pub(crate) struct Produced {
    /// Every order id it took, in the order it took them.
    pub(crate) ids: Vec<i64>,
    /// Produce calls.
    pub(crate) calls: u64,
    /// Invoices per customer.
    pub(crate) invoices: BTreeMap<u64, u64>,
}

/// Producer `p`: `orders` orders in batches of [`BATCH`], round-robin over
/// `segments` (starting at its own), each batch's ids from one `next_n`, and
/// one invoice key per batch for the batch's customer.
pub(crate) async fn producer(
    store: Store,
    p: usize,
    orders: u64,
    segments: Vec<String>,
) -> Result<Produced> {
    let sequence = store.sequence(ORDER_SEQUENCE).await?;
    let mut done = Produced::default();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (p as u64 + 1);
    let mut batch_no = 0usize;
    let mut left = orders;
    while left > 0 {
        let n = left.min(BATCH);
        let ids = sequence.next_n(n).await.context("taking order ids")?;
        let customer = (p as u64 + batch_no as u64) % CUSTOMERS;
        let mut records = Vec::with_capacity(n as usize);
        for id in ids {
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let cents = 100 + (rng >> 33) % 100_000;
            let payload =
                format!(r#"{{"order":{id},"customer":"cust-{customer}","amount_cents":{cents}}}"#);
            records.push(
                Record::new(payload)
                    .with_metadata("producer", p.to_string())
                    .with_idempotency_key(format!("order-{id}")),
            );
            done.ids.push(id);
        }
        let segment = &segments[(p + batch_no) % segments.len()];
        store
            .produce(SPACE, segment, records, ProduceOptions::default())
            .await
            .with_context(|| format!("producer {p}: produce to {SPACE}/{segment}"))?;
        done.calls += 1;
        let invoice = format!(r#"{{"customer":"cust-{customer}","orders":{n}}}"#);
        store
            .put_sequenced(&invoice_prefix(customer), invoice, &[1])
            .await
            .with_context(|| format!("producer {p}: invoice key for customer {customer}"))?;
        *done.invoices.entry(customer).or_default() += 1;
        left -= n;
        batch_no += 1;
    }
    Ok(done)
}

/// What the follow consumer saw.
#[derive(Debug, Default)]
pub(crate) struct Followed {
    /// Order ids in the order the entries arrived.
    pub(crate) ids: Vec<i64>,
    /// When the last entry arrived.
    pub(crate) last_at: Option<Instant>,
}

/// Follows the whole space from its beginning until `expected` entries have
/// arrived, checking on the way that the merged order only moves forward,
/// that every segment is dense from 1, and that no entry comes twice.
pub(crate) async fn follower(store: Store, expected: u64, timeout: Duration) -> Result<Followed> {
    let query = SpaceQuery {
        follow: true,
        limit: Some(expected),
        ..SpaceQuery::default()
    };
    let mut stream = store.consume_space(SPACE, query)?;
    let mut seen = Followed::default();
    let mut last: Option<SpaceOffset> = None;
    let mut next_seq: BTreeMap<String, u64> = BTreeMap::new();
    let mut unique: HashSet<(String, u64)> = HashSet::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while (seen.ids.len() as u64) < expected {
        let entry = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(entry) => entry?,
            Err(_) => bail!(
                "the follow consumer saw {} of {expected} entries before timing out",
                seen.ids.len()
            ),
        };
        let Some(entry) = entry else {
            bail!(
                "the follow stream ended after {} of {expected} entries",
                seen.ids.len()
            );
        };
        let offset = entry.offset();
        ensure!(
            last.as_ref().is_none_or(|l| offset > *l),
            "the follow consumer went backwards: {} after {}",
            offset.to_hex(),
            last.as_ref().map(SpaceOffset::to_hex).unwrap_or_default()
        );
        let want = next_seq.entry(entry.segment.to_string()).or_insert(1);
        ensure!(
            entry.sequence == *want,
            "segment {} skipped or repeated: got sequence {}, expected {}",
            entry.segment,
            entry.sequence,
            want
        );
        *want += 1;
        ensure!(
            unique.insert((entry.segment.to_string(), entry.sequence)),
            "entry {}#{} arrived twice",
            entry.segment,
            entry.sequence
        );
        seen.ids.push(order_id(&entry.payload)?);
        seen.last_at = Some(Instant::now());
        last = Some(offset);
    }
    Ok(seen)
}

/// The order id in a demo payload.
pub(crate) fn order_id(payload: &[u8]) -> Result<i64> {
    let text = std::str::from_utf8(payload).context("payload is not UTF-8")?;
    let rest = text
        .strip_prefix(r#"{"order":"#)
        .context("payload has no order id")?;
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits
        .parse()
        .with_context(|| format!("bad order id in {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_the_order_id_back() {
        assert_eq!(
            order_id(br#"{"order":42,"customer":"cust-1"}"#).unwrap(),
            42
        );
        assert!(order_id(b"nope").is_err());
    }

    #[test]
    fn should_name_segments_after_regions_then_numbers() {
        assert_eq!(segment_names(2), ["eu", "us"]);
        assert_eq!(segment_names(5)[4], "region-4");
    }
}
