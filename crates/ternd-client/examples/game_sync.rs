//! Two-player state sync through a TURN server: a measurement tool for the path a
//! multiplayer game's state would take when both players are behind NATs and relay.
//!
//! Two players run in this one process, each with its own [`Client`] and UDP relay
//! allocation on the server. Each binds a channel to the other's relayed address (or, with
//! `--no-channels`, installs a permission for it), then both send a
//! small game state (sequence number, send timestamp, position and velocity) to the
//! other's relayed address at a fixed rate for a fixed time. The receiver answers every
//! state with an acknowledgement carrying the sender's timestamp, so each player measures
//! the round trip through the relay twice over (player to server to player and back). At
//! the end each player's line says what it sent and received, what was lost, reordered or
//! duplicated, the RTT percentiles, and the framing the data went in (ChannelData once a
//! channel is bound, Send and Data indications before, or all along with
//! `--no-channels`).
//!
//! ```sh
//! # ternd on loopback (peers on 127.0.0.0/8 are refused unless allowed):
//! cargo run --release -- --listen 127.0.0.1:3478 --secret S \
//!     --relay-ip 127.0.0.1 --relay-ports 40000-40999 --allow-peer 127.0.0.0/8
//! cargo run -p ternd-client --example game_sync -- \
//!     --server 'turn:127.0.0.1:3478?transport=udp' --secret S --rate 60 --seconds 10
//!
//! # coturn with the same REST secret:
//! turnserver -n --listening-ip=127.0.0.1 --listening-port=3478 --relay-ip=127.0.0.1 \
//!     --min-port=40000 --max-port=40999 --use-auth-secret --static-auth-secret=S \
//!     --realm=example.org --allow-loopback-peers --no-cli --no-tls --no-dtls
//! cargo run -p ternd-client --example game_sync -- \
//!     --server turn:127.0.0.1:3478 --secret S --max-loss 1
//!
//! # a server with static users; TCP to the server, TLS with turns:
//! cargo run -p ternd-client --example game_sync -- \
//!     --server 'turn:turn.example.org:3478?transport=tcp' --user alice --password secret
//! ```
//!
//! Options: `--server URL` (`turn:HOST:PORT?transport=udp|tcp`, `turns:HOST:PORT`);
//! `--user U --password P` (long-term credentials) or `--secret S` (TURN REST
//! credentials for the name `--user`, default `game_sync`, valid for an hour; the password
//! and secret can come from `TURN_PASSWORD` and `TURN_SECRET` instead of the command
//! line); `--rate HZ` (default 60); `--seconds N` (default 10); `--max-loss PCT` (default
//! 100, never fails); `--no-channels` (Send indications only).
//!
//! Exit status: 0 after a run; 1 if the run failed (connecting, allocating, a permission
//! refused, the allocation lost, a close not answered); 2 for bad arguments; 3 if either
//! direction lost more than `--max-loss` percent of its states; 130 after Ctrl-C (which
//! stops the sending early; the report is printed and the allocations closed first).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use ternd_client::{Client, Credentials, RelaySocket, SocketStats};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use turn_args::TurnArgs;

#[path = "common/turn_args.rs"]
mod turn_args;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "game_sync",
    about = "Two players syncing game state through a TURN server; prints loss, reordering and RTT"
)]
struct Args {
    #[command(flatten)]
    turn: TurnArgs,
    /// States per second each player sends (1 to 1000).
    #[arg(long, default_value_t = 60.0)]
    rate: f64,
    /// How long the players send, in seconds (up to 3600).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Exit with status 3 if either direction lost more than this percentage of its
    /// states (100: never).
    #[arg(long, default_value_t = 100.0)]
    max_loss: f64,
}

/// The server and the credentials (the same in game_sync.rs and turncat.rs).
/// How long connecting and allocating may take, per player (the client's own bounds are
/// RFC 8489's, 39.5 s per request).
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest datagram expected; anything larger is not ours.
const MAX_DATAGRAM: usize = 1500;

// The wire format, little-endian:
//   state: kind 1 (u8), seq (u32), sent_us (u64), position (3 x f32), velocity (3 x f32)
//   ack:   kind 2 (u8), seq (u32), sent_us (u64) echoed from the state
const KIND_STATE: u8 = 1;
const KIND_ACK: u8 = 2;
const STATE_LEN: usize = 1 + 4 + 8 + 6 * 4;
const ACK_LEN: usize = 1 + 4 + 8;

/// One player's state as sent at one tick.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GameState {
    seq: u32,
    /// When it was sent, in microseconds on the sender's clock.
    sent_us: u64,
    position: [f32; 3],
    velocity: [f32; 3],
}

impl GameState {
    /// Player `player`'s state at tick `seq`: circling the origin at 1 turn per 4 s.
    fn at(player: usize, seq: u32, rate: f64, sent_us: u64) -> GameState {
        let t = f64::from(seq) / rate;
        let w = std::f64::consts::TAU / 4.0;
        let phase = w * t + player as f64 * std::f64::consts::PI;
        let r = 10.0;
        GameState {
            seq,
            sent_us,
            position: [
                (r * phase.cos()) as f32,
                (r * phase.sin()) as f32,
                player as f32,
            ],
            velocity: [
                (-r * w * phase.sin()) as f32,
                (r * w * phase.cos()) as f32,
                0.0,
            ],
        }
    }

    fn encode(&self) -> [u8; STATE_LEN] {
        let mut b = [0u8; STATE_LEN];
        b[0] = KIND_STATE;
        b[1..5].copy_from_slice(&self.seq.to_le_bytes());
        b[5..13].copy_from_slice(&self.sent_us.to_le_bytes());
        let floats = self.position.iter().chain(&self.velocity);
        for (chunk, f) in b[13..].chunks_exact_mut(4).zip(floats) {
            chunk.copy_from_slice(&f.to_le_bytes());
        }
        b
    }

    /// A state, if `b` is one (and its numbers are finite).
    fn decode(b: &[u8]) -> Option<GameState> {
        if b.len() != STATE_LEN || b[0] != KIND_STATE {
            return None;
        }
        let mut floats = [0f32; 6];
        for (f, chunk) in floats.iter_mut().zip(b[13..].chunks_exact(4)) {
            *f = f32::from_le_bytes(chunk.try_into().ok()?);
        }
        if floats.iter().any(|f| !f.is_finite()) {
            return None;
        }
        Some(GameState {
            seq: u32::from_le_bytes(b[1..5].try_into().ok()?),
            sent_us: u64::from_le_bytes(b[5..13].try_into().ok()?),
            position: [floats[0], floats[1], floats[2]],
            velocity: [floats[3], floats[4], floats[5]],
        })
    }
}

/// The acknowledgement of a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ack {
    seq: u32,
    sent_us: u64,
}

impl Ack {
    fn encode(&self) -> [u8; ACK_LEN] {
        let mut b = [0u8; ACK_LEN];
        b[0] = KIND_ACK;
        b[1..5].copy_from_slice(&self.seq.to_le_bytes());
        b[5..13].copy_from_slice(&self.sent_us.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Ack> {
        if b.len() != ACK_LEN || b[0] != KIND_ACK {
            return None;
        }
        Some(Ack {
            seq: u32::from_le_bytes(b[1..5].try_into().ok()?),
            sent_us: u64::from_le_bytes(b[5..13].try_into().ok()?),
        })
    }
}

/// What one player saw.
#[derive(Debug, Default)]
struct Tally {
    /// States sent.
    sent: u64,
    /// Distinct states received from the other player.
    received: u64,
    /// States received with a lower sequence number than one received before.
    out_of_order: u64,
    /// States received twice.
    duplicates: u64,
    /// Datagrams from the other player that were neither a state nor an ack of ours.
    malformed: u64,
    /// Datagrams from other addresses.
    foreign: u64,
    /// Round trips of acknowledged states, in microseconds.
    rtt_us: Vec<u64>,
    /// The last state received from the other player.
    last_state: Option<GameState>,
}

/// One player: its allocation and the other's relayed address.
struct Player {
    name: &'static str,
    index: usize,
    socket: RelaySocket,
}

/// Connects and allocates for player `name`.
async fn join(
    turn: &TurnArgs,
    name: &'static str,
    index: usize,
    credentials: Credentials,
) -> Result<Player, String> {
    let setup = async {
        let client = Client::connect_with(&turn.server, credentials, turn.options())
            .await
            .map_err(|e| format!("player {name}: connecting to {}: {e}", turn.server))?;
        let socket = client
            .allocate()
            .await
            .map_err(|e| format!("player {name}: Allocate on {}: {e}", turn.server))?;
        Ok(Player {
            name,
            index,
            socket,
        })
    };
    tokio::time::timeout(SETUP_TIMEOUT, setup)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "player {name}: no allocation on {} within {} s",
                turn.server,
                SETUP_TIMEOUT.as_secs()
            ))
        })
}

/// The schedule both players follow.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    start: tokio::time::Instant,
    period: Duration,
    rate: f64,
    /// States each player sends.
    states: u32,
}

/// Runs one player: sends `schedule.states` states to `peer`, acknowledges the other's,
/// then drains what is still on the way; stops sending early when `stop` turns true.
async fn play(
    me: &Player,
    peer: SocketAddr,
    schedule: Schedule,
    mut stop: watch::Receiver<bool>,
) -> Result<Tally, String> {
    let socket = &me.socket;
    let fail = |what: &str, e: ternd_client::Error| format!("player {}: {what}: {e}", me.name);
    let epoch = Instant::now();
    let now_us = || u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);

    let mut tally = Tally::default();
    let mut seen = vec![false; schedule.states as usize];
    let mut highest: Option<u32> = None;
    let mut buf = [0u8; MAX_DATAGRAM];

    let mut ticker = tokio::time::interval_at(schedule.start, schedule.period);
    // A late tick is not made up for: a game sends its current state, not old ones.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let send_end = schedule.start + schedule.period * schedule.states;
    let mut sending = true;
    let mut deadline = send_end;
    let mut stop_open = true;

    loop {
        tokio::select! {
            _ = ticker.tick(), if sending => {
                let seq = u32::try_from(tally.sent).unwrap_or(u32::MAX);
                let state = GameState::at(me.index, seq, schedule.rate, now_us());
                socket
                    .send_to(&state.encode(), peer)
                    .await
                    .map_err(|e| fail("sending a state", e))?;
                tally.sent += 1;
                if tally.sent >= u64::from(schedule.states) {
                    sending = false;
                    deadline = tokio::time::Instant::now() + drain_time(&tally);
                }
            }
            got = socket.recv_from(&mut buf) => {
                let (n, from) = got.map_err(|e| fail("receiving", e))?;
                if from != peer {
                    tally.foreign += 1;
                    continue;
                }
                let data = &buf[..n];
                if let Some(state) = GameState::decode(data) {
                    let Some(slot) = seen.get_mut(state.seq as usize) else {
                        tally.malformed += 1;
                        continue;
                    };
                    if *slot {
                        tally.duplicates += 1;
                    } else {
                        *slot = true;
                        tally.received += 1;
                        if highest.is_some_and(|h| state.seq < h) {
                            tally.out_of_order += 1;
                        } else {
                            highest = Some(state.seq);
                            tally.last_state = Some(state);
                        }
                    }
                    let ack = Ack { seq: state.seq, sent_us: state.sent_us };
                    socket
                        .send_to(&ack.encode(), peer)
                        .await
                        .map_err(|e| fail("sending an ack", e))?;
                } else if let Some(ack) = Ack::decode(data) {
                    let now = now_us();
                    if u64::from(ack.seq) < tally.sent && ack.sent_us <= now {
                        tally.rtt_us.push(now - ack.sent_us);
                    } else {
                        tally.malformed += 1;
                    }
                } else {
                    tally.malformed += 1;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                if !sending {
                    break;
                }
                // Ticks were skipped (a slow machine): the time is up all the same.
                sending = false;
                deadline = tokio::time::Instant::now() + drain_time(&tally);
            }
            changed = stop.changed(), if sending && stop_open => {
                if changed.is_err() {
                    stop_open = false;
                } else if *stop.borrow() {
                    sending = false;
                    deadline = tokio::time::Instant::now() + drain_time(&tally);
                }
            }
        }
    }
    Ok(tally)
}

/// How long to wait after the last send for states and acks still on the way: four of
/// the slowest round trips seen, between 300 ms and 2 s.
fn drain_time(tally: &Tally) -> Duration {
    let max = tally.rtt_us.iter().copied().max().unwrap_or(0);
    Duration::from_micros(max.saturating_mul(4))
        .clamp(Duration::from_millis(300), Duration::from_secs(2))
}

/// The `p`th percentile (nearest rank) of `sorted`.
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn ms(us: Option<u64>) -> String {
    match us {
        Some(us) => format!("{:.3} ms", us as f64 / 1000.0),
        None => "n/a".into(),
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// "ChannelData", "indications" or "mixed", from the counters.
fn framing(stats: &SocketStats, channel: Option<u16>) -> String {
    let t = &stats.turn;
    let kind = match (
        t.channel_data_sent + t.channel_data_received,
        t.indications_sent + t.data_indications_received,
    ) {
        (0, _) => "Send/Data indications".to_string(),
        (_, 0) => "ChannelData".to_string(),
        _ => "ChannelData after indications".to_string(),
    };
    let channel = channel.map_or(String::new(), |c| format!(" (channel {c:#06x})"));
    format!(
        "{kind}{channel}: sent {} ChannelData + {} Send indications, received {} ChannelData + {} Data indications",
        t.channel_data_sent,
        t.indications_sent,
        t.channel_data_received,
        t.data_indications_received
    )
}

/// What one player's report says; returns the loss percentage of what it received.
fn report(me: &Player, tally: &mut Tally, other: &Tally, stats: &SocketStats) -> f64 {
    let lost = other.sent.saturating_sub(tally.received);
    let loss = percent(lost, other.sent);
    println!(
        "player {}: relayed {} (mapped {})",
        me.name,
        me.socket.relayed_addr(),
        me.socket
            .mapped_addr()
            .map_or("unknown".to_string(), |a| a.to_string())
    );
    println!(
        "  sent {}, received {} of {}, lost {lost} ({loss:.2}%), out-of-order {}, duplicates {}, acks {} of {}",
        tally.sent,
        tally.received,
        other.sent,
        tally.out_of_order,
        tally.duplicates,
        tally.rtt_us.len(),
        tally.sent,
    );
    if tally.malformed + tally.foreign + stats.dropped + stats.too_large > 0 {
        println!(
            "  malformed {}, from other addresses {}, dropped by a full receive queue {}, too large {}",
            tally.malformed, tally.foreign, stats.dropped, stats.too_large
        );
    }
    if let Some(s) = &tally.last_state {
        println!(
            "  last state seen of the other player: #{} at ({:.2}, {:.2}, {:.2}) moving ({:.2}, {:.2}, {:.2})",
            s.seq,
            s.position[0],
            s.position[1],
            s.position[2],
            s.velocity[0],
            s.velocity[1],
            s.velocity[2]
        );
    }
    tally.rtt_us.sort_unstable();
    let rtt = &tally.rtt_us;
    println!(
        "  RTT p50 {}, p90 {}, p99 {}, max {}",
        ms(percentile(rtt, 50.0)),
        ms(percentile(rtt, 90.0)),
        ms(percentile(rtt, 99.0)),
        ms(rtt.last().copied())
    );
    loss
}

/// Runs the game; `Ok` with the exit status once the report is printed.
async fn run(args: Args, credentials: Credentials) -> Result<ExitCode, String> {
    let (a, b) = tokio::try_join!(
        join(&args.turn, "A", 0, credentials.clone()),
        join(&args.turn, "B", 1, credentials),
    )?;
    let result = sync(&args, &a, &b).await;
    // Delete both allocations whatever happened (Refresh with LIFETIME 0, answer awaited).
    let (closed_a, closed_b) = tokio::join!(a.socket.close(), b.socket.close());
    let code = result?;
    closed_a.map_err(|e| format!("player A: closing the allocation: {e}"))?;
    closed_b.map_err(|e| format!("player B: closing the allocation: {e}"))?;
    Ok(code)
}

/// A channel to `to` (or, without channels, a permission for its address), waited for.
async fn prepare(
    socket: &RelaySocket,
    to: SocketAddr,
    channels: bool,
    who: &str,
) -> Result<(), String> {
    let done = if channels {
        socket.bind_channel(to).await.map(drop)
    } else {
        socket.permit(to.ip()).await
    };
    done.map_err(|e| format!("player {who}: channel or permission for {to}: {e}"))
}

/// Channels (or, with `--no-channels`, permissions), the game and the report. Binding the
/// channels first makes every state ChannelData from the first tick.
async fn sync(args: &Args, a: &Player, b: &Player) -> Result<ExitCode, String> {
    let (to_a, to_b) = (a.socket.relayed_addr(), b.socket.relayed_addr());
    let channels = !args.turn.no_channels;
    tokio::try_join!(
        prepare(&a.socket, to_b, channels, "A"),
        prepare(&b.socket, to_a, channels, "B")
    )?;

    let states = (args.rate * args.seconds).round().max(1.0) as u32;
    let schedule = Schedule {
        start: tokio::time::Instant::now() + Duration::from_millis(20),
        period: Duration::from_secs_f64(1.0 / args.rate),
        rate: args.rate,
        states,
    };
    let (stop_tx, stop) = watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("game_sync: interrupted, stopping");
            let _ = stop_tx.send(true);
        }
    });
    println!(
        "game_sync: {} states each at {} Hz through {} ({})",
        states,
        args.rate,
        args.turn.server,
        if args.turn.no_channels {
            "Send indications only"
        } else {
            "ChannelData once the channels are bound"
        }
    );
    let played = tokio::try_join!(
        play(a, to_b, schedule, stop.clone()),
        play(b, to_a, schedule, stop.clone()),
    );
    ctrl_c.abort();
    let (mut ta, mut tb) = played?;

    let (sa, sb) = (a.socket.stats(), b.socket.stats());
    let loss_a = report(a, &mut ta, &tb, &sa);
    println!("  framing: {}", framing(&sa, a.socket.channel_for(to_b)));
    let loss_b = report(b, &mut tb, &ta, &sb);
    println!("  framing: {}", framing(&sb, b.socket.channel_for(to_a)));

    let worst = loss_a.max(loss_b);
    if worst > args.max_loss {
        eprintln!(
            "game_sync: loss {worst:.2}% is above --max-loss {}%",
            args.max_loss
        );
        return Ok(ExitCode::from(3));
    }
    if *stop.borrow() {
        // Interrupted: the report covers a shorter run than asked for.
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let bad = if !(1.0..=1000.0).contains(&args.rate) {
        Some("--rate must be between 1 and 1000")
    } else if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        Some("--seconds must be above 0 and at most 3600")
    } else if !(0.0..=100.0).contains(&args.max_loss) {
        Some("--max-loss must be between 0 and 100")
    } else {
        None
    };
    let credentials = match bad {
        Some(msg) => Err(msg.to_string()),
        None => args.turn.credentials("game_sync"),
    };
    let credentials = match credentials {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("game_sync: {msg}");
            return ExitCode::from(2);
        }
    };
    turn_args::block_on("game_sync", run(args, credentials))
}
