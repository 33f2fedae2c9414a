//! Per-endpoint limits that the worker and the Test button share in this
//! process: the endpoint's concurrency (`HERALD_ENDPOINT_CONCURRENCY`: one
//! semaphore per endpoint, whoever sends) and the rate of Test deliveries
//! (`HERALD_TEST_RATE_PER_MINUTE`), so that pressing Test in a loop, or 200
//! `send-example` calls at once, cannot turn Herald into an amplifier against
//! a receiver.
//!
//! Both are per process, like every delivery limit: with several API nodes an
//! endpoint may get that many times the Test rate.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use herald_core::schedule::retry_seconds;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Longest a Test waits for one of its endpoint's delivery slots before it is
/// refused: a person is waiting for the answer.
pub const TEST_SLOT_WAIT: Duration = Duration::from_secs(10);
/// Endpoints remembered (semaphores, Test rates) before the unused are swept.
const SWEEP_AT: usize = 4096;

pub struct EndpointLimits {
    concurrency: usize,
    /// Each endpoint's delivery slots while someone holds them.
    running: Mutex<HashMap<String, Weak<Semaphore>>>,
    tests: DefaultKeyedRateLimiter<String>,
    tests_per_minute: NonZeroU32,
}

/// Why a Test delivery is not made now.
#[derive(Debug, PartialEq, Eq)]
pub enum TestRefused {
    /// More Tests than the rate allows; the next is allowed after `retry_after`.
    TooFast {
        per_minute: u32,
        retry_after: Duration,
    },
    /// Every delivery slot of the endpoint stayed taken for [`TEST_SLOT_WAIT`].
    Busy { concurrency: usize },
}

impl std::fmt::Display for TestRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestRefused::TooFast {
                per_minute,
                retry_after,
            } => write!(
                f,
                "too many test deliveries to this endpoint: at most {per_minute} a minute \
                 (HERALD_TEST_RATE_PER_MINUTE); try again in {} s",
                retry_seconds(*retry_after)
            ),
            TestRefused::Busy { concurrency } => write!(
                f,
                "this endpoint already has {concurrency} deliveries in flight \
                 (HERALD_ENDPOINT_CONCURRENCY) and none finished within {} s; \
                 try again when they are done",
                TEST_SLOT_WAIT.as_secs()
            ),
        }
    }
}

impl TestRefused {
    /// When the caller may try again.
    pub fn retry_after(&self) -> Duration {
        match self {
            TestRefused::TooFast { retry_after, .. } => *retry_after,
            TestRefused::Busy { .. } => Duration::from_secs(1),
        }
    }
}

impl EndpointLimits {
    pub fn new(concurrency: usize, tests_per_minute: NonZeroU32) -> EndpointLimits {
        EndpointLimits {
            concurrency,
            running: Mutex::default(),
            tests: RateLimiter::keyed(Quota::per_minute(tests_per_minute)),
            tests_per_minute,
        }
    }

    /// The endpoint's delivery slots: the same semaphore for the worker's
    /// deliveries and for Tests, as long as anyone holds it.
    pub fn running(&self, endpoint_id: &str) -> Arc<Semaphore> {
        let mut running = self.running.lock().expect("endpoint slots lock");
        if let Some(live) = running.get(endpoint_id).and_then(Weak::upgrade) {
            return live;
        }
        if running.len() >= SWEEP_AT {
            running.retain(|_, s| s.strong_count() > 0);
        }
        let fresh = Arc::new(Semaphore::new(self.concurrency));
        running.insert(endpoint_id.to_string(), Arc::downgrade(&fresh));
        fresh
    }

    /// Admits one Test delivery to the endpoint: within its rate, and in one
    /// of its delivery slots (waiting up to [`TEST_SLOT_WAIT`]). Hold the
    /// permit until the attempt is made.
    pub async fn test_slot(&self, endpoint_id: &str) -> Result<OwnedSemaphorePermit, TestRefused> {
        self.test_slot_within(endpoint_id, TEST_SLOT_WAIT).await
    }

    async fn test_slot_within(
        &self,
        endpoint_id: &str,
        wait: Duration,
    ) -> Result<OwnedSemaphorePermit, TestRefused> {
        if self.tests.len() >= SWEEP_AT {
            self.tests.retain_recent();
        }
        if let Err(not_until) = self.tests.check_key(&endpoint_id.to_string()) {
            return Err(TestRefused::TooFast {
                per_minute: self.tests_per_minute.get(),
                retry_after: not_until.wait_time_from(self.tests.clock().now()),
            });
        }
        let slots = self.running(endpoint_id);
        match tokio::time::timeout(wait, slots.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(TestRefused::Busy {
                concurrency: self.concurrency,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tests_beyond_the_rate_are_refused_per_endpoint() {
        let limits = EndpointLimits::new(2, NonZeroU32::new(3).unwrap());
        for _ in 0..3 {
            drop(limits.test_slot("ep_a").await.unwrap());
        }
        match limits.test_slot("ep_a").await {
            Err(TestRefused::TooFast {
                per_minute: 3,
                retry_after,
            }) => assert!(retry_after > Duration::from_secs(15), "{retry_after:?}"),
            other => panic!("{other:?}"),
        }
        // Another endpoint has its own budget.
        drop(limits.test_slot("ep_b").await.unwrap());
    }

    #[tokio::test]
    async fn the_worker_and_tests_share_an_endpoints_slots() {
        let limits = EndpointLimits::new(2, NonZeroU32::new(100).unwrap());
        let worker = limits.running("ep_a");
        let _held = worker.clone().acquire_many_owned(2).await.unwrap();
        assert_eq!(limits.running("ep_a").available_permits(), 0);
        assert_eq!(
            limits
                .test_slot_within("ep_a", Duration::from_millis(50))
                .await
                .unwrap_err(),
            TestRefused::Busy { concurrency: 2 }
        );
    }
}
