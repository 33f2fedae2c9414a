//! Pausing endpoints that keep failing. Every attempt at a dead endpoint costs
//! a connection, a write and a retry to schedule; at a thousand messages a
//! second that work crowds out the endpoints that answer. So after
//! [`FAILURES_TO_PAUSE`] failed attempts in a row the worker leaves the
//! endpoint's due deliveries in the queue, untried, for a pause that doubles
//! while the failures go on ([`FIRST_PAUSE`] up to [`LONGEST_PAUSE`]); one
//! success closes the breaker again. A pause delays deliveries, it never drops
//! them, and it is this worker's alone (each node judges for itself). When it
//! ends, the worker claims the endpoint's deliveries as before: the requests
//! then in flight (at most what it claims ahead) are its probes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts in a row that pause an endpoint.
pub const FAILURES_TO_PAUSE: u32 = 5;
pub const FIRST_PAUSE: Duration = Duration::from_secs(1);
pub const LONGEST_PAUSE: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Health {
    failures: u32,
    paused_until: Option<Instant>,
    pause: Duration,
}

#[derive(Default)]
pub struct Breaker {
    endpoints: Mutex<HashMap<String, Health>>,
}

impl Breaker {
    /// Records an attempt's outcome. The pause, when this failure paused the
    /// endpoint.
    pub fn outcome(&self, endpoint_id: &str, succeeded: bool) -> Option<Duration> {
        let mut endpoints = self.endpoints.lock().expect("breaker lock");
        if succeeded {
            endpoints.remove(endpoint_id);
            return None;
        }
        let health = endpoints.entry(endpoint_id.to_string()).or_default();
        health.failures += 1;
        let now = Instant::now();
        let pausing = health.failures >= FAILURES_TO_PAUSE
            && health.paused_until.is_none_or(|until| until <= now);
        if pausing {
            health.pause = if health.pause.is_zero() {
                FIRST_PAUSE
            } else {
                (health.pause * 2).min(LONGEST_PAUSE)
            };
            health.paused_until = Some(now + health.pause);
        }
        pausing.then_some(health.pause)
    }

    /// The endpoints paused now.
    pub fn paused_endpoints(&self) -> Vec<String> {
        let now = Instant::now();
        let endpoints = self.endpoints.lock().expect("breaker lock");
        endpoints
            .iter()
            .filter(|(_, h)| h.paused_until.is_some_and(|until| until > now))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_pause_and_a_success_resumes() {
        let b = Breaker::default();
        for _ in 1..FAILURES_TO_PAUSE {
            assert_eq!(b.outcome("ep", false), None);
        }
        assert!(b.paused_endpoints().is_empty());
        assert_eq!(
            b.outcome("ep", false),
            Some(FIRST_PAUSE),
            "the fifth failure in a row pauses"
        );
        assert_eq!(b.paused_endpoints(), vec!["ep".to_string()]);
        // Failures of requests already in flight do not extend the pause.
        assert_eq!(b.outcome("ep", false), None);
        b.outcome("ep", true);
        assert!(b.paused_endpoints().is_empty());
    }

    #[test]
    fn a_failure_after_a_pause_doubles_it_up_to_the_longest() {
        let b = Breaker::default();
        for _ in 0..FAILURES_TO_PAUSE {
            b.outcome("ep", false);
        }
        // End the pause as if it had run out, then fail again.
        let mut pauses = vec![];
        for _ in 0..10 {
            {
                let mut e = b.endpoints.lock().unwrap();
                let h = e.get_mut("ep").unwrap();
                pauses.push(h.pause);
                h.paused_until = Some(Instant::now());
            }
            assert!(b.outcome("ep", false).is_some());
        }
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert_eq!(pauses[1], FIRST_PAUSE * 2);
        assert_eq!(*pauses.last().unwrap(), LONGEST_PAUSE);
    }
}
