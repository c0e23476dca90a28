//! A minimal UDP forwarder with ternd's I/O and no TURN logic, the floor the relay is
//! measured against (`ternd forwarder`, `ternd bench --mode raw`, benches/compare.sh).
//!
//! Each worker thread has its own `SO_REUSEPORT` listener; the first datagram from a client
//! gets it a "relay" socket of its own (as an allocation would), from which everything the
//! client sends goes to the peer; what the peer sends back to that socket goes to the
//! client from the listener. Same runtime, batching and send calls as the relay path.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use tokio::net::UdpSocket;

use ternd_io::gso::{self, Gso, Queued};
use ternd_io::{BATCHES_PER_WAKE, LISTENER_BATCH, RECV_BUF, RELAY_BATCH, listen, recv_batch, sys};

/// Most clients one worker forwards for; later ones are dropped (bounded state).
const MAX_CLIENTS: usize = 20_000;

struct Fwd {
    listener: Rc<UdpSocket>,
    peer: SocketAddr,
    relays: RefCell<HashMap<SocketAddr, Rc<UdpSocket>>>,
    relay_batch: RefCell<sys::RecvBatch>,
    relay_queue: RefCell<Vec<Queued>>,
    gso: Gso,
}

/// Runs the forwarder on `listen` (`workers` threads) towards `peer` for `duration`, then
/// returns. Errors come back before any thread starts.
pub fn run(
    listen: SocketAddr,
    peer: SocketAddr,
    workers: usize,
    duration: Duration,
    udp_gso: bool,
) -> Result<(), String> {
    let gso = udp_gso && ternd_io::gso_available();
    // The relay's default socket buffers, so the floor is measured with the same sizes.
    let buffers = listen::SocketBuffers {
        recv: ternd_io::DEFAULT_UDP_BUFFER,
        send: ternd_io::DEFAULT_UDP_BUFFER,
    };
    let bound = listen::bind_all(&[listen], workers.max(1), buffers).map_err(|e| e.to_string())?;
    let addr = bound.udp_addrs[0];
    eprintln!(
        "ternd forwarder: {addr} -> {peer}, {} worker(s), UDP GSO {}",
        workers.max(1),
        if gso { "on" } else { "off" }
    );
    let mut threads = Vec::new();
    for sockets in bound.per_worker {
        let Some((_, std_sock)) = sockets.udp.into_iter().next() else {
            continue;
        };
        threads.push(
            std::thread::Builder::new()
                .name("ternd-forwarder".into())
                .spawn(move || worker(std_sock, peer, duration, gso))
                .map_err(|e| e.to_string())?,
        );
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn worker(std_sock: std::net::UdpSocket, peer: SocketAddr, duration: Duration, gso: bool) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let Ok(listener) = UdpSocket::from_std(std_sock) else {
            return;
        };
        let fwd = Rc::new(Fwd {
            listener: Rc::new(listener),
            peer,
            relays: RefCell::new(HashMap::new()),
            relay_batch: RefCell::new(sys::RecvBatch::new(RELAY_BATCH, 0, RECV_BUF, 0)),
            relay_queue: RefCell::new(Vec::with_capacity(RELAY_BATCH)),
            gso: Gso::new(gso),
        });
        let _ = tokio::time::timeout(duration, listener_loop(fwd)).await;
    });
}

async fn listener_loop(fwd: Rc<Fwd>) {
    let mut batch = sys::RecvBatch::new(LISTENER_BATCH, 0, RECV_BUF, 0);
    let mut queue: Vec<Queued> = Vec::with_capacity(LISTENER_BATCH);
    loop {
        if fwd.listener.readable().await.is_err() {
            return;
        }
        let mut drained = false;
        for _ in 0..BATCHES_PER_WAKE {
            let got = match recv_batch(&fwd.listener, &mut batch) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(_) => continue,
            };
            for i in 0..got {
                let (n, from) = batch.meta(i);
                let Some(client) = from else { continue };
                if relay_for(&fwd, client).is_none() {
                    continue;
                }
                // Keyed by client: the relay socket is looked up again when sending.
                queue.push(Queued {
                    via: client,
                    to: fwd.peer,
                    slot: i,
                    start: 0,
                    len: n,
                });
            }
            let _ = gso::flush(&mut queue, &batch, &fwd.gso, |client| {
                fwd.relays.borrow().get(&client).cloned()
            });
            if got < batch.slots() {
                drained = true;
                break;
            }
        }
        // Only a socket that still has datagrams queued yields to the others; a drained
        // one waits for readiness straight away (one task poll less per wake-up).
        if !drained {
            tokio::task::yield_now().await;
        }
    }
}

/// The relay socket of `client`, made (with its receive task) on first use.
fn relay_for(fwd: &Rc<Fwd>, client: SocketAddr) -> Option<Rc<UdpSocket>> {
    if let Some(r) = fwd.relays.borrow().get(&client) {
        return Some(r.clone());
    }
    if fwd.relays.borrow().len() >= MAX_CLIENTS {
        return None;
    }
    let ip: IpAddr = if fwd.peer.is_ipv4() {
        Ipv4Addr::LOCALHOST.into()
    } else {
        Ipv6Addr::LOCALHOST.into()
    };
    let std_sock = std::net::UdpSocket::bind((ip, 0)).ok()?;
    std_sock.set_nonblocking(true).ok()?;
    let sock = Rc::new(UdpSocket::from_std(std_sock).ok()?);
    fwd.relays.borrow_mut().insert(client, sock.clone());
    tokio::task::spawn_local(relay_loop(fwd.clone(), sock.clone(), client));
    Some(sock)
}

async fn relay_loop(fwd: Rc<Fwd>, sock: Rc<UdpSocket>, client: SocketAddr) {
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        let mut drained = false;
        for _ in 0..BATCHES_PER_WAKE {
            let mut batch = fwd.relay_batch.borrow_mut();
            let got = match recv_batch(&sock, &mut batch) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(_) => continue,
            };
            let mut queue = fwd.relay_queue.borrow_mut();
            for i in 0..got {
                let (n, _) = batch.meta(i);
                queue.push(Queued {
                    via: client,
                    to: client,
                    slot: i,
                    start: 0,
                    len: n,
                });
            }
            let _ = gso::flush(&mut queue, &batch, &fwd.gso, |_| Some(fwd.listener.clone()));
            if got < batch.slots() {
                drained = true;
                break;
            }
        }
        // Only a socket that still has datagrams queued yields to the others; a drained
        // one waits for readiness straight away (one task poll less per wake-up).
        if !drained {
            tokio::task::yield_now().await;
        }
    }
}
