//! A TCP or TLS client that pipelines STUN requests and never reads the answers cannot grow
//! the server's memory: answers count against the connection's budget, and past it the
//! server stops reading (TCP backpressure). Alone in its binary: RSS is per process.

mod common;
#[path = "common/tls.rs"]
mod tls;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::rss_kib;
use ternd::config::Config;
use ternd::stun::{Class, MessageBuilder, MessageType, Method, TransactionId};
use tls::{TempDir, self_signed, tls_client};

/// How far the server's RSS may grow while one client pipelines unread requests.
const BOUND_KIB: u64 = 16 * 1024;
/// What the client tries to send: 100 MB of 20-byte Binding requests.
const TOTAL: usize = 100_000_000;

/// 64 KiB of back-to-back Binding requests (20 bytes each, no attributes).
fn bindings() -> Vec<u8> {
    let mut chunk = Vec::with_capacity(65_536);
    let mut buf = [0u8; 20];
    for i in 0..(65_536 / 20) as u32 {
        let mut tid = [0u8; 12];
        tid[..4].copy_from_slice(&i.to_be_bytes());
        let b = MessageBuilder::new(
            &mut buf,
            MessageType::new(Method::BINDING, Class::Request),
            TransactionId(tid),
        )
        .unwrap();
        let n = b.finish();
        chunk.extend_from_slice(&buf[..n]);
    }
    chunk
}

/// Writes up to [`TOTAL`] bytes of requests and never reads; stops after 15 s, or once
/// writes have been blocked for 2 s in a row (the server stopped reading). Returns the bytes
/// written and the largest RSS growth seen (KiB).
fn pipeline<W: Write>(w: &mut W, rss0: u64) -> (usize, u64) {
    let chunk = bindings();
    let (start, mut sent, mut peak) = (Instant::now(), 0usize, 0u64);
    let mut blocked_since: Option<Instant> = None;
    while sent < TOTAL && start.elapsed() < Duration::from_secs(15) {
        match w.write(&chunk) {
            Ok(n) if n > 0 => {
                sent += n;
                blocked_since = None;
            }
            Ok(_) => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if blocked_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(2)
                {
                    break;
                }
            }
            // The server may close a connection that does not read; that is allowed too.
            Err(e) => {
                eprintln!("write ended: {e}");
                break;
            }
        }
        peak = peak.max(rss_kib().saturating_sub(rss0));
    }
    (sent, peak)
}

fn check(name: &str, rss0: u64, run: impl FnOnce() -> (usize, u64)) {
    let (sent, peak) = run();
    // The connection is closed now; give the server a moment to drop its state.
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib().saturating_sub(rss0);
    eprintln!(
        "{name}: {sent} bytes of unread Binding requests pipelined; RSS grew at most {peak} KiB, \
         {after} KiB after close"
    );
    assert!(
        peak < BOUND_KIB,
        "{name}: RSS grew by {peak} KiB (bound {BOUND_KIB} KiB) with {sent} bytes pipelined"
    );
    assert!(
        after < BOUND_KIB,
        "{name}: RSS still {after} KiB above the start after close"
    );
}

#[test]
fn unread_answers_do_not_grow_memory_over_tcp_or_tls() {
    let dir = TempDir::new("stream-memory");
    let (key, cert) = self_signed(&dir.0, "server", "localhost");
    let mut c = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        tls_listen: vec!["127.0.0.1:0".parse().unwrap()],
        tls_cert: Some(cert.clone()),
        tls_key: Some(key),
        workers: 1,
        ..Config::default()
    };
    c.auth.secrets = vec![common::SECRET.into()];
    let h = ternd::net::start(&c).expect("start");
    // Warm the allocator and the TLS stack once before the baseline.
    {
        let mut s = tls::connect_tls(h.tls_addrs()[0], tls_client(&cert));
        s.write_all(&bindings()[..20]).unwrap();
        s.flush().unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let rss0 = rss_kib();

    check("tcp", rss0, || {
        let mut s = TcpStream::connect(h.tcp_addrs()[0]).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        pipeline(&mut s, rss0)
    });
    check("tls", rss0, || {
        let mut s = tls::connect_tls(h.tls_addrs()[0], tls_client(&cert));
        s.sock
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        pipeline(&mut s, rss0)
    });
    // The server still answers a fresh client.
    let mut probe = TcpStream::connect(h.tcp_addrs()[0]).unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    probe.write_all(&bindings()[..20]).unwrap();
    let mut head = [0u8; 20];
    std::io::Read::read_exact(&mut probe, &mut head).unwrap();
    assert_eq!(head[0..2], [0x01, 0x01], "Binding success");
    h.shutdown();
}
