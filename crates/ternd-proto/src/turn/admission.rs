//! Cluster admission: an Allocate that passed every local check waits, unanswered, for the
//! cluster to count it against its user's quota on all nodes ([`Command::Admit`]); the
//! verdict ([`Server::admit`]) runs the same request through the core again, which then
//! grants it (or answers 486). Waiting costs nothing but the request's bytes: no port,
//! no quota slot is held meanwhile. Retransmissions of a waiting request are dropped; a
//! verdict that never comes is forgotten after [`ADMISSION_TIMEOUT`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Server;
use super::command::{Admission, Command};
use super::relays::Relays;
use super::types::{FiveTuple, Outcome};
use crate::stun::Message;

/// How long an Allocate waits for the cluster's verdict before it is forgotten (the
/// client's retransmission then asks again).
pub const ADMISSION_TIMEOUT: Duration = Duration::from_secs(5);
/// Most Allocates one worker keeps waiting; past it new ones get 508.
pub const MAX_WAITING: usize = 1024;
/// Longest Allocate kept while it waits (a real one is a few hundred bytes).
const MAX_WAITING_PACKET: usize = 2048;

/// An Allocate waiting for its verdict.
#[derive(Debug)]
struct Waiting {
    transaction: [u8; 12],
    id: u64,
    user: String,
    deadline: Instant,
    /// The request, to run again when the verdict comes (taken then).
    packet: Vec<u8>,
    /// The verdict, set while the request runs again.
    verdict: Option<bool>,
}

/// The Allocates one worker keeps waiting, by 5-tuple (one each).
#[derive(Debug, Default)]
pub(super) struct WaitingRoom {
    by_tuple: HashMap<FiveTuple, Waiting>,
}

impl WaitingRoom {
    /// How many wait.
    pub(super) fn len(&self) -> usize {
        self.by_tuple.len()
    }
}

/// What the admission step decides for an Allocate.
pub(super) enum Step {
    /// No cluster verdict is needed: go on.
    Local,
    /// Asked: answer nothing now.
    Wait,
    /// The cluster admitted it under this allocation id: go on.
    Granted(u64),
    /// The cluster refused it (its user is at its quota on the cluster): 486.
    Refused,
    /// Too many wait already (or the request is too big to keep): 508.
    Busy,
}

impl Server {
    /// The admission step of an Allocate from `tuple` by `user` (see the module docs).
    pub(super) fn admission_step(
        &mut self,
        msg: &Message<'_>,
        tuple: FiveTuple,
        user: &str,
        now: Instant,
    ) -> Step {
        if !self.shared.config.cluster_admission || self.limits().user_quota == 0 {
            return Step::Local;
        }
        let transaction = msg.transaction_id().0;
        if let Some(w) = self.waiting.by_tuple.get(&tuple) {
            match w.verdict {
                Some(granted) if w.transaction == transaction => {
                    let id = w.id;
                    self.waiting.by_tuple.remove(&tuple);
                    return if granted {
                        Step::Granted(id)
                    } else {
                        Step::Refused
                    };
                }
                // A retransmission (or another Allocate) while one waits: dropped.
                _ if w.deadline > now => return Step::Wait,
                // One that waited too long: forgotten, this one asks afresh.
                _ => {
                    self.forget_waiting(&tuple);
                }
            }
        }
        let packet = msg.as_bytes();
        if packet.len() > MAX_WAITING_PACKET {
            return Step::Busy;
        }
        if self.waiting.by_tuple.len() >= MAX_WAITING {
            let expired: Vec<FiveTuple> = self
                .waiting
                .by_tuple
                .iter()
                .filter(|(_, w)| w.deadline <= now)
                .map(|(t, _)| *t)
                .collect();
            for t in &expired {
                self.forget_waiting(t);
            }
            if self.waiting.by_tuple.len() >= MAX_WAITING {
                return Step::Busy;
            }
        }
        self.next_id += 1;
        let id = self.id_prefix | self.next_id;
        self.waiting.by_tuple.insert(
            tuple,
            Waiting {
                transaction,
                id,
                user: user.to_string(),
                deadline: now + ADMISSION_TIMEOUT,
                packet: packet.to_vec(),
                verdict: None,
            },
        );
        self.stats.admissions_asked.inc();
        self.commands.push_back(Command::Admit {
            admission: Admission {
                id,
                user: user.to_string(),
                tuple,
                transaction,
                asked: now,
            },
        });
        Step::Wait
    }

    /// Drops a waiting Allocate whose verdict is no longer wanted (also when its TCP or
    /// TLS connection closed).
    pub(super) fn forget_waiting(&mut self, tuple: &FiveTuple) {
        if let Some(w) = self.waiting.by_tuple.remove(tuple)
            && w.verdict == Some(true)
        {
            self.commands.push_back(Command::Withdrawn {
                id: w.id,
                user: w.user,
            });
        }
    }

    /// The cluster's verdict on `admission` (from a [`Command::Admit`]): the waiting
    /// Allocate runs again and gets its answer now, in the returned [`Outcome`] (send it
    /// on `admission.tuple`: from the listener at `tuple.server` for UDP, on the
    /// connection for TCP and TLS), then drain [`Server::poll_command`] and
    /// [`Server::poll_output`] as after any input. A verdict for an Allocate no longer
    /// waiting (forgotten, or its client gone) is [`Outcome::Consumed`], and a granted one
    /// then comes back as [`Command::Withdrawn`].
    pub fn admit(
        &mut self,
        admission: Admission,
        granted: bool,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Outcome {
        let tuple = admission.tuple;
        let packet = match self.waiting.by_tuple.get_mut(&tuple) {
            Some(w)
                if w.transaction == admission.transaction
                    && w.id == admission.id
                    && w.verdict.is_none() =>
            {
                w.verdict = Some(granted);
                std::mem::take(&mut w.packet)
            }
            _ => {
                if granted {
                    self.commands.push_back(Command::Withdrawn {
                        id: admission.id,
                        user: admission.user,
                    });
                }
                return Outcome::Consumed;
            }
        };
        let outcome = self.handle_client(&packet, tuple, now, out, relays);
        // The request did not get as far as its verdict this time (its nonce went stale
        // meanwhile, say): the verdict is not used.
        if self
            .waiting
            .by_tuple
            .get(&tuple)
            .is_some_and(|w| w.id == admission.id)
        {
            self.forget_waiting(&tuple);
        }
        outcome
    }

    /// Allocates waiting for a cluster verdict on this worker.
    pub fn waiting_admissions(&self) -> usize {
        self.waiting.len()
    }
}
