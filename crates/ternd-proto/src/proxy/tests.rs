//! Tests of the PROXY header parser: the specification's examples, every rejection, and
//! prefix consistency (properties).

use std::net::IpAddr;

use super::*;
use proptest::prelude::*;

type Parsed = Result<Option<(Proxied, usize)>, ProxyError>;

fn addrs(source: &str, destination: &str) -> Proxied {
    Proxied::Addresses {
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
    }
}

/// A v2 header: version/command byte, family byte, then `payload` (length from it).
fn v2(version_command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(version_command);
    h.push(family);
    h.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// The address block of a v2 `PROXY` header for `proxied`, and its family byte.
fn v2_addresses(source: SocketAddr, destination: SocketAddr) -> (u8, Vec<u8>) {
    let mut p = Vec::new();
    let family = match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            V2_TCP4
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            V2_TCP6
        }
        _ => panic!("mixed families"),
    };
    p.extend_from_slice(&source.port().to_be_bytes());
    p.extend_from_slice(&destination.port().to_be_bytes());
    (family, p)
}

fn tlv(typ: u8, value: &[u8]) -> Vec<u8> {
    let mut t = vec![typ];
    t.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
    t.extend_from_slice(value);
    t
}

/// Checks `parse` on every prefix of `bytes`: `Ok(None)` until the first decision, which
/// every longer prefix repeats (any `Err` for `Err`). Returns the answer for all of it.
fn check_prefixes(bytes: &[u8]) -> Parsed {
    let mut decided: Option<Parsed> = None;
    for k in 0..=bytes.len() {
        let r = parse(&bytes[..k]);
        if let Ok(Some((_, n))) = r {
            assert!(n <= k && n <= MAX_HEADER_LEN, "{n} for {k} bytes");
        }
        if k >= MAX_HEADER_LEN {
            assert_ne!(r, Ok(None), "undecided at {k} bytes");
        }
        match &decided {
            None if r != Ok(None) => decided = Some(r),
            None => {}
            Some(Err(_)) => assert!(r.is_err(), "{:?} after an error at {k}", r),
            Some(d) => assert_eq!(&r, d, "changed at {k}"),
        }
    }
    parse(bytes)
}

/// A complete valid header parses to `want` with `header_len == bytes.len()`, every
/// strict prefix needs more bytes, and trailing bytes are not consumed.
fn valid(bytes: &[u8], want: Proxied) {
    assert_eq!(parse(bytes), Ok(Some((want, bytes.len()))), "{bytes:?}");
    for k in 0..bytes.len() {
        assert_eq!(parse(&bytes[..k]), Ok(None), "prefix {k} of {bytes:?}");
    }
    for tail in [
        &b"\0"[..],
        b"\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42],
    ] {
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(tail);
        assert_eq!(parse(&longer), Ok(Some((want, bytes.len()))));
    }
    assert_eq!(check_prefixes(bytes), Ok(Some((want, bytes.len()))));
}

/// `bytes` is rejected with `want`, consistently with its prefixes.
fn invalid(bytes: &[u8], want: ProxyError) {
    assert_eq!(
        check_prefixes(bytes),
        Err(want),
        "{:?}",
        String::from_utf8_lossy(bytes)
    );
}

/// Like [`invalid`], and already rejected before the header could be complete: at the
/// first `len` bytes.
fn invalid_early(bytes: &[u8], len: usize, want: ProxyError) {
    invalid(bytes, want);
    let first = (0..=bytes.len()).find(|&k| parse(&bytes[..k]).is_err());
    assert_eq!(first, Some(len), "{:?}", String::from_utf8_lossy(bytes));
    assert_eq!(parse(&bytes[..len]), Err(want));
}

const FFFF6: &str = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

#[test]
fn v1_spec_examples() {
    valid(
        b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
        addrs("255.255.255.255:65535", "255.255.255.255:65535"),
    );
    let tcp6 = format!("PROXY TCP6 {FFFF6} {FFFF6} 65535 65535\r\n");
    assert_eq!(tcp6.len(), 104);
    valid(
        tcp6.as_bytes(),
        addrs(&format!("[{FFFF6}]:65535"), &format!("[{FFFF6}]:65535")),
    );
    valid(b"PROXY UNKNOWN\r\n", Proxied::Local);
    let unknown = format!("PROXY UNKNOWN {FFFF6} {FFFF6} 65535 65535\r\n");
    assert_eq!(unknown.len(), V1_MAX_LEN);
    valid(unknown.as_bytes(), Proxied::Local);
    valid(
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        addrs("192.168.0.1:56324", "192.168.0.11:443"),
    );
    valid(
        b"PROXY TCP6 2001:db8::1 ::ffff:192.0.2.7 0 3478\r\n",
        addrs("[2001:db8::1]:0", "[::ffff:192.0.2.7]:3478"),
    );
    valid(
        b"PROXY TCP6 2001:DB8:0:0:0:0:0:1 :: 1 2\r\n",
        addrs("[2001:db8::1]:1", "[::]:2"),
    );
    // UNKNOWN ignores whatever precedes the CRLF.
    valid(b"PROXY UNKNOWN \r\n", Proxied::Local);
    valid(b"PROXY UNKNOWN garbage \x00\xff  x\r\n", Proxied::Local);
}

#[test]
fn v1_bad_ports() {
    for port in [
        "65536", "99999", "100000", "01", "00", "-1", "+1", "1a", "0x10", "", "１",
    ] {
        let line = format!("PROXY TCP4 1.2.3.4 5.6.7.8 {port} 80\r\n");
        invalid(line.as_bytes(), ProxyError::Malformed);
        let line = format!("PROXY TCP4 1.2.3.4 5.6.7.8 80 {port}\r\n");
        invalid(line.as_bytes(), ProxyError::Malformed);
    }
    // Rejected as soon as the port cannot be completed.
    invalid_early(
        b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n",
        32,
        ProxyError::Malformed,
    );
    invalid_early(
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 80\r\n",
        29,
        ProxyError::Malformed,
    );
    invalid_early(
        b"PROXY TCP4 1.2.3.4 5.6.7.8 80 -1\r\n",
        31,
        ProxyError::Malformed,
    );
    // A missing destination port.
    invalid(b"PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n", ProxyError::Malformed);
}

#[test]
fn v1_bad_addresses() {
    for (proto, src) in [
        ("TCP4", "256.1.1.1"),
        ("TCP4", "01.2.3.4"),
        ("TCP4", "1.2.3"),
        ("TCP4", "1.2.3.4.5"),
        ("TCP4", "1..3.4"),
        ("TCP4", "1.2.3.4."),
        ("TCP4", "::1"),
        ("TCP4", "localhost"),
        ("TCP6", "1.2.3.4"),
        ("TCP6", "1::2::3"),
        ("TCP6", "gggg::1"),
        ("TCP6", "12345::1"),
        ("TCP6", "1:2:3:4:5:6:7:8:9"),
        ("TCP6", ":1"),
        ("TCP6", "[::1]"),
        ("TCP6", "::1%eth0"),
    ] {
        let dst = if proto == "TCP4" { "5.6.7.8" } else { "::2" };
        let line = format!("PROXY {proto} {src} {dst} 1 2\r\n");
        invalid(line.as_bytes(), ProxyError::Malformed);
        let line = format!("PROXY {proto} {dst} {src} 1 2\r\n");
        invalid(line.as_bytes(), ProxyError::Malformed);
    }
    // Rejected as soon as the address cannot be completed.
    invalid_early(
        b"PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n",
        14,
        ProxyError::Malformed,
    );
    invalid_early(
        b"PROXY TCP4 01.1.1.1 5.6.7.8 1 2\r\n",
        13,
        ProxyError::Malformed,
    );
    invalid_early(b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", 12, ProxyError::Malformed);
    invalid_early(b"PROXY TCP6 1::2::3 ::1 1 2\r\n", 17, ProxyError::Malformed);
    invalid_early(
        b"PROXY TCP6 ::ffff:1.2.3.4:5 ::1 1 2\r\n",
        26,
        ProxyError::Malformed,
    );
}

#[test]
fn v1_protocols() {
    invalid_early(
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        8,
        ProxyError::Unsupported,
    );
    invalid_early(
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        10,
        ProxyError::Unsupported,
    );
    invalid(
        b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        ProxyError::Unsupported,
    );
    invalid(b"PROXY UNKNOWNX\r\n", ProxyError::Unsupported);
    invalid(b"PROXY \r\n", ProxyError::Malformed);
    invalid(b"PROXY TCP4\r\n", ProxyError::Malformed);
    invalid_early(
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        31,
        ProxyError::Malformed,
    );
}

#[test]
fn v1_line_endings() {
    let line = b"PROXY TCP4 192.0.2.1 192.0.2.2 4000 3478";
    // No CRLF yet: more bytes needed.
    assert_eq!(parse(line), Ok(None));
    let mut cr = line.to_vec();
    cr.push(b'\r');
    assert_eq!(parse(&cr), Ok(None));
    for bad in [&b"\n"[..], b"\rX", b"\r\r\n", b"\n\r"] {
        let mut l = line.to_vec();
        l.extend_from_slice(bad);
        invalid(&l, ProxyError::Malformed);
    }
    invalid_early(b"PROXY UNKNOWN a\nb\r\n", 16, ProxyError::Malformed);
    invalid_early(b"PROXY UNKNOWN\rX", 15, ProxyError::Malformed);
}

#[test]
fn v1_over_long_line() {
    // 107 bytes without CRLF.
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(V1_MAX_LEN, b'x');
    assert_eq!(parse(&long[..V1_MAX_LEN - 1]), Ok(None));
    invalid(&long, ProxyError::TooLong);
    long.extend_from_slice(b"\r\n");
    invalid(&long, ProxyError::TooLong);
    // The CR as the 107th byte leaves no room for the LF.
    let mut cr = b"PROXY UNKNOWN ".to_vec();
    cr.resize(V1_MAX_LEN - 1, b'x');
    cr.extend_from_slice(b"\r\n");
    assert_eq!(cr.len(), V1_MAX_LEN + 1);
    invalid(&cr, ProxyError::TooLong);
    // One byte less fits exactly.
    cr.remove(20);
    valid(&cr, Proxied::Local);
    // A TCP6 line using the longest address forms does not fit.
    let v4mapped = "0000:0000:0000:0000:0000:ffff:255.255.255.255";
    let line = format!("PROXY TCP6 {v4mapped} {v4mapped} 1 2\r\n");
    invalid(line.as_bytes(), ProxyError::TooLong);
}

#[test]
fn v1_extra_spaces() {
    for line in [
        &b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"[..],
        b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\t2\r\n",
        b"PROXY  UNKNOWN\r\n",
    ] {
        assert!(
            check_prefixes(line).is_err(),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    invalid(b" PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyError::NotProxy);
    invalid(b"PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyError::NotProxy);
    invalid(b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyError::NotProxy);
    invalid_early(
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        31,
        ProxyError::Malformed,
    );
}

#[test]
fn not_proxy() {
    assert_eq!(parse(b""), Ok(None));
    assert_eq!(parse(b"P"), Ok(None));
    assert_eq!(parse(b"\r"), Ok(None));
    for bytes in [
        &b"GET / HTTP/1.1\r\n"[..],
        &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42],
        &[0x16, 0x03, 0x01],
        b"\r\n\r\n\r\n",
        b"PR0XY",
    ] {
        invalid(bytes, ProxyError::NotProxy);
    }
}

fn v2_tcp4() -> (Vec<u8>, Proxied) {
    let want = addrs("192.0.2.1:4000", "198.51.100.2:3478");
    let Proxied::Addresses {
        source,
        destination,
    } = want
    else {
        unreachable!()
    };
    let (family, block) = v2_addresses(source, destination);
    (v2(0x21, family, &block), want)
}

#[test]
fn v2_proxy_inet_and_inet6() {
    let (h, want) = v2_tcp4();
    assert_eq!(h.len(), 28);
    assert_eq!(&h[12..16], &[0x21, 0x11, 0x00, 0x0c]);
    valid(&h, want);

    let want = addrs("[2001:db8::1]:65535", "[2001:db8:ffff::2]:443");
    let Proxied::Addresses {
        source,
        destination,
    } = want
    else {
        unreachable!()
    };
    let (family, block) = v2_addresses(source, destination);
    assert_eq!(family, 0x21);
    let h = v2(0x21, family, &block);
    assert_eq!(h.len(), 52);
    valid(&h, want);
}

#[test]
fn v2_local_and_unspec() {
    valid(&v2(0x20, 0x00, &[]), Proxied::Local);
    // LOCAL ignores the family and whatever the block holds.
    valid(&v2(0x20, 0x11, &[1; 12]), Proxied::Local);
    valid(&v2(0x20, 0x31, &[0xff; 216]), Proxied::Local);
    valid(&v2(0x20, 0x77, &[0xff; 5]), Proxied::Local);
    // PROXY with AF_UNSPEC: the endpoints are unknown; use the socket's.
    valid(&v2(0x21, 0x00, &[]), Proxied::Local);
    valid(&v2(0x21, 0x00, &[9; 40]), Proxied::Local);
}

#[test]
fn v2_tlvs_are_skipped() {
    let (h, want) = v2_tcp4();
    let block = &h[16..];
    let mut payload = block.to_vec();
    payload.extend(tlv(0x01, b"turn")); // ALPN
    payload.extend(tlv(0x02, b"turn.example.com")); // AUTHORITY
    payload.extend(tlv(0x04, &[])); // NOOP
    payload.extend(tlv(0xea, b"\x01vpce-0123456789abcdef0")); // AWS VPC endpoint
    payload.extend(tlv(0x03, &[0xde, 0xad, 0xbe, 0xef])); // CRC32C (not checked)
    valid(&v2(0x21, 0x11, &payload), want);

    // The largest accepted payload.
    let mut max = block.to_vec();
    max.extend(tlv(0x04, &vec![0; V2_MAX_PAYLOAD - 12 - 3]));
    let h = v2(0x21, 0x11, &max);
    assert_eq!(h.len(), MAX_HEADER_LEN);
    valid(&h, want);
    // One more is too long, known from the length field alone.
    max.push(0);
    invalid_early(&v2(0x21, 0x11, &max), 16, ProxyError::TooLong);
    invalid_early(&v2(0x20, 0x00, &[0; 0xffff]), 16, ProxyError::TooLong);
}

#[test]
fn v2_broken_tlv_framing() {
    let (h, _) = v2_tcp4();
    let block = &h[16..];
    // A TLV running past the end of the header: rejected once its length is read.
    let mut payload = block.to_vec();
    payload.extend(tlv(0x01, b"turn"));
    payload.truncate(payload.len() - 1);
    invalid_early(
        &v2(0x21, 0x11, &payload),
        16 + 12 + 3,
        ProxyError::Malformed,
    );
    // One or two stray bytes after the last TLV.
    for stray in [1, 2] {
        let mut payload = block.to_vec();
        payload.extend(tlv(0x01, b"turn"));
        payload.extend(std::iter::repeat_n(0, stray));
        invalid_early(
            &v2(0x21, 0x11, &payload),
            16 + 12 + 3,
            ProxyError::Malformed,
        );
    }
}

#[test]
fn v2_unsupported_families() {
    let (h, _) = v2_tcp4();
    let block = h[16..].to_vec();
    for family in [0x12, 0x22, 0x31, 0x32, 0x10, 0x20, 0x13, 0x01, 0x41, 0xff] {
        let mut payload = block.clone();
        payload.resize(216, 0);
        invalid_early(&v2(0x21, family, &payload), 14, ProxyError::Unsupported);
    }
}

#[test]
fn v2_bad_signature_version_command_length() {
    let (h, _) = v2_tcp4();
    for at in 0..12 {
        let mut bad = h.clone();
        bad[at] ^= 0x40;
        assert!(check_prefixes(&bad).is_err());
        if at > 0 {
            invalid_early(&bad, at + 1, ProxyError::NotProxy);
        }
    }
    for vc in [0x11, 0x31, 0x01, 0xf1, 0x10] {
        let mut bad = h.clone();
        bad[12] = vc;
        invalid_early(&bad, 13, ProxyError::UnsupportedVersion);
    }
    for vc in [0x22, 0x2f] {
        let mut bad = h.clone();
        bad[12] = vc;
        invalid_early(&bad, 13, ProxyError::UnsupportedCommand);
    }
    // Address blocks shorter than the family needs.
    invalid_early(&v2(0x21, 0x11, &[0; 11]), 16, ProxyError::Malformed);
    invalid_early(&v2(0x21, 0x21, &[0; 35]), 16, ProxyError::Malformed);
    invalid_early(&v2(0x21, 0x21, &[0; 12]), 16, ProxyError::Malformed);
}

#[test]
fn v2_truncated_at_every_length() {
    let (h, want) = v2_tcp4();
    valid(&h, want);
    for k in 0..h.len() {
        assert_eq!(parse(&h[..k]), Ok(None));
    }
    // A header announced longer than the bytes received is not complete.
    let mut short = h.clone();
    short[15] = 20;
    assert_eq!(parse(&short), Ok(None));
}

/// Arbitrary addresses of one family.
fn arb_addresses() -> impl Strategy<Value = Proxied> {
    let v4 = (
        any::<[u8; 4]>(),
        any::<u16>(),
        any::<[u8; 4]>(),
        any::<u16>(),
    )
        .prop_map(|(s, sp, d, dp)| Proxied::Addresses {
            source: SocketAddr::from((s, sp)),
            destination: SocketAddr::from((d, dp)),
        });
    let v6 = (
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<[u8; 16]>(),
        any::<u16>(),
    )
        .prop_map(|(s, sp, d, dp)| Proxied::Addresses {
            source: SocketAddr::from((s, sp)),
            destination: SocketAddr::from((d, dp)),
        });
    prop_oneof![v4, v6]
}

/// A valid header (v1 or v2, with random TLVs for v2) and what it says.
fn arb_header() -> impl Strategy<Value = (Vec<u8>, Proxied)> {
    let tlvs = proptest::collection::vec(
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)),
        0..6,
    );
    (arb_addresses(), any::<bool>(), any::<bool>(), tlvs).prop_map(|(want, text, local, tlvs)| {
        let Proxied::Addresses {
            source,
            destination,
        } = want
        else {
            unreachable!()
        };
        if text {
            if local {
                return (b"PROXY UNKNOWN\r\n".to_vec(), Proxied::Local);
            }
            let proto = if source.is_ipv4() { "TCP4" } else { "TCP6" };
            let line = format!(
                "PROXY {proto} {} {} {} {}\r\n",
                source.ip(),
                destination.ip(),
                source.port(),
                destination.port()
            );
            return (line.into_bytes(), want);
        }
        let (family, mut payload) = v2_addresses(source, destination);
        for (typ, value) in tlvs {
            payload.extend(tlv(typ, &value));
        }
        if local {
            (v2(0x20, family, &payload), Proxied::Local)
        } else {
            (v2(0x21, family, &payload), want)
        }
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = check_prefixes(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_signature_never_panic(
        v2_sig in any::<bool>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..700),
    ) {
        let mut buf = if v2_sig { V2_SIGNATURE.to_vec() } else { V1_SIGNATURE.to_vec() };
        buf.extend_from_slice(&bytes);
        let _ = check_prefixes(&buf);
    }

    #[test]
    fn valid_header_with_trailing_bytes(
        (header, want) in arb_header(),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        prop_assert!(header.len() <= MAX_HEADER_LEN);
        prop_assert_eq!(parse(&header), Ok(Some((want, header.len()))));
        for k in 0..header.len() {
            prop_assert_eq!(parse(&header[..k]), Ok(None));
        }
        let mut buf = header.clone();
        buf.extend_from_slice(&tail);
        prop_assert_eq!(parse(&buf), Ok(Some((want, header.len()))));
    }

    #[test]
    fn mutated_header_is_consistent(
        (header, _) in arb_header(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut buf = header;
        for (at, byte) in flips {
            let i = at.index(buf.len());
            buf[i] = byte;
        }
        let _ = check_prefixes(&buf);
    }
}
