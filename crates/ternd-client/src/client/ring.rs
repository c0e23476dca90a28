//! The receive queue of a [`RelaySocket`](super::RelaySocket): a ring of datagram slots
//! allocated once, which drops the newest datagram when full, as a UDP socket buffer does.

use std::net::{Ipv4Addr, SocketAddr};

/// Datagrams from peers waiting for `recv_from`.
#[derive(Debug)]
pub(super) struct Ring {
    /// `slots × slot_size` bytes, slot `i` at `i * slot_size`.
    bytes: Box<[u8]>,
    /// Each slot's peer and length.
    meta: Box<[(SocketAddr, usize)]>,
    slot_size: usize,
    /// The oldest queued slot.
    head: usize,
    /// How many slots are queued.
    len: usize,
    /// Datagrams queued so far.
    pub(super) received: u64,
    /// Datagrams dropped because the ring was full.
    pub(super) dropped: u64,
    /// Datagrams dropped because they were larger than a slot.
    pub(super) too_large: u64,
}

impl Ring {
    /// A ring of `slots` datagrams of at most `slot_size` bytes (at least one of one).
    pub(super) fn new(slots: usize, slot_size: usize) -> Ring {
        let slots = slots.max(1);
        let slot_size = slot_size.max(1);
        let nobody = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        Ring {
            bytes: vec![0u8; slots.saturating_mul(slot_size)].into_boxed_slice(),
            meta: vec![(nobody, 0); slots].into_boxed_slice(),
            slot_size,
            head: 0,
            len: 0,
            received: 0,
            dropped: 0,
            too_large: 0,
        }
    }

    /// Queues a copy of `data` from `peer`; false if it was dropped.
    pub(super) fn push(&mut self, peer: SocketAddr, data: &[u8]) -> bool {
        if data.len() > self.slot_size {
            self.too_large += 1;
            return false;
        }
        let slots = self.meta.len();
        if self.len == slots {
            self.dropped += 1;
            return false;
        }
        let i = (self.head + self.len) % slots;
        let at = i * self.slot_size;
        self.bytes[at..at + data.len()].copy_from_slice(data);
        self.meta[i] = (peer, data.len());
        self.len += 1;
        self.received += 1;
        true
    }

    /// Takes the oldest datagram into `out` (cut to `out`'s size, as UDP does); its length
    /// as copied and its peer.
    pub(super) fn pop(&mut self, out: &mut [u8]) -> Option<(usize, SocketAddr)> {
        if self.len == 0 {
            return None;
        }
        let (peer, len) = self.meta[self.head];
        let at = self.head * self.slot_size;
        let n = len.min(out.len());
        out[..n].copy_from_slice(&self.bytes[at..at + n]);
        self.head = (self.head + 1) % self.meta.len();
        self.len -= 1;
        Some((n, peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    #[test]
    fn fifo_drops_the_newest_when_full_and_counts() {
        let mut r = Ring::new(2, 4);
        assert!(r.push(peer(1), b"a"));
        assert!(r.push(peer(2), b"bb"));
        assert!(!r.push(peer(3), b"ccc"), "full");
        assert!(!r.push(peer(4), b"toolong"), "larger than a slot");
        let mut out = [0u8; 8];
        assert_eq!(r.pop(&mut out), Some((1, peer(1))));
        assert_eq!(&out[..1], b"a");
        assert!(r.push(peer(5), b"dddd"));
        assert_eq!(r.pop(&mut out), Some((2, peer(2))));
        assert_eq!(&out[..2], b"bb");
        // A short buffer gets the start of the datagram; the rest is gone, as with UDP.
        let mut short = [0u8; 3];
        assert_eq!(r.pop(&mut short), Some((3, peer(5))));
        assert_eq!(&short, b"ddd");
        assert_eq!(r.pop(&mut out), None);
        assert_eq!(r.len, 0);
        assert_eq!((r.received, r.dropped, r.too_large), (3, 1, 1));
    }
}
