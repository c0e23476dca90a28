//! What a cluster of relays tells one node's core ([`ClusterView`], kept in
//! [`Shared`](super::Shared)): the users revoked fleet-wide, the node to redirect new
//! allocations to per transport and family, and the capacity past which this node
//! redirects. The shell (a cluster task talking to Redis) replaces parts of it; the core
//! reads it on Allocate only, never per packet.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::types::Transport;

/// Most revoked users one view holds (a bound on what the cluster can make a node keep).
pub const MAX_REVOCATIONS: usize = 100_000;

/// The cluster's part of the shared state.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// Revoked users: the quota key and when it was revoked, UNIX milliseconds.
    revoked: HashMap<String, u64>,
    /// How long a revocation stands: the longest lifetime a credential is issued with.
    horizon: Duration,
    /// Where to send new allocations this node does not take: (client transport, IPv6
    /// listener) → the alternate server's listener.
    alternates: HashMap<(Transport, bool), SocketAddr>,
    /// Allocations past which new ones are redirected (0: no such limit).
    capacity: u32,
}

impl ClusterView {
    /// Replaces the revocation list: `(user, revoked at, UNIX ms)` pairs, standing for
    /// `horizon` each. Pairs past [`MAX_REVOCATIONS`] are dropped (and logged).
    pub fn set_revocations(
        &mut self,
        list: impl IntoIterator<Item = (String, u64)>,
        horizon: Duration,
    ) {
        self.revoked.clear();
        self.horizon = horizon;
        for (user, at) in list {
            self.revoke(user, at);
        }
    }

    /// Adds one revocation (a later one for the same user wins).
    pub fn revoke(&mut self, user: String, at_ms: u64) {
        if self.revoked.len() >= MAX_REVOCATIONS && !self.revoked.contains_key(&user) {
            tracing::warn!(
                max = MAX_REVOCATIONS,
                "revocation list full; revocation dropped"
            );
            return;
        }
        let e = self.revoked.entry(user).or_insert(at_ms);
        *e = (*e).max(at_ms);
    }

    /// Forgets the revocations that no longer stand at `now_ms`.
    pub fn prune(&mut self, now_ms: u64) {
        let horizon = u64::try_from(self.horizon.as_millis()).unwrap_or(u64::MAX);
        self.revoked
            .retain(|_, at| at.saturating_add(horizon) > now_ms);
    }

    /// The revocations held now.
    pub fn revocations(&self) -> impl Iterator<Item = (&str, u64)> {
        self.revoked.iter().map(|(u, &at)| (u.as_str(), at))
    }

    /// How long a revocation stands.
    pub fn horizon(&self) -> Duration {
        self.horizon
    }

    /// Whether a credential of `user` (a REST one with expiry `expiry_unix`, or a static
    /// one: `None`) is refused at `now_ms` (UNIX ms). A revocation at `at` stands until
    /// `at + horizon`. Within that time a REST credential is refused if it may have been
    /// issued at or before `at`: its expiry minus `horizon` (the longest lifetime a
    /// credential is issued with) is not after `at`. So credentials issued after the
    /// revocation with the full lifetime work from the next second, shorter ones once
    /// they could no longer predate it. A static credential is refused while the
    /// revocation stands.
    pub fn is_revoked(&self, user: &str, expiry_unix: Option<u64>, now_ms: u64) -> bool {
        let Some(&at) = self.revoked.get(user) else {
            return false;
        };
        let horizon = u64::try_from(self.horizon.as_millis()).unwrap_or(u64::MAX);
        if now_ms >= at.saturating_add(horizon) {
            return false;
        }
        match expiry_unix {
            Some(e) => e.saturating_mul(1000).saturating_sub(horizon) <= at,
            None => true,
        }
    }

    /// Replaces the redirect targets.
    pub fn set_alternates(&mut self, alternates: HashMap<(Transport, bool), SocketAddr>) {
        self.alternates = alternates;
    }

    /// Where a client on `transport` that reached a listener of the given family (`v6`)
    /// is sent when this node does not take its allocation.
    pub fn alternate(&self, transport: Transport, v6: bool) -> Option<SocketAddr> {
        self.alternates.get(&(transport, v6)).copied()
    }

    /// Sets the capacity (0: none).
    pub fn set_capacity(&mut self, capacity: u32) {
        self.capacity = capacity;
    }

    /// The capacity (0: none).
    pub fn capacity(&self) -> u32 {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn revocation_refuses_credentials_that_may_predate_it() {
        let mut v = ClusterView::default();
        let at = 1_000_000_000; // ms
        v.set_revocations([("alice".to_string(), at)], H);
        let at_s = at / 1000;
        // Issued before, with the full lifetime or a shorter one.
        assert!(v.is_revoked("alice", Some(at_s - 10 + 3600), at + 5));
        assert!(v.is_revoked("alice", Some(at_s + 60), at + 5));
        // Issued in the revocation's second: refused (it could be from before).
        assert!(v.is_revoked("alice", Some(at_s + 3600), at + 5));
        // Issued a second later with the full lifetime: accepted.
        assert!(!v.is_revoked("alice", Some(at_s + 1 + 3600), at + 1500));
        // Static credentials: refused while the revocation stands, not after.
        assert!(v.is_revoked("alice", None, at + 1));
        assert!(!v.is_revoked("alice", None, at + 3_600_000));
        // Others are not touched.
        assert!(!v.is_revoked("bob", None, at + 1));
        // A later revocation wins; an earlier one does not undo it.
        v.revoke("alice".to_string(), at + 10_000);
        v.revoke("alice".to_string(), at - 10_000);
        assert!(v.is_revoked("alice", Some(at_s + 5 + 3600), at + 10_001));
    }

    #[test]
    fn revocation_list_is_bounded() {
        let mut v = ClusterView::default();
        v.set_revocations((0..MAX_REVOCATIONS + 10).map(|i| (format!("u{i}"), 1)), H);
        assert_eq!(v.revocations().count(), MAX_REVOCATIONS);
    }

    #[test]
    fn alternates_by_transport_and_family() {
        let mut v = ClusterView::default();
        let a: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let b: SocketAddr = "[2001:db8::1]:5349".parse().unwrap();
        v.set_alternates(HashMap::from([
            ((Transport::Udp, false), a),
            ((Transport::Tls, true), b),
        ]));
        assert_eq!(v.alternate(Transport::Udp, false), Some(a));
        assert_eq!(v.alternate(Transport::Udp, true), None);
        assert_eq!(v.alternate(Transport::Tls, true), Some(b));
        assert_eq!(v.alternate(Transport::Tcp, false), None);
    }
}
