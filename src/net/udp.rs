//! The client-facing UDP listeners of a worker, and how the worker takes their datagrams:
//! a `recvmmsg` batch at a time, each datagram to the core, the datagrams it forwards to
//! peers queued and sent when the batch is done (GSO runs where they can be).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use tokio::net::UdpSocket;

use super::ready::{ReadySet, Token};
use super::{SockKind, Worker, count_flushed, count_send_error, gso, sys};
use crate::turn::{FiveTuple, Outcome, Transport};
use ternd_io::{recv_batch, send_now};

/// One listener.
#[derive(Debug)]
struct Listener {
    addr: SocketAddr,
    sock: Rc<UdpSocket>,
    /// Marks it readable in the worker's ready set.
    waker: Waker,
    /// The kernel's drop count for this listener as last read (SO_RXQ_OVFL).
    rx_drops: sys::RxDrops,
}

/// A worker's UDP listeners (a few: one per listen address, and the RFC 5780 ones).
#[derive(Debug, Default)]
pub(super) struct Listeners {
    list: Vec<Listener>,
}

impl Listeners {
    /// Adds a listener; the worker visits it on its first turn.
    pub(super) fn add(&mut self, addr: SocketAddr, sock: UdpSocket, ready: &Arc<ReadySet>) {
        let token = Token::Listener(self.list.len());
        self.list.push(Listener {
            addr,
            sock: Rc::new(sock),
            waker: ready.waker(token),
            rx_drops: sys::RxDrops::default(),
        });
        ready.push(token);
    }

    /// The listener bound at `addr`.
    pub(super) fn sock(&self, addr: SocketAddr) -> Option<Rc<UdpSocket>> {
        self.list
            .iter()
            .find(|l| l.addr == addr)
            .map(|l| l.sock.clone())
    }
}

impl Worker {
    /// Takes up to `max` batches from listener `i` (returns how many it took), hands each
    /// datagram to the core, answers at once and sends what goes to peers at the end of
    /// each batch; then re-arms the listener or, if it still has datagrams, marks it again.
    pub(super) fn drain_listener(&mut self, i: usize, max: usize) -> usize {
        let Some(l) = self.listeners.list.get(i) else {
            return 0;
        };
        let (sock, local) = (l.sock.clone(), l.addr);
        let mut used = 0;
        let mut drained = false;
        while used < max {
            used += 1;
            let got = match recv_batch(&sock, &mut self.listener_batch) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) => {
                    tracing::trace!(%local, error = %e, "UDP receive error");
                    continue;
                }
            };
            let dropped = self.listeners.list[i]
                .rx_drops
                .delta(self.listener_batch.rx_drops());
            if dropped > 0 {
                self.server.stats().listener_rx_queue_drops.add(dropped);
            }
            let now = Instant::now();
            for k in 0..got {
                let (n, from) = self.listener_batch.meta(k);
                let Some(from) = from else { continue };
                // Data queued before a request leaves before the request can end its
                // allocation, as it would have without the queue.
                if !self.listener_queue.is_empty()
                    && may_change_state(&self.listener_batch.slot(k)[..n])
                {
                    self.flush_to_peers();
                }
                let tuple = FiveTuple {
                    client: from,
                    server: local,
                    transport: Transport::Udp,
                };
                let packet = &self.listener_batch.slot_mut(k)[..n];
                let outcome = self.server.handle_client(
                    packet,
                    tuple,
                    now,
                    &mut self.out[..],
                    &mut self.relays,
                );
                match outcome {
                    Outcome::Forward {
                        relay,
                        peer,
                        start,
                        len,
                    } => self.listener_queue.push(gso::Queued {
                        via: relay,
                        to: peer,
                        slot: k,
                        start,
                        len,
                    }),
                    // Never wait on a full socket buffer: a dropped answer is a lost datagram.
                    Outcome::Reply { len } => {
                        super::observe_allocate(self.server.stats(), &self.out[..len], now);
                        if let Err(e) = send_now(&sock, &self.out[..len], from) {
                            let stats = self.server.stats();
                            count_send_error(stats, &stats.dropped, SockKind::Listener, &e);
                        }
                    }
                    Outcome::ReplyVia { len, from, to } => self.reply_via(len, from, to),
                    Outcome::Consumed | Outcome::Dropped(_) => {}
                }
            }
            self.flush_to_peers();
            if got < self.listener_batch.slots() {
                drained = true; // and the readiness cleared
                break;
            }
        }
        let l = &self.listeners.list[i];
        self.ready
            .rearm(Token::Listener(i), &l.sock, &l.waker, drained);
        used
    }

    /// Sends the datagrams the last listener batch forwards to peers.
    fn flush_to_peers(&mut self) {
        let relays = &self.relays;
        let flushed = gso::flush(
            &mut self.listener_queue,
            &self.listener_batch,
            &self.gso,
            |via| relays.sock(via),
        );
        let stats = self.server.stats();
        count_flushed(flushed, stats, &stats.dropped, SockKind::Relay);
    }
}

/// Whether a client's `packet` may be a STUN request (first two bits 0, class bits 00): the
/// only client packets that can end an allocation (Refresh with LIFETIME 0) and so close the
/// relay socket that datagrams queued before it are to leave from. A listener flushes its
/// queue before handling one; ChannelData and indications, the hot path, never need it.
pub(super) fn may_change_state(packet: &[u8]) -> bool {
    match packet {
        [a, b, ..] => a & 0xC0 == 0 && u16::from_be_bytes([*a, *b]) & 0x0110 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stun_requests_may_change_state() {
        let binding_request = [0x00, 0x01, 0, 0];
        let refresh_request = [0x00, 0x04, 0, 0];
        let send_indication = [0x00, 0x16, 0, 0];
        let success = [0x01, 0x01, 0, 0];
        let error = [0x01, 0x11, 0, 0];
        let channel_data = [0x40, 0x00, 0, 4, 1, 2, 3, 4];
        assert!(may_change_state(&binding_request));
        assert!(may_change_state(&refresh_request));
        for p in [
            &send_indication[..],
            &success,
            &error,
            &channel_data,
            &[0x00],
            &[],
        ] {
            assert!(!may_change_state(p), "{p:?}");
        }
    }
}
