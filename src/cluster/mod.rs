//! A cluster of ternd nodes on one Redis (`[cluster]`): cluster-wide user quotas (an
//! Allocate waits for Redis's count, [`crate::turn::Command::Admit`]), a registry of
//! nodes with their addresses and load, the sessions of every node, revocation of a
//! user on all nodes, a credentials endpoint that names the least-loaded nodes, and
//! redirects from a full or draining node.
//!
//! [`store`] is the data in Redis (its documentation has the key schema), [`types`] what
//! is stored, [`pick`] the choice of nodes, and `node` the task each node runs.

mod metrics;
mod node;
pub mod pick;
pub mod store;
pub mod types;

pub use node::{Cluster, ClusterHandle, start};
