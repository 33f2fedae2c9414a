//! Data retention: expired message payloads are expunged and old attempts are
//! deleted, in short batches, by the worker every `HERALD_PRUNE_INTERVAL_SECONDS`
//! and by `herald prune` on demand. Both run [`prune_all`].
//!
//! Architecture invariant: a pending delivery's payload is never expunged. The
//! store skips any message with a delivery still to be attempted, whatever its
//! expiry, so an accepted message is always sent as it was accepted.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_store::{PruneReport, Store, Timestamp};
use tokio_util::sync::CancellationToken;

/// Rows one store call may touch: small enough that each statement holds its
/// locks (or SQLite's single writer) only briefly.
pub const BATCH: u32 = 1000;

/// Attempts are kept this many days unless configured otherwise.
pub const DEFAULT_ATTEMPT_RETENTION_DAYS: u32 = 90;

/// Prunes in batches until a round removes nothing: payloads that expired by
/// `now`, attempts created before `attempts_before`. Returns the totals.
pub async fn prune_all(
    store: &dyn Store,
    now: Timestamp,
    attempts_before: Timestamp,
) -> anyhow::Result<PruneReport> {
    let mut total = PruneReport::default();
    loop {
        let round = store
            .prune(now, attempts_before, BATCH)
            .await
            .context("pruning failed")?;
        if round.is_empty() {
            return Ok(total);
        }
        total += round;
    }
}

/// The cut-off for attempts kept `retention` back from `now`.
pub fn attempts_before(now: Timestamp, retention: Duration) -> Timestamp {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    now.checked_sub_signed(retention)
        .unwrap_or(chrono::DateTime::UNIX_EPOCH)
}

/// Prunes now and then every `every` until `shutdown`. Failures are logged and
/// retried at the next interval: retention must never stop delivery.
pub async fn run_periodically(
    store: Arc<dyn Store>,
    every: Duration,
    attempt_retention: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = chrono::Utc::now();
        let pruning = prune_all(store.as_ref(), now, attempts_before(now, attempt_retention));
        // Each batch is one statement that commits by itself, so stopping
        // between two loses nothing.
        let done = tokio::select! {
            _ = shutdown.cancelled() => return,
            done = pruning => done,
        };
        match done {
            Ok(report) if report.is_empty() => {}
            Ok(report) => tracing::info!(
                payloads = report.payloads,
                attempts = report.attempts,
                "pruned expired payloads and old attempts"
            ),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "pruning failed; retrying at the next interval"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn attempts_before_counts_back_from_now() {
        let now = chrono::Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
        let day = Duration::from_secs(86_400);
        let cases = [
            (
                day * 90,
                chrono::Utc.with_ymd_and_hms(2025, 3, 3, 12, 0, 0).unwrap(),
            ),
            (
                day,
                chrono::Utc.with_ymd_and_hms(2025, 5, 31, 12, 0, 0).unwrap(),
            ),
            (Duration::MAX, chrono::DateTime::UNIX_EPOCH),
        ];
        for (retention, want) in cases {
            assert_eq!(attempts_before(now, retention), want, "{retention:?}");
        }
    }
}
