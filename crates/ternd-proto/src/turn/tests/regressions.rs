//! Regressions found in review.

use super::*;

#[test]
fn refreshes_and_permissions_do_not_grow_the_timer_heap() {
    let mut t = T::new();
    let (tuple, c, _) = logged_in(&mut t, 70);
    for i in 0..500u32 {
        t.request(Method::REFRESH, tuple, Some(&c), |b| {
            b.add(&Attribute::Lifetime(600 + i % 3)).unwrap()
        });
        t.request(Method::CREATE_PERMISSION, tuple, Some(&c), |b| {
            b.add(&Attribute::XorPeerAddress(peer(
                [198, 51, 100, (i % 200) as u8],
                1,
            )))
            .unwrap()
        });
    }
    let (_, _, timers) = t.s.table_sizes();
    assert!(timers <= 3, "timer heap holds {timers} entries");
}

#[test]
fn plain_allocations_never_take_a_reserved_port_and_lapsed_tokens_are_released() {
    let mut t = T::with(vec![], |c| {
        c.ports = crate::turn::PortRange {
            lo: 50000,
            hi: 50003,
        }
    });
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), client(1));
    let resp = t.request(Method::ALLOCATE, client(1), Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::EvenPort(true)).unwrap();
    });
    let Some(Ok(Attribute::ReservationToken(token))) = Message::parse(&resp)
        .unwrap()
        .get_decoded(attr_type::RESERVATION_TOKEN)
    else {
        panic!("{:?}", code_of(&resp))
    };
    // Two ports are left; plain allocations take them and never the reserved one.
    for port in [2u16, 3] {
        let c = t.login(&u, Key::Md5(k), client(port));
        t.allocate(client(port), &c);
    }
    let c4 = t.login(&u, Key::Md5(k), client(4));
    let resp = t.request(Method::ALLOCATE, client(4), Some(&c4), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(code_of(&resp), Some(508));
    assert_eq!(t.r.reserved.len(), 1);
    // A token presented after its 30 s but before the sweep: 508, and the port is released.
    t.now += Duration::from_secs(31);
    let c5 = t.login(&u, Key::Md5(k), client(5));
    let resp = t.request(Method::ALLOCATE, client(5), Some(&c5), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::ReservationToken(token)).unwrap();
    });
    assert_eq!(code_of(&resp), Some(508));
    assert!(t.r.reserved.is_empty(), "released, not leaked");
}

#[test]
fn wrong_credentials_441_is_protected_with_the_key_that_verified() {
    let mut t = T::new();
    let (tuple, _c, _) = logged_in(&mut t, 80);
    let (u, k, _) = rest_creds(86_400, "eve");
    let c = t.login(&u, Key::Md5(k), tuple);
    let resp = t.request(Method::REFRESH, tuple, Some(&c), |_| {});
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(441));
    m.verify_integrity(&k).unwrap();
}

/// A T whose credentials are the REST secret (if `rest`) and a user "carl" stored as an MD5
/// key of password "pw".
fn with_md5_key_user(rest: bool) -> (T, [u8; 16]) {
    use crate::auth::store::{CredentialStore, StaticUser, UserCredential};
    let t0 = Instant::now();
    let sh = shared(t0, vec![], |_| {});
    let key = long_term_key_md5("carl", "example.org", "pw").unwrap();
    let secrets: Vec<String> = if rest { vec!["s3cret".into()] } else { vec![] };
    let users = [StaticUser {
        name: "carl".into(),
        credential: UserCredential::Md5Key(key),
    }];
    sh.replace_credentials(CredentialStore::new("example.org", &secrets, &users, ':').unwrap());
    let t = T {
        s: Server::new(Arc::new(sh), Arc::new(Stats::default()), [1; 32]),
        r: FakeRelays::default(),
        t0,
        now: t0,
        next_tid: 1,
        cmds: Vec::new(),
    };
    (t, key)
}

/// The raw PASSWORD-ALGORITHMS of the 401 to an Allocate naming `user` (if any).
fn offered(t: &mut T, user: Option<&str>) -> Vec<u8> {
    let resp = t.request(Method::ALLOCATE, client(1), None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        if let Some(u) = user {
            b.add(&Attribute::Username(u)).unwrap();
        }
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(401));
    m.get(attr_type::PASSWORD_ALGORITHMS)
        .unwrap()
        .value
        .to_vec()
}

#[test]
fn md5_key_users_are_offered_what_everyone_is_and_fail_sha256_like_a_wrong_password() {
    let (mut t, key) = with_md5_key_user(true);
    let both = [0, 2, 0, 0, 0, 1, 0, 0];
    for user in [None, Some("carl"), Some("nobody")] {
        assert_eq!(offered(&mut t, user), both, "{user:?}");
    }
    // carl picks SHA-256 (with the key his password would give): 401 with a new challenge,
    // as a wrong password and an unknown user get.
    let sha = long_term_key_sha256("carl", "example.org", "pw").unwrap();
    let c = t.login("carl", Key::Sha256(sha), client(1));
    let resp = t.request(Method::ALLOCATE, client(1), Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(401));
    assert_eq!(m.get(attr_type::PASSWORD_ALGORITHMS).unwrap().value, both);
    let (u, _, k2) = rest_creds(86_400, "bob");
    let wrong = [
        ("carl", Key::Md5([7; 16])),
        (u.as_str(), Key::Sha256([7; 32])),
        ("nobody", Key::Sha256(k2)),
    ];
    for (name, k) in wrong {
        let c = t.login(name, k, client(1));
        let resp = t.request(Method::ALLOCATE, client(1), Some(&c), |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap();
        });
        assert_eq!(code_of(&resp), Some(401), "{name} {k:?}");
    }
    // carl authenticates with MD5 after such a challenge, echoing the list he was offered.
    let c = t.login("carl", Key::Md5(key), client(1));
    let resp = t.request(Method::ALLOCATE, client(1), None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add_raw(attr_type::PASSWORD_ALGORITHMS, &both).unwrap();
        b.add_raw(attr_type::PASSWORD_ALGORITHM, &[0, 1, 0, 0])
            .unwrap();
        b.add(&Attribute::Username("carl")).unwrap();
        b.add(&Attribute::Realm(&c.realm)).unwrap();
        b.add(&Attribute::Nonce(&c.nonce)).unwrap();
        b.add_message_integrity(&key).unwrap();
    });
    assert_eq!(
        Message::parse(&resp).unwrap().message_type().class,
        Class::Success,
        "{:?}",
        code_of(&resp)
    );
    // The MD5-only list carl was once offered is no longer what the server offers: 400.
    let c = t.login("carl", Key::Md5(key), client(2));
    let resp = t.request(Method::ALLOCATE, client(2), None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add_raw(attr_type::PASSWORD_ALGORITHMS, &[0, 1, 0, 0])
            .unwrap();
        b.add_raw(attr_type::PASSWORD_ALGORITHM, &[0, 1, 0, 0])
            .unwrap();
        b.add(&Attribute::Username("carl")).unwrap();
        b.add(&Attribute::Realm(&c.realm)).unwrap();
        b.add(&Attribute::Nonce(&c.nonce)).unwrap();
        b.add_message_integrity(&key).unwrap();
    });
    assert_eq!(code_of(&resp), Some(400));
}

#[test]
fn only_md5_keys_configured_offers_md5_to_everyone() {
    let (mut t, key) = with_md5_key_user(false);
    for user in [None, Some("carl"), Some("nobody")] {
        assert_eq!(offered(&mut t, user), [0, 1, 0, 0], "{user:?}");
    }
    let c = t.login("carl", Key::Md5(key), client(1));
    t.allocate(client(1), &c);
}

#[test]
fn an_expired_allocation_cannot_be_revived_or_used_before_the_sweep() {
    let mut t = T::with(vec!["198.51.100.0/24".parse().unwrap()], |c| {
        c.default_lifetime = Duration::from_secs(10)
    });
    let (tuple, c, relay) = logged_in(&mut t, 90);
    let p = peer([198, 51, 100, 8], 7000);
    t.request(Method::CHANNEL_BIND, tuple, Some(&c), |b| {
        b.add(&Attribute::ChannelNumber(0x4000)).unwrap();
        b.add(&Attribute::XorPeerAddress(p)).unwrap();
    });
    t.now += Duration::from_secs(10); // no handle_timeout: the sweep has not run
    assert_eq!(
        t.send(b"\x40\x00\x00\x00", tuple).0,
        Outcome::Dropped(DropReason::NoAllocation)
    );
    assert_eq!(peer_data(&mut t, relay.port(), p, b"x"), None);
    assert_eq!(
        code_of(&t.request(Method::REFRESH, tuple, Some(&c), |_| {})),
        Some(437)
    );
}
