//! Binding requests (RFC 8489), with RFC 5780 NAT behaviour discovery on its four UDP
//! addresses: CHANGE-REQUEST, RESPONSE-PORT, PADDING, RESPONSE-ORIGIN and OTHER-ADDRESS.

use std::net::SocketAddr;

use super::Server;
use super::codes::{self, Code};
use super::config::{MAX_RESPONSE_PADDING, Rfc5780};
use super::respond::Reply;
use super::types::{FiveTuple, Transport};
use crate::stun::{Attribute, Message, attr_type};

/// What an RFC 5780 Binding request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NatRequest {
    /// CHANGE-REQUEST: answer from the other IP and/or the other port.
    change_ip: bool,
    change_port: bool,
    /// RESPONSE-PORT: answer to this port of the client's IP.
    response_port: Option<u16>,
    /// PADDING: its length, if present.
    padding: Option<usize>,
}

impl NatRequest {
    /// Reads the RFC 5780 attributes; 400 when one is malformed, or for PADDING with
    /// RESPONSE-PORT (RFC 5780 §6.1: large answers to a port the request did not come from).
    fn decode(msg: &Message<'_>) -> Result<Self, Code> {
        let (change_ip, change_port) = match msg.get_decoded(attr_type::CHANGE_REQUEST) {
            Some(Ok(Attribute::ChangeRequest { ip, port })) => (ip, port),
            Some(_) => return Err(codes::BAD_REQUEST),
            None => (false, false),
        };
        let response_port = match msg.get_decoded(attr_type::RESPONSE_PORT) {
            Some(Ok(Attribute::ResponsePort(p))) if p != 0 => Some(p),
            Some(_) => return Err(codes::BAD_REQUEST),
            None => None,
        };
        let padding = msg.get(attr_type::PADDING).map(|a| a.value.len());
        if padding.is_some() && response_port.is_some() {
            return Err(codes::BAD_REQUEST);
        }
        Ok(Self {
            change_ip,
            change_port,
            response_port,
            padding,
        })
    }
}

/// Where an RFC 5780 answer leaves from and goes to, and what it carries beyond a plain one.
struct NatAnswer {
    /// RESPONSE-ORIGIN: the listener it is sent from.
    from: SocketAddr,
    /// OTHER-ADDRESS.
    other: SocketAddr,
    /// The destination.
    to: SocketAddr,
    /// PADDING length (a multiple of 4, at most [`MAX_RESPONSE_PADDING`]).
    padding: usize,
}

impl NatAnswer {
    fn decide(r: &Rfc5780, req: NatRequest, tuple: FiveTuple) -> Self {
        Self {
            from: r.changed(tuple.server, req.change_ip, req.change_port),
            other: r.changed(tuple.server, true, true),
            to: match req.response_port {
                Some(p) => SocketAddr::new(tuple.client.ip(), p),
                None => tuple.client,
            },
            padding: req
                .padding
                .map_or(0, |n| n.min(MAX_RESPONSE_PADDING).next_multiple_of(4)),
        }
    }
}

impl Server {
    /// Answers a Binding request: XOR-MAPPED-ADDRESS (MAPPED-ADDRESS for RFC 3489 clients),
    /// plus the RFC 5780 attributes where it applies. An answer that leaves by another
    /// listener or to another port is noted in `self.redirect`.
    pub(super) fn binding(
        &mut self,
        msg: &Message<'_>,
        tuple: FiveTuple,
        out: &mut [u8],
    ) -> Option<usize> {
        self.redirect = None;
        let reply = Reply::bare(msg);
        // RFC 5780 applies to UDP requests that reached one of its four addresses; anywhere
        // else its request attributes are unknown (420), as for a server without it.
        let nat = self
            .shared
            .config
            .rfc5780
            .filter(|r| tuple.transport == Transport::Udp && r.serves(tuple.server))
            .filter(|_| !msg.is_rfc3489());
        let known =
            |t: u16| attr_type::is_known(t) && (nat.is_some() || !attr_type::is_rfc5780_request(t));
        if let Some(len) = self.reject_unknown_by(&reply, known, out) {
            return len;
        }
        let answer = match nat {
            Some(r) => match NatRequest::decode(msg) {
                Ok(req) => Some(NatAnswer::decide(&r, req, tuple)),
                Err(code) => return self.error(&reply, code, out),
            },
            None => None,
        };
        let mut b = self.start(msg, msg.message_type().success(), out)?;
        if msg.is_rfc3489() {
            b.add(&Attribute::MappedAddress(tuple.client)).ok()?;
        } else {
            b.add(&Attribute::XorMappedAddress(tuple.client)).ok()?;
        }
        if let Some(a) = answer {
            // MAPPED-ADDRESS too, as RFC 5780 clients (turnutils_natdiscovery) expect.
            b.add(&Attribute::MappedAddress(tuple.client)).ok()?;
            b.add(&Attribute::ResponseOrigin(a.from)).ok()?;
            b.add(&Attribute::OtherAddress(a.other)).ok()?;
            if a.padding > 0 {
                b.add(&Attribute::Padding(
                    &[0u8; MAX_RESPONSE_PADDING][..a.padding],
                ))
                .ok()?;
            }
            if a.from != tuple.server || a.to != tuple.client {
                self.redirect = Some((a.from, a.to));
            }
        }
        self.stats.binding_responses.inc();
        self.finish(&reply, b)
    }
}
