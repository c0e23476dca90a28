//! Expiry and teardown: what [`Server::handle_timeout`] does when a deadline passes
//! (allocations, permissions, channels, RFC 6062 connections, reservations), and the end
//! of an allocation, whatever its reason.

use std::cmp::Reverse;
use std::time::Instant;

use super::Server;
use super::allocation::Channel;
use super::command::{AccountingRecord, ClientAddr, Command, RelayAddr};
use super::relays::Relays;
use super::shared::Reservation;
use super::types::{EndReason, FiveTuple};

impl Server {
    /// Expires what is due at `now`: allocations (their relay sockets are closed by the
    /// [`Command::CloseRelay`]s it queues), permissions, channels (announced with
    /// [`Command::ChannelUnbound`]) and port reservations (released through `relays`).
    pub fn handle_timeout(&mut self, now: Instant, relays: &mut dyn Relays) {
        while let Some(&Reverse((t, idx))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(Some(alloc)) = self.slots.get(idx as usize) else {
                continue;
            };
            if alloc.scheduled != t {
                continue; // stale: superseded by an earlier entry that already fired
            }
            if alloc.expires <= now {
                self.remove(idx, now, EndReason::Expired, relays);
                continue;
            }
            if alloc.tcp.is_some() {
                self.tcp_expire(idx, now);
            }
            let Some(Some(alloc)) = self.slots.get_mut(idx as usize) else {
                continue;
            };
            let commands = &mut self.commands;
            let next = alloc.sweep(now, &mut |cmd| commands.push_back(cmd));
            alloc.scheduled = next;
            self.timers.push(Reverse((next, idx)));
        }
        // Reservations are shared; any worker may drop the expired ones.
        let expired: Vec<Reservation> = match self.shared.reservations.lock() {
            Ok(mut r) => {
                let mut gone = Vec::new();
                r.retain(|_, v| {
                    let keep = v.expires > now;
                    if !keep {
                        gone.push(v.clone());
                    }
                    keep
                });
                gone
            }
            Err(_) => Vec::new(),
        };
        for r in expired {
            self.shared.quota_release(&r.user, r.client);
            relays.release(r.addr);
        }
    }

    /// Ends the allocation of a 5-tuple whose connection closed (TCP/TLS clients), with
    /// its TCP connections; or, for a client data connection (RFC 6062), closes its peer
    /// connection.
    pub fn close_tuple(&mut self, tuple: &FiveTuple, now: Instant, relays: &mut dyn Relays) {
        self.forget_waiting(tuple);
        if let Some(&idx) = self.by_tuple.get(tuple) {
            self.remove(idx, now, EndReason::ConnectionClosed, relays);
        } else {
            self.tcp_close_data(tuple);
        }
    }

    /// Ends every allocation (graceful shutdown); their accounting records come out of
    /// [`Server::poll_command`].
    pub fn shutdown(&mut self, now: Instant, relays: &mut dyn Relays) {
        let all: Vec<u32> = self.by_tuple.values().copied().collect();
        for idx in all {
            self.remove(idx, now, EndReason::Shutdown, relays);
        }
    }

    /// Tears allocation `idx` down (for `why`): its TCP connections, its reservation, its
    /// indexes and its quota; counts it and queues, in this order, a
    /// [`Command::ChannelUnbound`] per bound channel (by number), a [`Command::CloseRelay`]
    /// per relay socket and its [`Command::AllocationEnded`].
    pub(super) fn remove(
        &mut self,
        idx: u32,
        now: Instant,
        why: EndReason,
        relays: &mut dyn Relays,
    ) {
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return;
        };
        let Some(mut a) = slot.take() else { return };
        let transport = a.relay_transport();
        self.free.push(idx);
        if let Some(tcp) = a.tcp.take() {
            self.tcp_close_all(tcp, a.tuple, why);
        }
        // A reservation nobody claimed ends with the allocation that made it.
        if let Some(t) = a.reservation.take()
            && let Some(r) = self.shared.take_reservation(&t)
        {
            relays.release(r.addr);
        }
        self.by_tuple.remove(&a.tuple);
        for r in a.relay_sockets() {
            self.by_relay.remove(&r);
        }
        self.shared
            .remove_live_relays(transport, a.relayed_addresses());
        let mut channels: Vec<(u16, Channel)> = a.channels.iter().map(|(&n, &c)| (n, c)).collect();
        channels.sort_unstable_by_key(|&(n, _)| n);
        for (n, c) in channels {
            if let Some(cmd) = a.unbound(n, &c) {
                self.commands.push_back(cmd);
            }
        }
        for r in a.relay_sockets() {
            self.commands.push_back(Command::CloseRelay {
                relay: RelayAddr(r),
            });
        }
        self.shared.quota_release(&a.user, a.tuple.client.ip());
        self.stats.allocations_ended.inc();
        match why {
            EndReason::Expired => self.stats.ended_expired.inc(),
            EndReason::Deleted => self.stats.ended_deleted.inc(),
            EndReason::ConnectionClosed => self.stats.ended_connection_closed.inc(),
            EndReason::Admin => self.stats.ended_admin.inc(),
            EndReason::Shutdown => self.stats.ended_shutdown.inc(),
        }
        self.stats
            .allocation_duration
            .observe(now.saturating_duration_since(a.started));
        let record = AccountingRecord {
            id: a.id,
            client: ClientAddr(a.tuple.client),
            transport: a.tuple.transport,
            relay_transport: transport,
            relay: RelayAddr(a.advertised),
            additional_relay: a.additional.map(|(_, adv)| RelayAddr(adv)),
            started_unix: a.started_unix,
            duration: now.saturating_duration_since(a.started),
            traffic: a.traffic,
            reason: why,
            user: a.user,
            username: a.username,
        };
        self.commands.push_back(Command::AllocationEnded { record });
        if self.by_tuple.is_empty() {
            // Let the timer heap and slab shrink after bursts.
            self.timers.clear();
        } else {
            self.compact_timers();
        }
    }
}
