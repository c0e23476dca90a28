//! The metrics endpoint (prometheus), alternate servers, logging and the rest.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use toml::Value;

use super::{
    Line, Options, Translation, finding, int, ip, number, parse, path, port, unsupported, value,
};

/// prometheus and its options: ternd's HTTP endpoint.
pub(super) fn metrics(t: &mut Translation, o: &mut Options<'_>, dir: Option<&Path>) {
    let on = o.flag(t, "prometheus");
    let port_line = o.last(t, "prometheus-port");
    let addr_line = o.last(t, "prometheus-address");
    let path_line = o.last(t, "prometheus-path");
    let tls = o.flag(t, "prometheus-tls");
    let (cert, key) = (o.last(t, "prometheus-cert"), o.last(t, "prometheus-key"));
    let Some(on) = on else {
        for l in [port_line, addr_line, path_line, tls, cert, key]
            .into_iter()
            .flatten()
        {
            t.skip(l.no, &l.name, "prometheus is off");
        }
        return;
    };
    let port = port(t, port_line, 9641);
    let ip = match addr_line {
        Some(l) => ip(t, l).unwrap_or(IpAddr::from([0u8; 4])),
        None => IpAddr::from([0u8; 4]),
    };
    let from: Vec<&Line> = [Some(on), port_line, addr_line]
        .into_iter()
        .flatten()
        .collect();
    t.set(
        "http.listen",
        Value::String(SocketAddr::new(ip, port).to_string()),
        &from,
        &[
            "coturn's prometheus endpoint: ternd's HTTP endpoint serves /metrics there, and",
            "/healthz, /readyz, /v1/ice-servers (404 without token keys) and /admin (404",
            "without admin_token).",
        ],
    );
    if ip.is_unspecified() {
        t.note(
            on.no,
            &on.name,
            "ternd's HTTP endpoint listens on every interface, as coturn's metrics did: \
             consider 127.0.0.1 or a private address",
        );
    }
    if let Some(l) = path_line
        && value(l).trim() != "/metrics"
    {
        t.skip(l.no, &l.name, "ternd serves its metrics at /metrics only");
    }
    match (tls, cert, key) {
        (Some(_), Some(c), Some(k)) => {
            t.set(
                "http.tls_cert",
                Value::String(path(dir, value(c))),
                &[c],
                &[],
            );
            t.set(
                "http.tls_key",
                Value::String(path(dir, value(k))),
                &[k],
                &[],
            );
        }
        (tls, c, k) => {
            for l in [tls, c, k].into_iter().flatten() {
                t.skip(
                    l.no,
                    &l.name,
                    "HTTPS needs prometheus-tls, prometheus-cert and prometheus-key",
                );
            }
        }
    }
}

/// alternate-server, logging, SOFTWARE, RFC 3489, channel numbers, threads, buffers.
pub(super) fn misc(t: &mut Translation, o: &mut Options<'_>) {
    let alternates = o.all("alternate-server");
    let tls_alternates = o.all("tls-alternate-server");
    let mut chosen = false;
    for (l, default_port) in alternates
        .iter()
        .map(|l| (*l, 3478))
        .chain(tls_alternates.iter().map(|l| (*l, 5349)))
    {
        if chosen {
            t.skip(
                l.no,
                &l.name,
                "ternd takes one alternate_server, for every transport",
            );
            continue;
        }
        let v = value(l).trim();
        let addr = v.parse::<SocketAddr>().or_else(|_| {
            v.parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, default_port))
        });
        let Ok(addr) = addr else {
            t.skip(
                l.no,
                &l.name,
                "expected IP or IP:PORT (ternd takes no host names)",
            );
            continue;
        };
        if t.set(
            "alternate_server",
            Value::String(addr.to_string()),
            &[l],
            &["Sent in ALTERNATE-SERVER (300) to new Allocates while ternd drains only."],
        ) {
            chosen = true;
            t.note(
                l.no,
                &l.name,
                "coturn redirected every Allocate there (load balancing); ternd redirects only \
                 while draining (use [cluster] to spread the load)",
            );
        }
    }
    let level = if let Some(l) = o.last(t, "log-min-level") {
        let lv = match value(l).trim().to_ascii_lowercase().as_str() {
            "debug" => Some("debug"),
            "info" => Some("info"),
            "warning" | "warn" => Some("warn"),
            "error" => Some("error"),
            _ => None,
        };
        if lv.is_none() {
            t.skip(l.no, &l.name, "expected debug, info, warning or error");
        }
        lv.map(|lv| (l, lv))
    } else {
        None
    };
    let verbose = o.flag(t, "Verbose").map(|l| (l, "trace"));
    let verbose = verbose.or_else(|| o.flag(t, "verbose").map(|l| (l, "debug")));
    if let Some((l, lv)) = level.or(verbose) {
        t.set("log.level", Value::String(lv.to_owned()), &[l], &[]);
    }
    if let Some(l) = o.flag(t, "software-attribute") {
        t.set("software", Value::String("ternd".to_owned()), &[l], &[
            "Security: the SOFTWARE attribute tells attackers what runs here; \"\" turns it off.",
        ]);
    }
    let flags = [
        ("rfc3489-compatibility", "stun_backward_compatibility"),
        ("rfc5766-channel-numbers", "relay.rfc5766_channel_numbers"),
        ("udp-gso", "udp_gso"),
    ];
    for (name, key) in flags {
        if let Some(l) = o.flag(t, name) {
            t.set(key, Value::Boolean(true), &[l], &[]);
        }
    }
    if let Some(l) = o.last(t, "relay-threads")
        && let Some(n) = number::<u64>(t, l)
    {
        t.set("workers", int(n), &[l], &["0 = one per CPU."]);
    }
    if let Some(l) = o.last(t, "sock-buf-size")
        && let Some(n) = number::<u64>(t, l)
        && t.set("udp_recv_buffer", int(n), &[l], &[])
    {
        t.set("udp_send_buffer", int(n), &[l], &[]);
    }
    match o.all("no-tcp-relay").last() {
        None => t.note(
            0,
            "no-tcp-relay",
            "absent: coturn allowed RFC 6062 TCP relaying; ternd does only with tcp_relay = true",
        ),
        Some(l) => {
            let off = parse::bool_value(l.value.as_deref()) == Ok(false);
            let why = unsupported::implied("no-tcp-relay").unwrap_or("");
            t.implied.push(finding(l.no, &l.name, why));
            if off {
                t.note(
                    l.no,
                    &l.name,
                    "=false: set tcp_relay = true for RFC 6062 TCP relaying",
                );
            }
        }
    }
}
