//! The commands the core queues for the shell ([`Command`]): channels bound and unbound,
//! relay sockets to close, allocations ended with their accounting.

use super::*;

/// The local (bound) form of a relayed address the client was given.
fn local(advertised: SocketAddr) -> SocketAddr {
    SocketAddr::new([192, 0, 2, 10].into(), advertised.port())
}

fn bind(t: &mut T, tuple: FiveTuple, c: &Creds, n: u16, p: SocketAddr) -> Option<u16> {
    code_of(&t.request(Method::CHANNEL_BIND, tuple, Some(c), |b| {
        b.add(&Attribute::ChannelNumber(n)).unwrap();
        b.add(&Attribute::XorPeerAddress(p)).unwrap();
    }))
}

fn refresh(t: &mut T, tuple: FiveTuple, c: &Creds, lifetime: u32) -> Vec<u8> {
    t.request(Method::REFRESH, tuple, Some(c), |b| {
        b.add(&Attribute::Lifetime(lifetime)).unwrap()
    })
}

fn bound(tuple: FiveTuple, relay: SocketAddr, p: SocketAddr, channel: u16) -> Command {
    Command::ChannelBound {
        tuple,
        relay: RelayAddr(relay),
        peer: PeerAddr(p),
        channel,
    }
}

fn unbound(tuple: FiveTuple, relay: SocketAddr, p: SocketAddr, channel: u16) -> Command {
    Command::ChannelUnbound {
        tuple,
        relay: RelayAddr(relay),
        peer: PeerAddr(p),
        channel,
    }
}

fn ended(cmds: &[Command]) -> Vec<&AccountingRecord> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::AllocationEnded { record } => Some(record),
            _ => None,
        })
        .collect()
}

#[test]
fn a_channel_bind_yields_channel_bound_once_and_a_refresh_nothing() {
    let mut t = T::new();
    let (tuple, c, relay) = logged_in(&mut t, 70);
    assert_eq!(
        t.take_commands(),
        vec![],
        "an allocation alone commands nothing"
    );
    let p = peer([198, 51, 100, 8], 7000);
    assert_eq!(bind(&mut t, tuple, &c, 0x4001, p), None);
    assert_eq!(
        t.take_commands(),
        vec![bound(tuple, local(relay), p, 0x4001)]
    );
    // A rebind of the same pair refreshes it: no command.
    t.advance(Duration::from_secs(60));
    assert_eq!(bind(&mut t, tuple, &c, 0x4001, p), None);
    assert_eq!(t.take_commands(), vec![]);
    // A refused bind commands nothing either.
    assert_eq!(
        bind(&mut t, tuple, &c, 0x4002, p),
        Some(400),
        "peer bound to another number"
    );
    assert_eq!(t.take_commands(), vec![]);
}

#[test]
fn channel_expiry_yields_channel_unbound_at_expiry_and_a_rebind_bound_again() {
    let mut t = T::new();
    let (tuple, c, relay) = logged_in(&mut t, 71);
    assert_eq!(lifetime_of(&refresh(&mut t, tuple, &c, 3600)), 3600);
    let p = peer([198, 51, 100, 8], 7000);
    assert_eq!(bind(&mut t, tuple, &c, 0x4001, p), None);
    assert_eq!(t.take_commands().len(), 1);
    t.advance(CHANNEL_LIFETIME - Duration::from_secs(1));
    assert_eq!(t.take_commands(), vec![], "still bound");
    t.advance(Duration::from_secs(1));
    assert_eq!(
        t.take_commands(),
        vec![unbound(tuple, local(relay), p, 0x4001)],
        "announced when it expires, not when its cooldown ends"
    );
    t.advance(Duration::from_secs(60));
    assert_eq!(t.take_commands(), vec![], "once");
    // Rebound during its cooldown (same number, same peer): a new binding.
    let c = t.login(&c.username, c.key, tuple);
    assert_eq!(bind(&mut t, tuple, &c, 0x4001, p), None);
    assert_eq!(
        t.take_commands(),
        vec![bound(tuple, local(relay), p, 0x4001)]
    );
}

#[test]
fn refresh_zero_unbinds_closes_and_ends_with_the_traffic_counted() {
    let mut t = T::new();
    let (tuple, c, relay) = logged_in(&mut t, 72);
    let p = peer([198, 51, 100, 8], 7000);
    assert_eq!(bind(&mut t, tuple, &c, 0x4001, p), None);
    let _ = t.take_commands();
    // Two ChannelData of 100 bytes out, one datagram of 50 bytes in.
    let mut frame = vec![0x40, 0x01, 0x00, 100];
    frame.extend_from_slice(&[7u8; 100]);
    for _ in 0..2 {
        assert!(matches!(t.send(&frame, tuple).0, Outcome::Forward { .. }));
    }
    assert!(peer_data(&mut t, relay.port(), p, &[9u8; 50]).is_some());
    t.advance(Duration::from_secs(42));
    assert_eq!(lifetime_of(&refresh(&mut t, tuple, &c, 0)), 0);
    let cmds = t.take_commands();
    assert_eq!(
        cmds[..2],
        [
            unbound(tuple, local(relay), p, 0x4001),
            Command::CloseRelay {
                relay: RelayAddr(local(relay))
            },
        ]
    );
    let [record] = ended(&cmds)[..] else {
        panic!("{cmds:?}")
    };
    assert_eq!(cmds.len(), 3, "AllocationEnded comes last");
    assert_eq!(
        record.traffic,
        Traffic {
            packets_out: 2,
            bytes_out: 200,
            packets_in: 1,
            bytes_in: 50,
        }
    );
    assert_eq!(record.reason, EndReason::Deleted);
    assert_eq!(record.user, "bob");
    assert_eq!(record.username, c.username);
    assert_eq!(record.client, ClientAddr(tuple.client));
    assert_eq!(record.transport, Transport::Udp);
    assert_eq!(record.relay_transport, RelayTransport::Udp);
    assert_eq!(record.relay, RelayAddr(relay), "the advertised form");
    assert_eq!(record.additional_relay, None);
    assert_eq!(record.started_unix, UNIX0);
    assert_eq!(record.duration, Duration::from_secs(42));
    assert!(t.r.closed.contains(&local(relay)));
}

#[test]
fn expiry_ends_the_allocation_and_only_the_shell_closes_its_socket() {
    let mut t = T::new();
    let (tuple, _c, relay) = logged_in(&mut t, 73);
    // The core decides; the relay socket stays open until the shell acts on CloseRelay.
    t.now += Duration::from_secs(600);
    t.s.handle_timeout(t.now, &mut t.r);
    assert!(t.r.open.contains(&local(relay)), "not closed by the core");
    let cmds = t.take_commands();
    assert!(!t.r.open.contains(&local(relay)), "closed by the command");
    assert_eq!(
        cmds[0],
        Command::CloseRelay {
            relay: RelayAddr(local(relay))
        }
    );
    let [record] = ended(&cmds)[..] else {
        panic!("{cmds:?}")
    };
    assert_eq!(record.reason, EndReason::Expired);
    assert_eq!(record.traffic, Traffic::default());
    assert_eq!(record.duration, Duration::from_secs(600));
    assert_eq!(record.client, ClientAddr(tuple.client));
    assert_eq!(t.s.allocation_count(), 0);
}

#[test]
fn a_policy_reload_that_denies_a_bound_peer_unbinds_its_channel() {
    let mut t = T::new();
    let (tuple, c, relay) = logged_in(&mut t, 74);
    let p = peer([198, 51, 100, 8], 7000);
    assert_eq!(bind(&mut t, tuple, &c, 0x4001, p), None);
    let _ = t.take_commands();
    let policy = PeerPolicy::new(
        vec!["198.51.100.0/24".parse().unwrap()],
        vec!["198.51.100.8/32".parse().unwrap()],
        vec![SocketAddr::from(([192, 0, 2, 10], 3478))],
    );
    t.s.shared().replace_policy(policy);
    // Checked again at the next packet of the allocation.
    assert_eq!(
        t.send(b"\x40\x01\x00\x00", tuple).0,
        Outcome::Dropped(DropReason::NoChannel)
    );
    assert_eq!(
        t.take_commands(),
        vec![unbound(tuple, local(relay), p, 0x4001)]
    );
    // Its allocation ends with no channel left to unbind.
    assert!(t.s.end_session(t.s.sessions(t.now)[0].id, t.now, &mut t.r));
    let cmds = t.take_commands();
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, Command::ChannelUnbound { .. })),
        "{cmds:?}"
    );
    assert_eq!(ended(&cmds)[0].reason, EndReason::Admin);
}
