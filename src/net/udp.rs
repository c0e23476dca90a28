//! The server's side of the UDP floor: what `ternd_io` reports, added to a worker's
//! counters, and which client packets must not overtake queued sends.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::relay::NetRelays;
use super::{OUT_BUF, SockKind, Worker, act, count_flushed, count_send_error, gso, sys};
use crate::turn::{FiveTuple, Outcome, Transport};
use ternd_io::{BATCHES_PER_WAKE, LISTENER_BATCH, RECV_BUF, recv_batch, send_now};

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

pub(super) async fn udp_loop(
    sock: Rc<UdpSocket>,
    local: SocketAddr,
    worker: Rc<Worker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut batch = sys::RecvBatch::new(LISTENER_BATCH, 0, RECV_BUF, 0);
    let mut out = vec![0u8; OUT_BUF];
    // Datagrams for peers, sent when the batch is done (in GSO runs where they can be).
    let mut queue: Vec<gso::Queued> = Vec::with_capacity(LISTENER_BATCH);
    // The kernel's drop count for this listener as last read (SO_RXQ_OVFL).
    let mut rx_drops = sys::RxDrops::default();
    loop {
        tokio::select! {
            r = sock.readable() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
        // Up to a few batches per wake-up, so one busy listener cannot starve the rest.
        let mut drained = false;
        for _ in 0..BATCHES_PER_WAKE {
            let got = match recv_batch(&sock, &mut batch) {
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
            let dropped = rx_drops.delta(batch.rx_drops());
            if dropped > 0 {
                worker
                    .server
                    .borrow()
                    .stats()
                    .listener_rx_queue_drops
                    .add(dropped);
            }
            let now = Instant::now();
            let flush = |queue: &mut Vec<gso::Queued>, batch: &sys::RecvBatch| {
                let flushed = gso::flush(queue, batch, &worker.gso, |via| {
                    worker.relays.borrow().get(&via).map(|r| r.sock.clone())
                });
                let server = worker.server.borrow();
                count_flushed(
                    flushed,
                    server.stats(),
                    &server.stats().dropped,
                    SockKind::Relay,
                );
            };
            for i in 0..got {
                let (n, from) = batch.meta(i);
                let Some(from) = from else { continue };
                // Data queued before a request leaves before the request can end its
                // allocation, as it would have without the queue.
                if !queue.is_empty() && may_change_state(&batch.slot(i)[..n]) {
                    flush(&mut queue, &batch);
                }
                let packet = &batch.slot_mut(i)[..n];
                let tuple = FiveTuple {
                    client: from,
                    server: local,
                    transport: Transport::Udp,
                };
                let mut relays = NetRelays { worker: &worker };
                let outcome = worker.server.borrow_mut().handle_client(
                    packet,
                    tuple,
                    now,
                    &mut out,
                    &mut relays,
                );
                if let Outcome::Forward {
                    relay,
                    peer,
                    start,
                    len,
                } = outcome
                {
                    queue.push(gso::Queued {
                        via: relay,
                        to: peer,
                        slot: i,
                        start,
                        len,
                    });
                    continue;
                }
                act(&worker, outcome, packet, &out, |bytes| {
                    // Never wait on a full socket buffer: a dropped answer is a lost datagram.
                    if let Err(e) = send_now(&sock, bytes, from) {
                        let server = worker.server.borrow();
                        let stats = server.stats();
                        count_send_error(stats, &stats.dropped, SockKind::Listener, &e);
                    }
                });
            }
            flush(&mut queue, &batch);
            if got < batch.slots() {
                drained = true; // and the readiness cleared
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
