//! What the worker claims next, decided without I/O: the claim loop
//! ([`super::Dispatcher`]) gathers the facts (the clock, its free slots, the
//! payload budget, the endpoints it must skip), asks the [`Planner`], does what
//! it says, and tells it what happened. Every decision here is a table test.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Most deliveries claimed in one query.
pub const CLAIM_BATCH: usize = 64;
/// While deliveries are in flight, the worker claims again only once this many
/// slots are free, so that under load each claim takes a batch, not one.
pub const CLAIM_MIN: usize = 16;
/// Longest idle sleep: retries that fall due are found at least this often.
pub const IDLE_POLL: Duration = Duration::from_secs(1);
/// Poll interval while some endpoints are at their concurrency limit.
pub const BUSY_POLL: Duration = Duration::from_millis(50);
/// A claim made for news of new work looks only at deliveries that fell due
/// since the previous claim, less this margin for messages still committing
/// then. A claim that looks at all due deliveries runs at least every
/// `BUSY_POLL`; while some endpoints are skipped, at most every `IDLE_POLL`,
/// since it walks their whole backlog (a million rows is ~0.1 s), and the
/// claims in between look at what fell due since it.
pub const NEWS_MARGIN: chrono::Duration = chrono::Duration::milliseconds(250);

/// What the worker can take on now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// Worker slots free (of `HERALD_WORKER_CONCURRENCY`).
    pub free_slots: usize,
    /// Deliveries running or waiting in this worker.
    pub in_flight: usize,
    /// The least of a claim of `CLAIM_BATCH` and what the payload budget lets
    /// the next claim read ([`super::payloads::Payloads::claim_limit`]).
    pub budget_limit: usize,
    /// `CLAIM_MIN`, or the whole worker when it is smaller than that.
    pub claim_min: usize,
}

/// The planner's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Claim nothing; wait for a slot to free up (or the busy poll).
    WaitForSlots,
    /// Claim up to `limit` of every due delivery.
    Full { limit: usize },
    /// Claim up to `limit` of the deliveries that fell due after `since`.
    Recent { since: DateTime<Utc>, limit: usize },
}

/// The claim loop's memory between two claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planner {
    /// When the last claim that looked at every due delivery was made: claims
    /// in between look only at what fell due since, so a skipped endpoint's
    /// backlog is walked at most once per `IDLE_POLL`.
    last_full_claim: DateTime<Utc>,
    /// Set when the loop woke for news after a claim that came up short: the
    /// next claim need look only at what fell due since then.
    news_since: Option<DateTime<Utc>>,
}

impl Planner {
    pub fn new(now: DateTime<Utc>) -> Planner {
        Planner {
            last_full_claim: now,
            news_since: None,
        }
    }

    /// What to claim at `now`, with `capacity`, while `skipping` endpoints
    /// (busy in this worker, or paused by the breaker).
    pub fn plan(&mut self, now: DateTime<Utc>, capacity: Capacity, skipping: bool) -> Plan {
        let free = capacity.free_slots.min(CLAIM_BATCH);
        let waits_for_batch = capacity.in_flight > 0 && free < capacity.claim_min;
        if free == 0 || capacity.budget_limit == 0 || waits_for_batch {
            return Plan::WaitForSlots;
        }
        let limit = free.min(capacity.budget_limit);
        let full_every = if skipping { IDLE_POLL } else { BUSY_POLL };
        let since_full = (now - self.last_full_claim)
            .to_std()
            .unwrap_or(Duration::ZERO);
        let recent = if since_full >= full_every {
            self.news_since = None;
            None
        } else if !skipping {
            self.news_since.take()
        } else {
            // Skipping endpoints: never walk their backlog more than once per
            // IDLE_POLL.
            self.news_since
                .take()
                .or(Some(self.last_full_claim - NEWS_MARGIN))
        };
        match recent {
            Some(since) => Plan::Recent { since, limit },
            None => {
                self.last_full_claim = now;
                Plan::Full { limit }
            }
        }
    }

    /// The loop woke for news after a claim at `claimed_at` that took all it
    /// could see: the next claim looks only at what fell due since.
    pub fn news_after(&mut self, claimed_at: DateTime<Utc>) {
        self.news_since = Some(claimed_at - NEWS_MARGIN);
    }
}

/// How long the loop sleeps after a claim that took everything it could
/// (unless woken): until the next delivery falls due, at most `IDLE_POLL`; and
/// while it skips endpoints at least `BUSY_POLL`, since their deliveries may be
/// due now and must not make it spin (a finished delivery wakes it instead).
pub fn idle_wait(next_due: Option<DateTime<Utc>>, now: DateTime<Utc>, skipping: bool) -> Duration {
    let wait = next_due.map_or(IDLE_POLL, |due| {
        (due - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(IDLE_POLL)
    });
    if skipping {
        wait.max(BUSY_POLL)
    } else {
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::milliseconds(ms)
    }

    fn capacity(free_slots: usize, in_flight: usize, budget_limit: usize) -> Capacity {
        Capacity {
            free_slots,
            in_flight,
            budget_limit,
            claim_min: CLAIM_MIN,
        }
    }

    #[test]
    fn capacity_decides_whether_and_how_much_to_claim() {
        let roomy = 1_000;
        let table = [
            // (free slots, in flight, budget limit) -> plan at the first claim
            ((256, 0, roomy), Plan::Full { limit: CLAIM_BATCH }),
            ((10, 0, roomy), Plan::Full { limit: 10 }),
            ((0, 256, roomy), Plan::WaitForSlots),
            // Under load, wait until a batch's worth of slots is free.
            ((15, 241, roomy), Plan::WaitForSlots),
            ((16, 240, roomy), Plan::Full { limit: 16 }),
            // The payload budget caps the claim, or stops it.
            ((256, 0, 3), Plan::Full { limit: 3 }),
            ((256, 0, 0), Plan::WaitForSlots),
        ];
        for ((free, in_flight, budget), want) in table {
            // Long enough after the last full claim that a full one is due.
            let mut planner = Planner::new(at(0));
            let got = planner.plan(at(5_000), capacity(free, in_flight, budget), false);
            assert_eq!(
                got, want,
                "free {free}, in flight {in_flight}, budget {budget}"
            );
        }
        // A worker smaller than CLAIM_MIN claims what it has.
        let small = Capacity {
            claim_min: 2,
            ..capacity(2, 1, 1_000)
        };
        assert_eq!(
            Planner::new(at(0)).plan(at(5_000), small, false),
            Plan::Full { limit: 2 }
        );
    }

    #[test]
    fn full_claims_come_often_but_walk_a_skipped_backlog_at_most_once_a_second() {
        let room = capacity(256, 0, 1_000);
        let mut planner = Planner::new(at(0));
        // Nothing skipped: a full claim every BUSY_POLL; news in between makes
        // a recent one, and without news, nothing limits the full claim.
        assert_eq!(planner.plan(at(60), room, false), Plan::Full { limit: 64 });
        planner.news_after(at(60));
        assert_eq!(
            planner.plan(at(70), room, false),
            Plan::Recent {
                since: at(60) - NEWS_MARGIN,
                limit: 64
            }
        );
        assert_eq!(planner.plan(at(80), room, false), Plan::Full { limit: 64 });
        // Skipping endpoints: within IDLE_POLL of the last full claim, claims
        // look only at what fell due since it.
        assert_eq!(
            planner.plan(at(500), room, true),
            Plan::Recent {
                since: at(80) - NEWS_MARGIN,
                limit: 64
            }
        );
        planner.news_after(at(600));
        assert_eq!(
            planner.plan(at(700), room, true),
            Plan::Recent {
                since: at(600) - NEWS_MARGIN,
                limit: 64
            }
        );
        assert_eq!(
            planner.plan(at(1_080), room, true),
            Plan::Full { limit: 64 }
        );
        // A full claim forgets the news it covered.
        planner.news_after(at(1_090));
        assert_eq!(
            planner.plan(at(3_000), room, true),
            Plan::Full { limit: 64 }
        );
        assert_eq!(
            planner.plan(at(3_010), room, true),
            Plan::Recent {
                since: at(3_000) - NEWS_MARGIN,
                limit: 64
            }
        );
    }

    #[test]
    fn the_idle_wait_follows_the_next_due_delivery() {
        let now = at(10_000);
        let table = [
            (None, false, IDLE_POLL),
            (Some(at(10_300)), false, Duration::from_millis(300)),
            (Some(at(60_000)), false, IDLE_POLL),
            (Some(at(9_000)), false, Duration::ZERO),
            // Skipping endpoints whose deliveries are due: no spinning.
            (Some(at(9_000)), true, BUSY_POLL),
            (Some(at(10_020)), true, BUSY_POLL),
            (Some(at(10_300)), true, Duration::from_millis(300)),
            (None, true, IDLE_POLL),
        ];
        for (due, skipping, want) in table {
            assert_eq!(idle_wait(due, now, skipping), want, "{due:?} {skipping}");
        }
    }
}
