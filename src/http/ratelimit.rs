//! Per-source-IP token buckets in a fixed-size table.
//!
//! The table never grows: it is set-associative (`SETS` sets of `WAYS`
//! entries), indexed by a keyed hash of the address, so an attacker cannot
//! aim many addresses at one set. When a set is full, the entry with the
//! most tokens (the least active client) is replaced. Clients are keyed by
//! [`SourceKey`], as the TURN limits are: IPv6 by its /64 (one subscriber
//! usually has a whole /64), IPv4-mapped IPv6 addresses as the IPv4 address.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::turn::limit::SourceKey;

const SETS: usize = 1024;
const WAYS: usize = 4;

#[derive(Clone, Copy, Default)]
struct Entry {
    used: bool,
    key: SourceKey,
    tokens: f64,
    /// Seconds since the limiter's start at the last update.
    at: f64,
}

/// A per-IP rate limiter: `rate` requests per second, bursts of `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    start: Instant,
    hasher: std::collections::hash_map::RandomState,
    table: Mutex<Vec<Entry>>,
}

impl RateLimiter {
    /// `rate` 0 turns the limit off (and allocates no table).
    pub fn new(rate: u32, burst: u32) -> RateLimiter {
        let table = if rate == 0 {
            Vec::new()
        } else {
            vec![Entry::default(); SETS * WAYS]
        };
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            start: Instant::now(),
            hasher: std::collections::hash_map::RandomState::new(),
            table: Mutex::new(table),
        }
    }

    /// Takes one token for `ip`; false = over the limit.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, self.start.elapsed().as_secs_f64())
    }

    fn allow_at(&self, ip: IpAddr, now: f64) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let key = SourceKey::of(ip);
        let set = (self.hasher.hash_one(key) as usize) % SETS;
        let mut table = match self.table.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(entries) = table.get_mut(set * WAYS..(set + 1) * WAYS) else {
            return true;
        };
        let refill = |e: &Entry| (e.tokens + (now - e.at).max(0.0) * self.rate).min(self.burst);
        if let Some(e) = entries.iter_mut().find(|e| e.used && e.key == key) {
            let tokens = refill(e);
            e.at = now;
            if tokens >= 1.0 {
                e.tokens = tokens - 1.0;
                true
            } else {
                e.tokens = tokens;
                false
            }
        } else {
            // Replace a free entry, else the one with the most tokens.
            let mut victim = 0;
            let mut best = f64::MIN;
            for (i, e) in entries.iter().enumerate() {
                let score = if e.used { refill(e) } else { f64::MAX };
                if score > best {
                    best = score;
                    victim = i;
                }
            }
            entries[victim] = Entry {
                used: true,
                key,
                tokens: self.burst - 1.0,
                at: now,
            };
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket() {
        let l = RateLimiter::new(10, 5);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "2001:db8::1".parse().expect("ip");
        let b2: IpAddr = "2001:db8::2".parse().expect("ip");
        for _ in 0..5 {
            assert!(l.allow_at(a, 0.0));
        }
        assert!(!l.allow_at(a, 0.0));
        assert!(l.allow_at(a, 0.11)); // one token back after 0.1 s
        assert!(!l.allow_at(a, 0.11));
        for _ in 0..5 {
            assert!(l.allow_at(b, 0.0));
        }
        assert!(!l.allow_at(b2, 0.0), "same /64");
        assert!(l.allow_at(a, 10.0));
    }

    #[test]
    fn table_is_bounded_and_off_means_off() {
        let l = RateLimiter::new(1, 1);
        for i in 0..100_000u32 {
            l.allow_at(IpAddr::from(i.to_be_bytes()), 0.0);
        }
        assert_eq!(l.table.lock().expect("lock").len(), SETS * WAYS);
        let off = RateLimiter::new(0, 1);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!((0..1000).all(|_| off.allow_at(a, 0.0)));
    }
}
