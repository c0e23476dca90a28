//! Two small exchanges outside an allocation's own transactions: a STUN Binding (what is
//! my public address?) and RFC 6062's ConnectionBind on a new data connection.

use std::net::SocketAddr;
use std::time::Instant;

use ternd_proto::stun::{
    Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId,
};

use super::timer::{Retransmit, Tick, Timing};
use super::{MAX_STALE, TidSource};
use crate::Error;
use crate::auth::Auth;
use crate::data;

/// One Binding request, sans-IO: retransmitted over UDP as RFC 8489 says, answered with
/// the client's mapped address.
#[derive(Debug)]
pub struct Binding {
    server: SocketAddr,
    tid: TransactionId,
    request: [u8; 28],
    len: usize,
    timer: Retransmit,
    pending_send: bool,
    done: bool,
}

impl Binding {
    /// A Binding to `server` with transaction id `tid` (random), first sent at `now`.
    pub fn new(
        server: SocketAddr,
        tid: [u8; 12],
        timing: Timing,
        reliable: bool,
        now: Instant,
    ) -> Binding {
        let tid = TransactionId(tid);
        let mut request = [0u8; 28];
        let len = data::binding_request(tid, &mut request).unwrap_or(0);
        Binding {
            server,
            tid,
            request,
            len,
            timer: Retransmit::start(timing, reliable, now),
            pending_send: true,
            done: false,
        }
    }

    /// The request to (re)send, if one is due.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, &[u8])> {
        if !std::mem::take(&mut self.pending_send) || self.done {
            return None;
        }
        Some((self.server, &self.request[..self.len]))
    }

    /// When to call [`Binding::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.done).then(|| self.timer.poll_timeout())
    }

    /// Runs the timer; `Err(Timeout)` when no answer came in time.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        match self.timer.tick(now) {
            Tick::Wait => Ok(()),
            Tick::Resend => {
                self.pending_send = true;
                Ok(())
            }
            Tick::Expired => {
                self.done = true;
                Err(Error::Timeout {
                    method: Method::BINDING,
                })
            }
        }
    }

    /// Feeds a packet: `Some` with the mapped address (or the error the server sent) if it
    /// answers this request, `None` otherwise.
    pub fn handle_input(
        &mut self,
        packet: &[u8],
        from: SocketAddr,
    ) -> Option<Result<SocketAddr, Error>> {
        if self.done || from != self.server {
            return None;
        }
        let m = Message::parse(packet).ok()?;
        if m.transaction_id() != self.tid || m.message_type().method != Method::BINDING {
            return None;
        }
        let result = match m.message_type().class {
            Class::Success => data::mapped_address(&m),
            Class::Error => {
                let (code, reason) = super::error_code(&m);
                Err(Error::Failure {
                    method: Method::BINDING,
                    code,
                    reason: reason.to_string(),
                })
            }
            _ => return None,
        };
        self.done = true;
        Some(result)
    }
}

/// RFC 6062 ConnectionBind on a data connection, sans-IO: the request with the
/// allocation's credentials, and its answer (a 438 rebuilds it with the new nonce).
/// After success the connection carries the peer's bytes, nothing else.
#[derive(Debug)]
pub struct ConnectionBind {
    auth: Auth,
    connection_id: u32,
    tids: TidSource,
    fingerprint: bool,
    tid: Option<TransactionId>,
    stale: u8,
}

impl ConnectionBind {
    pub(super) fn new(
        auth: Auth,
        connection_id: u32,
        tids: TidSource,
        fingerprint: bool,
    ) -> ConnectionBind {
        ConnectionBind {
            auth,
            connection_id,
            tids,
            fingerprint,
            tid: None,
            stale: 0,
        }
    }

    /// The CONNECTION-ID this binds.
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }

    /// The request to write on the data connection.
    pub fn request(&mut self) -> Result<Vec<u8>, Error> {
        let tid = self.tids.next();
        let mut out = vec![0u8; 512];
        let mut b = MessageBuilder::new(
            &mut out,
            MessageType::new(Method::CONNECTION_BIND, Class::Request),
            tid,
        )?;
        b.add(&Attribute::ConnectionId(self.connection_id))?;
        self.auth.sign(&mut b)?;
        if self.fingerprint {
            b.add_fingerprint()?;
        }
        let n = b.finish();
        out.truncate(n);
        self.tid = Some(tid);
        Ok(out)
    }

    /// Feeds the answer: `Ok(None)` when bound, `Ok(Some(request))` when a new nonce came
    /// and `request` must be sent, an error otherwise.
    pub fn handle_response(&mut self, packet: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let m = Message::parse(packet)?;
        if Some(m.transaction_id()) != self.tid
            || m.message_type().method != Method::CONNECTION_BIND
        {
            return Err(Error::UnknownTransaction);
        }
        match m.message_type().class {
            Class::Success if self.auth.verifies(&m) || !self.auth.ready() => Ok(None),
            Class::Success => Err(Error::Integrity {
                method: Method::CONNECTION_BIND,
            }),
            Class::Error => {
                let (code, reason) = super::error_code(&m);
                let retry = match code {
                    438 => self.stale < MAX_STALE,
                    401 => !self.auth.ready() && self.stale == 0,
                    _ => false,
                };
                if retry {
                    self.stale += 1;
                    self.auth.learn(&m, code)?;
                    return self.request().map(Some);
                }
                Err(Error::Failure {
                    method: Method::CONNECTION_BIND,
                    code,
                    reason: reason.to_string(),
                })
            }
            class => Err(Error::Unexpected {
                method: Method::CONNECTION_BIND,
                class,
            }),
        }
    }
}
