//! What the server's answers do to an [`Allocation`]: indications, success and error
//! responses (401, 438, 300 and the rest), and a transaction that failed.

use super::*;

fn lifetime_of(m: &Message<'_>) -> Option<Duration> {
    match m.get_decoded(attr_type::LIFETIME)? {
        Ok(Attribute::Lifetime(s)) => Some(Duration::from_secs(s.into())),
        _ => None,
    }
}

/// True for addresses a public server should not send a client to.
pub(super) fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.octets()[0] == 0
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xFE00) == 0xFC00
                || (v6.segments()[0] & 0xFFC0) == 0xFE80
        }
    }
}

impl Allocation {
    pub(super) fn handle_stun(&mut self, m: &Message<'_>, now: Instant) -> Input<'static> {
        let ty = m.message_type();
        if ty.class == Class::Indication {
            if ty.method == Method::CONNECTION_ATTEMPT
                && let (
                    Some(Ok(Attribute::XorPeerAddress(peer))),
                    Some(Ok(Attribute::ConnectionId(id))),
                ) = (
                    m.get_decoded(attr_type::XOR_PEER_ADDRESS),
                    m.get_decoded(attr_type::CONNECTION_ID),
                )
            {
                self.events.push_back(Event::ConnectionAttempt {
                    peer,
                    connection_id: id,
                });
                return Input::Handled;
            }
            return Input::Ignored;
        }
        if !matches!(ty.class, Class::Success | Class::Error) {
            return Input::Ignored;
        }
        let Some(i) = self
            .txns
            .iter()
            .position(|t| t.tid == m.transaction_id() && t.what.method() == ty.method)
        else {
            return Input::Ignored;
        };
        let t = &self.txns[i];
        // An answer to an authenticated request must prove it knows the key (an error may
        // go unsigned: a 401 or 438 is the server not accepting ours).
        let signed = m.has_integrity() || m.has_integrity_sha256();
        if t.authenticated
            && ((ty.class == Class::Success && !self.auth.verifies(m))
                || (ty.class == Class::Error && signed && !self.auth.verifies(m)))
        {
            return Input::Ignored;
        }
        let t = self.txns.swap_remove(i);
        if ty.class == Class::Success {
            self.succeeded(t, m, now);
        } else {
            self.error_response(t, m, now);
        }
        Input::Handled
    }

    fn error_response(&mut self, t: Txn, m: &Message<'_>, now: Instant) {
        let (code, reason) = error_code(m);
        let nonce_changed = match m.get_decoded(attr_type::NONCE) {
            Some(Ok(Attribute::Nonce(n))) => Some(n) != self.auth.nonce(),
            _ => false,
        };
        let retry = match code {
            438 => t.stale < MAX_STALE,
            // The first challenge, or a new one (the server forgot our nonce).
            401 => !t.authenticated || (nonce_changed && !t.challenged),
            _ => false,
        };
        if retry && !self.auth.credentials().username.is_empty() {
            match self.auth.learn(m, code) {
                Ok(()) => {
                    if code == 438 {
                        self.stats.stale_nonces += 1;
                    }
                    let stale = t.stale + u8::from(code == 438);
                    self.start_with(t.what, now, stale, t.challenged || t.authenticated);
                }
                Err(e) => self.failed_request(&t.what, e, now),
            }
            return;
        }
        if code == 300
            && t.what == What::Allocate
            && let Phase::Allocating { redirected: false } = self.phase
        {
            match m.get_decoded(attr_type::ALTERNATE_SERVER) {
                Some(Ok(Attribute::AlternateServer(to)))
                    if self.config.allow_private_alternates || !is_private(to.ip()) =>
                {
                    let from = self.server;
                    self.server = to;
                    self.phase = Phase::Allocating { redirected: true };
                    self.auth.forget_nonce();
                    self.events.push_back(Event::Redirected { from, to });
                    self.start(What::Allocate, now);
                    return;
                }
                Some(Ok(Attribute::AlternateServer(to))) => {
                    return self.failed_request(&t.what, Error::RefusedAlternate(to), now);
                }
                _ => {}
            }
        }
        let e = Error::Failure {
            method: t.what.method(),
            code,
            reason: reason.to_string(),
        };
        self.failed_request(&t.what, e, now);
    }

    fn succeeded(&mut self, t: Txn, m: &Message<'_>, now: Instant) {
        match t.what {
            What::Allocate => {
                self.relayed.clear();
                self.mapped = None;
                let mut refused = None;
                for raw in m.attributes() {
                    match Attribute::decode(raw, &m.transaction_id()) {
                        Ok(Attribute::XorRelayedAddress(a)) => self.relayed.push(a),
                        Ok(Attribute::XorMappedAddress(a)) => self.mapped = Some(a),
                        Ok(Attribute::AddressErrorCode(_, e)) => refused = Some(e.code),
                        _ => {}
                    }
                }
                if self.relayed.is_empty() {
                    let e = Error::Missing {
                        method: Method::ALLOCATE,
                        attribute: "XOR-RELAYED-ADDRESS",
                    };
                    return self.failed_request(&What::Allocate, e, now);
                }
                self.phase = Phase::Allocated;
                self.set_lifetime(lifetime_of(m).unwrap_or(Duration::from_secs(600)), now);
                self.events.push_back(Event::Allocated {
                    relayed: self.relayed.clone(),
                    mapped: self.mapped,
                    lifetime: self.lifetime,
                    refused_family: refused,
                });
            }
            What::Refresh { lifetime: 0 } => self.closed(),
            What::Refresh { lifetime } => {
                let l = lifetime_of(m).unwrap_or(Duration::from_secs(lifetime.into()));
                if l.is_zero() {
                    return self.closed();
                }
                self.set_lifetime(l, now);
                self.events.push_back(Event::Refreshed { lifetime: l });
            }
            What::Permission { ips } => {
                let every = self.config.permission_refresh;
                for ip in ips {
                    if self.peers.permission_installed(ip, now, every) {
                        self.events.push_back(Event::PermissionCreated { ip });
                    }
                }
            }
            What::ChannelBind { number, peer } => {
                let every = self.config.channel_refresh;
                let first = self.peers.channel_bound(number, peer, now, every);
                if self
                    .peers
                    .permission_installed(peer.ip(), now, self.config.permission_refresh)
                {
                    self.events
                        .push_back(Event::PermissionCreated { ip: peer.ip() });
                }
                if first {
                    self.events.push_back(Event::ChannelBound { number, peer });
                }
            }
            What::Connect { peer } => match m.get_decoded(attr_type::CONNECTION_ID) {
                Some(Ok(Attribute::ConnectionId(id))) => self.events.push_back(Event::Connected {
                    peer,
                    connection_id: id,
                }),
                _ => self.events.push_back(Event::ConnectFailed {
                    peer,
                    error: Error::Missing {
                        method: Method::CONNECT,
                        attribute: "CONNECTION-ID",
                    },
                }),
            },
        }
    }

    fn set_lifetime(&mut self, l: Duration, now: Instant) {
        self.lifetime = l;
        self.expires = Some(later(now, l));
        // Refresh a minute before the end, or half-way for short lifetimes.
        let margin = Duration::from_secs(60).min(l / 2);
        self.refresh_at = Some(later(now, l - margin));
    }

    fn closed(&mut self) {
        self.txns.clear();
        self.phase = Phase::Closed;
        self.relayed.clear();
        self.events.push_back(Event::Closed);
    }

    pub(super) fn fail(&mut self, e: Error) {
        self.txns.clear();
        self.phase = Phase::Failed;
        self.relayed.clear();
        self.events.push_back(Event::Failed(e));
    }

    /// A request failed for good (error answer, no answer, or it could not be built).
    pub(super) fn failed_request(&mut self, what: &What, e: Error, now: Instant) {
        match what {
            What::Allocate => self.fail(e),
            What::Refresh { lifetime: 0 } => self.closed(),
            What::Refresh { .. } => {
                let in_time = self
                    .expires
                    .is_some_and(|x| later(now, self.config.timing.rto) < x);
                if matches!(e, Error::Timeout { .. }) && in_time {
                    self.refresh_at = Some(now);
                } else {
                    self.fail(e);
                }
            }
            What::Permission { ips } => {
                for &ip in ips {
                    if self.peers.permission_failed(ip, now, RETRY_AFTER) {
                        self.events.push_back(Event::PermissionFailed {
                            ip,
                            error: e.duplicate(),
                        });
                    }
                }
            }
            What::ChannelBind { number, peer } => {
                if self.peers.channel_failed(*number, *peer, now, RETRY_AFTER) {
                    self.events.push_back(Event::ChannelFailed {
                        peer: *peer,
                        error: e,
                    });
                }
            }
            What::Connect { peer } => self.events.push_back(Event::ConnectFailed {
                peer: *peer,
                error: e,
            }),
        }
    }
}
