//! SIGHUP reload: removing a secret stops new allocations with it while existing ones keep
//! relaying and refreshing (they keep their key); the peer policy changes for new checks;
//! a broken file keeps the old settings.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Client, error_code};
use ternd::stun::{Attribute, Class, Message, Method, attr_type};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(secrets: &[&str], deny: &[&str], user_quota: u32) -> String {
    let q = |v: &[&str]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "[relay]\nrelay_ips = [\"127.0.0.1\"]\nports = \"29200-29299\"\nallow_peer = [\"127.0.0.0/8\"]\ndeny_peer = [{}]\nuser_quota = {user_quota}\n[auth]\nsecrets = [{}]\n",
        q(deny),
        q(secrets)
    )
}

/// Allocates with `secret`; Ok(relayed address) or Err(error code).
fn try_allocate(server: SocketAddr, user: &str, secret: &str) -> (Client, Result<SocketAddr, u16>) {
    let mut c = Client::with_secret(server, user, secret);
    let first = c.transact(Method::ALLOCATE, false, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&first).unwrap();
    c.learn(&m);
    let resp = c.transact(Method::ALLOCATE, true, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&resp).unwrap();
    let r = match m.get_decoded(attr_type::XOR_RELAYED_ADDRESS) {
        Some(Ok(Attribute::XorRelayedAddress(a))) => Ok(a),
        _ => Err(error_code(&m).unwrap_or(0)),
    };
    (c, r)
}

#[test]
fn sighup_reloads_secrets_and_policy_without_breaking_allocations() {
    let dir = std::env::temp_dir().join(format!("ternd-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ternd.toml");
    std::fs::write(&file, config(&["current", "retiring"], &[], 100)).unwrap();
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let s = Server(
        Command::new(env!("CARGO_BIN_EXE_ternd"))
            .args([
                "-c",
                file.to_str().unwrap(),
                "--listen",
                &addr.to_string(),
                "--workers",
                "1",
            ])
            .args(["--http-listen", "", "--drain-timeout", "0s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    // Wait for the server, then allocate with the secret about to be retired.
    // Bounded by time, not tries: a loaded machine (the whole suite at once) can take
    // seconds to start a debug binary.
    let mut started = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        probe
            .send_to(
                &[
                    0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                ],
                addr,
            )
            .unwrap();
        if probe.recv_from(&mut [0u8; 64]).is_ok() {
            started = Some(());
            break;
        }
    }
    assert!(started.is_some(), "server up");
    let (mut old, r) = try_allocate(addr, "veteran", "retiring");
    r.expect("allocates with the second secret");
    old.bind_channel(0x4000, peer.local_addr().unwrap());

    // Retire the secret, deny another loopback address and lower the user quota to one
    // allocation, then SIGHUP.
    std::fs::write(&file, config(&["current"], &["127.0.0.3/32"], 1)).unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &s.0.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(300));

    let (_, r) = try_allocate(addr, "newcomer", "retiring");
    assert_eq!(r, Err(401), "the removed secret no longer allocates");
    // The existing allocation keeps its key: it refreshes and relays.
    let resp = old.transact(Method::REFRESH, true, |b| {
        b.add(&Attribute::Lifetime(600)).unwrap()
    });
    assert_eq!(
        Message::parse(&resp).unwrap().message_type().class,
        Class::Success
    );
    old.send_channel(0x4000, b"after reload");
    let mut b = [0u8; 64];
    let (n, _) = peer.recv_from(&mut b).expect("still relayed");
    assert_eq!(&b[..n], b"after reload");
    // The new policy applies to new checks.
    let (mut fresh, r) = try_allocate(addr, "fresh", "current");
    r.expect("the remaining secret allocates");
    let denied: SocketAddr = "127.0.0.3:5000".parse().unwrap();
    let resp = fresh.transact(Method::CREATE_PERMISSION, true, |b| {
        b.add(&Attribute::XorPeerAddress(denied)).unwrap()
    });
    assert_eq!(
        error_code(&Message::parse(&resp).unwrap()),
        Some(403),
        "deny_peer now applies"
    );
    let resp = fresh.transact(Method::CREATE_PERMISSION, true, |b| {
        b.add(&Attribute::XorPeerAddress(peer.local_addr().unwrap()))
            .unwrap()
    });
    assert_eq!(
        error_code(&Message::parse(&resp).unwrap()),
        None,
        "other peers still allowed"
    );
    // The new quota applies to new allocations: "fresh" has one already.
    let (_, r) = try_allocate(addr, "fresh", "current");
    assert_eq!(r, Err(486), "user_quota = 1 now applies");

    // A broken file: the old (reloaded) settings stay.
    std::fs::write(&file, "this is not toml = = =").unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &s.0.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(300));
    let (_, r) = try_allocate(addr, "after-bad-file", "current");
    r.expect("still configured after a bad reload");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
