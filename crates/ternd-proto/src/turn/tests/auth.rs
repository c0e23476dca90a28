//! Authentication: long-term credentials, REST credentials, nonces.

use super::*;

#[test]
fn unauthenticated_allocate_gets_401_with_realm_nonce_algorithms_and_no_state() {
    let mut t = T::new();
    let resp = t.request(Method::ALLOCATE, client(1), None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(401));
    assert_eq!(
        m.get_decoded(attr_type::REALM).unwrap().unwrap(),
        Attribute::Realm("example.org")
    );
    let Some(Ok(Attribute::Nonce(n))) = m.get_decoded(attr_type::NONCE) else {
        panic!()
    };
    assert!(n.starts_with("obMatJos2"));
    let Some(Ok(Attribute::PasswordAlgorithms(p))) = m.get_decoded(attr_type::PASSWORD_ALGORITHMS)
    else {
        panic!()
    };
    let algs: Vec<u16> = p.iter().map(|a| a.algorithm).collect();
    assert_eq!(algs, vec![2, 1], "SHA-256 then MD5");
    assert!(!m.has_integrity());
    assert_eq!(t.s.table_sizes(), (0, 0, 0));
    assert!(t.r.open.is_empty());
}

#[test]
fn no_state_after_many_unauthenticated_allocates() {
    let mut t = T::new();
    for i in 0..10_000u32 {
        let tuple = client(1000 + (i % 1000) as u16);
        let mut b = [0u8; 128];
        let mut m = MessageBuilder::new(
            &mut b,
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([i as u8; 12]),
        )
        .unwrap();
        m.add(&Attribute::RequestedTransport(17)).unwrap();
        m.add(&Attribute::Username("1:nobody")).unwrap();
        let n = m.finish();
        let _ = t.send(&b[..n], tuple);
    }
    assert_eq!(t.s.table_sizes(), (0, 0, 0));
    assert_eq!(t.s.shared().user_allocations("nobody"), 0);
    assert!(t.r.open.is_empty() && t.r.reserved.is_empty());
}

#[test]
fn rest_allocate_success() {
    let mut t = T::new();
    let (tuple, c, relay) = logged_in(&mut t, 7000);
    assert_eq!(
        relay.ip(),
        IpAddr::from([198, 51, 100, 10]),
        "advertised external address"
    );
    assert!((50000..=50099).contains(&relay.port()));
    assert!(
        t.r.open
            .contains(&SocketAddr::new([192, 0, 2, 10].into(), relay.port())),
        "bound on the relay IP"
    );
    let a = t.s.allocation(&tuple).unwrap();
    assert_eq!(a.user, "bob");
    assert_eq!(a.username, c.username);
    assert_eq!(t.s.shared().user_allocations("bob"), 1);
    let st = t.s.stats().snapshot();
    assert_eq!(st.allocations_created, 1);
    assert_eq!(
        (
            st.allocations_created_udp,
            st.allocations_created_tcp,
            st.allocations_created_tls
        ),
        (1, 0, 0),
        "counted under the client's transport"
    );
}

#[test]
fn allocate_response_carries_mapped_lifetime_and_integrity() {
    let mut t = T::new();
    let tuple = client(7001);
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    let mut buf = [0u8; 512];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId([9; 12]),
    )
    .unwrap();
    b.add(&Attribute::RequestedTransport(17)).unwrap();
    b.add(&Attribute::Username(&c.username)).unwrap();
    b.add(&Attribute::Realm(&c.realm)).unwrap();
    b.add(&Attribute::Nonce(&c.nonce)).unwrap();
    b.add_message_integrity(&k).unwrap();
    b.add_fingerprint().unwrap();
    let n = b.finish();
    let resp = t.send(&buf[..n], tuple).1;
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::Success);
    assert_eq!(
        m.get_decoded(attr_type::XOR_MAPPED_ADDRESS)
            .unwrap()
            .unwrap(),
        Attribute::XorMappedAddress(tuple.client)
    );
    assert_eq!(lifetime_of(&resp), 600);
    m.verify_integrity(&k).unwrap();
    m.verify_fingerprint().unwrap();
}

#[test]
fn static_user_md5_and_sha256() {
    let mut t = T::new();
    let k = long_term_key_md5("alice", "example.org", "wonderland").unwrap();
    let c = t.login("alice", Key::Md5(k), client(1));
    t.allocate(client(1), &c);
    let k2 = long_term_key_sha256("alice", "example.org", "wonderland").unwrap();
    let c2 = t.login("alice", Key::Sha256(k2), client(2));
    let resp = t.request(Method::ALLOCATE, client(2), Some(&c2), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::Success);
    assert!(
        m.has_integrity_sha256() && !m.has_integrity(),
        "answer protected like the request"
    );
    m.verify_integrity_sha256(&k2).unwrap();
}

#[test]
fn auth_failures() {
    let mut t = T::new();
    let tuple = client(9);
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    // Wrong key: 401 with a fresh nonce.
    let bad = Creds {
        key: Key::Md5([0; 16]),
        ..Creds {
            username: c.username.clone(),
            key: c.key,
            realm: c.realm.clone(),
            nonce: c.nonce.clone(),
        }
    };
    let resp = t.request(Method::ALLOCATE, tuple, Some(&bad), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(code_of(&resp), Some(401));
    let st = t.s.stats().snapshot();
    assert_eq!((st.auth_wrong_password, st.auth_unknown_user), (1, 0));
    assert_eq!(st.auth_no_integrity, 1, "the login's challenge");
    // Unknown user (not REST-shaped): 401.
    let other = Creds {
        username: "mallory".into(),
        key: c.key,
        realm: c.realm.clone(),
        nonce: c.nonce.clone(),
    };
    assert_eq!(
        code_of(&t.request(Method::ALLOCATE, tuple, Some(&other), |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap()
        })),
        Some(401)
    );
    let st = t.s.stats().snapshot();
    assert_eq!((st.auth_wrong_password, st.auth_unknown_user), (1, 1));
    assert_eq!(st.auth_unauthorized, 3, "the sum of the three");
    // MESSAGE-INTEGRITY without NONCE: 400.
    let tid = t.tid();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        tid,
    )
    .unwrap();
    b.add(&Attribute::RequestedTransport(17)).unwrap();
    b.add(&Attribute::Username(&c.username)).unwrap();
    b.add(&Attribute::Realm(&c.realm)).unwrap();
    b.add_message_integrity(&k).unwrap();
    let n = b.finish();
    assert_eq!(code_of(&t.send(&buf[..n], tuple).1), Some(400));
    // PASSWORD-ALGORITHM without PASSWORD-ALGORITHMS: 400.
    let resp = t.request(Method::ALLOCATE, tuple, None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add_raw(attr_type::PASSWORD_ALGORITHM, &[0, 1, 0, 0])
            .unwrap();
        b.add(&Attribute::Username(&c.username)).unwrap();
        b.add(&Attribute::Realm(&c.realm)).unwrap();
        b.add(&Attribute::Nonce(&c.nonce)).unwrap();
        b.add_message_integrity(&k).unwrap();
    });
    assert_eq!(code_of(&resp), Some(400));
    // A nonce made for another client: 438.
    let c_other = t.login(&u, Key::Md5(k), client(10));
    let stolen = Creds {
        nonce: c_other.nonce.clone(),
        username: c.username.clone(),
        key: c.key,
        realm: c.realm.clone(),
    };
    assert_eq!(
        code_of(&t.request(Method::ALLOCATE, tuple, Some(&stolen), |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap()
        })),
        Some(438)
    );
    // Stale: past the nonce lifetime.
    t.advance(Duration::from_secs(601));
    let resp = t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(438));
    assert!(m.get(attr_type::NONCE).is_some() && m.get(attr_type::REALM).is_some());
    assert_eq!(t.s.table_sizes(), (0, 0, 0));
}

#[test]
fn expired_rest_credential_is_401_and_lifetime_is_clamped_to_it() {
    let mut t = T::new();
    let (u, k, _) = rest_creds(200, "carol");
    let c = t.login(&u, Key::Md5(k), client(1));
    let resp = t.request(Method::ALLOCATE, client(1), Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(
        lifetime_of(&resp),
        200,
        "clamped to the credential's expiry"
    );
    t.advance(Duration::from_secs(150));
    let c = t.login(&u, Key::Md5(k), client(1));
    let resp = t.request(Method::REFRESH, client(1), Some(&c), |b| {
        b.add(&Attribute::Lifetime(3600)).unwrap()
    });
    assert_eq!(lifetime_of(&resp), 50);
    t.advance(Duration::from_secs(49));
    let c = t.login(&u, Key::Md5(k), client(2));
    t.advance(Duration::from_secs(2));
    let resp = t.request(Method::ALLOCATE, client(2), Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(code_of(&resp), Some(401), "expired username");
    assert_eq!(t.s.stats().snapshot().auth_expired, 1);
    assert_eq!(
        t.s.allocation_count(),
        0,
        "the first allocation expired with its credential"
    );
}
