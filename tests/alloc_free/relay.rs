//! The relay fast path performs no heap allocation.
//!
//! A counting `#[global_allocator]` wraps `System` (the pattern of `parse.rs`).
//! Counting is switched on per thread (a thread-local flag), so allocations made by the test
//! harness or by other tests running on other threads are not counted; only what the
//! measured closure does on this thread is.
//!
//! The steady state (1 and 1,000 allocations, each with a permission and a channel) is built
//! through the public API with real STUN messages, as in `benches/relay.rs`: Allocate (401,
//! then with REST credentials), CreatePermission and ChannelBind on distinct client
//! 5-tuples towards distinct peers. Then, counted, [`ITERATIONS`] packets of each kind,
//! round robin over the allocations:
//!
//! - ChannelData client → peer (`Server::handle_client` → `Outcome::Forward`);
//! - ChannelData peer → client (`Server::handle_peer` → `PeerOutcome::ToClient`);
//! - a Send indication client → peer (`handle_client` → `Outcome::Forward`);
//! - a Data indication peer → client (`handle_peer` → `PeerOutcome::ToClient`, from a
//!   permitted peer without a channel).
//!
//! Nothing is warmed up before counting: the first packet counts too. Each path is counted
//! separately, so a failure names the path. `counter_sees_allocations` proves the counter is
//! live, so a zero is not vacuous.

use std::hint::black_box;

use ternd::stun::{Attribute, Message, attr_type};
use ternd::turn::testing::steady::{DATA_INDICATION, PAYLOAD, Steady, channel_frame, peer_buffer};
use ternd::turn::{Outcome, PEER_HEADROOM, PeerOutcome};

use super::counting::count_allocs;

/// Packets per path per test.
const ITERATIONS: usize = 10_000;

fn assert_paths_allocation_free(s: &mut Steady) {
    let n = s.allocs.len();
    let frame = channel_frame();
    let mut out = [0u8; 1500];
    let mut buf = peer_buffer();
    let Steady {
        server,
        relays,
        now,
        allocs,
        ..
    } = s;
    let now = *now;

    // Each closure returns how many packets gave the expected outcome.
    let (cd_out, cd_out_allocs) = count_allocs(|| {
        let mut ok = 0;
        for k in 0..ITERATIONS {
            let a = &allocs[k % n];
            let o = server.handle_client(black_box(&frame), a.tuple, now, &mut out, relays);
            let want = Outcome::Forward {
                relay: a.relay,
                peer: a.peer,
                start: 4,
                len: PAYLOAD,
            };
            ok += usize::from(black_box(o) == want);
        }
        ok
    });
    let (cd_in, cd_in_allocs) = count_allocs(|| {
        let mut ok = 0;
        for k in 0..ITERATIONS {
            let a = &allocs[k % n];
            let o = server.handle_peer(a.relay, a.peer, black_box(&mut buf), PAYLOAD, now);
            let want = PeerOutcome::ToClient {
                tuple: a.tuple,
                start: PEER_HEADROOM - 4,
                len: 4 + PAYLOAD,
            };
            ok += usize::from(black_box(o) == want);
        }
        ok
    });
    let (send, send_allocs) = count_allocs(|| {
        let mut ok = 0;
        for k in 0..ITERATIONS {
            let a = &allocs[k % n];
            let o = server.handle_client(black_box(&a.send), a.tuple, now, &mut out, relays);
            ok += usize::from(matches!(
                black_box(o),
                Outcome::Forward { relay, peer, len: PAYLOAD, .. }
                    if relay == a.relay && peer == a.peer
            ));
        }
        ok
    });
    let (data, data_allocs) = count_allocs(|| {
        let mut ok = 0;
        for k in 0..ITERATIONS {
            let a = &allocs[k % n];
            let o = server.handle_peer(a.relay, a.other_peer, black_box(&mut buf), PAYLOAD, now);
            let (start, len) = DATA_INDICATION;
            let want = PeerOutcome::ToClient {
                tuple: a.tuple,
                start,
                len,
            };
            ok += usize::from(black_box(o) == want);
        }
        ok
    });

    let results = [
        ("ChannelData client -> peer", cd_out, cd_out_allocs),
        ("ChannelData peer -> client", cd_in, cd_in_allocs),
        ("Send indication client -> peer", send, send_allocs),
        ("Data indication peer -> client", data, data_allocs),
    ];
    let failures: Vec<String> = results
        .iter()
        .filter(|&&(_, ok, allocs)| ok != ITERATIONS || allocs != 0)
        .map(|(path, ok, allocs)| {
            format!("{path}: {allocs} heap allocation(s), {ok}/{ITERATIONS} expected outcomes")
        })
        .collect();
    assert!(
        failures.is_empty(),
        "with {n} allocation(s):\n{}",
        failures.join("\n")
    );

    // The last Data indication is well formed (the outcome checks above are positional).
    let (start, len) = DATA_INDICATION;
    let m = Message::parse(&buf[start..start + len]).expect("data indication");
    let last = &allocs[(ITERATIONS - 1) % n];
    assert_eq!(
        m.get_decoded(attr_type::XOR_PEER_ADDRESS),
        Some(Ok(Attribute::XorPeerAddress(last.other_peer)))
    );
    assert_eq!(
        m.get_decoded(attr_type::DATA),
        Some(Ok(Attribute::Data(&[0x5A; PAYLOAD])))
    );
    let st = server.stats().snapshot();
    assert_eq!(st.relayed_out_packets, 2 * ITERATIONS as u64);
    assert_eq!(st.relayed_in_packets, 2 * ITERATIONS as u64);
}

#[test]
fn one_allocation_relays_without_heap_allocation() {
    assert_paths_allocation_free(&mut Steady::new(1, std::time::Instant::now()));
}

#[test]
fn thousand_allocations_relay_without_heap_allocation() {
    assert_paths_allocation_free(&mut Steady::new(1_000, std::time::Instant::now()));
}

#[test]
fn counter_sees_allocations() {
    let ((), allocs) = count_allocs(|| {
        let mut v: Vec<u8> = black_box(Vec::new());
        v.push(1);
        black_box(&v);
    });
    assert_eq!(allocs, 1, "the counting allocator is not counting");
}
