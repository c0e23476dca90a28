//! The sans-IO session: requests, the long-term credential mechanism, response checks.

use std::net::SocketAddr;
use std::time::Instant;

use ternd_proto::stun::{
    Attribute, BuildError, Class, Message, MessageBuilder, MessageType, Method, TransactionId,
    attr_type,
};

use crate::allocation::Grants;
use crate::auth::Auth;
use crate::{Credentials, Error};

/// How many times one request is rebuilt after 401/438 before the error is returned.
const MAX_RETRIES: u8 = 2;

/// A request written by [`Session::request`] or [`Session::build_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Its transaction id (the answer carries the same).
    pub tid: TransactionId,
    /// Its length in the caller's buffer.
    pub len: usize,
    /// Its method.
    pub method: Method,
}

/// What a response means for the request it answers.
#[derive(Debug)]
pub enum Response<'a> {
    /// Success (MESSAGE-INTEGRITY verified if the request was authenticated); the session's
    /// [`Grants`] has been updated.
    Success(Message<'a>),
    /// The server sent a challenge (401) or a new nonce (438): build the same request again
    /// and send it.
    Retry,
}

/// The outstanding request.
#[derive(Debug, Clone)]
struct Pending {
    tid: TransactionId,
    method: Method,
    authenticated: bool,
    retries: u8,
    /// XOR-PEER-ADDRESS values of the request (CreatePermission may carry several).
    peers: Vec<SocketAddr>,
    channel: Option<u16>,
    lifetime: Option<u32>,
}

/// One client's conversation with one TURN server: its credentials, the realm and nonce
/// the server gave, the key, transaction ids, the outstanding request, and the
/// [`Grants`] the answers describe.
///
/// One request is outstanding at a time: a new [`Session::request`] replaces the previous
/// one (whose answer is then [`Error::UnknownTransaction`]).
#[derive(Debug, Clone)]
pub struct Session {
    /// The challenge learned and the key (MD5 only, USERNAME, never USERHASH).
    auth: Auth,
    tid_prefix: [u8; 8],
    counter: u32,
    fingerprint: bool,
    pending: Option<Pending>,
    /// Retries already spent on the request being rebuilt after [`Response::Retry`], and
    /// its method.
    retries: Option<(Method, u8)>,
    allocation: Grants,
}

/// The ERROR-CODE of a message: code and reason.
pub(crate) fn error_code<'a>(m: &Message<'a>) -> Option<(u16, &'a str)> {
    match m.get_decoded(attr_type::ERROR_CODE)? {
        Ok(Attribute::ErrorCode(e)) => Some((e.code, e.reason)),
        _ => None,
    }
}

impl Session {
    /// A session with `credentials`. Transaction ids are `tid_prefix` followed by a 32-bit
    /// counter: give each session a distinct (ideally random) prefix.
    pub fn new(credentials: Credentials, tid_prefix: [u8; 8]) -> Session {
        let mut auth = Auth::new(credentials);
        auth.allow_sha256 = false;
        auth.allow_userhash = false;
        Session {
            auth,
            tid_prefix,
            counter: 0,
            fingerprint: true,
            pending: None,
            retries: None,
            allocation: Grants::default(),
        }
    }

    /// The credentials.
    pub fn credentials(&self) -> &Credentials {
        self.auth.credentials()
    }

    /// The username requests carry.
    pub fn username(&self) -> &str {
        &self.auth.credentials().username
    }

    /// The realm in use (configured, or learned from a 401).
    pub fn realm(&self) -> Option<&str> {
        self.auth.realm()
    }

    /// The server's current nonce.
    pub fn nonce(&self) -> Option<&str> {
        self.auth.nonce()
    }

    /// The long-term key (MD5), once the realm is known.
    pub fn key(&self) -> Option<[u8; 16]> {
        self.auth.md5_key()
    }

    /// True once a challenge was learned: requests then carry credentials.
    pub fn has_challenge(&self) -> bool {
        self.auth.ready()
    }

    /// Whether requests end with FINGERPRINT (on by default).
    pub fn set_fingerprint(&mut self, on: bool) {
        self.fingerprint = on;
    }

    /// What the server granted so far.
    pub fn grants(&self) -> &Grants {
        &self.allocation
    }

    /// The next transaction id.
    pub fn next_transaction_id(&mut self) -> TransactionId {
        self.counter = self.counter.wrapping_add(1);
        let mut t = [0u8; 12];
        t[..8].copy_from_slice(&self.tid_prefix);
        t[8..].copy_from_slice(&self.counter.to_be_bytes());
        TransactionId(t)
    }

    /// Takes the REALM (unless one is configured) and NONCE of a 401 or 438 response and
    /// derives the key: the next requests are authenticated with them.
    pub fn learn_challenge(&mut self, m: &Message<'_>) -> Result<(), Error> {
        let code = error_code(m).map_or(0, |(c, _)| c);
        self.auth.learn(m, code)
    }

    /// Writes a `method` request into `out`: the attributes `build` adds, then, if `auth`
    /// and a challenge is known, USERNAME, REALM, NONCE (with PASSWORD-ALGORITHMS and
    /// PASSWORD-ALGORITHM MD5 when the server offered a list) and MESSAGE-INTEGRITY, then
    /// FINGERPRINT (if on). It becomes the outstanding request.
    pub fn build_request(
        &mut self,
        method: Method,
        auth: bool,
        out: &mut [u8],
        build: impl FnOnce(&mut MessageBuilder<'_>) -> Result<(), BuildError>,
    ) -> Result<Request, Error> {
        let tid = self.next_transaction_id();
        let mut b = MessageBuilder::new(out, MessageType::new(method, Class::Request), tid)?;
        build(&mut b)?;
        let authenticated = auth && self.auth.sign(&mut b)?;
        if self.fingerprint {
            b.add_fingerprint()?;
        }
        let len = b.finish();
        // What the answer will confirm, read back from the request itself.
        let mut pending = Pending {
            tid,
            method,
            authenticated,
            retries: match self.retries.take() {
                Some((m, n)) if m == method => n,
                _ => 0,
            },
            peers: Vec::new(),
            channel: None,
            lifetime: None,
        };
        if let Ok(m) = Message::parse(&out[..len]) {
            for raw in m.attributes() {
                match Attribute::decode(raw, &tid) {
                    Ok(Attribute::XorPeerAddress(p)) => pending.peers.push(p),
                    Ok(Attribute::ChannelNumber(c)) => pending.channel = Some(c),
                    Ok(Attribute::Lifetime(l)) => pending.lifetime = Some(l),
                    _ => {}
                }
            }
        }
        self.pending = Some(pending);
        Ok(Request { tid, len, method })
    }

    /// Writes a `method` request with `attrs` into `out`, authenticated once a challenge is
    /// known. After [`Response::Retry`], call it again with the same arguments.
    pub fn request(
        &mut self,
        method: Method,
        attrs: &[Attribute<'_>],
        out: &mut [u8],
    ) -> Result<Request, Error> {
        self.build_request(method, true, out, |b| {
            attrs.iter().try_for_each(|a| b.add(a))
        })
    }

    /// True if `packet` is a response to the outstanding request.
    pub fn is_response(&self, packet: &[u8]) -> bool {
        match &self.pending {
            Some(p) => packet.len() >= 20 && packet[0] < 4 && packet[8..20] == p.tid.0,
            None => false,
        }
    }

    /// Gives up on the outstanding request (e.g. after a timeout).
    pub fn abandon(&mut self) {
        self.pending = None;
        self.retries = None;
    }

    /// Checks the answer to the outstanding request and applies it.
    ///
    /// A success must carry a valid MESSAGE-INTEGRITY if the request was authenticated; an
    /// error response's MESSAGE-INTEGRITY, if present, must verify too. A 401 to an
    /// unauthenticated request (or the first 401 to an authenticated one) and any 438 give
    /// [`Response::Retry`] after taking the new realm and nonce, at most twice per
    /// request; other errors give [`Error::Failure`].
    pub fn handle_response<'a>(
        &mut self,
        response: &'a [u8],
        now: Instant,
    ) -> Result<Response<'a>, Error> {
        let m = Message::parse(response)?;
        let Some(p) = self
            .pending
            .take_if(|p| p.tid == m.transaction_id() && m.message_type().method == p.method)
        else {
            return Err(Error::UnknownTransaction);
        };
        let method = p.method;
        let verified = |m: &Message<'_>| self.auth.verifies(m);
        match m.message_type().class {
            Class::Success => {
                if p.authenticated && !verified(&m) {
                    return Err(Error::Integrity { method });
                }
                self.apply(&p, &m, now);
                Ok(Response::Success(m))
            }
            Class::Error => {
                if p.authenticated && m.has_integrity() && !verified(&m) {
                    return Err(Error::Integrity { method });
                }
                let (code, reason) = error_code(&m).unwrap_or((0, ""));
                let retry = (code == 401 && (!p.authenticated || p.retries == 0)) || code == 438;
                if retry && p.retries < MAX_RETRIES && !self.auth.credentials().username.is_empty()
                {
                    self.learn_challenge(&m)?;
                    self.retries = Some((method, p.retries + 1));
                    return Ok(Response::Retry);
                }
                Err(Error::Failure {
                    method,
                    code,
                    reason: reason.to_string(),
                })
            }
            class => Err(Error::Unexpected { method, class }),
        }
    }

    fn apply(&mut self, p: &Pending, m: &Message<'_>, now: Instant) {
        let a = &mut self.allocation;
        match p.method {
            Method::ALLOCATE => a.allocated(m, now),
            Method::REFRESH => a.refreshed(m, p.lifetime, now),
            Method::CREATE_PERMISSION => a.permitted(p.peers.iter().map(|s| s.ip()), now),
            Method::CHANNEL_BIND => {
                if let (Some(number), Some(peer)) = (p.channel, p.peers.first()) {
                    a.bound(number, *peer, now);
                }
            }
            _ => {}
        }
    }
}
