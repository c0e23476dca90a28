//! What the HTTP side sees of the workers: counters, metrics, and operator commands.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::{NetShared, Worker};
use crate::turn::{Admission, SessionInfo, Shared, Stats, StatsSnapshot};

/// An operator command for one worker.
pub(super) enum AdminCmd {
    List(oneshot::Sender<Vec<SessionInfo>>),
    End(u64, oneshot::Sender<bool>),
    /// End a user's sessions created at or before a UNIX second.
    EndUser(String, u64, oneshot::Sender<usize>),
    /// The cluster's verdict on an admission this worker asked for.
    Verdict(Admission, bool),
}

/// What a scrape or an operator sees of the running server: the workers' counters and
/// command channels. Cloned into the HTTP server.
#[derive(Debug)]
pub struct View {
    pub(super) stats: Vec<Arc<Stats>>,
    pub(super) admin: Vec<mpsc::UnboundedSender<AdminCmd>>,
    pub(super) shared: Arc<Shared>,
    pub(super) net: Arc<NetShared>,
    pub(super) ready: std::sync::atomic::AtomicBool,
    /// More of the exposition (a cluster's metrics), appended to the workers'.
    pub(super) more_metrics: std::sync::RwLock<Option<MoreMetrics>>,
}

/// A source of more Prometheus text for `/metrics`.
#[derive(Clone)]
pub struct MoreMetrics(pub Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for MoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MoreMetrics")
    }
}

impl std::fmt::Debug for AdminCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminCmd")
    }
}

impl View {
    /// Counters of every worker.
    pub fn worker_stats(&self) -> Vec<StatsSnapshot> {
        self.stats.iter().map(|s| s.snapshot()).collect()
    }

    /// Appends `more`'s text to every exposition from now on (it must use metric names
    /// of its own).
    pub fn add_metrics(&self, more: MoreMetrics) {
        *self
            .more_metrics
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(more);
    }

    /// The Prometheus text exposition.
    pub fn metrics(&self) -> String {
        let mut text = self.core_metrics();
        let more = self
            .more_metrics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(more) = more {
            text.push_str(&(more.0)());
        }
        text
    }

    /// The workers' part of the exposition.
    fn core_metrics(&self) -> String {
        let workers = self.worker_stats();
        let live: u64 = workers
            .iter()
            .map(|w| w.allocations_created.saturating_sub(w.allocations_ended))
            .sum();
        crate::metrics::render(
            &workers,
            crate::metrics::Gauges {
                tcp_connections: self.net.tcp_connections.load(Ordering::Relaxed) as u64,
                relay_ports_in_use: live + self.shared.reservation_count() as u64,
                draining: !self.ready.load(Ordering::Relaxed),
            },
        )
    }

    /// Every live session, from all workers.
    pub async fn list_sessions(&self) -> Vec<SessionInfo> {
        let mut all = Vec::new();
        for tx in &self.admin {
            let (reply, rx) = oneshot::channel();
            if tx.send(AdminCmd::List(reply)).is_ok()
                && let Ok(list) = rx.await
            {
                all.extend(list);
            }
        }
        all.sort_by_key(|s| s.id);
        all
    }

    /// Ends session `id` at once; false if no worker has it.
    pub async fn end_session(&self, id: u64) -> bool {
        let worker = (id >> 48) as usize;
        let Some(tx) = self.admin.get(worker) else {
            return false;
        };
        let (reply, rx) = oneshot::channel();
        if tx.send(AdminCmd::End(id, reply)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Ends every session of `user` at once; returns how many ended.
    pub async fn end_user_sessions(&self, user: &str) -> usize {
        self.end_user_sessions_started_by(user, u64::MAX).await
    }

    /// Ends the sessions of `user` created at or before `before_unix` (UNIX seconds; a
    /// revocation's time); returns how many ended.
    pub async fn end_user_sessions_started_by(&self, user: &str, before_unix: u64) -> usize {
        let mut n = 0;
        for tx in &self.admin {
            let (reply, rx) = oneshot::channel();
            if tx
                .send(AdminCmd::EndUser(user.to_string(), before_unix, reply))
                .is_ok()
            {
                n += rx.await.unwrap_or(0);
            }
        }
        n
    }

    /// Gives the cluster's verdict on an admission ([`ClusterEvent::Admit`]) to the worker
    /// that asked.
    ///
    /// [`ClusterEvent::Admit`]: super::ClusterEvent::Admit
    pub fn admit(&self, worker: usize, admission: Admission, granted: bool) {
        if let Some(tx) = self.admin.get(worker) {
            let _ = tx.send(AdminCmd::Verdict(admission, granted));
        }
    }

    /// The state the workers' cores share (quotas, the cluster's view).
    pub fn core(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// True while the server accepts new allocations.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

impl crate::http::Backend for View {
    fn metrics(&self) -> String {
        View::metrics(self)
    }

    fn ready(&self) -> bool {
        View::ready(self)
    }

    fn admin(&self) -> Option<&dyn crate::http::Admin> {
        Some(self)
    }
}

impl crate::http::Admin for View {
    fn sessions(&self) -> BoxFuture<'_, serde_json::Value> {
        Box::pin(
            async move { serde_json::to_value(self.list_sessions().await).unwrap_or_default() },
        )
    }

    fn kill_session(&self, id: u64) -> BoxFuture<'_, bool> {
        Box::pin(self.end_session(id))
    }

    fn kill_user(&self, user: String) -> BoxFuture<'_, usize> {
        Box::pin(async move { self.end_user_sessions(&user).await })
    }
}

impl Worker {
    /// Carries out an operator command.
    pub(super) fn handle_admin(&mut self, cmd: AdminCmd) {
        let now = Instant::now();
        match cmd {
            AdminCmd::List(reply) => {
                let _ = reply.send(self.server.sessions(now));
            }
            AdminCmd::End(id, reply) => {
                let _ = reply.send(self.server.end_session(id, now, &mut self.relays));
            }
            AdminCmd::EndUser(user, before, reply) => {
                let n =
                    self.server
                        .end_user_sessions_started_by(&user, before, now, &mut self.relays);
                let _ = reply.send(n);
            }
            AdminCmd::Verdict(admission, granted) => {
                self.deliver_verdict(admission, granted);
                return;
            }
        }
        self.drain_outputs();
    }
}
