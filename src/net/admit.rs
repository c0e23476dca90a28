//! The workers' side of a cluster: each [`Command::Admit`], [`Command::Withdrawn`] and
//! ended allocation goes to the cluster task as a [`ClusterEvent`] (a bounded queue:
//! when it is full or gone, the admission is decided here by the fallback rule), and the
//! verdicts come back as operator commands to the worker that asked, which answers the
//! waiting Allocate.

use std::time::Instant;

use tokio::sync::mpsc;

use super::Worker;
use crate::turn::{Admission, Outcome, Transport};

/// Most events waiting for the cluster task; past it, admissions follow the fallback.
pub const CLUSTER_QUEUE: usize = 16_384;

/// What the workers tell the cluster task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// Worker `worker` asks whether `admission` fits its user's cluster-wide quota;
    /// answer with [`View::admit`](super::View::admit).
    Admit {
        /// The asking worker's index.
        worker: usize,
        /// What waits.
        admission: Admission,
    },
    /// Allocation `id` of `user` no longer counts (it ended, or was admitted and then
    /// refused here).
    Released {
        /// The allocation id.
        id: u64,
        /// The quota key.
        user: String,
    },
}

/// Where the workers send [`ClusterEvent`]s, and what they decide when it is full.
#[derive(Debug)]
pub(super) struct ClusterSink {
    pub(super) tx: mpsc::Sender<ClusterEvent>,
    /// The verdict when the cluster task cannot be asked (`on_unavailable = open`: yes).
    pub(super) fallback_grant: bool,
}

impl Worker {
    /// Sends an admission to the cluster task; `Some(verdict)` when it has to be decided
    /// here (no cluster task, or its queue is full).
    pub(super) fn ask_cluster(&mut self, admission: Admission) -> Option<(Admission, bool)> {
        let Some(sink) = &self.net.cluster else {
            return Some((admission, true));
        };
        match sink.tx.try_send(ClusterEvent::Admit {
            worker: self.index,
            admission,
        }) {
            Ok(()) => None,
            Err(
                mpsc::error::TrySendError::Full(ClusterEvent::Admit { admission, .. })
                | mpsc::error::TrySendError::Closed(ClusterEvent::Admit { admission, .. }),
            ) => {
                self.server.stats().cluster_fallbacks.inc();
                Some((admission, sink.fallback_grant))
            }
            Err(_) => None,
        }
    }

    /// Tells the cluster task that allocation `id` of `user` no longer counts.
    pub(super) fn release_in_cluster(&self, id: u64, user: String) {
        if let Some(sink) = &self.net.cluster
            && sink
                .tx
                .try_send(ClusterEvent::Released { id, user })
                .is_err()
        {
            // Lost: the entry lapses by itself at the end of its lease.
            self.server.stats().cluster_fallbacks.inc();
        }
    }

    /// Gives the cluster's verdict to the core and sends the waiting Allocate's answer.
    pub(super) fn deliver_verdict(&mut self, admission: Admission, granted: bool) {
        let (tuple, asked) = (admission.tuple, admission.asked);
        let outcome = self.server.admit(
            admission,
            granted,
            Instant::now(),
            &mut self.out[..],
            &mut self.relays,
        );
        if let Outcome::Reply { len } = outcome {
            super::observe_allocate(self.server.stats(), &self.out[..len], asked);
            match tuple.transport {
                Transport::Udp => self.reply_via(len, tuple.server, tuple.client),
                Transport::Tcp | Transport::Tls => {
                    if let Some(c) = self.clients.get(&tuple) {
                        c.push_answer(&self.out[..len]);
                    }
                }
            }
        }
        self.drain_outputs();
    }
}
