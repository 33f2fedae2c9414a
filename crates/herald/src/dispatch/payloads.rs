//! The payloads the worker holds for the deliveries it has claimed: one copy
//! per message, shared by all its deliveries (a message to 20 endpoints is held
//! once, not 20 times, and sent from that copy without another), and all of
//! them within a byte budget (`HERALD_WORKER_PAYLOAD_BYTES`).
//!
//! A claim returns each delivery with its message's payload. The worker admits
//! each one here: a message already held shares the copy held (the one just
//! read is dropped); a new one takes its size from the budget, and when the
//! budget cannot cover it, the delivery is given back to the store, due now, to
//! be claimed when memory is free. Claims are sized so that the payloads they
//! read fit in what is left of the budget ([`Payloads::claim_limit`]), so
//! giving back is the exception. A payload larger than the whole budget is
//! admitted alone, so nothing is ever stuck.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A claim reads at most this share of the budget in payloads.
const CLAIM_SHARE: usize = 8;
/// Messages remembered before entries no delivery holds any more are swept.
const SWEEP_AT: usize = 1024;

pub struct Payloads {
    /// Bytes left in the budget, as permits.
    budget: Arc<Semaphore>,
    total: usize,
    held: Mutex<Held>,
    /// The largest payload of the last claim that returned any: the guess of
    /// what the next claim's payloads weigh.
    recent_largest: AtomicUsize,
}

#[derive(Default)]
struct Held {
    by_message: HashMap<String, Weak<Payload>>,
    sweep_at: usize,
}

/// One message's payload while any of its deliveries is claimed; its bytes go
/// back to the budget when the last one is done.
pub struct Payload {
    bytes: Bytes,
    _budget: OwnedSemaphorePermit,
}

impl Payload {
    /// The bytes, shared (no copy).
    pub fn bytes(&self) -> Bytes {
        self.bytes.clone()
    }
}

impl Payloads {
    pub fn new(budget_bytes: usize) -> Payloads {
        let total = budget_bytes.clamp(1, Semaphore::MAX_PERMITS);
        Payloads {
            budget: Arc::new(Semaphore::new(total)),
            total,
            held: Mutex::new(Held {
                by_message: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
            recent_largest: AtomicUsize::new(0),
        }
    }

    /// How many deliveries the next claim may take, of `free`, so that the
    /// payloads it reads fit in what is left of the budget, and in an eighth
    /// of it: a claim reads every delivery's payload, also the copies it then
    /// drops for messages already held, so large payloads are claimed a few at
    /// a time. At least one when nothing is held; 0: wait until some payloads
    /// are done.
    pub fn claim_limit(&self, free: usize) -> usize {
        let typical = self.recent_largest.load(Ordering::Relaxed);
        if typical == 0 {
            return free;
        }
        let left = self.budget.available_permits();
        let per_claim = (self.total / CLAIM_SHARE).max(typical);
        let fits = left.min(per_claim) / typical;
        let floor = usize::from(left == self.total);
        free.min(fits.max(floor))
    }

    /// Notes the largest payload a claim returned.
    pub fn note_claim(&self, largest: Option<usize>) {
        if let Some(largest) = largest {
            self.recent_largest.store(largest, Ordering::Relaxed);
        }
    }

    /// Admits the payload of a claimed delivery of `msg_id`: the copy already
    /// held for that message, or this one within the budget. `None` when the
    /// budget cannot take it now: give the delivery back.
    pub fn admit(&self, msg_id: &str, payload: String) -> Option<Arc<Payload>> {
        let mut held = self.held.lock().expect("payloads lock");
        if let Some(shared) = held.by_message.get(msg_id).and_then(Weak::upgrade) {
            return Some(shared);
        }
        // A payload larger than the whole budget takes all of it.
        let need = u32::try_from(payload.len().min(self.total)).unwrap_or(u32::MAX);
        let permit = self.budget.clone().try_acquire_many_owned(need).ok()?;
        let admitted = Arc::new(Payload {
            bytes: Bytes::from(payload.into_bytes()),
            _budget: permit,
        });
        if held.by_message.len() >= held.sweep_at {
            held.by_message.retain(|_, p| p.strong_count() > 0);
            held.sweep_at = (held.by_message.len() * 2).max(SWEEP_AT);
        }
        held.by_message
            .insert(msg_id.to_string(), Arc::downgrade(&admitted));
        Some(admitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_held_once_for_all_its_deliveries() {
        let payloads = Payloads::new(1000);
        let a = payloads.admit("msg_1", "x".repeat(400)).unwrap();
        let b = payloads.admit("msg_1", "x".repeat(400)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(payloads.budget.available_permits(), 600);
        // Sending shares the bytes, too.
        assert_eq!(a.bytes().as_ptr(), b.bytes().as_ptr());
        drop(a);
        assert_eq!(payloads.budget.available_permits(), 600);
        drop(b);
        assert_eq!(payloads.budget.available_permits(), 1000);
    }

    #[test]
    fn past_the_budget_deliveries_are_given_back() {
        let payloads = Payloads::new(1000);
        let a = payloads.admit("msg_1", "x".repeat(700)).unwrap();
        assert!(payloads.admit("msg_2", "x".repeat(400)).is_none());
        // Another delivery of a message already held costs nothing.
        assert!(payloads.admit("msg_1", "x".repeat(700)).is_some());
        drop(a);
        assert!(payloads.admit("msg_2", "x".repeat(400)).is_some());
    }

    #[test]
    fn a_payload_larger_than_the_budget_goes_alone() {
        let payloads = Payloads::new(1000);
        let big = payloads.admit("msg_1", "x".repeat(5000)).unwrap();
        assert_eq!(payloads.budget.available_permits(), 0);
        assert!(payloads.admit("msg_2", "{}".into()).is_none());
        drop(big);
        assert!(payloads.admit("msg_2", "{}".into()).is_some());
    }

    #[test]
    fn claims_are_sized_to_what_is_left() {
        let payloads = Payloads::new(80_000);
        // Nothing known yet: as many as are free.
        assert_eq!(payloads.claim_limit(64), 64);
        // An eighth of the budget per claim.
        payloads.note_claim(Some(1000));
        assert_eq!(payloads.claim_limit(64), 10);
        assert_eq!(payloads.claim_limit(4), 4);
        // Small payloads: the batch is the limit.
        payloads.note_claim(Some(100));
        assert_eq!(payloads.claim_limit(64), 64);
        // What is left of the budget.
        payloads.note_claim(Some(1000));
        let _held = payloads.admit("msg_1", "x".repeat(75_000)).unwrap();
        assert_eq!(payloads.claim_limit(64), 5);
        let _more = payloads.admit("msg_2", "x".repeat(4_500)).unwrap();
        assert_eq!(payloads.claim_limit(64), 0);
        // One payload larger than the whole budget still goes out alone.
        let payloads = Payloads::new(100);
        payloads.note_claim(Some(1000));
        assert_eq!(payloads.claim_limit(64), 1);
    }
}
