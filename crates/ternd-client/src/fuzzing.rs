//! Entry points for the cargo-fuzz targets in `fuzz/` and the corpus replay test
//! (`tests/fuzz_corpus.rs`), behind the `testing` feature: the client's own parsers fed
//! arbitrary bytes. Each must never panic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::{Allocation, Config, Credentials, IceUrl, Protocol};

/// Parses `data` as an ICE server URL; one that parses prints as a URL that parses to the
/// same thing.
pub fn ice_url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(url) = IceUrl::parse(text) {
        let again = IceUrl::parse(&url.to_string()).expect("a printed URL parses");
        assert_eq!(again, url, "{text:?} prints as {url}");
    }
}

/// Reads `data` as an `iceServers` answer and takes every TURN URL and credential out.
#[cfg(feature = "tokio")]
pub fn ice_servers(data: &[u8]) {
    if let Ok(servers) = crate::ice::IceServers::from_json(data) {
        let _ = servers.turn_servers();
        let _ = servers.stun_urls();
        for p in [Protocol::Udp, Protocol::Tcp, Protocol::Tls] {
            let _ = servers.turn_server(p);
        }
    }
}

/// Without the `tokio` feature there is no `ice` module: nothing to read.
#[cfg(not(feature = "tokio"))]
pub fn ice_servers(_data: &[u8]) {}

/// Feeds `data` to a client allocation as what the server sent: each packet is a 2-byte
/// big-endian length then that many bytes, the first byte of `data` choosing the
/// transport and whether time passes between packets. Whatever comes back is drained.
pub fn client_input(data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let server = SocketAddr::from(([192, 0, 2, 1], 3478));
    let protocol = match mode % 3 {
        0 => Protocol::Udp,
        1 => Protocol::Tcp,
        _ => Protocol::Tls,
    };
    let config = Config::new(Credentials::new("fuzz", "fuzz")).protocol(protocol);
    let mut now = Instant::now();
    let mut a = Allocation::new(config, server, [7; 32], now);
    let mut out = [0u8; 2048];
    let peer = SocketAddr::from(([198, 51, 100, 9], 9000));
    for _ in 0..64 {
        while a.poll_transmit().is_some() {}
        while a.poll_event().is_some() {}
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (packet, tail) = tail.split_at(len);
        rest = tail;
        let _ = a.handle_input(packet, server, now);
        let _ = a.encode_data(peer, b"fuzz", now, &mut out);
        if mode & 0x80 != 0 {
            now += Duration::from_secs(u64::from(mode & 0x3F));
            a.handle_timeout(now);
        }
    }
    a.close(now);
    while a.poll_transmit().is_some() {}
    while a.poll_event().is_some() {}
}
