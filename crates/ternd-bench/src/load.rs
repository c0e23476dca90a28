//! The load loop: setup, a paced sender, a receiver timing the echoes, refreshes during
//! long runs, the drain and the report.

use std::cell::RefCell;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ternd_client::data::{self, Incoming};
use ternd_proto::stun::TransactionId;

use crate::args::{BenchArgs, Mode, Rate};
use crate::control::{Alloc, Via, deallocate, setup};
use crate::peer::EchoPeer;
use crate::report::{Latency, Report, ServerDrops, cpu_seconds, new_histogram};
use crate::{
    CHANNEL, MAGIC, MAX_ALLOCATIONS, MAX_DURATION, MAX_SIZE, MIN_SIZE, REFRESH_AFTER,
    REFRESH_EVERY, progress,
};

/// Counters shared by the threads of a run.
#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    send_errors: AtomicU64,
    received: AtomicU64,
    sending_done: AtomicBool,
    stop_receiving: AtomicBool,
}

/// What the sender needs per allocation: its socket and a prebuilt frame with the payload
/// at `payload_at`.
struct Target {
    sock: Arc<UdpSocket>,
    frame: Vec<u8>,
    payload_at: usize,
}

fn build_frame(mode: Mode, peer: SocketAddr, size: usize, index: u32) -> (Vec<u8>, usize) {
    let mut payload = vec![0x5Au8; size];
    payload[8..12].copy_from_slice(&index.to_be_bytes());
    payload[12..16].copy_from_slice(&MAGIC);
    match mode {
        Mode::Channel => {
            let mut f = vec![0u8; 4 + size];
            let n = data::channel_data(CHANNEL, &payload, false, &mut f).unwrap_or(0);
            f.truncate(n);
            (f, 4)
        }
        Mode::Raw => (payload, 0),
        Mode::Send => {
            let mut f = vec![0u8; size + 128];
            let n = data::send_indication(TransactionId(*b"tbn0sendindi"), peer, &payload, &mut f)
                .unwrap_or(0);
            f.truncate(n);
            // DATA is the last attribute: its value starts at the end minus the padded size.
            let at = n.saturating_sub((size + 3) & !3);
            (f, at)
        }
    }
}

/// The payload of an echoed packet: ChannelData or a Data indication (raw mode: the
/// datagram).
fn payload_of(mode: Mode, buf: &[u8]) -> Option<&[u8]> {
    if mode == Mode::Raw {
        return Some(buf);
    }
    match data::decode(buf)? {
        Incoming::ChannelData { data, .. } | Incoming::Data { data, .. } => Some(data),
        Incoming::Stun(_) => None,
    }
}

fn sender(targets: Vec<Target>, rate: Rate, start: Instant, until: Instant, shared: &Shared) {
    let mut targets = targets;
    let n = targets.len();
    let interval = match rate {
        Rate::Max => Duration::ZERO,
        Rate::Pps(r) => Duration::from_nanos(1_000_000_000 / r.max(1)),
    };
    // Token bucket: a packet is due every `interval`; at most 10 ms of backlog is kept.
    let burst = Duration::from_millis(10);
    let mut due = Instant::now();
    let mut i = 0usize;
    let (mut sent, mut errors) = (0u64, 0u64);
    loop {
        let now = Instant::now();
        if now >= until || crate::interrupted() {
            break;
        }
        if !interval.is_zero() {
            if due > now {
                // Sleep at least 250 µs: a wake-up per packet would cost more than the send.
                std::thread::sleep((due - now).max(Duration::from_micros(250)));
                continue;
            }
            if now - due > burst {
                due = now - burst;
            }
        }
        let t = &mut targets[i];
        let ts = start.elapsed().as_nanos() as u64;
        t.frame[t.payload_at..t.payload_at + 8].copy_from_slice(&ts.to_be_bytes());
        match t.sock.send(&t.frame) {
            Ok(_) => {
                sent += 1;
                due += interval;
                i = (i + 1) % n;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::yield_now();
                i = (i + 1) % n;
            }
            Err(_) => {
                errors += 1;
                due += interval;
                i = (i + 1) % n;
            }
        }
        if sent % 64 == 0 {
            shared.sent.store(sent, Ordering::Relaxed);
            shared.send_errors.store(errors, Ordering::Relaxed);
        }
    }
    shared.sent.store(sent, Ordering::Relaxed);
    shared.send_errors.store(errors, Ordering::Relaxed);
    shared.sending_done.store(true, Ordering::Relaxed);
}

/// Percentiles of a histogram of nanoseconds, in microseconds.
fn latency_of(hist: &Histogram<u64>) -> Latency {
    if hist.is_empty() {
        return Latency::default();
    }
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
    Latency {
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        max: hist.max() as f64 / 1000.0,
        mean: hist.mean() / 1000.0,
    }
}

/// The receiver: one task per socket on a current-thread runtime. STUN answers (refreshes
/// during long runs) go to `control` tagged with the allocation's index.
fn receiver(
    mode: Mode,
    socks: Vec<Arc<UdpSocket>>,
    start: Instant,
    shared: Arc<Shared>,
    control: mpsc::Sender<(usize, Vec<u8>)>,
) -> Result<Histogram<u64>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    let hist = Rc::new(RefCell::new(new_histogram()));
    let local = tokio::task::LocalSet::new();
    let h = hist.clone();
    let result: Result<(), String> = local.block_on(&rt, async move {
        for (idx, s) in socks.into_iter().enumerate() {
            // The socket is shared with the sender and the control exchanges: registered
            // here for readability only (one descriptor per allocation, so 10,000 fit).
            let s = ternd_io::register_shared_udp(s).map_err(|e| e.to_string())?;
            let (h, shared, control) = (h.clone(), shared.clone(), control.clone());
            tokio::task::spawn_local(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let Ok(mut guard) = s.readable().await else {
                        return;
                    };
                    let n = match guard.try_io(|inner| inner.get_ref().recv(&mut buf)) {
                        Ok(Ok(n)) => n,
                        Ok(Err(_)) => {
                            // ICMP errors on a connected socket; keep going.
                            tokio::task::yield_now().await;
                            continue;
                        }
                        Err(_would_block) => continue,
                    };
                    let now = start.elapsed().as_nanos() as u64;
                    match payload_of(mode, &buf[..n]) {
                        Some(p) if p.len() >= MIN_SIZE && p[12..16] == MAGIC => {
                            shared.received.fetch_add(1, Ordering::Relaxed);
                            let mut ts = [0u8; 8];
                            ts.copy_from_slice(&p[..8]);
                            let rtt = now.saturating_sub(u64::from_be_bytes(ts)).max(1);
                            let _ = h.borrow_mut().record(rtt);
                        }
                        Some(_) => {}
                        None => {
                            if buf[0] < 4 {
                                let _ = control.send((idx, buf[..n].to_vec()));
                            }
                        }
                    }
                }
            });
        }
        while !shared.stop_receiving.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    });
    drop(local);
    result?;
    Rc::try_unwrap(hist)
        .map(RefCell::into_inner)
        .map_err(|_| "receiver tasks outlived the run".to_string())
}

/// Runs one benchmark and returns what it measured. Progress goes to stderr unless
/// `args.quiet`.
pub fn run(args: &BenchArgs) -> Result<Report, String> {
    if args.duration.is_zero() || args.duration > MAX_DURATION {
        return Err("the duration must be in (0, 10m]".into());
    }
    if !(MIN_SIZE..=MAX_SIZE).contains(&args.size) {
        return Err(format!("--size must be {MIN_SIZE}..={MAX_SIZE}"));
    }
    if args.allocations == 0 || args.allocations > MAX_ALLOCATIONS {
        return Err(format!("--allocations must be 1..={MAX_ALLOCATIONS}"));
    }
    // Thousands of client sockets need as many descriptors.
    let _ = ternd_io::raise_fd_limit();
    // Raw mode talks to a forwarder that sends to a fixed peer: the built-in echo peer then
    // listens on --peer (the forwarder's --peer), so both directions are counted.
    let echo = match (args.peer, args.mode) {
        (Some(at), Mode::Raw) => Some(EchoPeer::start(at)?),
        (None, Mode::Raw) => {
            return Err(
                "--mode raw needs --peer: the address the forwarder sends to, where \
                        the built-in echo peer listens"
                    .into(),
            );
        }
        (Some(_), _) => None,
        (None, _) => Some(EchoPeer::start(SocketAddr::from(([127, 0, 0, 1], 0)))?),
    };
    let peer = args
        .peer
        .or(echo.as_ref().map(|e| e.addr))
        .unwrap_or(args.server);

    crate::catch_interrupts();
    let (mut allocs, allocate_s, setup_s, allocate_hist) = setup(args, peer)?;
    progress(args.quiet, || {
        format!(
            "setup: {} allocation(s) in {allocate_s:.3} s ({:.0}/s), {} towards {peer} in {setup_s:.3} s",
            allocs.len(),
            f64::from(args.allocations) / allocate_s.max(1e-9),
            match args.mode {
                Mode::Channel => "channels",
                Mode::Send => "permissions",
                Mode::Raw => "plain sockets",
            }
        )
    });

    let scrape = |when: &str| {
        args.metrics.as_ref().map(|url| {
            ServerDrops::scrape(url).map_err(|e| format!("{e} (scraping {when} the run)"))
        })
    };
    let server_before = match scrape("before").transpose() {
        Ok(s) => s,
        Err(e) => {
            deallocate(&mut allocs);
            return Err(e);
        }
    };
    let result = traffic(args, peer, &mut allocs, echo.as_ref());
    // Read before the sockets close: fresh sockets, so the counts are this run's.
    let client_rx_drops = allocs
        .iter()
        .map(|a| ternd_io::socket_rx_drops(&a.sock).map(u64::from))
        .sum::<std::io::Result<u64>>()
        .ok();
    let peer_rx_drops = echo.as_ref().and_then(|e| e.rx_drops());
    let server_drops = match (server_before, scrape("after")) {
        (Some(b), Some(Ok(a))) => Some(a.since(&b)),
        (_, Some(Err(e))) => {
            eprintln!("ternd bench: {e}");
            None
        }
        _ => None,
    };
    let dealloc_failures = if args.mode == Mode::Raw {
        0
    } else {
        deallocate(&mut allocs)
    };
    let (sent, received, send_errors, hist, elapsed, cpu) = result?;
    if crate::interrupted() {
        return Err(format!(
            "interrupted after {elapsed:.1} s; {} allocation(s) deleted{}",
            allocs.len() as u32 - dealloc_failures,
            match dealloc_failures {
                0 => String::new(),
                n => format!(", {n} could not be (they expire by themselves)"),
            }
        ));
    }
    let peer_received = echo.as_ref().map(|e| e.received.load(Ordering::Relaxed));
    drop(echo);

    let secs = elapsed.max(1e-9);
    let bits = (args.size * 8) as f64;
    let latency = latency_of(&hist);
    Ok(Report {
        server: args.server.to_string(),
        mode: args.mode,
        allocations: args.allocations,
        size: args.size,
        target_pps: match args.rate {
            Rate::Max => None,
            Rate::Pps(r) => Some(r),
        },
        duration_s: elapsed,
        allocate_s,
        allocate_latency_us: latency_of(&allocate_hist),
        allocations_per_s: if args.mode == Mode::Raw {
            0.0
        } else {
            f64::from(args.allocations) / allocate_s.max(1e-9)
        },
        setup_s,
        sent,
        received,
        peer_received,
        sent_pps: sent as f64 / secs,
        received_pps: received as f64 / secs,
        received_mbps: received as f64 * bits / secs / 1e6,
        sent_mbps: sent as f64 * bits / secs / 1e6,
        loss_pct: if sent == 0 {
            0.0
        } else {
            100.0 * sent.saturating_sub(received) as f64 / sent as f64
        },
        send_errors,
        client_rx_drops,
        peer_rx_drops,
        server_drops,
        latency_us: latency,
        bench_cpu_s: cpu,
        dealloc_failures,
    })
}

type Traffic = (u64, u64, u64, Histogram<u64>, f64, f64);

/// The data phase: sender, receiver, progress, refreshes, drain.
fn traffic(
    args: &BenchArgs,
    peer: SocketAddr,
    allocs: &mut [Alloc],
    echo: Option<&EchoPeer>,
) -> Result<Traffic, String> {
    let mut targets = Vec::with_capacity(allocs.len());
    let mut recv_socks = Vec::with_capacity(allocs.len());
    for a in allocs.iter() {
        a.sock.set_nonblocking(true).map_err(|e| e.to_string())?;
        recv_socks.push(a.sock.clone());
        let (frame, payload_at) = build_frame(args.mode, peer, args.size, a.index);
        if frame.is_empty() {
            return Err("cannot build the data frame".into());
        }
        targets.push(Target {
            sock: a.sock.clone(),
            frame,
            payload_at,
        });
    }
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let (ctl_tx, ctl_rx) = mpsc::channel();
    let rx_shared = shared.clone();
    let mode = args.mode;
    let receiver = std::thread::Builder::new()
        .name("bench-recv".into())
        .spawn(move || receiver(mode, recv_socks, start, rx_shared, ctl_tx))
        .map_err(|e| e.to_string())?;
    let until = start + args.duration;
    let tx_shared = shared.clone();
    let rate = args.rate;
    let sender = std::thread::Builder::new()
        .name("bench-send".into())
        .spawn(move || sender(targets, rate, start, until, &tx_shared))
        .map_err(|e| e.to_string())?;

    let long = args.duration > REFRESH_AFTER && args.mode != Mode::Raw;
    let mut next_refresh = start + REFRESH_EVERY;
    let mut next_report = start + Duration::from_secs(1);
    let (mut last_sent, mut last_recv, mut last_peer) = (0u64, 0u64, 0u64);
    let mut refresh_failures = 0u32;
    while !shared.sending_done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        if long && now >= next_refresh {
            next_refresh = now + REFRESH_EVERY;
            let via = Via::Receiver(&ctl_rx);
            for a in allocs.iter_mut() {
                let ok = a.refresh(via, 600).is_ok() && a.towards(via, args.mode, peer).is_ok();
                if !ok {
                    refresh_failures += 1;
                }
            }
            progress(args.quiet, || {
                format!(
                    "refreshed {} allocation(s), {refresh_failures} failure(s) so far",
                    allocs.len()
                )
            });
        }
        if now >= next_report {
            next_report += Duration::from_secs(1);
            let s = shared.sent.load(Ordering::Relaxed);
            let r = shared.received.load(Ordering::Relaxed);
            let p = echo.map_or(0, |e| e.received.load(Ordering::Relaxed));
            let peer_part = match echo {
                Some(_) => format!("  peer {:>7} pps", p - last_peer),
                None => String::new(),
            };
            progress(args.quiet, || {
                format!(
                    "{:>4.0}s  sent {:>7} pps  recv {:>7} pps{peer_part}  loss {:.2} %  cpu {:.2} s",
                    start.elapsed().as_secs_f64(),
                    s - last_sent,
                    r - last_recv,
                    if s == 0 {
                        0.0
                    } else {
                        100.0 * s.saturating_sub(r) as f64 / s as f64
                    },
                    cpu_seconds() - cpu0,
                )
            });
            (last_sent, last_recv, last_peer) = (s, r, p);
        }
    }
    let send_secs = start.elapsed().as_secs_f64();
    sender
        .join()
        .map_err(|_| "the sender thread panicked".to_string())?;
    // Drain: until nothing arrived for 300 ms, at most 2 s.
    let drain_until = Instant::now() + Duration::from_secs(2);
    let mut last = shared.received.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    while Instant::now() < drain_until && quiet_since.elapsed() < Duration::from_millis(300) {
        std::thread::sleep(Duration::from_millis(20));
        let r = shared.received.load(Ordering::Relaxed);
        if r != last {
            last = r;
            quiet_since = Instant::now();
        }
    }
    shared.stop_receiving.store(true, Ordering::Relaxed);
    let hist = receiver
        .join()
        .map_err(|_| "the receiver thread panicked".to_string())??;
    let cpu = cpu_seconds() - cpu0;
    Ok((
        shared.sent.load(Ordering::Relaxed),
        shared.received.load(Ordering::Relaxed),
        shared.send_errors.load(Ordering::Relaxed),
        hist,
        send_secs,
        cpu,
    ))
}
