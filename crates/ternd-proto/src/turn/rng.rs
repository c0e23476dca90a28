//! The core's two random number generators, both seeded by the caller.

use crate::stun::TransactionId;

/// A small, fast PRNG (SplitMix64) for Data indication transaction ids, which go on the
/// wire: its state is derived from the seed through HMAC, so observing it reveals nothing
/// about [`SecretRng`].
#[derive(Debug, Clone)]
pub(super) struct Rng(pub(super) u64);

impl Rng {
    #[inline]
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A fresh transaction id (for the indications the server sends).
    #[inline]
    pub(super) fn transaction_id(&mut self) -> TransactionId {
        let mut tid = [0u8; 12];
        tid[..8].copy_from_slice(&self.next().to_le_bytes());
        tid[8..].copy_from_slice(&(self.next() as u32).to_le_bytes());
        TransactionId(tid)
    }
}

/// Unpredictable numbers for relay ports and RESERVATION-TOKENs: HMAC-SHA256 under a key
/// derived from the seed, over a counter.
#[derive(Clone)]
pub(super) struct SecretRng {
    key: [u8; 32],
    counter: u64,
}

impl std::fmt::Debug for SecretRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretRng(<redacted>)")
    }
}

impl SecretRng {
    /// A generator keyed by `key`.
    pub(super) fn new(key: [u8; 32]) -> Self {
        Self { key, counter: 0 }
    }

    pub(super) fn next(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        let mac = crate::stun::hmac_sha256(&self.key, &[&self.counter.to_le_bytes()]);
        let mut b = [0u8; 8];
        b.copy_from_slice(&mac[..8]);
        u64::from_le_bytes(b)
    }
}
