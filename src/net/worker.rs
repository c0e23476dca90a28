//! One worker thread: its runtime and tasks.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

use super::admin::{AdminCmd, admin_loop};
use super::relay::{NetRelays, Reserved};
use super::stream::{StreamKind, tcp_accept_loop};
use super::udp::udp_loop;
use super::{NetShared, Worker, gso, listen, sys};
use crate::turn::{PEER_HEADROOM, PEER_TAILROOM, Server};
use ternd_io::{RECV_BUF, RELAY_BATCH};

pub(super) fn run_worker(
    index: usize,
    sockets: listen::WorkerSockets,
    server: Server,
    net: Arc<NetShared>,
    reserved: Reserved,
    admin: mpsc::UnboundedReceiver<AdminCmd>,
    shutdown: watch::Receiver<bool>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(worker = index, error = %e, "cannot start worker runtime");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let worker = Rc::new(Worker {
            server: RefCell::new(server),
            relays: RefCell::new(HashMap::new()),
            reserved,
            listeners: RefCell::new(HashMap::new()),
            tcp_clients: RefCell::new(HashMap::new()),
            tcp_listeners: RefCell::new(HashMap::new()),
            tcp_peers: RefCell::new(HashMap::new()),
            splices: RefCell::new(HashMap::new()),
            splice_requests: RefCell::new(HashMap::new()),
            peer_batch: RefCell::new(sys::RecvBatch::new(
                RELAY_BATCH,
                PEER_HEADROOM,
                RECV_BUF,
                PEER_TAILROOM,
            )),
            peer_queue: RefCell::new(Vec::with_capacity(RELAY_BATCH)),
            gso: gso::Gso::new(net.udp_gso),
            net,
        });
        let mut tasks = Vec::new();
        for (addr, sock) in sockets.udp {
            match UdpSocket::from_std(sock) {
                Ok(sock) => {
                    let sock = Rc::new(sock);
                    worker.listeners.borrow_mut().insert(addr, sock.clone());
                    tasks.push(tokio::task::spawn_local(udp_loop(sock, addr, worker.clone(), shutdown.clone())));
                }
                Err(e) => tracing::error!(worker = index, %addr, error = %e, "cannot register UDP socket"),
            }
        }
        for (addr, l) in sockets.tcp {
            match TcpListener::from_std(l) {
                Ok(l) => tasks.push(tokio::task::spawn_local(tcp_accept_loop(
                    l,
                    addr,
                    StreamKind::Tcp,
                    worker.clone(),
                    shutdown.clone(),
                ))),
                Err(e) => tracing::error!(worker = index, %addr, error = %e, "cannot register TCP listener"),
            }
        }
        for (addr, l) in sockets.tls {
            match TcpListener::from_std(l) {
                Ok(l) => tasks.push(tokio::task::spawn_local(tcp_accept_loop(
                    l,
                    addr,
                    StreamKind::Tls,
                    worker.clone(),
                    shutdown.clone(),
                ))),
                Err(e) => tracing::error!(worker = index, %addr, error = %e, "cannot register TLS listener"),
            }
        }
        tasks.push(tokio::task::spawn_local(admin_loop(worker.clone(), admin, shutdown.clone())));
        tasks.push(tokio::task::spawn_local(timer_loop(worker.clone(), shutdown.clone())));
        for t in tasks {
            let _ = t.await;
        }
        // Shutdown: end every allocation (accounting lines), close relay sockets.
        let mut relays = NetRelays { worker: &worker };
        worker.server.borrow_mut().shutdown(Instant::now(), &mut relays);
        worker.relays.borrow_mut().clear();
    });
}

async fn timer_loop(worker: Rc<Worker>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let mut relays = NetRelays { worker: &worker };
        worker
            .server
            .borrow_mut()
            .handle_timeout(Instant::now(), &mut relays);
        worker.drain_outputs();
    }
}
