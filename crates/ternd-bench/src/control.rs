//! The control plane of `ternd bench`: one TURN client allocation (Allocate with the 401
//! round trip, CreatePermission, ChannelBind, Refresh) on a connected UDP socket.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ternd_proto::stun::{
    Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr_type,
};

/// How a request reaches the server and its answer comes back: `exchange(request, tid)`
/// sends `request` and returns the response with transaction id `tid`, or `None` on timeout.
pub(crate) trait Exchange {
    fn exchange(&mut self, sock: &UdpSocket, req: &[u8], tid: TransactionId) -> Option<Vec<u8>>;
}

/// Blocking exchange on the socket itself (nothing else reads it meanwhile): three tries,
/// 700 ms apart.
pub(crate) struct Blocking;

impl Exchange for Blocking {
    fn exchange(&mut self, sock: &UdpSocket, req: &[u8], tid: TransactionId) -> Option<Vec<u8>> {
        let mut buf = [0u8; 2048];
        for _ in 0..3 {
            sock.send(req).ok()?;
            let deadline = Instant::now() + Duration::from_millis(700);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                sock.set_read_timeout(Some(left)).ok()?;
                match sock.recv(&mut buf) {
                    Ok(n) if n >= 20 && buf[0] < 4 && buf[8..20] == tid.0 => {
                        return Some(buf[..n].to_vec());
                    }
                    Ok(_) => continue,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break;
                    }
                    Err(_) => return None,
                }
            }
        }
        None
    }
}

/// Credentials of one allocation.
#[derive(Clone)]
pub(crate) struct Creds {
    pub username: String,
    pub password: String,
    /// Realm to use; empty = learn it from the 401.
    pub realm: String,
}

/// One allocation's client state.
pub(crate) struct Alloc {
    /// Shared with the data phase's sender and receiver (one descriptor per allocation).
    pub sock: std::sync::Arc<UdpSocket>,
    pub creds: Creds,
    pub key: [u8; 16],
    pub nonce: String,
    pub relayed: Option<SocketAddr>,
    pub index: u32,
    counter: u32,
}

fn name(m: Method) -> &'static str {
    match m {
        Method::ALLOCATE => "Allocate",
        Method::REFRESH => "Refresh",
        Method::CREATE_PERMISSION => "CreatePermission",
        Method::CHANNEL_BIND => "ChannelBind",
        _ => "request",
    }
}

fn error_code(m: &Message<'_>) -> Option<(u16, String)> {
    match m.get_decoded(attr_type::ERROR_CODE)? {
        Ok(Attribute::ErrorCode(e)) => Some((e.code, e.reason.to_string())),
        _ => None,
    }
}

fn text(m: &Message<'_>, t: u16) -> Option<String> {
    match m.get_decoded(t)? {
        Ok(Attribute::Realm(s)) | Ok(Attribute::Nonce(s)) => Some(s.to_string()),
        _ => None,
    }
}

impl Alloc {
    pub fn new(sock: UdpSocket, creds: Creds, index: u32) -> Alloc {
        Alloc {
            sock: std::sync::Arc::new(sock),
            creds,
            key: [0; 16],
            nonce: String::new(),
            relayed: None,
            index,
            counter: 0,
        }
    }

    fn next_tid(&mut self) -> TransactionId {
        self.counter = self.counter.wrapping_add(1);
        let mut t = [0u8; 12];
        t[0..4].copy_from_slice(b"tbn0");
        t[4..8].copy_from_slice(&self.index.to_be_bytes());
        t[8..12].copy_from_slice(&self.counter.to_be_bytes());
        TransactionId(t)
    }

    /// One authenticated (or, with `auth` false, unauthenticated) request; on 438 (stale
    /// nonce) or a first 401 it takes the new nonce/realm and retries once. Returns the
    /// success response's bytes.
    pub fn request(
        &mut self,
        io: &mut dyn Exchange,
        method: Method,
        attrs: &[Attribute<'_>],
    ) -> Result<Vec<u8>, String> {
        for attempt in 0..3 {
            let auth = !self.nonce.is_empty();
            let tid = self.next_tid();
            let mut buf = [0u8; 1024];
            let mut b =
                MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), tid)
                    .map_err(|e| e.to_string())?;
            for a in attrs {
                b.add(a).map_err(|e| e.to_string())?;
            }
            if auth {
                b.add(&Attribute::Username(&self.creds.username))
                    .map_err(|e| e.to_string())?;
                b.add(&Attribute::Realm(&self.creds.realm))
                    .map_err(|e| e.to_string())?;
                b.add(&Attribute::Nonce(&self.nonce))
                    .map_err(|e| e.to_string())?;
                b.add_message_integrity(&self.key)
                    .map_err(|e| e.to_string())?;
            }
            b.add_fingerprint().map_err(|e| e.to_string())?;
            let n = b.finish();
            let resp = io
                .exchange(&self.sock, &buf[..n], tid)
                .ok_or_else(|| format!("no answer to {} from the server", name(method)))?;
            let m = Message::parse(&resp).map_err(|e| format!("bad answer: {e}"))?;
            match m.message_type().class {
                Class::Success => return Ok(resp),
                Class::Error => {
                    let (code, reason) = error_code(&m).unwrap_or((0, String::new()));
                    let retry = (code == 401 && (!auth || attempt == 0)) || code == 438;
                    if retry && attempt < 2 {
                        if let Some(nonce) = text(&m, attr_type::NONCE) {
                            self.nonce = nonce;
                        }
                        if self.creds.realm.is_empty() {
                            self.creds.realm =
                                text(&m, attr_type::REALM).ok_or("the 401 carries no REALM")?;
                        }
                        self.key = ternd_proto::auth::long_term_key_md5(
                            &self.creds.username,
                            &self.creds.realm,
                            &self.creds.password,
                        )
                        .map_err(|e| e.to_string())?;
                        if self.nonce.is_empty() {
                            return Err(format!("error {code} without a NONCE"));
                        }
                        continue;
                    }
                    return Err(format!("{}: error {code} {reason}", name(method)));
                }
                c => return Err(format!("{}: unexpected {c:?}", name(method))),
            }
        }
        Err(format!("{}: authentication failed", name(method)))
    }

    /// Allocate (UDP); records and returns the relayed address.
    pub fn allocate(&mut self, io: &mut dyn Exchange) -> Result<SocketAddr, String> {
        let resp = self.request(io, Method::ALLOCATE, &[Attribute::RequestedTransport(17)])?;
        let m = Message::parse(&resp).map_err(|e| e.to_string())?;
        match m.get_decoded(attr_type::XOR_RELAYED_ADDRESS) {
            Some(Ok(Attribute::XorRelayedAddress(a))) => {
                self.relayed = Some(a);
                Ok(a)
            }
            _ => Err("Allocate success without XOR-RELAYED-ADDRESS".into()),
        }
    }

    pub fn permit(&mut self, io: &mut dyn Exchange, peer: SocketAddr) -> Result<(), String> {
        self.request(
            io,
            Method::CREATE_PERMISSION,
            &[Attribute::XorPeerAddress(peer)],
        )
        .map(drop)
    }

    pub fn bind_channel(
        &mut self,
        io: &mut dyn Exchange,
        channel: u16,
        peer: SocketAddr,
    ) -> Result<(), String> {
        self.request(
            io,
            Method::CHANNEL_BIND,
            &[
                Attribute::ChannelNumber(channel),
                Attribute::XorPeerAddress(peer),
            ],
        )
        .map(drop)
    }

    pub fn refresh(&mut self, io: &mut dyn Exchange, lifetime: u32) -> Result<(), String> {
        self.request(io, Method::REFRESH, &[Attribute::Lifetime(lifetime)])
            .map(drop)
    }
}
