//! Per-source limits: the unauthenticated request rate limiter (per worker, fixed size) and
//! the key that groups client addresses by source (an IPv4 address, or an IPv6 /64).

use std::net::IpAddr;
use std::time::Instant;

/// Slots in a worker's unauthenticated rate limiter. The table never grows: source
/// addresses are hashed onto these slots, and addresses that collide share a budget.
pub const UNAUTH_TABLE_SLOTS: usize = 4096;

/// Budgets are counted in thousandths of a request, so that refilling works in whole
/// milliseconds with integer arithmetic.
const MILLI: u64 = 1000;

/// A source as the per-IP limits count it: an IPv4 address (IPv4-mapped IPv6 addresses
/// count as the IPv4 address they carry), or the /64 prefix of an IPv6 address (one host,
/// or one customer line, usually holds a whole /64). Never a secret; as a number,
/// family-tagged so the two families cannot collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SourceKey(u128);

impl SourceKey {
    /// The source `ip` counts against.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => SourceKey((1u128 << 64) | u128::from(u32::from(v4))),
            IpAddr::V6(v6) => SourceKey((2u128 << 64) | (u128::from(v6) >> 64)),
        }
    }
}

/// One slot: a token bucket whose tokens are thousandths of a request.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Milliseconds since the limiter's epoch at the last refill.
    last_ms: u64,
    /// Thousandths of a request left.
    tokens: u64,
}

/// The per-source-IP token buckets for unauthenticated requests and 401/438 answers, in a
/// fixed-size table keyed by a per-process secret (so nobody can aim collisions at a
/// given victim address). Worker-local: no locks.
pub(crate) struct UnauthLimiter {
    /// Requests per second refilled; 0 = off.
    rate: u64,
    /// Bucket size, in requests.
    burst: u64,
    epoch: Instant,
    keys: (u64, u64),
    slots: Box<[Slot]>,
}

impl std::fmt::Debug for UnauthLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnauthLimiter")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// The SplitMix64 finaliser: a bijective mixer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl UnauthLimiter {
    /// A limiter refilling `rate` requests per second up to `burst` (0 rate = off), its
    /// hash keyed by `key` (secret, per process), counting time from `epoch`.
    pub(crate) fn new(rate: u32, burst: u32, key: [u8; 16], epoch: Instant) -> Self {
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&key[..8]);
        k1.copy_from_slice(&key[8..]);
        let burst = u64::from(burst.max(1));
        let slots = if rate == 0 { 0 } else { UNAUTH_TABLE_SLOTS };
        Self {
            rate: u64::from(rate),
            burst,
            epoch,
            keys: (u64::from_le_bytes(k0), u64::from_le_bytes(k1)),
            slots: vec![
                Slot {
                    last_ms: 0,
                    tokens: burst * MILLI,
                };
                slots
            ]
            .into_boxed_slice(),
        }
    }

    /// Number of slots (constant: [`UNAUTH_TABLE_SLOTS`], or 0 when off).
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    fn index(&self, source: SourceKey) -> usize {
        let (k0, k1) = self.keys;
        let hi = (source.0 >> 64) as u64;
        let lo = source.0 as u64;
        let h = mix(mix(lo ^ k0).wrapping_add(hi) ^ k1);
        (h % self.slots.len() as u64) as usize
    }

    /// Takes one request from the budget of `ip`'s slot; false when it is empty (drop).
    /// Always true when the limiter is off.
    pub(crate) fn admit(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let i = self.index(SourceKey::of(ip));
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        let (rate, cap) = (self.rate, self.burst * MILLI);
        let slot = &mut self.slots[i];
        let elapsed = now_ms.saturating_sub(slot.last_ms);
        if elapsed > 0 {
            // rate requests/s = rate thousandths per ms.
            slot.tokens = slot
                .tokens
                .saturating_add(elapsed.saturating_mul(rate))
                .min(cap);
            slot.last_ms = now_ms;
        }
        if slot.tokens >= MILLI {
            slot.tokens -= MILLI;
            true
        } else {
            false
        }
    }
}
