//! Leases: `lease KEY --ttl ...` holds one and prints its fencing token;
//! `leases` lists every lease key.

use std::time::Duration;

use anyhow::{Result, bail};
use seq_stream::LeaseEnd;
use serde::Serialize;

use crate::context::Ctx;
use crate::output::{self, timestamp};

/// `seq lease KEY --ttl TTL [--hold-for D]`: takes the lease, prints its
/// fencing token, keeps it (renewed in the background) until Ctrl-C or
/// `hold_for`, then releases it. Losing the lease is an error.
pub(crate) async fn hold(
    ctx: &Ctx,
    key: &str,
    ttl: Duration,
    hold_for: Option<Duration>,
) -> Result<()> {
    let lease = ctx.store.acquire_lease(key, ttl).await?;
    #[derive(Serialize)]
    struct Held<'a> {
        key: &'a str,
        token: u64,
        holder: String,
        ttl_ms: u128,
    }
    let held = Held {
        key,
        token: lease.token(),
        holder: lease.holder().to_string(),
        ttl_ms: ttl.as_millis(),
    };
    ctx.out.item(&held, || {
        format!(
            "holding lease {key:?} with fencing token {} (ttl {ttl:?}, renewed every {:?}); Ctrl-C releases it",
            held.token,
            ttl / 3
        )
    })?;
    let signal = lease.signal();
    let until = async {
        match hold_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = until => {}
        end = signal.fired() => {
            if end == LeaseEnd::Lost {
                bail!("lost lease {key:?} (token {}): a renewal failed or its deadline passed", held.token);
            }
        }
    }
    lease.release().await?;
    if !ctx.out.is_json() {
        ctx.out.line(&format!("released lease {key:?}"))?;
    }
    Ok(())
}

/// `seq leases`.
pub(crate) async fn list(ctx: &Ctx) -> Result<()> {
    #[derive(Serialize)]
    struct Row {
        key: String,
        token: u64,
        holder: Option<String>,
        expires_at: u64,
    }
    let rows: Vec<Row> = ctx
        .store
        .list_leases()
        .await?
        .into_iter()
        .map(|(key, info)| Row {
            key,
            token: info.token,
            holder: info.holder.map(|h| h.to_string()),
            expires_at: info.expires_at,
        })
        .collect();
    ctx.out.emit(&rows, || {
        if rows.is_empty() {
            return "no leases".into();
        }
        output::table(
            &["key", "token", "holder", "expires"],
            rows.iter().map(|r| {
                [
                    r.key.clone(),
                    r.token.to_string(),
                    r.holder.clone().unwrap_or_else(|| "(released)".into()),
                    timestamp(r.expires_at),
                ]
            }),
        )
    })
}
