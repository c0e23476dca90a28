//! The server's side of the UDP floor: what `ternd_io` reports, added to a worker's
//! counters, and which client packets must not overtake queued sends.

use ternd_io::gso::Flushed;

use super::{SockKind, count_send_errors};
use crate::turn::{Counter, Stats};

/// Adds what one [`ternd_io::gso::flush`] did to a worker's counters; `kind` is the kind of
/// socket the datagrams left from.
pub(super) fn count_flushed(done: Flushed, stats: &Stats, dropped: &Counter, kind: SockKind) {
    if done.dropped > 0 {
        dropped.add(done.dropped);
        count_send_errors(done.errors, stats, kind);
    }
    if done.gso_sends > 0 {
        stats.udp_gso_sends.add(done.gso_sends);
        stats.udp_gso_datagrams.add(done.gso_datagrams);
    }
}

/// Whether a client's `packet` may be a STUN request (first two bits 0, class bits 00): the
/// only client packets that can end an allocation (Refresh with LIFETIME 0) and so close the
/// relay socket that datagrams queued before it are to leave from. A listener flushes its
/// queue before handling one; ChannelData and indications, the hot path, never need it.
pub(super) fn may_change_state(packet: &[u8]) -> bool {
    match packet {
        [a, b, ..] => a & 0xC0 == 0 && u16::from_be_bytes([*a, *b]) & 0x0110 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stun_requests_may_change_state() {
        let binding_request = [0x00, 0x01, 0, 0];
        let refresh_request = [0x00, 0x04, 0, 0];
        let send_indication = [0x00, 0x16, 0, 0];
        let success = [0x01, 0x01, 0, 0];
        let error = [0x01, 0x11, 0, 0];
        let channel_data = [0x40, 0x00, 0, 4, 1, 2, 3, 4];
        assert!(may_change_state(&binding_request));
        assert!(may_change_state(&refresh_request));
        for p in [
            &send_indication[..],
            &success,
            &error,
            &channel_data,
            &[0x00],
            &[],
        ] {
            assert!(!may_change_state(p), "{p:?}");
        }
    }
}
