//! One worker: its thread and runtime, and the one task ([`Worker::run`]) that owns its core
//! and sockets and polls them in the order the module documentation of `net` gives.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

use super::admin::AdminCmd;
use super::ready::{ReadySet, Token};
use super::relay::{RelaySockets, Reserved};
use super::stream::{Clients, StreamKind, tcp_accept_loop};
use super::udp::Listeners;
use super::{Event, NetShared, OUT_BUF, SockKind, Worker, count_send_error, gso, listen, sys};
use crate::turn::{Output, PEER_HEADROOM, PEER_TAILROOM, Server};
use ternd_io::{BATCHES_PER_WAKE, LISTENER_BATCH, RECV_BUF, RELAY_BATCH, send_now};

/// `recvmmsg` batches a turn takes from the relay sockets, and again from the listeners,
/// before the worker yields to the runtime (a socket gets at most `BATCHES_PER_WAKE` of
/// them per turn).
pub(super) const TURN_BATCHES: usize = 64;
/// Helper-task events a turn handles before the worker yields.
pub(super) const TURN_EVENTS: usize = 64;
/// The longest the worker sleeps without calling the core's `handle_timeout` (port
/// reservations expire there too, and the core does not report when).
pub(super) const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Runs worker `index` on this thread until shutdown.
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
        let ready = Arc::new(ReadySet::default());
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut listeners = Listeners::default();
        for (addr, sock) in sockets.udp {
            match UdpSocket::from_std(sock) {
                Ok(sock) => listeners.add(addr, sock, &ready),
                Err(e) => {
                    tracing::error!(worker = index, %addr, error = %e, "cannot register UDP socket");
                }
            }
        }
        let streams = sockets
            .tcp
            .into_iter()
            .map(|l| (l, StreamKind::Tcp))
            .chain(sockets.tls.into_iter().map(|l| (l, StreamKind::Tls)));
        for ((addr, l), kind) in streams {
            match TcpListener::from_std(l) {
                Ok(l) => {
                    tokio::task::spawn_local(tcp_accept_loop(
                        l,
                        addr,
                        kind,
                        net.clone(),
                        server.stats().clone(),
                        events_tx.clone(),
                        shutdown.clone(),
                    ));
                }
                Err(e) => {
                    tracing::error!(worker = index, %addr, error = %e, "cannot register TCP listener");
                }
            }
        }
        let worker = Worker {
            server,
            listeners,
            relays: RelaySockets::new(reserved, net.clone(), ready.clone(), events_tx),
            clients: Clients::default(),
            splice_requests: Default::default(),
            ready,
            events,
            admin,
            shutdown,
            listener_batch: sys::RecvBatch::new(LISTENER_BATCH, 0, RECV_BUF, 0),
            listener_queue: Vec::with_capacity(LISTENER_BATCH),
            peer_batch: sys::RecvBatch::new(RELAY_BATCH, PEER_HEADROOM, RECV_BUF, PEER_TAILROOM),
            peer_queue: Vec::with_capacity(RELAY_BATCH),
            gso: gso::Gso::new(net.udp_gso),
            out: Box::new([0; OUT_BUF]),
            net,
            index,
        };
        worker.run().await;
    });
}

/// What woke a sleeping worker.
enum Wake {
    Shutdown,
    Sockets,
    Event(Option<Event>),
    Admin(Option<AdminCmd>),
    Timer,
}

impl Worker {
    /// The worker's loop: one turn after another (see the `net` module documentation for
    /// the order and the budgets), sleeping when nothing is ready.
    async fn run(mut self) {
        let mut tokens: Vec<Token> = Vec::with_capacity(64);
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut housekeeping = Instant::now() + MAX_SLEEP;
        let mut events_open = true;
        let mut admin_open = true;
        loop {
            if !matches!(self.shutdown.has_changed(), Ok(false)) {
                break;
            }
            // 1, 2: readable sockets, relay sockets first.
            self.ready.take(&mut tokens);
            self.poll_sockets(&tokens);
            self.drain_commands();
            // 3: the helper tasks' events.
            let mut busy = false;
            for n in 0.. {
                if n == TURN_EVENTS {
                    busy = true;
                    break;
                }
                match self.events.try_recv() {
                    Ok(e) => self.handle_event(e),
                    Err(_) => break,
                }
            }
            // 4: operator commands.
            while let Ok(cmd) = self.admin.try_recv() {
                self.handle_admin(cmd);
            }
            // 5: timers.
            let now = Instant::now();
            if now >= housekeeping || self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now, &mut self.relays);
                self.drain_outputs();
                if now >= housekeeping {
                    housekeeping = now + MAX_SLEEP;
                }
            }
            if busy || !self.ready.is_empty() {
                // More to do: let the I/O driver and the connection tasks run first.
                tokio::task::yield_now().await;
                continue;
            }
            let deadline = self
                .server
                .poll_timeout()
                .map_or(housekeeping, |t| t.min(housekeeping));
            sleep
                .as_mut()
                .reset(tokio::time::Instant::from_std(deadline));
            let ready = &self.ready;
            let wake = tokio::select! {
                biased;
                _ = self.shutdown.changed() => Wake::Shutdown,
                () = poll_fn(|cx| ready.poll_ready(cx)) => Wake::Sockets,
                e = self.events.recv(), if events_open => Wake::Event(e),
                c = self.admin.recv(), if admin_open => Wake::Admin(c),
                () = &mut sleep => Wake::Timer,
            };
            match wake {
                Wake::Shutdown => break,
                Wake::Sockets | Wake::Timer => {}
                Wake::Event(Some(e)) => self.handle_event(e),
                Wake::Event(None) => events_open = false,
                Wake::Admin(Some(c)) => self.handle_admin(c),
                Wake::Admin(None) => admin_open = false,
            }
        }
        // Shutdown: end every allocation (accounting lines), close relay sockets.
        self.server.shutdown(Instant::now(), &mut self.relays);
        self.drain_outputs();
        self.relays.clear();
    }

    /// Takes datagrams from the readable sockets in `tokens`: relay sockets, then
    /// listeners, each class within [`TURN_BATCHES`]; a socket over budget is marked again.
    fn poll_sockets(&mut self, tokens: &[Token]) {
        let mut budget = TURN_BATCHES;
        for &t in tokens {
            if let Token::Relay(addr) = t {
                if budget == 0 {
                    self.ready.push(t);
                } else {
                    budget -= self.drain_relay(addr, budget.min(BATCHES_PER_WAKE));
                }
            }
        }
        let mut budget = TURN_BATCHES;
        for &t in tokens {
            if let Token::Listener(i) = t {
                if budget == 0 {
                    self.ready.push(t);
                } else {
                    budget -= self.drain_listener(i, budget.min(BATCHES_PER_WAKE));
                }
            }
        }
    }

    /// Acts on the core's queued outputs (RFC 6062): deferred answers and indications to
    /// control connections, and splice orders for data connections; then on its commands.
    pub(super) fn drain_outputs(&mut self) {
        while let Some(output) = self.server.poll_output(&mut self.out[..]) {
            match output {
                Output::Transmit { tuple, len } => {
                    if let Some(c) = self.clients.get(&tuple) {
                        c.push_answer(&self.out[..len]);
                    }
                }
                Output::Splice {
                    tuple,
                    connection_id,
                } => {
                    self.splice_requests.insert(tuple, connection_id);
                }
                Output::Handoff { tuple, worker } => {
                    // TCP clients are all served by worker 0 when TCP relaying is on.
                    tracing::warn!(client = %tuple.client, worker, "ConnectionBind for another worker; dropped");
                }
            }
        }
        self.drain_commands();
    }

    /// Sends `out[..len]` from the listener bound at `from` to `to` (RFC 5780).
    pub(super) fn reply_via(
        &self,
        len: usize,
        from: std::net::SocketAddr,
        to: std::net::SocketAddr,
    ) {
        let stats = self.server.stats();
        match self.listeners.sock(from) {
            Some(sock) => {
                if let Err(e) = send_now(&sock, &self.out[..len], to) {
                    count_send_error(stats, &stats.dropped, SockKind::Listener, &e);
                }
            }
            None => stats.dropped.inc(),
        }
    }

    /// Sends a stream client's `payload` from the relay socket at `relay` to `peer` now.
    pub(super) fn forward(
        &self,
        relay: std::net::SocketAddr,
        peer: std::net::SocketAddr,
        payload: &[u8],
    ) {
        if let Some(sock) = self.relays.sock(relay)
            && let Err(e) = send_now(&sock, payload, peer)
        {
            let stats = self.server.stats();
            count_send_error(stats, &stats.dropped, SockKind::Relay, &e);
        }
    }

    /// Acts on what a helper task reports.
    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Opened(conn) => self.stream_opened(conn),
            Event::Readable(conn) | Event::Room(conn) => self.serve_stream(&conn),
            Event::Idle(conn) => self.stream_idle(&conn),
            Event::Closed(conn) => self.stream_closed(&conn),
            Event::PeerAccepted {
                relay,
                peer,
                stream,
            } => self.peer_accepted(relay, peer, stream),
            Event::PeerConnected { id, stream } => self.peer_connected(id, stream),
        }
    }
}
