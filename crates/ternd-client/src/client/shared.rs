//! What the driver task and the handles (`RelaySocket`, `TcpAllocation`) share: the
//! sans-IO allocation behind one std mutex (never held across an await), the receive ring,
//! what the events said, the way to write to the server, and the notifications.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use super::conn::ServerStream;
use super::ring::Ring;
use crate::{Allocation, Error, Event, Timing};

/// How many Connect results, ConnectionAttempts and permission failures are kept for
/// their waiters (older ones are dropped beyond it).
const KEEP: usize = 64;

/// Where the allocation is, as the handles see it.
#[derive(Debug)]
pub(super) enum State {
    Allocating,
    Ready,
    Failed(Error),
    Closed,
}

/// The state behind the mutex.
#[derive(Debug)]
pub(super) struct Inner {
    pub(super) alloc: Allocation,
    pub(super) ring: Ring,
    pub(super) state: State,
    /// Counts events; a waiter compares it to what it saw when it started.
    pub(super) seq: u64,
    /// PermissionFailed events: when, for which address, why.
    pub(super) permission_failures: VecDeque<(u64, IpAddr, Error)>,
    /// ChannelFailed events: when, for which peer, why.
    pub(super) channel_failures: VecDeque<(u64, SocketAddr, Error)>,
    /// Connect answers not yet taken.
    pub(super) connects: VecDeque<(SocketAddr, Result<u32, Error>)>,
    /// ConnectionAttempt indications not yet accepted.
    pub(super) attempts: VecDeque<(SocketAddr, u32)>,
    /// The handle was dropped: delete the allocation (best effort) and end.
    pub(super) owner_gone: bool,
    /// End the driver now.
    pub(super) stop: bool,
    /// The driver ended.
    pub(super) driver_done: bool,
}

impl Inner {
    fn new(alloc: Allocation, ring: Ring) -> Inner {
        Inner {
            alloc,
            ring,
            state: State::Allocating,
            seq: 0,
            permission_failures: VecDeque::new(),
            channel_failures: VecDeque::new(),
            connects: VecDeque::new(),
            attempts: VecDeque::new(),
            owner_gone: false,
            stop: false,
            driver_done: false,
        }
    }

    /// Takes the allocation's events; true if there were any.
    pub(super) fn pump(&mut self) -> bool {
        let mut any = false;
        while let Some(ev) = self.alloc.poll_event() {
            any = true;
            self.seq += 1;
            match ev {
                Event::Allocated { .. } => {
                    if matches!(self.state, State::Allocating) {
                        self.state = State::Ready;
                    }
                }
                Event::Failed(e) => self.state = State::Failed(e),
                Event::Closed => self.state = State::Closed,
                Event::PermissionFailed { ip, error } => {
                    keep(&mut self.permission_failures, (self.seq, ip, error));
                }
                Event::ChannelFailed { peer, error } => {
                    keep(&mut self.channel_failures, (self.seq, peer, error));
                }
                Event::Connected {
                    peer,
                    connection_id,
                } => keep(&mut self.connects, (peer, Ok(connection_id))),
                Event::ConnectFailed { peer, error } => {
                    keep(&mut self.connects, (peer, Err(error)));
                }
                Event::ConnectionAttempt {
                    peer,
                    connection_id,
                } => keep(&mut self.attempts, (peer, connection_id)),
                // Permissions and channels are read from the allocation itself; the rest
                // needs nothing.
                _ => {}
            }
        }
        any
    }

    /// Ok while the allocation can be used; the reason it cannot otherwise.
    pub(super) fn usable(&self) -> Result<(), Error> {
        match &self.state {
            State::Ready if !self.driver_done => Ok(()),
            State::Ready | State::Closed => Err(Error::Closed),
            State::Allocating => Err(Error::NotAllocated),
            State::Failed(e) => Err(e.duplicate()),
        }
    }

    /// True once nothing more will happen.
    pub(super) fn terminal(&self) -> bool {
        self.driver_done || matches!(self.state, State::Failed(_) | State::Closed)
    }

    /// The error of a PermissionFailed for `ip` after event `since`.
    pub(super) fn permission_failure(&self, ip: IpAddr, since: u64) -> Option<Error> {
        self.permission_failures
            .iter()
            .rev()
            .find(|(seq, i, _)| *seq > since && *i == ip)
            .map(|(_, _, e)| e.duplicate())
    }
}

impl Inner {
    /// The error of a ChannelFailed for `peer` after event `since`.
    pub(super) fn channel_failure(&self, peer: SocketAddr, since: u64) -> Option<Error> {
        self.channel_failures
            .iter()
            .rev()
            .find(|(seq, p, _)| *seq > since && *p == peer)
            .map(|(_, _, e)| e.duplicate())
    }
}

fn keep<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() == KEEP {
        q.pop_front();
    }
    q.push_back(item);
}

/// How the handles and the driver write to the server.
#[derive(Debug)]
pub(super) enum Writer {
    Udp(Arc<UdpSocket>),
    /// The stream's write half; the driver replaces it after a redirect.
    Stream(tokio::sync::Mutex<WriteHalf<ServerStream>>),
}

impl Writer {
    /// Sends one message or frame (whole) to `to` (a stream goes to its own peer).
    pub(super) async fn send(&self, packet: &[u8], to: SocketAddr) -> Result<(), Error> {
        match self {
            Writer::Udp(s) => {
                s.send_to(packet, to).await?;
            }
            Writer::Stream(w) => {
                let mut w = w.lock().await;
                w.write_all(packet).await?;
                w.flush().await?;
            }
        }
        Ok(())
    }
}

/// Shared by the driver and the handles.
#[derive(Debug)]
pub(super) struct Shared {
    inner: Mutex<Inner>,
    /// Data arrived, or the allocation ended.
    pub(super) readable: Notify,
    /// Events arrived (waiters recheck what they wait for).
    pub(super) changed: Notify,
    /// The driver has something to do (transmits queued, close, drop).
    pub(super) wake: Notify,
    pub(super) writer: Writer,
    pub(super) timing: Timing,
    pub(super) reliable: bool,
}

impl Shared {
    pub(super) fn new(alloc: Allocation, ring: Ring, writer: Writer) -> Shared {
        let timing = alloc.config().timing;
        let reliable = alloc.config().protocol.is_reliable();
        Shared {
            inner: Mutex::new(Inner::new(alloc, ring)),
            readable: Notify::new(),
            changed: Notify::new(),
            wake: Notify::new(),
            writer,
            timing,
            reliable,
        }
    }

    /// The state (a panic elsewhere while it was held does not make it unusable).
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long one transaction may take.
    pub(super) fn transaction_timeout(&self) -> Duration {
        self.timing.transaction_timeout(self.reliable)
    }

    /// Waits until `check` (run under the lock after every event) returns `Some`, or
    /// `deadline` passes (`None`). `None` deadline: no bound but the allocation's life
    /// (`check` must return on terminal states).
    pub(super) async fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut(&mut Inner) -> Option<T>,
    ) -> Option<T> {
        loop {
            let mut notified = pin!(self.changed.notified());
            notified.as_mut().enable();
            if let Some(t) = check(&mut self.lock()) {
                return Some(t);
            }
            match deadline {
                None => notified.await,
                Some(d) => {
                    let d = tokio::time::Instant::from_std(d);
                    if tokio::time::timeout_at(d, notified).await.is_err() {
                        return check(&mut self.lock());
                    }
                }
            }
        }
    }
}

impl Shared {
    /// Starts a request with `ask` (under the lock), wakes the driver, then waits at most
    /// one transaction timeout until `done` gives the result or `failed` an error from an
    /// event after the start; [`Error::Timeout`] for `method` otherwise.
    async fn ask_and_wait<T>(
        &self,
        method: ternd_proto::stun::Method,
        ask: impl FnOnce(&mut Inner) -> Result<(), Error>,
        done: impl Fn(&Inner) -> Option<T>,
        failed: impl Fn(&Inner, u64) -> Option<Error>,
    ) -> Result<T, Error> {
        let seen = {
            let mut inner = self.lock();
            inner.usable()?;
            ask(&mut inner)?;
            inner.seq
        };
        self.wake.notify_one();
        let deadline = Instant::now() + self.transaction_timeout();
        self.wait_for(Some(deadline), |inner| {
            if let Some(t) = done(inner) {
                return Some(Ok(t));
            }
            if let Some(e) = failed(inner, seen) {
                return Some(Err(e));
            }
            inner
                .terminal()
                .then(|| Err(inner.usable().err().unwrap_or(Error::Closed)))
        })
        .await
        .unwrap_or(Err(Error::Timeout { method }))
    }

    /// Installs a permission for `ip` (CreatePermission) and waits for it, at most one
    /// transaction timeout.
    pub(super) async fn permit(&self, ip: IpAddr) -> Result<(), Error> {
        self.ask_and_wait(
            ternd_proto::stun::Method::CREATE_PERMISSION,
            |inner| inner.alloc.permit(ip, Instant::now()),
            |inner| inner.alloc.has_permission(ip, Instant::now()).then_some(()),
            |inner, since| inner.permission_failure(ip, since),
        )
        .await
    }

    /// Binds a channel to `peer` (ChannelBind, which installs the permission too) and
    /// waits for it, at most one transaction timeout; returns its number.
    pub(super) async fn bind_channel(&self, peer: SocketAddr) -> Result<u16, Error> {
        self.ask_and_wait(
            ternd_proto::stun::Method::CHANNEL_BIND,
            |inner| inner.alloc.bind_channel(peer, Instant::now()).map(drop),
            |inner| inner.alloc.channel_for(peer, Instant::now()),
            |inner, since| inner.channel_failure(peer, since),
        )
        .await
    }
}

/// A handle's hold on the driver: dropping it deletes the allocation (best effort) and
/// ends the driver.
#[derive(Debug)]
pub(super) struct Owner(pub(super) Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.lock().owner_gone = true;
        self.0.wake.notify_one();
    }
}
