//! A minimal netcat over a TURN relay: allocates a UDP relay, sends each line of stdin as
//! one datagram from the relayed address, and writes each datagram peers send to it on
//! stdout, one line each.
//!
//! The relayed address is printed to stderr first, as `turncat: relayed IP:PORT`. With
//! `--peer ADDR`, stdin goes to ADDR (a permission for its IP is installed up front);
//! `--permit IP` (repeatable) lets peers at IP send first, and without `--peer` lines
//! go to whoever sent last (lines read before anyone sent are dropped, with a warning).
//! A line is sent without its `\n` (at most 8192 bytes; a longer line goes as several
//! datagrams); a received datagram is written with a `\n` added.
//!
//! It ends at stdin's end (after waiting `--linger` seconds, default 1, for answers), after
//! `--count N` datagrams received, after `--timeout` seconds with nothing sent or received,
//! or on Ctrl-C; then it deletes the allocation (Refresh with LIFETIME 0).
//!
//! ```sh
//! # ternd on loopback (peers on 127.0.0.0/8 are refused unless allowed):
//! cargo run --release -- --listen 127.0.0.1:3478 --secret S \
//!     --relay-ip 127.0.0.1 --relay-ports 40000-40999 --allow-peer 127.0.0.0/8
//!
//! # terminal 1: a relay anyone on 127.0.0.1 may send to; prints its relayed address
//! cargo run -p ternd-client --example turncat -- \
//!     --server 'turn:127.0.0.1:3478?transport=udp' --secret S --permit 127.0.0.1
//! # terminal 2: talk to it (type lines; terminal 1 answers to whoever sent last)
//! cargo run -p ternd-client --example turncat -- \
//!     --server 'turn:127.0.0.1:3478' --secret S --peer 127.0.0.1:40123
//!
//! # one request, one answer, from a script (exit 1 if no answer within 5 s):
//! echo ping | turncat --server turn:127.0.0.1:3478 --secret S \
//!     --peer 127.0.0.1:9999 --count 1 --linger 5
//!
//! # coturn with the same REST secret:
//! turnserver -n --listening-ip=127.0.0.1 --listening-port=3478 --relay-ip=127.0.0.1 \
//!     --min-port=40000 --max-port=40999 --use-auth-secret --static-auth-secret=S \
//!     --realm=example.org --allow-loopback-peers --no-cli --no-tls --no-dtls
//! ```
//!
//! Credentials: `--user U --password P` (long-term), or `--secret S` (TURN REST
//! credentials for the name `--user`, default `turncat`, valid for an hour); the password
//! and the secret can come from `TURN_PASSWORD` and `TURN_SECRET` instead.
//! `--no-channels` sends Send indications only; `-v` logs each datagram's source on stderr.
//!
//! Exit status: 0 when it ended as asked (stdin's end, `--count`, or `--timeout` when no
//! `--count` was given); 1 on failure, or when `--count` datagrams did not arrive; 2 for
//! bad arguments; 130 after Ctrl-C.

use std::io::{self, BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ternd_client::{Client, Credentials, RelaySocket};
use tokio::sync::mpsc;
use tokio::time::Instant;
use turn_args::TurnArgs;

#[path = "common/turn_args.rs"]
mod turn_args;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "turncat",
    about = "netcat over a TURN relay: stdin lines out, datagrams in"
)]
struct Args {
    #[command(flatten)]
    turn: TurnArgs,
    /// Send stdin to this peer (IP:PORT, e.g. another turncat's relayed address).
    #[arg(long, value_name = "ADDR")]
    peer: Option<SocketAddr>,
    /// Let peers at this IP send first; repeatable.
    #[arg(long, value_name = "IP")]
    permit: Vec<IpAddr>,
    /// Exit after this many datagrams received.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Exit after this many seconds with nothing sent or received.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    timeout: Option<Duration>,
    /// After stdin ends, wait this many seconds for answers.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "1")]
    linger: Duration,
    /// Log the source of each datagram received on stderr.
    #[arg(short, long)]
    verbose: bool,
}

/// The server and the credentials (the same in game_sync.rs and turncat.rs).
/// The longest line sent as one datagram.
const MAX_LINE: usize = 8192;
/// The largest datagram received (longer ones are cut, as UDP does).
const MAX_DATAGRAM: usize = 65_536;
/// How long connecting and allocating may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Stdin ended and the linger time passed.
    Eof,
    /// `--count` datagrams arrived.
    Count,
    /// `--timeout` passed with nothing sent or received.
    Idle,
    /// Ctrl-C.
    Interrupted,
}

/// Reads stdin on a thread of its own (a blocking read cannot be cancelled; the thread
/// is left behind when the program ends) and hands over one line at a time, without its
/// `\n`. The channel closes at stdin's end.
fn read_stdin() -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        loop {
            let mut line = Vec::new();
            let read = (&mut stdin)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line);
            let item = match read {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    Ok(line)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// A number of seconds (`1`, `0.5`) as a duration.
fn seconds(arg: &str) -> Result<Duration, String> {
    arg.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{arg:?} is not a number of seconds, 0 or more"))
}

/// Allocates, installs the permissions asked for, and prints the relayed address.
async fn setup(args: &Args, credentials: Credentials) -> Result<RelaySocket, String> {
    let turn = &args.turn;
    let socket = async {
        let client = Client::connect_with(&turn.server, credentials, turn.options())
            .await
            .map_err(|e| format!("connecting to {}: {e}", turn.server))?;
        client
            .allocate()
            .await
            .map_err(|e| format!("Allocate on {}: {e}", turn.server))
    };
    let socket = tokio::time::timeout(SETUP_TIMEOUT, socket)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no allocation on {} within {} s",
                turn.server,
                SETUP_TIMEOUT.as_secs()
            ))
        })?;
    let mapped = socket
        .mapped_addr()
        .map_or("unknown".to_string(), |a| a.to_string());
    eprintln!(
        "turncat: relayed {} (mapped {mapped})",
        socket.relayed_addr()
    );
    let ips = args.permit.iter().copied().chain(args.peer.map(|p| p.ip()));
    for ip in ips {
        if let Err(e) = socket.permit(ip).await {
            // The allocation is ours: delete it before giving up.
            let _ = socket.close().await;
            return Err(format!("permission for {ip}: {e}"));
        }
    }
    Ok(socket)
}

/// The main loop: stdin to the peer, datagrams to stdout, until one of the ends.
async fn pump(args: &Args, socket: &RelaySocket) -> Result<(End, u64), String> {
    let (linger, idle) = (args.linger, args.timeout);
    let mut lines = read_stdin();
    let mut stdin_open = true;
    let mut reply_to = args.peer;
    let mut received = 0u64;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut linger_until: Option<Instant> = None;
    let mut idle_until = idle.map(|d| Instant::now() + d);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut ctrl_c_armed = true;

    if args.count == Some(0) {
        return Ok((End::Count, 0));
    }
    loop {
        let deadline = match (linger_until, idle_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            line = lines.recv(), if stdin_open => match line {
                Some(Ok(line)) => match reply_to {
                    Some(peer) => {
                        socket
                            .send_to(&line, peer)
                            .await
                            .map_err(|e| format!("sending to {peer}: {e}"))?;
                        idle_until = idle.map(|d| Instant::now() + d);
                    }
                    None => eprintln!(
                        "turncat: nobody has sent yet and there is no --peer: line dropped"
                    ),
                },
                Some(Err(e)) => return Err(format!("reading stdin: {e}")),
                None => {
                    stdin_open = false;
                    linger_until = Some(Instant::now() + linger);
                }
            },
            got = socket.recv_from(&mut buf) => {
                let (n, from) = got.map_err(|e| format!("receiving: {e}"))?;
                if args.verbose {
                    eprintln!("turncat: {n} bytes from {from}");
                }
                let mut out = io::stdout().lock();
                out.write_all(&buf[..n])
                    .and_then(|()| out.write_all(b"\n"))
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("writing stdout: {e}"))?;
                received += 1;
                if args.peer.is_none() {
                    reply_to = Some(from);
                }
                if args.count.is_some_and(|c| received >= c) {
                    return Ok((End::Count, received));
                }
                idle_until = idle.map(|d| Instant::now() + d);
            }
            () = sleep_until(deadline) => {
                let now = Instant::now();
                if linger_until.is_some_and(|t| t <= now) {
                    return Ok((End::Eof, received));
                }
                if idle_until.is_some_and(|t| t <= now) {
                    return Ok((End::Idle, received));
                }
            }
            signal = &mut ctrl_c, if ctrl_c_armed => {
                if signal.is_ok() {
                    return Ok((End::Interrupted, received));
                }
                // No signal handling here: Ctrl-C keeps its default (the process ends).
                ctrl_c_armed = false;
            }
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn run(args: Args, credentials: Credentials) -> Result<ExitCode, String> {
    let socket = setup(&args, credentials).await?;
    let result = pump(&args, &socket).await;
    let closed = socket.close().await;
    let (end, received) = result?;
    closed.map_err(|e| format!("closing the allocation: {e}"))?;
    if args.verbose {
        eprintln!("turncat: {received} datagrams received, ended by {end:?}");
    }
    Ok(match (end, args.count) {
        (End::Interrupted, _) => ExitCode::from(130),
        (End::Count, _) => ExitCode::SUCCESS,
        (End::Eof | End::Idle, Some(count)) => {
            eprintln!("turncat: {received} of {count} datagrams received");
            ExitCode::FAILURE
        }
        (End::Eof | End::Idle, None) => ExitCode::SUCCESS,
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let credentials = match args.turn.credentials("turncat") {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("turncat: {msg}");
            return ExitCode::from(2);
        }
    };
    turn_args::block_on("turncat", run(args, credentials))
}
