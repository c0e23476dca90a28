//! A cluster's hold on the core: admission of Allocates by the cluster-wide user quota
//! (the Allocate waits for [`Server::admit`]), revocation (403), and redirection (300)
//! past the cluster's capacity or while draining, to the node the cluster picked.

use std::collections::HashMap;

use super::*;

/// A core in a cluster: admission on, `user_quota` `quota`, no unauthenticated limit.
fn clustered(quota: u32) -> T {
    T::with(vec!["198.51.100.0/24".parse().unwrap()], |c| {
        c.cluster_admission = true;
        c.limits.user_quota = quota;
        c.unauth_rate_limit = 0;
    })
}

/// The Allocate request bytes with credentials `c` (a fresh transaction).
fn allocate_packet(t: &mut T, c: &Creds, family6: bool) -> Vec<u8> {
    let tid = t.tid();
    build_request(Method::ALLOCATE, tid, Some(c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        if family6 {
            b.add(&Attribute::RequestedAddressFamily(AddressFamily::V6))
                .unwrap();
        }
    })
}

/// The `Admit` commands drained so far.
fn admissions(t: &mut T) -> Vec<Admission> {
    t.take_commands()
        .into_iter()
        .filter_map(|c| match c {
            Command::Admit { admission } => Some(admission),
            _ => None,
        })
        .collect()
}

/// Gives the verdict; returns the answer bytes (empty: none).
fn verdict(t: &mut T, a: Admission, granted: bool) -> (Outcome, Vec<u8>) {
    let mut out = [0u8; 1500];
    let o = t.s.admit(a, granted, t.now, &mut out, &mut t.r);
    let bytes = match o {
        Outcome::Reply { len } => out[..len].to_vec(),
        _ => Vec::new(),
    };
    (o, bytes)
}

fn bob(t: &mut T, port: u16) -> (FiveTuple, Creds) {
    let tuple = client(port);
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    (tuple, c)
}

#[test]
fn allocate_waits_for_the_cluster_and_is_granted_under_the_id_it_asked_with() {
    let mut t = clustered(3);
    let (tuple, c) = bob(&mut t, 4000);
    let pkt = allocate_packet(&mut t, &c, false);
    let (o, _) = t.send(&pkt, tuple);
    assert_eq!(
        o,
        Outcome::Consumed,
        "nothing is answered before the verdict"
    );
    let asked = admissions(&mut t);
    assert_eq!(asked.len(), 1);
    let a = asked[0].clone();
    assert_eq!((a.user.as_str(), a.tuple), ("bob", tuple));
    assert_eq!(
        a.transaction,
        Message::parse(&pkt).unwrap().transaction_id().0
    );
    // Nothing is held meanwhile.
    assert_eq!(t.s.allocation_count(), 0);
    assert_eq!(t.s.shared().user_allocations("bob"), 0);
    assert_eq!(t.s.waiting_admissions(), 1);
    // A retransmission while it waits asks nothing more and gets nothing.
    let (o, _) = t.send(&pkt, tuple);
    assert_eq!(o, Outcome::Consumed);
    assert!(admissions(&mut t).is_empty());

    let (o, resp) = verdict(&mut t, a.clone(), true);
    assert!(matches!(o, Outcome::Reply { .. }), "{o:?}");
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::Success);
    assert_eq!(m.transaction_id().0, a.transaction);
    assert_eq!(t.s.allocation_count(), 1);
    assert_eq!(t.s.waiting_admissions(), 0);
    let sessions = t.s.sessions(t.now);
    assert_eq!(
        sessions[0].id, a.id,
        "the session id is the one the cluster counted"
    );
    // A retransmission now gets the kept success response, and asks nothing.
    let (_, again) = t.send(&pkt, tuple);
    assert_eq!(again, resp);
    let cmds = t.take_commands();
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, Command::Admit { .. } | Command::Withdrawn { .. })),
        "{cmds:?}"
    );
    // The same verdict again (a duplicate from the shell) changes nothing but gives the
    // slot back, since no Allocate waits for it.
    let (o, _) = verdict(&mut t, a.clone(), true);
    assert_eq!(o, Outcome::Consumed);
    assert!(t.take_commands().contains(&Command::Withdrawn {
        id: a.id,
        user: "bob".into()
    }));
    assert_eq!(t.s.allocation_count(), 1);
}

#[test]
fn a_refusal_is_486_and_holds_nothing() {
    let mut t = clustered(3);
    let (tuple, c) = bob(&mut t, 4001);
    let pkt = allocate_packet(&mut t, &c, false);
    let _ = t.send(&pkt, tuple);
    let a = admissions(&mut t).remove(0);
    let (_, resp) = verdict(&mut t, a, false);
    assert_eq!(code_of(&resp), Some(486));
    assert_eq!(t.s.allocation_count(), 0);
    assert_eq!(t.s.shared().user_allocations("bob"), 0);
    assert_eq!(t.s.stats().snapshot().cluster_quota_rejections, 1);
    assert!(
        !t.take_commands()
            .iter()
            .any(|c| matches!(c, Command::Withdrawn { .. }))
    );
    // The client may ask again: a new transaction asks the cluster again.
    let pkt = allocate_packet(&mut t, &c, false);
    let _ = t.send(&pkt, tuple);
    assert_eq!(admissions(&mut t).len(), 1);
}

#[test]
fn admitted_but_refused_here_gives_the_slot_back() {
    // No IPv6 relay here: an IPv6 allocation the cluster admitted still gets 440.
    let mut t = clustered(3);
    let (tuple, c) = bob(&mut t, 4002);
    let pkt = allocate_packet(&mut t, &c, true);
    let _ = t.send(&pkt, tuple);
    let a = admissions(&mut t).remove(0);
    let (_, resp) = verdict(&mut t, a.clone(), true);
    assert_eq!(code_of(&resp), Some(440));
    assert!(t.take_commands().contains(&Command::Withdrawn {
        id: a.id,
        user: "bob".into()
    }));
}

#[test]
fn a_verdict_that_comes_too_late_is_given_back() {
    let mut t = clustered(3);
    let (tuple, c) = bob(&mut t, 4003);
    let pkt = allocate_packet(&mut t, &c, false);
    let _ = t.send(&pkt, tuple);
    let late = admissions(&mut t).remove(0);
    // Before the timeout, a retransmission is still only waiting.
    t.now += ADMISSION_TIMEOUT - Duration::from_millis(1);
    let _ = t.send(&pkt, tuple);
    assert!(admissions(&mut t).is_empty());
    // After it, the retransmission asks afresh.
    t.now += Duration::from_millis(2);
    let _ = t.send(&pkt, tuple);
    let fresh = admissions(&mut t).remove(0);
    assert_ne!(fresh.id, late.id);
    let (o, _) = verdict(&mut t, late.clone(), true);
    assert_eq!(o, Outcome::Consumed);
    assert!(t.take_commands().contains(&Command::Withdrawn {
        id: late.id,
        user: "bob".into()
    }));
    let (_, resp) = verdict(&mut t, fresh.clone(), true);
    assert_eq!(
        Message::parse(&resp).unwrap().message_type().class,
        Class::Success
    );
    assert_eq!(t.s.sessions(t.now)[0].id, fresh.id);
}

#[test]
fn a_closed_connection_forgets_its_waiting_allocate() {
    let mut t = clustered(3);
    let (mut tuple, c) = bob(&mut t, 4004);
    tuple.transport = Transport::Tcp;
    let c = t.login(&c.username, c.key, tuple);
    let pkt = allocate_packet(&mut t, &c, false);
    let _ = t.send(&pkt, tuple);
    let a = admissions(&mut t).remove(0);
    t.s.close_tuple(&tuple, t.now, &mut t.r);
    assert_eq!(t.s.waiting_admissions(), 0);
    let (o, _) = verdict(&mut t, a.clone(), true);
    assert_eq!(o, Outcome::Consumed);
    assert_eq!(t.s.allocation_count(), 0);
    assert!(t.take_commands().contains(&Command::Withdrawn {
        id: a.id,
        user: "bob".into()
    }));
}

#[test]
fn without_a_user_quota_nothing_waits() {
    let mut t = clustered(0);
    let (tuple, c) = bob(&mut t, 4005);
    t.allocate(tuple, &c);
    assert!(admissions(&mut t).is_empty());
    // Nor without cluster admission, whatever the quota.
    let mut t = T::with(vec![], |c| c.limits.user_quota = 2);
    let (tuple, c) = bob(&mut t, 4006);
    t.allocate(tuple, &c);
    assert!(admissions(&mut t).is_empty());
}

#[test]
fn waiting_allocates_are_bounded() {
    let mut t = clustered(3);
    let (u, k, _) = rest_creds(86_400, "bob");
    let mut last = None;
    for i in 0..=MAX_WAITING {
        let tuple = FiveTuple {
            client: SocketAddr::from(([10, (i >> 8) as u8, i as u8, 1], 5000)),
            server: "192.0.2.10:3478".parse().unwrap(),
            transport: Transport::Udp,
        };
        let c = t.login(&u, Key::Md5(k), tuple);
        let pkt = allocate_packet(&mut t, &c, false);
        last = Some(t.send(&pkt, tuple));
    }
    assert_eq!(t.s.waiting_admissions(), MAX_WAITING);
    let (_, resp) = last.unwrap();
    assert_eq!(
        code_of(&resp),
        Some(508),
        "one past the bound is refused at once"
    );
    assert_eq!(admissions(&mut t).len(), MAX_WAITING);
    // Once the waits time out, room is made again.
    t.now += ADMISSION_TIMEOUT;
    let tuple = client(4007);
    let c = t.login(&u, Key::Md5(k), tuple);
    let pkt = allocate_packet(&mut t, &c, false);
    let (o, _) = t.send(&pkt, tuple);
    assert_eq!(o, Outcome::Consumed);
    assert_eq!(t.s.waiting_admissions(), 1);
}

#[test]
fn a_revoked_user_gets_403_until_the_revocation_lapses() {
    let mut t = T::new();
    let horizon = Duration::from_secs(3600);
    let now_ms = (UNIX0 + 10) * 1000;
    t.now = t.t0 + Duration::from_secs(10);
    t.s.shared()
        .update_cluster(|v| v.set_revocations([("bob".to_string(), now_ms - 1)], horizon));
    // Credentials from before the revocation (expiring within the horizon).
    let tuple = client(4010);
    let (u, k, _) = rest_creds(3600, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    let resp = t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    assert_eq!(code_of(&resp), Some(403));
    assert_eq!(t.s.stats().snapshot().revoked_rejections, 1);
    // Another user is not touched.
    let tuple2 = client(4011);
    let (u2, k2, _) = rest_creds(3600, "carol");
    let c2 = t.login(&u2, Key::Md5(k2), tuple2);
    t.allocate(tuple2, &c2);
    // Credentials issued after it with the full lifetime work.
    let (u3, k3, _) = rest_creds(10 + 1 + 3600, "bob");
    let c3 = t.login(&u3, Key::Md5(k3), tuple);
    t.allocate(tuple, &c3);
    // The static user alice, revoked: refused while it stands, not after.
    let mut t = T::new();
    t.s.shared()
        .update_cluster(|v| v.set_revocations([("alice".to_string(), UNIX0 * 1000)], horizon));
    let tuple = client(4012);
    let key = crate::auth::long_term_key_md5("alice", "example.org", "wonderland").unwrap();
    let c = t.login("alice", Key::Md5(key), tuple);
    let resp = t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    assert_eq!(code_of(&resp), Some(403));
    t.now += horizon;
    let c = t.login("alice", Key::Md5(key), tuple);
    t.allocate(tuple, &c);
}

fn alternate_of(resp: &[u8]) -> Option<SocketAddr> {
    match Message::parse(resp)
        .unwrap()
        .get_decoded(attr_type::ALTERNATE_SERVER)?
    {
        Ok(Attribute::AlternateServer(a)) => Some(a),
        _ => None,
    }
}

#[test]
fn over_capacity_or_draining_redirects_to_the_clusters_pick() {
    let mut t = T::new();
    let udp_alt: SocketAddr = "192.0.2.77:3478".parse().unwrap();
    let tcp_alt: SocketAddr = "192.0.2.78:3478".parse().unwrap();
    t.s.shared().update_cluster(|v| {
        v.set_capacity(1);
        v.set_alternates(HashMap::from([
            ((Transport::Udp, false), udp_alt),
            ((Transport::Tcp, false), tcp_alt),
        ]))
    });
    let (tuple, c) = bob(&mut t, 4020);
    t.allocate(tuple, &c);
    // Full: the next one goes to the UDP pick.
    let (tuple, c) = bob(&mut t, 4021);
    let resp = t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    assert_eq!(code_of(&resp), Some(300));
    assert_eq!(alternate_of(&resp), Some(udp_alt));
    // Over TCP, to the TCP pick.
    let (mut tcp, _) = bob(&mut t, 4022);
    tcp.transport = Transport::Tcp;
    let c = t.login(&c.username, c.key, tcp);
    let resp = t.request(Method::ALLOCATE, tcp, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    assert_eq!(alternate_of(&resp), Some(tcp_alt));
    // Over TLS there is none: 508.
    let mut tls = tcp;
    tls.transport = Transport::Tls;
    let c = t.login(&c.username, c.key, tls);
    let resp = t.request(Method::ALLOCATE, tls, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    assert_eq!(code_of(&resp), Some(508));
    assert_eq!(t.s.stats().snapshot().redirects, 2);
    // Capacity lifted, but draining: redirected all the same.
    t.s.shared().update_cluster(|v| v.set_capacity(0));
    t.s.shared().set_draining(true);
    let (tuple, c) = bob(&mut t, 4023);
    let resp = t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    assert_eq!(alternate_of(&resp), Some(udp_alt));
    // Not draining: served here again.
    t.s.shared().set_draining(false);
    let (tuple, c) = bob(&mut t, 4024);
    t.allocate(tuple, &c);
}
