//! Leases of running attempts, kept only in the writer's memory, and the
//! fencing tokens that name them.
//!
//! Every start gets a token that no other start ever gets: the store's epoch
//! (one more at every start of the host, durably) in the high 32 bits and a
//! counter of this boot's starts in the low ones. A start handed back unrun
//! does not give its token to the next one, and neither does a start lost in
//! a crash before its group was synced (the next boot has a higher epoch),
//! so a late report or renewal under an old token is always refused. Tokens
//! stay below 2^53, so JSON clients read them exactly, for 2^21 starts of
//! the host.

use std::time::Duration;

use rustc_hash::FxHashMap as HashMap;
use tokio::time::Instant;

use crate::model::TaskKey;

/// A running attempt's lease.
#[derive(Clone, Copy, Debug)]
pub struct Lease {
    /// The start's fencing token.
    pub token: u64,
    pub expires: Instant,
}

/// The leases of running attempts and the next token.
pub struct Leases {
    ttl: Duration,
    next: u64,
    running: HashMap<TaskKey, Lease>,
}

impl Leases {
    /// Leases of `ttl`, with tokens of `epoch`.
    pub fn new(ttl: Duration, epoch: u32) -> Self {
        Leases { ttl, next: (u64::from(epoch) << 32) + 1, running: HashMap::default() }
    }

    /// A token for a new start.
    pub fn token(&mut self) -> u64 {
        let token = self.next;
        self.next += 1;
        token
    }

    /// Starts the lease of `key`'s start `token`.
    pub fn grant(&mut self, key: TaskKey, token: u64) {
        self.running.insert(key, Lease { token, expires: Instant::now() + self.ttl });
    }

    /// Renews the lease of `key` if `token` is its current start; answers
    /// the lease's length.
    pub fn renew(&mut self, key: TaskKey, token: u64) -> Option<Duration> {
        let lease = self.running.get_mut(&key).filter(|l| l.token == token)?;
        lease.expires = Instant::now() + self.ttl;
        Some(self.ttl)
    }

    /// Ends the lease of `key` (reported, or handed back); with a token,
    /// only if it is that start's. Answers whether one ended.
    pub fn end(&mut self, key: TaskKey, token: Option<u64>) -> bool {
        if self.running.get(&key).is_some_and(|l| token.is_none_or(|t| t == l.token)) {
            self.running.remove(&key);
            return true;
        }
        false
    }

    /// When the next lease expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.running.values().map(|l| l.expires).min()
    }

    /// Whether a lease has expired by `now`.
    pub fn any_expired(&self, now: Instant) -> bool {
        self.running.values().any(|l| l.expires <= now)
    }

    /// Removes and answers the leases expired by `now`.
    pub fn take_expired(&mut self, now: Instant) -> Vec<(TaskKey, Lease)> {
        let expired: Vec<(TaskKey, Lease)> =
            self.running.iter().filter(|(_, l)| l.expires <= now).map(|(k, l)| (*k, *l)).collect();
        for (key, _) in &expired {
            self.running.remove(key);
        }
        expired
    }

    /// Whether `key` holds a lease (tests).
    #[cfg(test)]
    pub fn holds(&self, key: &TaskKey) -> bool {
        self.running.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobId, TaskId};

    #[test]
    fn tokens_of_a_later_boot_are_above_every_earlier_one() {
        let mut first = Leases::new(Duration::from_secs(1), 1);
        let a = first.token();
        let b = first.token();
        let mut second = Leases::new(Duration::from_secs(1), 2);
        assert!(a < b && b < second.token());
        assert!(Leases::new(Duration::from_secs(1), (1 << 21) - 1).token() < 1 << 53);
    }

    #[test]
    fn a_lease_answers_only_to_its_token() {
        let mut leases = Leases::new(Duration::from_secs(30), 1);
        let key = TaskKey { job: JobId::new(), task: TaskId::new() };
        let token = leases.token();
        leases.grant(key, token);
        assert_eq!(leases.renew(key, token + 1), None);
        assert!(!leases.end(key, Some(token + 1)));
        assert_eq!(leases.renew(key, token), Some(Duration::from_secs(30)));
        assert!(leases.end(key, Some(token)));
        assert!(!leases.holds(&key));
    }
}
