//! `ternd bench` as a library against a ternd started in-process: both modes, 2 allocations,
//! about a second at a low rate, through the built-in echo peer.

use std::time::Duration;

use ternd::bench::{BenchArgs, Mode, Rate};
use ternd::config::{Config, PortRange, RelayConfig};

const SECRET: &str = "bench-smoke-secret";

fn server() -> ternd::net::Handle {
    let mut c = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers: 2,
        relay: RelayConfig {
            relay_ips: vec!["127.0.0.1".parse().unwrap()],
            ports: PortRange {
                lo: 23000,
                hi: 23999,
            },
            allow_peer: vec!["127.0.0.0/8".parse().unwrap()],
            ..RelayConfig::default()
        },
        ..Config::default()
    };
    c.auth.secrets = vec![SECRET.into()];
    ternd::net::start(&c).expect("start")
}

#[test]
fn bench_runs_in_both_modes() {
    let h = server();
    for mode in [Mode::Channel, Mode::Send] {
        let mut args = BenchArgs::new(h.udp_addrs()[0], SECRET);
        args.mode = mode;
        args.allocations = 2;
        args.rate = Rate::Pps(500);
        args.duration = Duration::from_secs(1);
        args.quiet = true;
        let r = ternd::bench::run(&args).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(r.sent > 0, "{mode:?}: {r:?}");
        assert!(r.received > 0, "{mode:?}: {r:?}");
        assert!(r.loss_pct < 5.0, "{mode:?}: {r:?}");
        // Each Allocate was timed: two of them, none of zero length.
        let a = &r.allocate_latency_us;
        assert!(
            a.p50 > 0.0 && a.p99 >= a.p50 && a.max >= a.p99,
            "{mode:?}: {a:?}"
        );
        assert!(r.peer_received.unwrap() >= r.received, "{mode:?}: {r:?}");
        assert!(r.latency_us.p50 > 0.0, "{mode:?}: {r:?}");
        assert_eq!(r.dealloc_failures, 0, "{mode:?}: {r:?}");
        // The bench's own receive queues report (Linux: SO_MEMINFO); no --metrics, no
        // server counters.
        assert!(
            r.client_rx_drops.is_some() && r.peer_rx_drops.is_some(),
            "{r:?}"
        );
        assert!(r.server_drops.is_none());
        // The table and the JSON both render.
        assert!(r.table().contains("loss"));
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["allocations"], 2);
    }
    h.shutdown();
}

/// With `--metrics`, the server's drop counters for the run are scraped from its
/// `/metrics` and shown in the table and the JSON.
#[test]
fn bench_reports_the_servers_drop_counters_from_its_metrics() {
    let mut c = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers: 1,
        relay: RelayConfig {
            relay_ips: vec!["127.0.0.1".parse().unwrap()],
            ports: PortRange {
                lo: 24000,
                hi: 24999,
            },
            allow_peer: vec!["127.0.0.0/8".parse().unwrap()],
            ..RelayConfig::default()
        },
        ..Config::default()
    };
    c.auth.secrets = vec![SECRET.into()];
    let h = ternd::net::start(&c).expect("start");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ice = ternd::http::IceSettings {
        hosts: vec!["127.0.0.1".into()],
        udp_tcp_port: h.udp_addrs()[0].port(),
        tls_port: None,
        secret: SECRET.into(),
        separator: ':',
        ttl: Duration::from_secs(3600),
        cluster: None,
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let http = ternd::http::start(listener, &c.http, ice, h.view(), rx).expect("http");
    let url = format!("http://{}/metrics", http.local_addr());
    let mut args = BenchArgs::new(h.udp_addrs()[0], SECRET);
    args.rate = Rate::Pps(500);
    args.duration = Duration::from_secs(1);
    args.quiet = true;
    use clap::Parser;
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        bench: BenchArgs,
    }
    let parsed = Wrap::try_parse_from(["bench", "--server", "127.0.0.1:1", "--metrics", &url])
        .expect("--metrics URL parses");
    args.metrics = parsed.bench.metrics;
    let r = ternd::bench::run(&args).expect("run");
    assert!(r.received > 0, "{r:?}");
    let d = r.server_drops.clone().expect("scraped");
    assert_eq!(
        (d.listener_rx_queue, d.relay_rx_queue),
        (0, 0),
        "500 pps overflows nothing"
    );
    assert!(
        r.table()
            .contains("server drops   receive queues: listener 0 relay 0")
    );
    let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
    assert_eq!(v["server_drops"]["relay_send_errors"], 0);
    // A wrong URL fails before any traffic.
    let mut bad = args.clone();
    bad.metrics = Wrap::try_parse_from([
        "bench",
        "--server",
        "127.0.0.1:1",
        "--metrics",
        "http://127.0.0.1:1/metrics",
    ])
    .unwrap()
    .bench
    .metrics;
    assert!(ternd::bench::run(&bad).is_err());
    let _ = stop.send(true);
    drop(http);
    h.shutdown();
}
