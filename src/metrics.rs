//! Prometheus metrics, rendered at scrape time from the workers' counters.
//!
//! Nothing here runs on the packet path: each worker bumps its own plain counters
//! ([`crate::turn::Stats`]) and a scrape sums them into metric families, encoded with the
//! `prometheus` crate's text encoder.

use prometheus::core::Collector as _;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder as _, TextEncoder};

use crate::turn::{
    ALLOCATE_LATENCY_BOUNDS, ALLOCATION_DURATION_BOUNDS, HistogramSnapshot, REQUEST_METHODS,
    RESPONSE_CODES, StatsSnapshot,
};

/// Point-in-time values that are not counters of the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Open TCP client connections.
    pub tcp_connections: u64,
    /// Relay ports held (live allocations plus EVEN-PORT reservations).
    pub relay_ports_in_use: u64,
    /// 1 while draining (not accepting new allocations).
    pub draining: bool,
}

struct Builder {
    families: Vec<MetricFamily>,
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name((*k).to_string());
            l.set_value((*v).to_string());
            l
        })
        .collect()
}

impl Builder {
    fn family(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        samples: Vec<(Vec<LabelPair>, f64)>,
    ) {
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(kind);
        for (l, v) in samples {
            let mut m = Metric::default();
            m.set_label(l);
            match kind {
                MetricType::GAUGE => {
                    let mut g = Gauge::default();
                    g.set_value(v);
                    m.set_gauge(g);
                }
                _ => {
                    let mut c = Counter::default();
                    c.set_value(v);
                    m.set_counter(c);
                }
            }
            f.mut_metric().push(m);
        }
        self.families.push(f);
    }

    fn counter(&mut self, name: &str, help: &str, samples: Vec<(Vec<LabelPair>, u64)>) {
        self.family(
            name,
            help,
            MetricType::COUNTER,
            samples.into_iter().map(|(l, v)| (l, v as f64)).collect(),
        );
    }

    /// A histogram family with one series: cumulative buckets at `bounds`, +Inf, the sum
    /// (seconds) and the count.
    fn histogram<const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        h: &HistogramSnapshot<N>,
        bounds: &[f64; N],
    ) {
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(MetricType::HISTOGRAM);
        let mut p = prometheus::proto::Histogram::default();
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(N);
        for (i, &bound) in bounds.iter().enumerate() {
            cumulative += h.buckets[i];
            let mut bucket = prometheus::proto::Bucket::default();
            bucket.set_upper_bound(bound);
            bucket.set_cumulative_count(cumulative);
            buckets.push(bucket);
        }
        p.set_bucket(buckets);
        p.set_sample_count(h.count());
        p.set_sample_sum(h.sum_us as f64 / 1e6);
        let mut m = Metric::default();
        m.set_histogram(p);
        f.mut_metric().push(m);
        self.families.push(f);
    }

    fn gauge(&mut self, name: &str, help: &str, samples: Vec<(Vec<LabelPair>, u64)>) {
        self.family(
            name,
            help,
            MetricType::GAUGE,
            samples.into_iter().map(|(l, v)| (l, v as f64)).collect(),
        );
    }
}

/// Renders the text exposition format from each worker's counters and the gauges.
pub fn render(workers: &[StatsSnapshot], gauges: Gauges) -> String {
    let s: StatsSnapshot = workers.iter().copied().sum();
    let mut b = Builder {
        families: Vec::new(),
    };
    b.gauge(
        "ternd_build_info",
        "Build information.",
        vec![(labels(&[("version", env!("CARGO_PKG_VERSION"))]), 1)],
    );
    b.gauge(
        "ternd_allocations_active",
        "Allocations alive now.",
        vec![(
            vec![],
            s.allocations_created.saturating_sub(s.allocations_ended),
        )],
    );
    b.counter(
        "ternd_allocations_created_total",
        "Allocations created, by the client's transport (udp, tcp, tls).",
        vec![
            (labels(&[("transport", "udp")]), s.allocations_created_udp),
            (labels(&[("transport", "tcp")]), s.allocations_created_tcp),
            (labels(&[("transport", "tls")]), s.allocations_created_tls),
        ],
    );
    b.counter(
        "ternd_allocations_ended_total",
        "Allocations ended, by reason.",
        vec![
            (labels(&[("reason", "expired")]), s.ended_expired),
            (labels(&[("reason", "deleted")]), s.ended_deleted),
            (
                labels(&[("reason", "connection_closed")]),
                s.ended_connection_closed,
            ),
            (labels(&[("reason", "admin")]), s.ended_admin),
            (labels(&[("reason", "shutdown")]), s.ended_shutdown),
        ],
    );
    b.counter(
        "ternd_auth_total",
        "Authentication results of TURN requests: ok; the 401 every client gets first \
         (challenge); the 401s of an unknown user, an expired credential or a wrong \
         password (or REST secret); 438 stale_nonce; 400 bad_request; 441 \
         wrong_credentials (other credentials than the allocation's).",
        vec![
            (labels(&[("result", "ok")]), s.auth_ok),
            (labels(&[("result", "challenge")]), s.auth_no_integrity),
            (labels(&[("result", "unknown_user")]), s.auth_unknown_user),
            (labels(&[("result", "expired")]), s.auth_expired),
            (
                labels(&[("result", "wrong_password")]),
                s.auth_wrong_password,
            ),
            (labels(&[("result", "stale_nonce")]), s.auth_stale_nonce),
            (labels(&[("result", "bad_request")]), s.auth_bad_request),
            (
                labels(&[("result", "wrong_credentials")]),
                s.auth_wrong_credentials,
            ),
        ],
    );
    b.counter(
        "ternd_peer_denied_total",
        "CreatePermission and ChannelBind peers refused (403), by the rule that refused \
         them: the built-in default deny list, an explicit deny_peer entry, or one of the \
         server's own service ports.",
        vec![
            (labels(&[("rule", "default")]), s.peer_denied_default),
            (labels(&[("rule", "deny_peer")]), s.peer_denied_explicit),
            (
                labels(&[("rule", "service_port")]),
                s.peer_denied_service_port,
            ),
        ],
    );
    b.counter(
        "ternd_requests_total",
        "STUN/TURN requests received.",
        vec![(vec![], s.requests)],
    );
    b.counter(
        "ternd_indications_total",
        "STUN/TURN indications received.",
        vec![(vec![], s.indications)],
    );
    let mut responses = Vec::new();
    for (m, method) in REQUEST_METHODS.iter().enumerate() {
        for (c, code) in RESPONSE_CODES.iter().enumerate() {
            let n = s.responses[m][c];
            if n == 0 {
                continue;
            }
            let code = match *code {
                0 => "success".to_string(),
                999 => "other".to_string(),
                x => x.to_string(),
            };
            responses.push((labels(&[("method", method), ("code", &code)]), n));
        }
    }
    b.counter(
        "ternd_responses_total",
        "Responses sent, by request method and code.",
        responses,
    );
    let mut packets = Vec::new();
    let mut bytes = Vec::new();
    for (i, w) in workers.iter().enumerate() {
        let worker = i.to_string();
        packets.push((
            labels(&[("direction", "to_peer"), ("worker", &worker)]),
            w.relayed_out_packets,
        ));
        packets.push((
            labels(&[("direction", "to_client"), ("worker", &worker)]),
            w.relayed_in_packets,
        ));
        bytes.push((
            labels(&[("direction", "to_peer"), ("worker", &worker)]),
            w.relayed_out_bytes,
        ));
        bytes.push((
            labels(&[("direction", "to_client"), ("worker", &worker)]),
            w.relayed_in_bytes,
        ));
    }
    b.counter(
        "ternd_relayed_packets_total",
        "Packets relayed, by direction and worker.",
        packets,
    );
    b.counter(
        "ternd_relayed_bytes_total",
        "Payload bytes relayed, by direction and worker.",
        bytes,
    );
    b.counter(
        "ternd_client_data_total",
        "Client data relayed to peers, by how the client framed it (ChannelData or Send \
         indication).",
        vec![
            (
                labels(&[("framing", "channel_data")]),
                s.relayed_out_channel_data,
            ),
            (
                labels(&[("framing", "send_indication")]),
                s.relayed_out_send_indications,
            ),
        ],
    );
    b.counter(
        "ternd_udp_gso_sends_total",
        "UDP GSO sends: one send call for a run of relayed datagrams with one destination.",
        vec![(vec![], s.udp_gso_sends)],
    );
    b.counter(
        "ternd_udp_gso_datagrams_total",
        "Relayed UDP datagrams sent in GSO runs.",
        vec![(vec![], s.udp_gso_datagrams)],
    );
    b.counter(
        "ternd_udp_receive_queue_drops_total",
        "Datagrams the kernel dropped at ternd's UDP receive queues (full buffer; SO_RXQ_OVFL), \
         by socket kind. Counted when the socket's next datagram is read.",
        vec![
            (labels(&[("socket", "listener")]), s.listener_rx_queue_drops),
            (labels(&[("socket", "relay")]), s.relay_rx_queue_drops),
        ],
    );
    b.counter(
        "ternd_udp_send_errors_total",
        "UDP sends that failed (the datagram dropped, never waited for), by socket kind \
         (listener: to clients; relay: to peers) and error.",
        vec![
            (
                labels(&[("socket", "listener"), ("error", "would_block")]),
                s.listener_send_would_block,
            ),
            (
                labels(&[("socket", "listener"), ("error", "no_buffers")]),
                s.listener_send_no_buffers,
            ),
            (
                labels(&[("socket", "listener"), ("error", "other")]),
                s.listener_send_other_errors,
            ),
            (
                labels(&[("socket", "relay"), ("error", "would_block")]),
                s.relay_send_would_block,
            ),
            (
                labels(&[("socket", "relay"), ("error", "no_buffers")]),
                s.relay_send_no_buffers,
            ),
            (
                labels(&[("socket", "relay"), ("error", "other")]),
                s.relay_send_other_errors,
            ),
        ],
    );
    b.counter(
        "ternd_dropped_total",
        "Packets and requests dropped or refused, by reason.",
        vec![
            (labels(&[("reason", "malformed")]), s.malformed),
            (
                labels(&[("reason", "no_permission")]),
                s.client_dropped_no_permission,
            ),
            (
                labels(&[("reason", "peer_no_permission")]),
                s.peer_dropped_no_permission,
            ),
            (labels(&[("reason", "peer_denied")]), s.policy_denied),
            (labels(&[("reason", "user_quota")]), s.quota_rejections),
            (
                labels(&[("reason", "total_quota")]),
                s.total_quota_rejections,
            ),
            (labels(&[("reason", "ip_quota")]), s.ip_quota_rejections),
            (labels(&[("reason", "no_capacity")]), s.capacity_rejections),
            (labels(&[("reason", "revoked")]), s.revoked_rejections),
            (
                labels(&[("reason", "cluster_user_quota")]),
                s.cluster_quota_rejections,
            ),
            (labels(&[("reason", "rate_limit")]), s.rate_limited),
            (
                labels(&[("reason", "unauth_rate_limit")]),
                s.unauth_rate_limited,
            ),
            (labels(&[("reason", "other_client")]), s.dropped),
            (labels(&[("reason", "other_peer")]), s.peer_dropped),
        ],
    );
    b.counter(
        "ternd_redirects_total",
        "Allocates answered 300 Try Alternate (draining, or over the cluster capacity).",
        vec![(vec![], s.redirects)],
    );
    b.counter(
        "ternd_cluster_admissions_total",
        "Allocates that asked the cluster for a verdict on their user's quota.",
        vec![(vec![], s.admissions_asked)],
    );
    b.gauge(
        "ternd_relay_ports_in_use",
        "Relay ports held.",
        vec![(vec![], gauges.relay_ports_in_use)],
    );
    b.gauge(
        "ternd_connections",
        "Open client stream connections (TCP and TLS together).",
        vec![(labels(&[("transport", "tcp")]), gauges.tcp_connections)],
    );
    b.gauge(
        "ternd_draining",
        "1 while the server drains.",
        vec![(vec![], u64::from(gauges.draining))],
    );
    b.histogram(
        "ternd_allocate_duration_seconds",
        "From an Allocate's arrival to its answer (the 401 challenge and refusals \
         included; with a cluster, the admission round trip to Redis included).",
        &s.allocate_latency,
        &ALLOCATE_LATENCY_BOUNDS,
    );
    b.histogram(
        "ternd_allocation_lifetime_seconds",
        "How long allocations lived, observed when they end.",
        &s.allocation_duration,
        &ALLOCATION_DURATION_BOUNDS,
    );
    // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
    // of this process, read from /proc at scrape time.
    b.families
        .extend(prometheus::process_collector::ProcessCollector::for_self().collect());
    // The encoder refuses a family without samples (and with it the whole exposition):
    // `ternd_responses_total` has none until the first response.
    b.families.retain(|f| !f.get_metric().is_empty());
    let mut out = Vec::new();
    if TextEncoder::new().encode(&b.families, &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_labels() {
        let mut a = StatsSnapshot {
            allocations_created: 5,
            allocations_created_udp: 3,
            allocations_created_tcp: 1,
            allocations_created_tls: 1,
            allocations_ended: 2,
            relayed_out_packets: 7,
            relayed_out_channel_data: 5,
            relayed_out_send_indications: 2,
            ..Default::default()
        };
        a.responses[1][0] = 3;
        let b = StatsSnapshot {
            relayed_out_packets: 4,
            relayed_out_channel_data: 4,
            malformed: 9,
            listener_rx_queue_drops: 6,
            relay_rx_queue_drops: 8,
            relay_send_would_block: 2,
            listener_send_no_buffers: 1,
            ..Default::default()
        };
        let text = render(
            &[a, b],
            Gauges {
                tcp_connections: 2,
                relay_ports_in_use: 3,
                draining: false,
            },
        );
        assert!(text.contains("ternd_allocations_active 3\n"), "{text}");
        assert!(
            text.contains("ternd_relayed_packets_total{direction=\"to_peer\",worker=\"0\"} 7\n")
        );
        assert!(
            text.contains("ternd_relayed_packets_total{direction=\"to_peer\",worker=\"1\"} 4\n")
        );
        assert!(text.contains("ternd_responses_total{method=\"allocate\",code=\"success\"} 3\n"));
        assert!(text.contains("ternd_dropped_total{reason=\"malformed\"} 9\n"));
        assert!(text.contains("ternd_client_data_total{framing=\"channel_data\"} 9\n"));
        assert!(text.contains("ternd_client_data_total{framing=\"send_indication\"} 2\n"));
        assert!(text.contains("ternd_connections{transport=\"tcp\"} 2\n"));
        assert!(text.contains("ternd_udp_receive_queue_drops_total{socket=\"listener\"} 6\n"));
        assert!(text.contains("ternd_udp_receive_queue_drops_total{socket=\"relay\"} 8\n"));
        assert!(
            text.contains(
                "ternd_udp_send_errors_total{socket=\"relay\",error=\"would_block\"} 2\n"
            )
        );
        assert!(
            text.contains(
                "ternd_udp_send_errors_total{socket=\"listener\",error=\"no_buffers\"} 1\n"
            )
        );
        assert!(
            text.contains("ternd_udp_send_errors_total{socket=\"listener\",error=\"other\"} 0\n")
        );
        assert!(text.contains("# TYPE ternd_allocations_created_total counter"));
        assert!(text.contains("ternd_allocations_created_total{transport=\"udp\"} 3\n"));
        assert!(text.contains("ternd_allocations_created_total{transport=\"tls\"} 1\n"));
        assert!(text.contains("ternd_build_info{version=\""));
    }

    #[test]
    fn a_fresh_server_renders_its_zero_counters() {
        let text = render(&[StatsSnapshot::default()], Gauges::default());
        assert!(
            text.contains("ternd_udp_receive_queue_drops_total{socket=\"relay\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("ternd_allocations_active 0\n"));
        assert!(
            !text.contains("ternd_responses_total"),
            "no samples, no family"
        );
    }
}
