//! The HTTP server's connection slots: at most [`MAX_CONNECTIONS`](super::MAX_CONNECTIONS)
//! at once, at most `per_source` per source (an IPv4 address or an IPv6 /64, the
//! [`SourceKey`] the TURN per-IP limits use), and idle connections shed first.
//!
//! A connection is *idle* while it has no request in flight: before its first request head
//! has arrived (TLS handshake included), and between keep-alive requests. When a new
//! connection finds every slot taken, it takes the slot of the connection idle longest
//! (which is told to close) instead of waiting; only when every connection has a request
//! in flight does it wait for a slot. A source at its cap replaces its own connection idle
//! longest the same way; if none is idle, the new connection is refused. So silent
//! connections, however many, cannot keep anyone else out.
//!
//! The table is a fixed array scanned on each admission (a few microseconds for 1,024
//! slots): no per-source map to grow.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

use crate::turn::limit::SourceKey;

/// What one connection's task and the table share.
#[derive(Debug)]
pub(super) struct ConnState {
    /// Requests being handled (0 = idle).
    in_flight: AtomicU32,
    /// When the connection last became idle, in microseconds since the table's epoch.
    idle_since_us: AtomicU64,
    /// Notified (once) when the table takes the slot back: the connection should close.
    shed: Notify,
    /// The table's epoch.
    epoch: Instant,
}

impl ConnState {
    /// Resolves once the table has taken this connection's slot for another.
    pub(super) async fn shed(&self) {
        self.shed.notified().await;
    }

    /// Whether a request is being handled.
    pub(super) fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }

    /// Marks a request in flight until the returned guard is dropped.
    pub(super) fn request(self: &Arc<Self>) -> Request {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Request(self.clone())
    }
}

/// A request in flight on a connection, until dropped (then the connection is idle again,
/// from that moment, unless another request is in flight).
pub(super) struct Request(Arc<ConnState>);

impl Drop for Request {
    fn drop(&mut self) {
        let s = &self.0;
        s.idle_since_us
            .store(micros(s.epoch, Instant::now()), Ordering::Relaxed);
        s.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Entry {
    source: SourceKey,
    state: Arc<ConnState>,
}

/// The slot table (see the [module documentation](self)).
pub(super) struct Conns {
    per_source: usize,
    epoch: Instant,
    slots: Mutex<Vec<Option<Entry>>>,
    /// Notified when a slot is released.
    freed: Notify,
}

/// The outcome of [`Conns::admit`].
pub(super) enum Admit {
    /// A slot; held until dropped.
    Slot(Slot),
    /// The source is at its cap and none of its connections is idle.
    Refused,
    /// Every slot is taken and every connection has a request in flight: wait for
    /// [`Conns::freed`] and ask again.
    Full,
}

/// A connection's slot, released when dropped.
pub(super) struct Slot {
    conns: Arc<Conns>,
    index: usize,
    state: Arc<ConnState>,
}

impl Slot {
    /// The state shared with the table.
    pub(super) fn state(&self) -> &Arc<ConnState> {
        &self.state
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut slots = self.conns.lock();
        if let Some(cell) = slots.get_mut(self.index)
            && cell
                .as_ref()
                .is_some_and(|e| Arc::ptr_eq(&e.state, &self.state))
        {
            *cell = None;
        }
        drop(slots);
        self.conns.freed.notify_one();
    }
}

fn micros(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
}

impl Conns {
    /// A table of `total` slots, at most `per_source` per source (0 = no per-source cap).
    pub(super) fn new(total: usize, per_source: usize) -> Arc<Conns> {
        Arc::new(Conns {
            per_source,
            epoch: Instant::now(),
            slots: Mutex::new((0..total).map(|_| None).collect()),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Option<Entry>>> {
        match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Resolves after a slot was released (possibly before this call).
    pub(super) async fn freed(&self) {
        self.freed.notified().await;
    }

    /// Finds a slot for a new connection from `ip` (see the [module documentation](self)).
    pub(super) fn admit(self: &Arc<Self>, ip: std::net::IpAddr) -> Admit {
        let source = SourceKey::of(ip);
        let mut slots = self.lock();
        let mut free = None;
        let mut from_source = 0usize;
        // (idle since, index) of the connection idle longest: of this source, of all.
        let mut oldest_own: Option<(u64, usize)> = None;
        let mut oldest: Option<(u64, usize)> = None;
        for (i, cell) in slots.iter().enumerate() {
            let Some(e) = cell else {
                free.get_or_insert(i);
                continue;
            };
            let own = e.source == source;
            from_source += usize::from(own);
            if e.state.busy() {
                continue;
            }
            let since = e.state.idle_since_us.load(Ordering::Relaxed);
            if oldest.is_none_or(|(s, _)| since < s) {
                oldest = Some((since, i));
            }
            if own && oldest_own.is_none_or(|(s, _)| since < s) {
                oldest_own = Some((since, i));
            }
        }
        let index = if self.per_source > 0 && from_source >= self.per_source {
            match oldest_own {
                Some((_, i)) => i,
                None => return Admit::Refused,
            }
        } else if let Some(i) = free {
            i
        } else {
            match oldest {
                Some((_, i)) => i,
                None => return Admit::Full,
            }
        };
        let state = Arc::new(ConnState {
            in_flight: AtomicU32::new(0),
            idle_since_us: AtomicU64::new(micros(self.epoch, Instant::now())),
            shed: Notify::new(),
            epoch: self.epoch,
        });
        let Some(cell) = slots.get_mut(index) else {
            return Admit::Full;
        };
        if let Some(victim) = cell.replace(Entry {
            source,
            state: state.clone(),
        }) {
            victim.state.shed.notify_one();
        }
        Admit::Slot(Slot {
            conns: self.clone(),
            index,
            state,
        })
    }

    /// Connections holding a slot (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().iter().filter(|c| c.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future as _;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn slot(a: Admit) -> Slot {
        match a {
            Admit::Slot(s) => s,
            Admit::Refused => panic!("refused"),
            Admit::Full => panic!("full"),
        }
    }

    fn shed_now(s: &Slot) -> bool {
        // A stored notify_one permit makes `notified()` ready at once.
        let fut = s.state.shed();
        let mut fut = std::pin::pin!(fut);
        let waker = std::task::Waker::noop();
        fut.as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
            .is_ready()
    }

    #[test]
    fn full_table_sheds_the_longest_idle_and_never_a_busy_one() {
        let t = Conns::new(3, 0);
        let a = slot(t.admit(ip("192.0.2.1")));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = slot(t.admit(ip("192.0.2.2")));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let c = slot(t.admit(ip("192.0.2.3")));
        // a is the oldest but busy: b goes.
        let req = a.state().request();
        let d = slot(t.admit(ip("198.51.100.1")));
        assert!(!shed_now(&a) && shed_now(&b) && !shed_now(&c) && !shed_now(&d));
        assert_eq!(t.len(), 3);
        drop(b); // the shed connection ends: it must not free d's slot
        assert_eq!(t.len(), 3);
        // a's request ends after c became idle: c is now the longest idle.
        drop(req);
        let e = slot(t.admit(ip("198.51.100.2")));
        assert!(shed_now(&c) && !shed_now(&a));
        // Everyone busy: wait.
        let _r = [&a, &d, &e].map(|s| s.state().request());
        assert!(matches!(t.admit(ip("198.51.100.3")), Admit::Full));
        drop(d);
        assert_eq!(t.len(), 2);
        let _f = slot(t.admit(ip("198.51.100.3")));
    }

    #[test]
    fn per_source_cap_groups_ipv6_by_64() {
        let t = Conns::new(16, 2);
        let a = slot(t.admit(ip("2001:db8:1:2::1")));
        let b = slot(t.admit(ip("2001:db8:1:2::2")));
        // Same /64, at the cap: replaces its own idle one (a, the older).
        let c = slot(t.admit(ip("2001:db8:1:2:ffff::3")));
        assert!(shed_now(&a) && !shed_now(&b));
        // Another /64 and an IPv4 source are not affected.
        let d = slot(t.admit(ip("2001:db8:1:3::1")));
        // An IPv4-mapped address counts as the IPv4 address.
        let e = slot(t.admit(ip("192.0.2.1")));
        let f = slot(t.admit(ip("::ffff:192.0.2.1")));
        let _g = slot(t.admit(ip("192.0.2.1")));
        assert!(shed_now(&e) && !shed_now(&f) && !shed_now(&d));
        // At the cap with both busy: refused.
        let _r = [&b, &c].map(|s| s.state().request());
        assert!(matches!(t.admit(ip("2001:db8:1:2::9")), Admit::Refused));
        assert!(matches!(t.admit(ip("2001:db8:1:4::9")), Admit::Slot(_)));
    }
}
