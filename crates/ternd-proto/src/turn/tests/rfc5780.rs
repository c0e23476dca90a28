//! RFC 5780 NAT behaviour discovery in Binding: OTHER-ADDRESS, RESPONSE-ORIGIN,
//! CHANGE-REQUEST, RESPONSE-PORT and PADDING.

use super::*;

const PRIMARY: &str = "192.0.2.10:3478";
const ALTERNATE: &str = "192.0.2.11:3479";

fn nat_t() -> T {
    T::with(vec![], |c| {
        c.rfc5780 = Some(Rfc5780 {
            primary: PRIMARY.parse().unwrap(),
            alternate: ALTERNATE.parse().unwrap(),
        })
    })
}

fn at(server: &str, transport: Transport) -> FiveTuple {
    FiveTuple {
        client: "203.0.113.5:40000".parse().unwrap(),
        server: server.parse().unwrap(),
        transport,
    }
}

/// Sends a Binding request built by `build` on `tuple`; returns the outcome and the answer.
fn binding(
    t: &mut T,
    tuple: FiveTuple,
    build: impl FnOnce(&mut MessageBuilder<'_>),
) -> (Outcome, Vec<u8>) {
    let tid = t.tid();
    let mut buf = [0u8; 2048];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::Request),
        tid,
    )
    .unwrap();
    build(&mut b);
    let n = b.finish();
    let mut out = [0u8; 2048];
    let o =
        t.s.handle_client(&buf[..n], tuple, t.now, &mut out, &mut t.r);
    let len = match o {
        Outcome::Reply { len } | Outcome::ReplyVia { len, .. } => len,
        _ => 0,
    };
    (o, out[..len].to_vec())
}

fn addr_attr(resp: &[u8], typ: u16) -> Option<SocketAddr> {
    match Message::parse(resp).unwrap().get_decoded(typ)? {
        Ok(Attribute::ResponseOrigin(a))
        | Ok(Attribute::OtherAddress(a))
        | Ok(Attribute::MappedAddress(a))
        | Ok(Attribute::XorMappedAddress(a)) => Some(a),
        other => panic!("{other:?}"),
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn each_of_the_four_addresses_names_its_other_address_and_origin() {
    let mut t = nat_t();
    for (local, other) in [
        ("192.0.2.10:3478", "192.0.2.11:3479"),
        ("192.0.2.10:3479", "192.0.2.11:3478"),
        ("192.0.2.11:3478", "192.0.2.10:3479"),
        ("192.0.2.11:3479", "192.0.2.10:3478"),
    ] {
        let (o, resp) = binding(&mut t, at(local, Transport::Udp), |_| {});
        assert!(matches!(o, Outcome::Reply { .. }), "{o:?}");
        assert_eq!(addr_attr(&resp, attr_type::OTHER_ADDRESS), Some(sa(other)));
        assert_eq!(
            addr_attr(&resp, attr_type::RESPONSE_ORIGIN),
            Some(sa(local))
        );
        assert_eq!(
            addr_attr(&resp, attr_type::XOR_MAPPED_ADDRESS),
            Some(sa("203.0.113.5:40000"))
        );
        assert_eq!(
            addr_attr(&resp, attr_type::MAPPED_ADDRESS),
            Some(sa("203.0.113.5:40000"))
        );
    }
}

#[test]
fn change_request_answers_from_the_other_ip_and_port() {
    let mut t = nat_t();
    let tuple = at(PRIMARY, Transport::Udp);
    for (ip, port, from) in [
        (true, false, "192.0.2.11:3478"),
        (false, true, "192.0.2.10:3479"),
        (true, true, "192.0.2.11:3479"),
    ] {
        let (o, resp) = binding(&mut t, tuple, |b| {
            b.add(&Attribute::ChangeRequest { ip, port }).unwrap()
        });
        assert_eq!(
            o,
            Outcome::ReplyVia {
                len: resp.len(),
                from: sa(from),
                to: tuple.client
            }
        );
        assert_eq!(addr_attr(&resp, attr_type::RESPONSE_ORIGIN), Some(sa(from)));
        assert_eq!(
            addr_attr(&resp, attr_type::OTHER_ADDRESS),
            Some(sa(ALTERNATE)),
            "OTHER-ADDRESS is relative to where the request arrived"
        );
    }
    // No flags: answered the usual way.
    let (o, _) = binding(&mut t, tuple, |b| {
        b.add(&Attribute::ChangeRequest {
            ip: false,
            port: false,
        })
        .unwrap()
    });
    assert!(matches!(o, Outcome::Reply { .. }));
    // From the alternate address, "change IP and port" is the primary.
    let (o, _) = binding(&mut t, at(ALTERNATE, Transport::Udp), |b| {
        b.add(&Attribute::ChangeRequest {
            ip: true,
            port: true,
        })
        .unwrap()
    });
    assert!(matches!(o, Outcome::ReplyVia { from, .. } if from == sa(PRIMARY)));
}

#[test]
fn response_port_and_padding() {
    let mut t = nat_t();
    let tuple = at(PRIMARY, Transport::Udp);
    let (o, _) = binding(&mut t, tuple, |b| {
        b.add(&Attribute::ResponsePort(5555)).unwrap()
    });
    assert!(
        matches!(o, Outcome::ReplyVia { from, to, .. }
            if from == sa(PRIMARY) && to == sa("203.0.113.5:5555")),
        "{o:?}"
    );
    // RESPONSE-PORT 0 and a malformed one are 400.
    let (_, resp) = binding(&mut t, tuple, |b| {
        b.add(&Attribute::ResponsePort(0)).unwrap()
    });
    assert_eq!(code_of(&resp), Some(400));
    let (_, resp) = binding(&mut t, tuple, |b| {
        b.add_raw(attr_type::RESPONSE_PORT, &[1, 2]).unwrap()
    });
    assert_eq!(code_of(&resp), Some(400));
    let (_, resp) = binding(&mut t, tuple, |b| {
        b.add_raw(attr_type::CHANGE_REQUEST, &[0, 6]).unwrap()
    });
    assert_eq!(code_of(&resp), Some(400));

    // PADDING: the answer carries as much padding as the request, capped.
    let pad = [0x55u8; 1000];
    let (o, resp) = binding(&mut t, tuple, |b| b.add(&Attribute::Padding(&pad)).unwrap());
    assert!(matches!(o, Outcome::Reply { .. }));
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get(attr_type::PADDING).unwrap().value.len(), 1000);
    let big = [0u8; 1900];
    let (_, resp) = binding(&mut t, tuple, |b| b.add(&Attribute::Padding(&big)).unwrap());
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.get(attr_type::PADDING).unwrap().value.len(),
        MAX_RESPONSE_PADDING
    );
    assert!(
        resp.len() < 20 + 4 + big.len(),
        "never larger than the request"
    );
    // PADDING with RESPONSE-PORT: 400.
    let (o, resp) = binding(&mut t, tuple, |b| {
        b.add(&Attribute::ResponsePort(5555)).unwrap();
        b.add(&Attribute::Padding(&pad[..100])).unwrap();
    });
    assert!(matches!(o, Outcome::Reply { .. }));
    assert_eq!(code_of(&resp), Some(400));
}

#[test]
fn rfc5780_attributes_are_unknown_where_it_does_not_apply() {
    let change = |b: &mut MessageBuilder<'_>| {
        b.add(&Attribute::ChangeRequest {
            ip: true,
            port: true,
        })
        .unwrap()
    };
    // Off: 420 with the attribute listed, and no OTHER-ADDRESS in plain answers.
    let mut t = T::new();
    let tuple = at(PRIMARY, Transport::Udp);
    let (o, resp) = binding(&mut t, tuple, change);
    assert!(matches!(o, Outcome::Reply { .. }));
    assert_eq!(code_of(&resp), Some(420));
    let (_, resp) = binding(&mut t, tuple, |_| {});
    assert!(addr_attr(&resp, attr_type::OTHER_ADDRESS).is_none());
    assert!(addr_attr(&resp, attr_type::RESPONSE_ORIGIN).is_none());
    let (_, resp) = binding(&mut t, tuple, |b| {
        b.add(&Attribute::ResponsePort(7)).unwrap()
    });
    assert_eq!(code_of(&resp), Some(420));

    // On, but over TCP or on another listener: 420 as well.
    let mut t = nat_t();
    for tuple in [
        at(PRIMARY, Transport::Tcp),
        at("192.0.2.10:5000", Transport::Udp),
    ] {
        let (_, resp) = binding(&mut t, tuple, change);
        assert_eq!(code_of(&resp), Some(420), "{tuple:?}");
        let (_, resp) = binding(&mut t, tuple, |_| {});
        assert!(addr_attr(&resp, attr_type::OTHER_ADDRESS).is_none());
    }
    // And never in a TURN request.
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    let resp = t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        change(b);
    });
    assert_eq!(code_of(&resp), Some(420));
}
