//! Logging set-up (`[log]`): the filter, the format, ANSI colours only where a person
//! reads a terminal, and where lines go: stderr, a file, the syslog daemon, or stderr
//! with syslog priorities for systemd's journal.

use std::io::{IsTerminal, Write};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::{LogColor, LogConfig, LogFormat, LogOutput};

/// Installs the global subscriber `log` describes. Fails (with a message naming the
/// setting) when the log file cannot be opened or the syslog socket reached.
pub fn init(log: &LogConfig) -> Result<(), String> {
    let (writer, terminal, timestamps) = writer(log)?;
    let ansi = match log.color {
        LogColor::Always => matches!(log.output, LogOutput::Stderr | LogOutput::File),
        LogColor::Never => false,
        LogColor::Auto => terminal,
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Syslog and the journal have the time and the level (the priority) already.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_level(timestamps);
    // JSON: our formatter (numbers as numbers, lists as arrays); it writes the time
    // stamp itself, so syslog and the journal get JSON with one too.
    let result = match (log.format, timestamps) {
        (LogFormat::Json, _) => builder.event_format(crate::log_json::Json).try_init(),
        (LogFormat::Text, true) => builder
            .fmt_fields(crate::log_json::text_fields())
            .try_init(),
        (LogFormat::Text, false) => builder
            .fmt_fields(crate::log_json::text_fields())
            .without_time()
            .try_init(),
    };
    result.map_err(|e| format!("cannot set up logging: {e}"))
}

/// The writer for `log.output`, whether it is a terminal, and whether lines carry time
/// stamps (syslog and the journal add their own).
fn writer(log: &LogConfig) -> Result<(BoxMakeWriter, bool, bool), String> {
    Ok(match log.output {
        LogOutput::Stderr => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
            true,
        ),
        LogOutput::File => {
            let path = log
                .file
                .as_ref()
                .ok_or("log.output = \"file\" needs log.file")?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    format!(
                        "cannot open the log file `{}` (--log-file): {e}",
                        path.display()
                    )
                })?;
            (BoxMakeWriter::new(std::sync::Mutex::new(file)), false, true)
        }
        LogOutput::Syslog => {
            let socket = UnixDatagram::unbound()
                .and_then(|s| s.connect(&log.syslog_socket).map(|()| s))
                .map_err(|e| {
                    format!(
                        "cannot reach the syslog daemon at `{}` (--log-syslog-socket): {e}",
                        log.syslog_socket.display()
                    )
                })?;
            let sink = Syslog {
                socket: Arc::new(socket),
                tag: format!("ternd[{}]: ", std::process::id()),
            };
            (BoxMakeWriter::new(sink), false, false)
        }
        LogOutput::Journald => (BoxMakeWriter::new(Journald), false, false),
    })
}

/// The syslog severity of a tracing level (RFC 5424 §6.2.1).
fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Facility `daemon` (3), as RFC 5424 numbers it.
const DAEMON: u8 = 3;

/// One event at a time, buffered and sent when the formatter is done with it.
pub struct Line<F: FnMut(&[u8])> {
    buf: Vec<u8>,
    send: F,
}

impl<F: FnMut(&[u8])> Write for Line<F> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        // A runaway field cannot grow a line without bound: syslog datagrams and journal
        // lines are cut well before this.
        let room = (64 * 1024usize).saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&b[..b.len().min(room)]);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<F: FnMut(&[u8])> Drop for Line<F> {
    fn drop(&mut self) {
        while self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if !self.buf.is_empty() {
            (self.send)(&self.buf);
        }
    }
}

/// RFC 3164 datagrams to the local syslog daemon: `<PRI>ternd[PID]: line`.
#[derive(Clone)]
struct Syslog {
    socket: Arc<UnixDatagram>,
    tag: String,
}

/// A line that sends itself when dropped.
type Sending = Line<Box<dyn FnMut(&[u8])>>;

impl Syslog {
    fn line(&self, level: &Level) -> Sending {
        let pri = DAEMON * 8 + severity(level);
        let (socket, head) = (self.socket.clone(), format!("<{pri}>{}", self.tag));
        Line {
            buf: Vec::new(),
            send: Box::new(move |line: &[u8]| {
                let mut datagram = head.clone().into_bytes();
                datagram.extend_from_slice(line);
                // A syslog daemon that went away must not stop the relay.
                let _ = socket.send(&datagram);
            }),
        }
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = Sending;
    fn make_writer(&'a self) -> Sending {
        self.line(&Level::INFO)
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Sending {
        self.line(meta.level())
    }
}

/// Stderr for systemd's journal: each line prefixed with `<N>`, its syslog severity
/// (the journal's `SyslogLevelPrefix=`, on by default).
#[derive(Clone, Copy)]
struct Journald;

impl<'a> MakeWriter<'a> for Journald {
    type Writer = Sending;
    fn make_writer(&'a self) -> Sending {
        journal_line(&Level::INFO)
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Sending {
        journal_line(meta.level())
    }
}

fn journal_line(level: &Level) -> Sending {
    let head = format!("<{}>", severity(level));
    Line {
        buf: Vec::new(),
        send: Box::new(move |line: &[u8]| {
            let mut out = head.clone().into_bytes();
            out.extend_from_slice(line);
            out.push(b'\n');
            let _ = std::io::stderr().lock().write_all(&out);
        }),
    }
}

/// The line ternd logs when it stops: what it did, in words, with the same figures as
/// fields (numbers in JSON).
pub fn log_shutdown_summary(stats: &crate::turn::StatsSnapshot, uptime: std::time::Duration) {
    let s = stats;
    let refused = s.quota_rejections
        + s.total_quota_rejections
        + s.ip_quota_rejections
        + s.capacity_rejections
        + s.cluster_quota_rejections;
    let uptime_text = humantime::format_duration(std::time::Duration::from_secs(uptime.as_secs()));
    tracing::info!(
        uptime_s = uptime.as_secs(),
        allocations = s.allocations_created,
        ended_expired = s.ended_expired,
        ended_deleted = s.ended_deleted,
        ended_connection_closed = s.ended_connection_closed,
        ended_admin = s.ended_admin,
        ended_shutdown = s.ended_shutdown,
        relayed_out_packets = s.relayed_out_packets,
        relayed_out_bytes = s.relayed_out_bytes,
        relayed_in_packets = s.relayed_in_packets,
        relayed_in_bytes = s.relayed_in_bytes,
        requests = s.requests,
        auth_challenges = s.auth_challenges,
        auth_wrong_credentials = s.auth_wrong_credentials,
        refused_by_limits = refused,
        malformed = s.malformed,
        dropped = s.dropped,
        "stopped after {uptime_text}: {} allocations ({} expired, {} deleted by their client, \
         {} with their connection, {} by an admin, {} at shutdown); relayed {} packets ({}) to \
         peers and {} ({}) back; {} requests ({} answered with a challenge, {} with wrong \
         credentials), {} refused by quotas or capacity, {} malformed and {} dropped packets",
        s.allocations_created,
        s.ended_expired,
        s.ended_deleted,
        s.ended_connection_closed,
        s.ended_admin,
        s.ended_shutdown,
        s.relayed_out_packets,
        bytes(s.relayed_out_bytes),
        s.relayed_in_packets,
        bytes(s.relayed_in_bytes),
        s.requests,
        s.auth_challenges,
        s.auth_wrong_credentials,
        refused,
        s.malformed,
        s.dropped,
    );
}

/// `1.5 MB`-style byte counts (decimal units).
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_counts_read_as_people_write_them() {
        assert_eq!(super::bytes(0), "0 B");
        assert_eq!(super::bytes(999), "999 B");
        assert_eq!(super::bytes(1_500), "1.5 kB");
        assert_eq!(super::bytes(2_345_678_901), "2.3 GB");
        assert_eq!(super::bytes(u64::MAX), "18446.7 PB");
    }

    use super::*;

    #[test]
    fn a_line_is_sent_once_without_its_newline_and_bounded() {
        let sent = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        {
            let out = sent.clone();
            let mut line = Line {
                buf: Vec::new(),
                send: move |b: &[u8]| out.borrow_mut().push(b.to_vec()),
            };
            line.write_all(b"hello ").unwrap();
            line.write_all(b"world\n").unwrap();
        }
        assert_eq!(*sent.borrow(), vec![b"hello world".to_vec()]);
        {
            let out = sent.clone();
            let mut line = Line {
                buf: Vec::new(),
                send: move |b: &[u8]| out.borrow_mut().push(b.to_vec()),
            };
            for _ in 0..100 {
                line.write_all(&[b'x'; 1024]).unwrap();
            }
        }
        assert_eq!(sent.borrow()[1].len(), 64 * 1024);
    }

    #[test]
    fn syslog_lines_carry_the_daemon_facility_and_the_severity() {
        let dir = std::env::temp_dir().join(format!("ternd-syslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let daemon = UnixDatagram::bind(&path).unwrap();
        let socket = UnixDatagram::unbound().unwrap();
        socket.connect(&path).unwrap();
        let sink = Syslog {
            socket: Arc::new(socket),
            tag: "ternd[42]: ".into(),
        };
        for level in [Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG] {
            let mut w = sink.line(&level);
            w.write_all(b"something happened\n").unwrap();
        }
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        for _ in 0..4 {
            let n = daemon.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(
            got,
            [
                "<27>ternd[42]: something happened",
                "<28>ternd[42]: something happened",
                "<30>ternd[42]: something happened",
                "<31>ternd[42]: something happened",
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
