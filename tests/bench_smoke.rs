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
        assert!(r.peer_received.unwrap() >= r.received, "{mode:?}: {r:?}");
        assert!(r.latency_us.p50 > 0.0, "{mode:?}: {r:?}");
        assert_eq!(r.dealloc_failures, 0, "{mode:?}: {r:?}");
        // The table and the JSON both render.
        assert!(r.table().contains("loss"));
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["allocations"], 2);
    }
    h.shutdown();
}
