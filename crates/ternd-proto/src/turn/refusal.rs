//! Every refusal explained once: the reason behind an error answer, logged with the
//! client, the user, the request and the code, at most once a minute per client and
//! reason (a table of fixed size, so a flood costs no memory), at info level for what
//! the operator set up (quotas, capacity, the peer policy, the channel range) and at
//! debug level for what the client got wrong (its credentials).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::policy::Denied;
use crate::stun::Message;

use super::Server;

/// Why a request was refused, beyond its error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 403: the peer policy.
    Peer(Denied),
    /// 486: the user's allocations (`relay.user_quota`).
    UserQuota,
    /// 486: the client IP's allocations (`relay.max_allocations_per_ip`).
    IpQuota,
    /// 508: the server's allocations (`relay.total_quota`).
    TotalQuota,
    /// 486: the user's allocations across the cluster.
    ClusterQuota,
    /// 508: no free port in the relay range (`relay.ports`), or the relay socket could
    /// not be opened.
    NoRelayPort,
    /// 508 / 300: draining or over the cluster capacity.
    Draining,
    /// 400: a channel number outside the range this server accepts.
    ChannelRange(u16),
    /// 401: no such user (static or REST).
    UnknownUser,
    /// 401: a REST credential past its expiry.
    Expired,
    /// 401: MESSAGE-INTEGRITY does not verify (a wrong password, or a REST credential
    /// minted with another secret).
    WrongPassword,
    /// 438: a stale or foreign nonce.
    StaleNonce,
    /// 403: the user was revoked across the cluster.
    Revoked,
}

impl Refusal {
    /// Operator-caused (info) or client-caused (debug).
    fn operator(self) -> bool {
        !matches!(
            self,
            Refusal::UnknownUser | Refusal::Expired | Refusal::WrongPassword | Refusal::StaleNonce
        )
    }

    /// A stable short name (the log's `reason` field).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Refusal::Peer(Denied::Default(_)) => "peer_default_deny",
            Refusal::Peer(Denied::Explicit(_)) => "peer_deny_peer",
            Refusal::Peer(Denied::ServicePort) => "peer_service_port",
            Refusal::UserQuota => "user_quota",
            Refusal::IpQuota => "ip_quota",
            Refusal::TotalQuota => "total_quota",
            Refusal::ClusterQuota => "cluster_user_quota",
            Refusal::NoRelayPort => "no_relay_port",
            Refusal::Draining => "draining",
            Refusal::ChannelRange(_) => "channel_range",
            Refusal::UnknownUser => "unknown_user",
            Refusal::Expired => "expired",
            Refusal::WrongPassword => "wrong_password",
            Refusal::StaleNonce => "stale_nonce",
            Refusal::Revoked => "revoked",
        }
    }

    /// What happened and, where the operator can act, what to change.
    fn explain(self) -> String {
        match self {
            Refusal::Peer(d) => format!("{d} (relay.allow_peer / --allow-peer opens a range)"),
            Refusal::UserQuota => {
                "the user has relay.user_quota allocations already (--user-quota; allocations a \
                 client did not delete count until they expire)"
                    .into()
            }
            Refusal::IpQuota => {
                "the client's IP has relay.max_allocations_per_ip allocations already \
                 (--max-allocations-per-ip)"
                    .into()
            }
            Refusal::TotalQuota => {
                "the server has relay.total_quota allocations (--total-quota)".into()
            }
            Refusal::ClusterQuota => {
                "the user has relay.user_quota allocations across the cluster".into()
            }
            Refusal::NoRelayPort => {
                "no relay port free in relay.ports, or the relay socket could not be opened \
                 (--relay-ports widens the range)"
                    .into()
            }
            Refusal::Draining => "this node is draining or over cluster.capacity".into(),
            Refusal::ChannelRange(n) => format!(
                "channel number {n:#06x} is outside RFC 8656's 0x4000-0x4FFF; coturn's \
                 turnutils_uclient 4.6 picks RFC 5766's 0x4000-0x7FFF: \
                 --rfc5766-channel-numbers accepts them"
            ),
            Refusal::UnknownUser => "no such user".into(),
            Refusal::Expired => "the credential's expiry has passed".into(),
            Refusal::WrongPassword => {
                "MESSAGE-INTEGRITY does not verify: a wrong password, or REST credentials \
                 minted with another secret than this server's"
                    .into()
            }
            Refusal::StaleNonce => "the nonce is stale (the client retries)".into(),
            Refusal::Revoked => "the user's credentials were revoked".into(),
        }
    }
}

/// How often one client's refusals of one reason are logged.
const EVERY: Duration = Duration::from_secs(60);
/// Slots in the table (a power of two); a collision only means an extra line.
const SLOTS: usize = 1024;

/// When each (client IP, reason) was last logged: a direct-mapped table of fixed size.
#[derive(Debug)]
pub(crate) struct RefusalLog {
    slots: Box<[(u64, Option<Instant>)]>,
    key: u64,
}

impl RefusalLog {
    pub(crate) fn new(key: u64) -> RefusalLog {
        RefusalLog {
            slots: vec![(0, None); SLOTS].into_boxed_slice(),
            key,
        }
    }

    /// Whether a line for `client` and `why` is due now (and if so, records it).
    fn due(&mut self, client: SocketAddr, why: Refusal, now: Instant) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.key, client.ip(), why.name()).hash(&mut h);
        let id = h.finish() | 1;
        let slot = &mut self.slots[(id as usize) & (SLOTS - 1)];
        if slot.0 == id
            && slot
                .1
                .is_some_and(|t| now.saturating_duration_since(t) < EVERY)
        {
            return false;
        }
        *slot = (id, Some(now));
        true
    }
}

impl Server {
    /// Logs why `msg` from `client` is refused with `code` (rate-limited per client and
    /// reason).
    pub(super) fn explain_refusal(
        &mut self,
        why: Refusal,
        msg: &Message<'_>,
        client: SocketAddr,
        code: u16,
        now: Instant,
    ) {
        let operator = why.operator();
        let enabled = if operator {
            tracing::enabled!(tracing::Level::INFO)
        } else {
            tracing::enabled!(tracing::Level::DEBUG)
        };
        if !enabled || !self.refusals.due(client, why, now) {
            return;
        }
        let user = match msg.get_decoded(crate::stun::attr_type::USERNAME) {
            Some(Ok(crate::stun::Attribute::Username(u))) => u,
            _ => "-",
        };
        let request = msg.message_type().method.name();
        let reason = why.name();
        let text = why.explain();
        if operator {
            tracing::info!(%client, user, request, code, reason, "refused: {text}");
        } else {
            tracing::debug!(%client, user, request, code, reason, "refused: {text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_client_and_reason_a_minute() {
        let mut log = RefusalLog::new(7);
        let (a, b): (SocketAddr, SocketAddr) = (
            "192.0.2.1:1000".parse().unwrap(),
            "192.0.2.2:1000".parse().unwrap(),
        );
        let t = Instant::now();
        assert!(log.due(a, Refusal::UserQuota, t));
        assert!(!log.due(a, Refusal::UserQuota, t + Duration::from_secs(30)));
        // Another port of the same host is the same client.
        let a2: SocketAddr = "192.0.2.1:2000".parse().unwrap();
        assert!(!log.due(a2, Refusal::UserQuota, t + Duration::from_secs(31)));
        assert!(log.due(a, Refusal::WrongPassword, t + Duration::from_secs(31)));
        assert!(log.due(b, Refusal::UserQuota, t + Duration::from_secs(31)));
        assert!(log.due(a, Refusal::UserQuota, t + Duration::from_secs(61)));
    }

    #[test]
    fn a_flood_of_clients_never_grows_the_table() {
        let mut log = RefusalLog::new(1);
        let t = Instant::now();
        for i in 0..100_000u32 {
            let ip = std::net::Ipv4Addr::from(i);
            log.due(SocketAddr::new(ip.into(), 1), Refusal::Expired, t);
        }
        assert_eq!(log.slots.len(), SLOTS);
    }

    #[test]
    fn the_channel_range_refusal_names_the_flag() {
        let text = Refusal::ChannelRange(0x5001).explain();
        assert!(text.contains("0x5001"), "{text}");
        assert!(text.contains("--rfc5766-channel-numbers"), "{text}");
    }
}
