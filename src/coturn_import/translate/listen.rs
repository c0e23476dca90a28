//! The listeners (listening-ip, listening-port, TLS, aux-server, tcp-proxy-port,
//! RFC 5780) and the relay addresses and ports.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use toml::Value;

use super::{Line, Options, Translation, int, ip, number, path, port, shown, strings, value};

/// listening-ip, listening-port, tls-listening-port, cert/pkey, aux-server,
/// tcp-proxy-port, alt-listening-port and rfc5780.
pub(super) fn listeners(t: &mut Translation, o: &mut Options<'_>, dir: Option<&Path>) {
    let ip_lines = o.all("listening-ip");
    let ips: Vec<IpAddr> = ip_lines.iter().filter_map(|l| ip(t, l)).collect();
    let port_line = o.last(t, "listening-port");
    let udp_port = port(t, port_line, 3478);
    let hosts: Vec<IpAddr> = if ips.is_empty() {
        vec![IpAddr::from([0u8; 4]), IpAddr::from([0u16; 8])]
    } else {
        ips.clone()
    };
    let mut listen: Vec<String> = hosts
        .iter()
        .map(|&h| SocketAddr::new(h, udp_port).to_string())
        .collect();
    let mut from: Vec<&Line> = ip_lines.clone();
    from.extend(port_line);
    for l in o.all("aux-server") {
        match value(l).trim().parse::<SocketAddr>() {
            Ok(a) if !listen.contains(&a.to_string()) => {
                listen.push(a.to_string());
                from.push(l);
            }
            Ok(_) => t.note(l.no, &l.name, "already a listening address"),
            Err(_) => t.skip(l.no, &l.name, "expected IP:PORT ([IPv6]:PORT)"),
        }
    }
    if let Some(l) = o.last(t, "tcp-proxy-port") {
        let p = port(t, Some(l), 0);
        if p != 0 {
            let proxied: Vec<String> = hosts
                .iter()
                .map(|&h| SocketAddr::new(h, p).to_string())
                .collect();
            listen.extend(proxied.iter().cloned());
            from.push(l);
            t.set(
                "proxy_protocol",
                strings(proxied),
                &[l],
                &[
                    "coturn's tcp-proxy-port: TCP connections there start with a PROXY header",
                    "(ternd also serves UDP on these addresses)",
                ],
            );
        }
    }
    t.set(
        "listen",
        strings(listen),
        &from,
        &["ternd serves STUN/TURN over both UDP and TCP on every listen address."],
    );
    // TLS: coturn serves it on tls-listening-port when it has a certificate and key.
    let tls_line = o.last(t, "tls-listening-port");
    let tls_port = port(t, tls_line, 5349);
    let (cert, key) = (o.last(t, "cert"), o.last(t, "pkey"));
    let no_tls = o.flag(t, "no-tls");
    match (cert, key, no_tls) {
        (Some(c), Some(k), None) if tls_port == udp_port => {
            for l in [Some(c), Some(k), tls_line].into_iter().flatten() {
                t.skip(
                    l.no,
                    &l.name,
                    "tls-listening-port is listening-port: ternd needs a port of its own for TLS",
                );
            }
        }
        (Some(c), Some(k), None) => {
            let tls: Vec<String> = if ips.is_empty() {
                vec![format!(":{tls_port}")]
            } else {
                ips.iter()
                    .map(|&h| SocketAddr::new(h, tls_port).to_string())
                    .collect()
            };
            let mut tls_from = ip_lines.clone();
            tls_from.extend(tls_line);
            if t.set(
                "tls_listen",
                strings(tls),
                &tls_from,
                &["TURN over TLS (turns:)."],
            ) && t.set("tls_cert", Value::String(path(dir, value(c))), &[c], &[])
            {
                t.set(
                    "tls_key",
                    Value::String(path(dir, value(k))),
                    &[k],
                    &["Security: keep the key readable by ternd only."],
                );
            }
            if o.all("no-dtls").is_empty() {
                t.note(
                    c.no,
                    "cert",
                    "coturn also served DTLS with this certificate; ternd has no DTLS (TLS only)",
                );
            }
        }
        (c, k, no_tls) => {
            let why = if no_tls.is_some() {
                "no-tls is set: no TLS listener"
            } else {
                "coturn serves TLS only with both cert and pkey"
            };
            for l in [c, k, tls_line].into_iter().flatten() {
                t.skip(l.no, &l.name, why);
            }
        }
    }
    rfc5780(t, o, &ips);
}

/// coturn's rfc5780 with two listening IPs of one family: ternd's rfc5780, alt_ip and
/// alt_port.
fn rfc5780(t: &mut Translation, o: &mut Options<'_>, ips: &[IpAddr]) {
    let on = o.flag(t, "rfc5780");
    let alt_port = o.last(t, "alt-listening-port");
    let pair = ips
        .iter()
        .find_map(|a| ips.iter().find(|b| *b != a && b.is_ipv4() == a.is_ipv4()));
    match (on, pair) {
        (Some(l), Some(&alt)) => {
            if t.set("rfc5780", Value::Boolean(true), &[l], &[
                "RFC 5780 NAT behaviour discovery, on the first listening IP and alt_ip.",
            ]) {
                t.set("alt_ip", Value::String(alt.to_string()), &[l], &[]);
                if let Some(p) = alt_port {
                    let n = port(t, Some(p), 0);
                    t.set("alt_port", int(n.into()), &[p], &[]);
                }
            }
        }
        (Some(l), None) => t.skip(
            l.no,
            &l.name,
            "ternd's RFC 5780 needs two listening-ip addresses of one family (the second is alt_ip)",
        ),
        (None, _) => {
            if let Some(p) = alt_port {
                t.skip(
                    p.no,
                    &p.name,
                    "used for RFC 5780 only, which is off here: ternd's alt_port goes with \
                     rfc5780 = true and alt_ip",
                );
            }
        }
    }
}

/// relay-ip, external-ip, min-port/max-port.
pub(super) fn relay(t: &mut Translation, o: &mut Options<'_>) {
    let mut ips: Vec<(IpAddr, &Line)> = Vec::new();
    for l in o.all("relay-ip") {
        let Some(a) = ip(t, l) else { continue };
        match ips.iter().find(|(b, _)| b.is_ipv4() == a.is_ipv4()) {
            Some((b, _)) => t.skip(
                l.no,
                &l.name,
                format!("ternd relays on one address per family, and {b} is the first"),
            ),
            None => ips.push((a, l)),
        }
    }
    if !ips.is_empty() {
        let from: Vec<&Line> = ips.iter().map(|(_, l)| *l).collect();
        t.set(
            "relay.relay_ips",
            strings(ips.iter().map(|(a, _)| a.to_string())),
            &from,
            &[],
        );
    }
    let mut ext: Vec<(String, bool, &Line)> = Vec::new();
    for l in o.all("external-ip") {
        let v = value(l).trim();
        let public = v.split('/').next().unwrap_or(v).trim();
        let Ok(p) = public.parse::<IpAddr>() else {
            t.skip(
                l.no,
                &l.name,
                format!(
                    "`{}` is not IP or PUBLIC/PRIVATE (ternd takes no host names)",
                    shown(v)
                ),
            );
            continue;
        };
        if ext.iter().any(|(_, v4, _)| *v4 == p.is_ipv4()) {
            t.skip(l.no, &l.name, "ternd takes one external address per family");
            continue;
        }
        let one = strings([v.replace(' ', "")]);
        if crate::config::Config::check_value("relay.external_ips", &one, "-").is_ok() {
            ext.push((v.replace(' ', ""), p.is_ipv4(), l));
        } else {
            t.set("relay.external_ips", one, &[l], &[]); // skips with ternd's reason
        }
    }
    if !ext.is_empty() {
        let from: Vec<&Line> = ext.iter().map(|(_, _, l)| *l).collect();
        t.set(
            "relay.external_ips",
            strings(ext.into_iter().map(|(v, _, _)| v)),
            &from,
            &["Behind 1:1 NAT: advertised PUBLIC, relay sockets bound on PRIVATE."],
        );
    }
    let (lo, hi) = (o.last(t, "min-port"), o.last(t, "max-port"));
    if lo.is_some() || hi.is_some() {
        let lo_n = lo.map_or(Some(49152), |l| number::<u16>(t, l));
        let hi_n = hi.map_or(Some(65535), |l| number::<u16>(t, l));
        if let (Some(a), Some(b)) = (lo_n, hi_n) {
            let from: Vec<&Line> = [lo, hi].into_iter().flatten().collect();
            t.set("relay.ports", Value::String(format!("{a}-{b}")), &from, &[]);
        }
    }
}
