//! The cluster task's counters and their part of `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the cluster task counts.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Admissions Redis granted.
    pub(super) granted: AtomicU64,
    /// Admissions Redis refused (the user is at its quota on the cluster).
    pub(super) refused: AtomicU64,
    /// Admissions decided without Redis (`cluster.on_unavailable`).
    pub(super) fallbacks: AtomicU64,
    /// Redis commands that failed or timed out.
    pub(super) redis_errors: AtomicU64,
    /// Heartbeats that published everything.
    pub(super) heartbeats: AtomicU64,
    /// Commands received on the channel.
    pub(super) commands: AtomicU64,
    /// Revocations applied on this node.
    pub(super) revocations: AtomicU64,
    /// Live nodes in the registry at the last heartbeat.
    pub(super) nodes: AtomicU64,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The cluster's metrics, Prometheus text: `c`, whether Redis is `up`, and the
/// admissions the workers decided because the task's queue was full (`queue_full`, they
/// count as fallbacks too).
pub(super) fn render(c: &Counters, up: bool, queue_full: u64) -> String {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    family(
        &mut out,
        "ternd_cluster_redis_up",
        "gauge",
        "1 while the cluster's Redis answers.",
    );
    let _ = writeln!(out, "ternd_cluster_redis_up {}", u8::from(up));
    family(
        &mut out,
        "ternd_cluster_nodes",
        "gauge",
        "Live nodes in the registry at the last heartbeat.",
    );
    let _ = writeln!(out, "ternd_cluster_nodes {}", get(&c.nodes));
    family(
        &mut out,
        "ternd_cluster_admissions_decided_total",
        "counter",
        "Cluster-wide user quota verdicts, by who decided: Redis (granted, refused) or this node alone while Redis was unavailable (fallback).",
    );
    for (v, n) in [
        ("granted", get(&c.granted)),
        ("refused", get(&c.refused)),
        ("fallback", get(&c.fallbacks) + queue_full),
    ] {
        let _ = writeln!(
            out,
            "ternd_cluster_admissions_decided_total{{verdict=\"{v}\"}} {n}"
        );
    }
    family(
        &mut out,
        "ternd_cluster_quota_fallback_total",
        "counter",
        "Allocates whose user quota was counted on this node alone (or refused, with on_unavailable = closed) because Redis was unavailable.",
    );
    let _ = writeln!(
        out,
        "ternd_cluster_quota_fallback_total {}",
        get(&c.fallbacks) + queue_full
    );
    for (name, help, a) in [
        (
            "ternd_cluster_redis_errors_total",
            "Redis commands that failed or timed out.",
            &c.redis_errors,
        ),
        (
            "ternd_cluster_heartbeats_total",
            "Heartbeats that published this node's entry, sessions and quota entries.",
            &c.heartbeats,
        ),
        (
            "ternd_cluster_commands_total",
            "Commands received on the cluster's channel.",
            &c.commands,
        ),
        (
            "ternd_cluster_revocations_total",
            "User revocations applied on this node.",
            &c.revocations,
        ),
    ] {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", get(a));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_type_and_a_value() {
        let c = Counters::default();
        c.granted.store(7, Ordering::Relaxed);
        c.fallbacks.store(2, Ordering::Relaxed);
        let text = render(&c, true, 3);
        assert!(text.contains("ternd_cluster_redis_up 1\n"));
        assert!(text.contains("ternd_cluster_admissions_decided_total{verdict=\"granted\"} 7\n"));
        assert!(text.contains("ternd_cluster_admissions_decided_total{verdict=\"fallback\"} 5\n"));
        assert!(text.contains("ternd_cluster_quota_fallback_total 5\n"));
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let name = line.split_whitespace().nth(2).unwrap();
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert!(
                text.lines()
                    .any(|l| l.starts_with(name) && !l.starts_with('#')),
                "{name} has no sample"
            );
        }
        assert!(render(&c, false, 0).contains("ternd_cluster_redis_up 0\n"));
    }
}
