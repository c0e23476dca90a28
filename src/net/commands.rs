//! Carrying out the core's commands ([`Command`]): closing relay sockets and RFC 6062 peer
//! connections, and writing the session accounting line of each allocation that ended (the
//! core logs none itself).

use std::net::SocketAddr;

use super::Worker;
use crate::turn::{AccountingRecord, Command};

impl Worker {
    /// Drains the core's commands and carries them out, in order. Called after every
    /// input of the core: [`Worker::drain_outputs`] ends with it, and the worker loop calls
    /// it after each turn's socket batches and at shutdown.
    pub(super) fn drain_commands(&mut self) {
        let mut decided = Vec::new();
        while let Some(cmd) = self.server.poll_command() {
            match cmd {
                Command::CloseRelay { relay } => self.relays.close(relay.into()),
                Command::CloseTcp { connection_id } => self.relays.close_tcp(connection_id),
                Command::AllocationEnded { record } => {
                    log_accounting(&record);
                    self.release_in_cluster(record.id, record.user);
                }
                Command::Admit { admission } => decided.extend(self.ask_cluster(admission)),
                Command::Withdrawn { id, user } => self.release_in_cluster(id, user),
                // Nothing here mirrors the channel table yet; a kernel fast path or a
                // cluster registry would install and remove channels on these.
                Command::ChannelBound { .. } | Command::ChannelUnbound { .. } => {}
                // Commands added to the core later: nothing to do until this shell knows them.
                _ => {}
            }
        }
        // Admissions the cluster task could not be asked about: decided here (each
        // answer drains the commands it makes).
        for (admission, granted) in decided {
            self.deliver_verdict(admission, granted);
        }
    }
}

/// The session accounting line: one per allocation, target `ternd::session`, message
/// "allocation ended" (operators parse these fields; keep them).
pub(super) fn log_accounting(r: &AccountingRecord) {
    let t = r.traffic;
    tracing::info!(
        target: "ternd::session",
        user = %r.user,
        username = %r.username,
        client = %r.client,
        relay = %r.relay,
        additional_relay = ?r.additional_relay.map(SocketAddr::from),
        start = r.started_unix,
        started = %humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.started_unix)),
        duration_s = r.duration.as_secs(),
        packets_out = t.packets_out,
        bytes_out = t.bytes_out,
        packets_in = t.packets_in,
        bytes_in = t.bytes_in,
        reason = r.reason.as_str(),
        "allocation ended"
    );
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::turn::{ClientAddr, EndReason, RelayAddr, RelayTransport, Traffic, Transport};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn captured(f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    /// The line as the core wrote it before it became a command: the same target,
    /// fields, formats and message.
    #[test]
    fn the_accounting_line_is_the_one_the_core_used_to_write() {
        let client: SocketAddr = "203.0.113.5:4000".parse().unwrap();
        let relay: SocketAddr = "198.51.100.10:50001".parse().unwrap();
        let extra: SocketAddr = "[2001:db8::10]:50002".parse().unwrap();
        let record = AccountingRecord {
            id: 7,
            user: "bob".into(),
            username: "1700086400:bob".into(),
            client: ClientAddr(client),
            transport: Transport::Udp,
            relay_transport: RelayTransport::Udp,
            relay: RelayAddr(relay),
            additional_relay: Some(RelayAddr(extra)),
            started_unix: 1_700_000_000,
            duration: Duration::from_millis(42_900),
            traffic: Traffic {
                packets_out: 2,
                bytes_out: 200,
                packets_in: 1,
                bytes_in: 50,
            },
            reason: EndReason::Deleted,
        };
        let now = captured(|| log_accounting(&record));
        let before = captured(|| {
            tracing::info!(
                target: "ternd::session",
                user = %"bob",
                username = %"1700086400:bob",
                client = %client,
                relay = %relay,
                additional_relay = ?Some(extra),
                start = 1_700_000_000u64,
                started = %"2023-11-14T22:13:20Z",
                duration_s = 42u64,
                packets_out = 2u64,
                bytes_out = 200u64,
                packets_in = 1u64,
                bytes_in = 50u64,
                reason = "deleted by client",
                "allocation ended"
            )
        });
        assert!(now.contains("ternd::session"), "{now}");
        assert!(now.contains("bytes_in=50"), "{now}");
        assert_eq!(now, before);
    }
}
