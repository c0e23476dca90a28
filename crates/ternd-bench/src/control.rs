//! The control plane of `ternd bench`: one TURN client session per allocation
//! (`ternd-client`: Allocate with the 401 round trip, CreatePermission, ChannelBind,
//! Refresh) on a connected UDP socket, either read directly or, during the data phase,
//! through the receiver thread.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ternd_client::blocking::{self, Transport, Udp};
use ternd_client::{Credentials, Session};

use crate::CHANNEL;
use crate::args::{BenchArgs, Mode};
use crate::credentials::credentials;

/// How an allocation's requests reach the server and the answers come back.
#[derive(Clone, Copy)]
pub(crate) enum Via<'a> {
    /// On the socket itself (nothing else reads it meanwhile).
    Socket,
    /// Requests on the socket, answers from the running receiver over this channel.
    Receiver(&'a mpsc::Receiver<(usize, Vec<u8>)>),
}

/// Answers routed by the receiver thread: requests go out on the socket, answers come back
/// over the channel.
struct Routed<'a> {
    sock: &'a UdpSocket,
    rx: &'a mpsc::Receiver<(usize, Vec<u8>)>,
}

impl Transport for Routed<'_> {
    fn send(&mut self, packet: &[u8]) -> std::io::Result<()> {
        if self.sock.send(packet).is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<Option<usize>> {
        Ok(self.rx.recv_timeout(timeout).ok().map(|(_, m)| {
            let n = m.len().min(buf.len());
            buf[..n].copy_from_slice(&m[..n]);
            n
        }))
    }
}

/// One allocation's client state.
pub(crate) struct Alloc {
    /// Shared with the data phase's sender and receiver (one descriptor per allocation).
    pub sock: Arc<UdpSocket>,
    pub session: Session,
    pub index: u32,
}

impl Alloc {
    pub fn new(sock: UdpSocket, creds: Credentials, index: u32) -> Alloc {
        let mut prefix = [0u8; 8];
        prefix[..4].copy_from_slice(b"tbn0");
        prefix[4..].copy_from_slice(&index.to_be_bytes());
        Alloc {
            sock: Arc::new(sock),
            session: Session::new(creds, prefix),
            index,
        }
    }

    fn with<T>(
        &mut self,
        via: Via<'_>,
        op: impl FnOnce(&mut Session, &mut dyn Transport) -> Result<T, ternd_client::Error>,
    ) -> Result<T, String> {
        let r = match via {
            Via::Socket => op(&mut self.session, &mut Udp::connected(&self.sock)),
            Via::Receiver(rx) => op(
                &mut self.session,
                &mut Routed {
                    sock: &self.sock,
                    rx,
                },
            ),
        };
        r.map_err(|e| e.to_string())
    }

    /// Allocate (UDP); returns the relayed address.
    pub fn allocate(&mut self, via: Via<'_>) -> Result<SocketAddr, String> {
        self.with(via, |s, mut t| blocking::allocate(s, &mut t))
    }

    /// A permission (`send` mode) or a channel (`channel` mode) towards `peer`.
    pub fn towards(&mut self, via: Via<'_>, mode: Mode, peer: SocketAddr) -> Result<(), String> {
        match mode {
            Mode::Channel => self.with(via, |s, mut t| {
                blocking::channel_bind(s, &mut t, CHANNEL, peer)
            }),
            Mode::Send | Mode::Raw => {
                self.with(via, |s, mut t| blocking::create_permission(s, &mut t, peer))
            }
        }
    }

    pub fn refresh(&mut self, via: Via<'_>, lifetime: u32) -> Result<(), String> {
        self.with(via, |s, mut t| blocking::refresh(s, &mut t, lifetime))
    }
}

fn socket(bind: IpAddr, server: SocketAddr) -> Result<UdpSocket, String> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(server),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(|e| format!("socket: {e}"))?;
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&SocketAddr::new(bind, 0).into())
        .map_err(|e| format!("cannot bind a client socket to {bind}: {e}"))?;
    let s: UdpSocket = s.into();
    s.connect(server)
        .map_err(|e| format!("cannot connect to {server}: {e}"))?;
    Ok(s)
}

/// What [`setup`] made and measured: the allocations, the seconds spent allocating and in
/// the whole setup, and each Allocate's time (401 round trip included), nanoseconds.
pub(crate) type Setup = (Vec<Alloc>, f64, f64, hdrhistogram::Histogram<u64>);

/// Allocates, then permits or binds towards `peer`.
pub(crate) fn setup(args: &BenchArgs, peer: SocketAddr) -> Result<Setup, String> {
    let t0 = Instant::now();
    let mut each = crate::report::new_histogram();
    let mut allocating = Duration::ZERO;
    let mut allocs = Vec::with_capacity(args.allocations as usize);
    let mut learned_realm: Option<String> = None;
    if args.mode == Mode::Raw {
        // No TURN: one socket per "allocation", straight to the forwarder.
        for i in 0..args.allocations {
            let sock = socket(args.bind, args.server)?;
            let creds = Credentials::new("", "");
            allocs.push(Alloc::new(sock, creds, i));
        }
        return Ok((allocs, 0.0, t0.elapsed().as_secs_f64(), each));
    }
    for i in 0..args.allocations {
        let mut creds = credentials(args, i)?;
        if creds.realm.is_none()
            && let Some(r) = &learned_realm
        {
            // Same server, same realm; the 401 still brings this allocation its nonce.
            creds.realm = Some(r.clone());
        }
        // Whatever stops the setup, the allocations made so far are deleted: a failed
        // run must not leave them to count against the next one's quota.
        let fail = |allocs: &mut Vec<Alloc>, why: String| {
            let made = allocs.len();
            let failures = deallocate(allocs);
            format!(
                "{why} ({made} allocation(s) made before it, {} deleted)",
                made as u32 - failures
            )
        };
        if crate::interrupted() {
            return Err(fail(&mut allocs, format!("interrupted at allocation {i}")));
        }
        let sock = match socket(args.bind, args.server) {
            Ok(s) => s,
            Err(e) => return Err(fail(&mut allocs, e)),
        };
        let mut a = Alloc::new(sock, creds, i);
        let t = Instant::now();
        if let Err(e) = a.allocate(Via::Socket) {
            let why = format!("allocation {i}: {e}{}", hint(&e));
            return Err(fail(&mut allocs, why));
        }
        let took = t.elapsed();
        allocating += took;
        let _ = each.record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1));
        learned_realm = a.session.realm().map(str::to_owned);
        let towards = a.towards(Via::Socket, args.mode, peer);
        allocs.push(a);
        if let Err(e) = towards {
            let why = format!("allocation {i}: {e}{}", hint(&e));
            return Err(fail(&mut allocs, why));
        }
    }
    Ok((
        allocs,
        allocating.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        each,
    ))
}

/// What a refusal during setup means and which flag lifts it.
fn hint(error: &str) -> &'static str {
    if error.contains("486") {
        ". The server's per-user or per-IP allocation limit was hit (ternd: relay.user_quota \
         / --user-quota, default 100 per user, and --max-allocations-per-ip, default 1,000; \
         coturn: --user-quota). `ternd bench` gives each allocation its own user with \
         --secret; with --username all share one. Allocations an earlier run did not delete \
         count until they expire. For loopback benchmarking, start ternd with \
         --profile loadtest"
    } else if error.contains("508") {
        ". The server is out of capacity: its relay port range is used up (ternd: --relay-ports) \
         or its total allocation limit is reached (ternd: --total-quota), or it is draining"
    } else if error.contains("403") {
        ". The server refused the echo peer: allow it (ternd: --allow-peer 127.0.0.1/32; \
         coturn: --allow-loopback-peers)"
    } else if error.contains("401") {
        ". Check --secret (the server's REST secret) or --username/--password"
    } else {
        ""
    }
}

pub(crate) fn deallocate(allocs: &mut [Alloc]) -> u32 {
    let mut failures = 0;
    for a in allocs.iter_mut() {
        let _ = a.sock.set_nonblocking(false);
        if a.refresh(Via::Socket, 0).is_err() {
            failures += 1;
        }
    }
    failures
}
