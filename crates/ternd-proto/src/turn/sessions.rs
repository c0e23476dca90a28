//! The admin API's view of the sessions: list them, end one or all of a user's.

use std::net::SocketAddr;
use std::time::Instant;

use super::Server;
use super::relays::Relays;
use super::types::{EndReason, Traffic, Transport};

/// One session as the admin API lists it.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SessionInfo {
    /// Session id (for `DELETE /admin/sessions/{id}`).
    pub id: u64,
    /// Quota key (REST USER part or static user).
    pub user: String,
    /// Full USERNAME.
    pub username: String,
    /// Client transport address.
    pub client: SocketAddr,
    /// Relayed transport address (as advertised).
    pub relay: SocketAddr,
    /// A dual allocation's second relayed transport address (as advertised).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub additional_relay: Option<SocketAddr>,
    /// "udp", "tcp" or "tls".
    pub transport: &'static str,
    /// What it relays to peers: "udp", or "tcp" (RFC 6062).
    pub relay_transport: &'static str,
    /// Creation time, UNIX seconds.
    pub created_unix: u64,
    /// Expiry time, UNIX seconds.
    pub expires_unix: u64,
    /// Permissions held.
    pub permissions: usize,
    /// Channels bound.
    pub channels: usize,
    /// Traffic so far.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub traffic: Traffic,
}

impl Server {
    /// The live sessions, for operators.
    pub fn sessions(&self, now: Instant) -> Vec<SessionInfo> {
        let c = &self.shared.config;
        self.slots
            .iter()
            .flatten()
            .map(|a| SessionInfo {
                id: a.id,
                user: a.user.clone(),
                username: a.username.clone(),
                client: a.tuple.client,
                relay: a.advertised,
                additional_relay: a.additional.map(|(_, adv)| adv),
                transport: match a.tuple.transport {
                    Transport::Udp => "udp",
                    Transport::Tcp => "tcp",
                    Transport::Tls => "tls",
                },
                relay_transport: if a.tcp.is_some() { "tcp" } else { "udp" },
                created_unix: a.started_unix,
                expires_unix: c.unix_at(a.expires.max(now)),
                permissions: a.permissions.len(),
                channels: a.channels.len(),
                traffic: a.traffic,
            })
            .collect()
    }

    /// Ends the session `id` at once (admin API); false if there is none.
    pub fn end_session(&mut self, id: u64, now: Instant, relays: &mut dyn Relays) -> bool {
        let found = self
            .slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|a| a.id == id));
        match found {
            Some(idx) => {
                self.remove(idx as u32, now, EndReason::Admin, relays);
                true
            }
            None => false,
        }
    }

    /// Ends every session of `user` at once (admin API); returns how many.
    pub fn end_user_sessions(
        &mut self,
        user: &str,
        now: Instant,
        relays: &mut dyn Relays,
    ) -> usize {
        self.end_user_sessions_started_by(user, u64::MAX, now, relays)
    }

    /// Ends the sessions of `user` created at or before `before_unix` (UNIX seconds): a
    /// revocation ends those, and leaves the ones that passed its check; returns how many.
    pub fn end_user_sessions_started_by(
        &mut self,
        user: &str,
        before_unix: u64,
        now: Instant,
        relays: &mut dyn Relays,
    ) -> usize {
        let idxs: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.as_ref()
                    .is_some_and(|a| a.user == user && a.started_unix <= before_unix)
            })
            .map(|(i, _)| i as u32)
            .collect();
        for &i in &idxs {
            self.remove(i, now, EndReason::Admin, relays);
        }
        idxs.len()
    }
}
