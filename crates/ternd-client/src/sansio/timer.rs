//! Request timing (RFC 8489 §6.2): retransmissions over UDP, one send and a long wait over
//! TCP and TLS.

use std::time::{Duration, Instant};

/// How requests are timed: RFC 8489 §6.2.1's RTO, Rc and Rm, and §6.2.2's Ti.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The initial retransmission timeout (RTO). RFC 8489: 500 ms or more unless the
    /// path's RTT is known.
    pub rto: Duration,
    /// How many times a request is sent over UDP (Rc, 7), the interval doubling each time.
    pub max_sends: u32,
    /// After the last send, how many initial RTOs to wait for the answer (Rm, 16).
    pub last_wait: u32,
    /// How long a request over TCP or TLS waits for its answer (Ti, 39.5 s); it is sent
    /// once.
    pub reliable_timeout: Duration,
}

impl Default for Timing {
    /// RFC 8489's defaults: sends at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s, failure at
    /// 39.5 s; over TCP and TLS one send and failure at 39.5 s.
    fn default() -> Timing {
        Timing {
            rto: Duration::from_millis(500),
            max_sends: 7,
            last_wait: 16,
            reliable_timeout: Duration::from_millis(39_500),
        }
    }
}

impl Timing {
    /// How long a transaction lasts at most, from its first send to its failure.
    pub fn transaction_timeout(&self, reliable: bool) -> Duration {
        if reliable {
            return self.reliable_timeout;
        }
        // Sends at 0, RTO, 3 RTO, 7 RTO ...: the last at (2^(Rc-1) - 1) RTO.
        let sends = self.max_sends.clamp(1, 30);
        let last = self.rto.saturating_mul((1u32 << (sends - 1)) - 1);
        last.saturating_add(self.rto.saturating_mul(self.last_wait))
    }
}

/// `now + d`, with `d` capped at a day (no overflow on absurd settings).
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    let d = d.min(Duration::from_secs(86_400));
    now.checked_add(d).unwrap_or(now)
}

/// When a transaction sends next and when it gives up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retransmit {
    timing: Timing,
    /// Sends so far.
    sent: u32,
    /// The current interval.
    interval: Duration,
    /// The next send (`None` after the last one).
    next: Option<Instant>,
    /// When the transaction fails if no answer came.
    deadline: Instant,
}

/// What a transaction's timer says at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Nothing to do yet.
    Wait,
    /// Send the request again.
    Resend,
    /// No answer: the transaction failed.
    Expired,
}

impl Retransmit {
    /// A timer for a request sent (for the first time) at `now`.
    pub(crate) fn start(timing: Timing, reliable: bool, now: Instant) -> Retransmit {
        let sends = timing.max_sends.clamp(1, 30);
        let timing = Timing {
            max_sends: sends,
            ..timing
        };
        Retransmit {
            timing,
            sent: 1,
            interval: timing.rto,
            next: (!reliable && sends > 1).then(|| later(now, timing.rto)),
            deadline: later(now, timing.transaction_timeout(reliable)),
        }
    }

    /// The next instant this timer needs attention.
    pub(crate) fn poll_timeout(&self) -> Instant {
        self.next.map_or(self.deadline, |n| n.min(self.deadline))
    }

    /// Advances the timer to `now`.
    pub(crate) fn tick(&mut self, now: Instant) -> Tick {
        if let Some(next) = self.next
            && now >= next
        {
            self.sent += 1;
            self.interval = self.interval.saturating_mul(2);
            // Woken late, the next send is an interval after this one (no burst).
            self.next =
                (self.sent < self.timing.max_sends).then(|| later(now.max(next), self.interval));
            return Tick::Resend;
        }
        if now >= self.deadline {
            return Tick::Expired;
        }
        Tick::Wait
    }

    /// How many times the request was sent.
    #[cfg(test)]
    pub(crate) fn sends(&self) -> u32 {
        self.sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8489 §6.2.1's example: RTO 500 ms, Rc 7, Rm 16.
    #[test]
    fn udp_sends_at_rfc_8489_times_and_fails_at_39_5_s() {
        let t0 = Instant::now();
        let mut r = Retransmit::start(Timing::default(), false, t0);
        let mut sends = vec![0u64];
        let mut now;
        let failed = loop {
            now = r.poll_timeout();
            match r.tick(now) {
                Tick::Resend => sends.push((now - t0).as_millis() as u64),
                Tick::Expired => break (now - t0).as_millis(),
                Tick::Wait => panic!("woken for nothing at {:?}", now - t0),
            }
        };
        assert_eq!(sends, [0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(failed, 39_500);
        assert_eq!(r.sends(), 7);
        assert_eq!(r.tick(now), Tick::Expired);
    }

    #[test]
    fn reliable_transports_send_once_and_wait_ti() {
        let t0 = Instant::now();
        let mut r = Retransmit::start(Timing::default(), true, t0);
        assert_eq!(r.poll_timeout() - t0, Duration::from_millis(39_500));
        assert_eq!(r.tick(t0 + Duration::from_secs(39)), Tick::Wait);
        assert_eq!(r.tick(t0 + Duration::from_millis(39_500)), Tick::Expired);
        assert_eq!(r.sends(), 1);
    }

    #[test]
    fn a_late_tick_sends_once_not_a_burst() {
        let t0 = Instant::now();
        let mut r = Retransmit::start(Timing::default(), false, t0);
        // Woken late (at 2 s instead of 0.5 s): one resend, the next one interval later.
        assert_eq!(r.tick(t0 + Duration::from_secs(2)), Tick::Resend);
        assert_eq!(r.poll_timeout() - t0, Duration::from_secs(3));
        assert_eq!(r.tick(t0 + Duration::from_secs(2)), Tick::Wait);
    }

    #[test]
    fn timeouts_of_odd_settings_do_not_overflow() {
        let t = Timing {
            rto: Duration::from_secs(u64::MAX / 4),
            max_sends: 1000,
            last_wait: u32::MAX,
            reliable_timeout: Duration::ZERO,
        };
        assert!(t.transaction_timeout(false) > Duration::ZERO);
        assert_eq!(t.transaction_timeout(true), Duration::ZERO);
        let one = Timing {
            max_sends: 0,
            ..Timing::default()
        };
        assert_eq!(one.transaction_timeout(false), Duration::from_secs(8));
    }
}
