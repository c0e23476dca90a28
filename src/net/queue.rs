//! One TCP/TLS client connection as the worker and the connection's tasks share it: the
//! bytes read and not yet framed, the bytes to write (answers and relayed data, in order,
//! bounded), and the flags and wake-ups that hand work between them.
//!
//! The worker is the only one that calls the core; the connection's reader task fills
//! [`Conn::input`] and tells the worker through an [`super::Event`], the worker takes the
//! frames out in place (no copy), and answers and relayed frames are copied once into
//! [`Conn::output`], a byte ring the writer task writes from in place (no `Vec` per frame).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use tokio::sync::Notify;

use crate::stun::stream::StreamBuffer;
use crate::turn::FiveTuple;

/// Bytes queued for one TCP/TLS client that does not read: past it, the oldest relayed
/// data is dropped (and counted). Answers count too (see [`TCP_ANSWER_BYTES`]).
pub(super) const TCP_QUEUE_BYTES: usize = 256 * 1024;
/// Answers queued for one TCP/TLS client that does not read: at this many bytes the worker
/// stops taking the connection's requests, and its reader stops reading (backpressure
/// through TCP), until the client takes some; a client that takes none for
/// `tcp_idle_timeout` is closed by its writer. Answers are never dropped, so this is what
/// bounds a pipelining client's memory.
pub(super) const TCP_ANSWER_BYTES: usize = 64 * 1024;
/// An empty queue whose ring grew past this gives the memory back.
const SHRINK_ABOVE: usize = 16 * 1024;

/// The outgoing bytes of one stream client: answers and relayed frames in order, in one
/// ring, bounded in bytes, dropping the oldest relayed frame first when full.
#[derive(Debug, Default)]
pub(super) struct StreamQueue {
    /// Every queued byte not yet written.
    ring: VecDeque<u8>,
    /// The frames in `ring`, in order: (bytes left in the ring, relayed data?). The first
    /// one may be partly written already (see `partial`).
    frames: VecDeque<(usize, bool)>,
    /// Part of the first frame is written: it can no longer be dropped.
    partial: bool,
    /// Bytes of the queued answers (a part of the ring).
    answer_bytes: usize,
    closed: bool,
    /// Set by the writer when it stops (the client stopped reading or the write failed).
    writer_gone: bool,
}

impl StreamQueue {
    /// Queues relayed data; false if something had to be dropped to make room (or the
    /// frame alone is too big).
    pub(super) fn push_data(&mut self, frame: &[u8]) -> bool {
        let mut dropped_any = false;
        while self.ring.len() + frame.len() > TCP_QUEUE_BYTES {
            let skip = usize::from(self.partial);
            let mut at: usize = self.frames.iter().take(skip).map(|f| f.0).sum();
            let mut found = None;
            for (k, &(len, data)) in self.frames.iter().enumerate().skip(skip) {
                if data {
                    found = Some((k, len));
                    break;
                }
                at += len;
            }
            let Some((k, len)) = found else {
                return false;
            };
            self.frames.remove(k);
            self.ring.drain(at..at + len);
            dropped_any = true;
        }
        self.ring.extend(frame);
        self.frames.push_back((frame.len(), true));
        !dropped_any
    }

    /// Queues an answer. Answers are never dropped; the worker takes no more requests while
    /// [`StreamQueue::answers_full`] (one answer can go past the budget, no more).
    pub(super) fn push_answer(&mut self, frame: &[u8]) {
        self.ring.extend(frame);
        self.frames.push_back((frame.len(), false));
        self.answer_bytes += frame.len();
    }

    /// True while the queued answers fill their budget: take no more requests.
    pub(super) fn answers_full(&self) -> bool {
        self.answer_bytes >= TCP_ANSWER_BYTES
    }

    /// Bytes queued.
    pub(super) fn len(&self) -> usize {
        self.ring.len()
    }

    /// Bytes of queued answers.
    #[cfg(test)]
    fn answer_bytes(&self) -> usize {
        self.answer_bytes
    }

    /// The next bytes to write (empty when nothing is queued): what is left of the first
    /// frame. One frame per write, so over TLS each frame is a record of its own: clients
    /// that read one message per readable socket (coturn's uclient does) would otherwise
    /// leave the rest of a many-frame record unread in their TLS buffer.
    pub(super) fn chunk(&self) -> &[u8] {
        let first = self.frames.front().map_or(0, |f| f.0);
        let head = self.ring.as_slices().0;
        &head[..first.min(head.len())]
    }

    /// `n` bytes of [`StreamQueue::chunk`] were written; true if an answer left the queue
    /// while it was full (the worker may take requests again).
    pub(super) fn consume(&mut self, mut n: usize) -> bool {
        let was_full = self.answers_full();
        self.ring.drain(..n.min(self.ring.len()));
        while n > 0 {
            let Some(front) = self.frames.front_mut() else {
                break;
            };
            let take = front.0.min(n);
            front.0 -= take;
            n -= take;
            if !front.1 {
                self.answer_bytes -= take;
            }
            if front.0 == 0 {
                self.frames.pop_front();
                self.partial = false;
            } else {
                self.partial = true;
            }
        }
        if self.ring.is_empty() && self.ring.capacity() > SHRINK_ABOVE {
            self.ring = VecDeque::new();
            self.frames = VecDeque::new();
        }
        was_full && !self.answers_full()
    }

    /// Nothing more will be queued: the writer ends once the ring is written.
    pub(super) fn close(&mut self) {
        self.closed = true;
    }

    /// Closed and written out.
    pub(super) fn done(&self) -> bool {
        self.closed && self.ring.is_empty()
    }

    /// The writer stopped (the client stopped reading, or a write failed).
    pub(super) fn writer_stopped(&mut self) {
        self.writer_gone = true;
    }

    /// Whether the writer stopped.
    pub(super) fn writer_gone(&self) -> bool {
        self.writer_gone
    }
}

/// One TCP/TLS client connection: what its tasks and the worker share.
#[derive(Debug)]
pub(super) struct Conn {
    /// Its 5-tuple (after a PROXY header: the client's and the address it connected to).
    pub tuple: FiveTuple,
    /// Bytes read, not yet taken as frames: the reader fills it on its turn
    /// ([`Conn::reading`]), the worker takes the whole frames.
    pub input: RefCell<StreamBuffer>,
    /// Answers and relayed data for the writer.
    pub output: RefCell<StreamQueue>,
    /// The reader's turn: the worker has taken every whole frame, read more.
    pub reading: Cell<bool>,
    /// The worker stopped taking frames because the answers fill their budget; it goes on
    /// when the writer reports room.
    pub held: Cell<bool>,
    /// The worker wants the connection closed (bad framing, idle without an allocation,
    /// writer gone): the reader ends.
    pub stop: Cell<bool>,
    /// RFC 6062: the worker made this a data connection of peer connection `id`; the
    /// reader splices it to the peer's stream (taken from `peer`).
    pub splice: Cell<Option<u32>>,
    /// RFC 6062: the peer's stream for the splice.
    pub peer: RefCell<Option<tokio::net::TcpStream>>,
    /// Wakes the reader: its turn, stop, or splice.
    pub reader: Notify,
    /// Wakes the writer: something was queued, or the queue closed.
    pub writer: Notify,
}

impl Conn {
    /// A connection with an input buffer for frames up to `max_frame` bytes.
    pub(super) fn new(tuple: FiveTuple, input: StreamBuffer) -> Self {
        Self {
            tuple,
            input: RefCell::new(input),
            output: RefCell::default(),
            reading: Cell::new(true),
            held: Cell::new(false),
            stop: Cell::new(false),
            splice: Cell::new(None),
            peer: RefCell::new(None),
            reader: Notify::new(),
            writer: Notify::new(),
        }
    }

    /// Queues relayed data for the writer; false if something was dropped for room.
    pub(super) fn push_data(&self, frame: &[u8]) -> bool {
        let ok = self.output.borrow_mut().push_data(frame);
        self.writer.notify_one();
        ok
    }

    /// Queues an answer for the writer.
    pub(super) fn push_answer(&self, frame: &[u8]) {
        self.output.borrow_mut().push_answer(frame);
        self.writer.notify_one();
    }

    /// Asks the reader to end the connection.
    pub(super) fn close(&self) {
        self.stop.set(true);
        self.reader.notify_one();
    }

    /// Gives the reader its turn.
    pub(super) fn read_more(&self) {
        self.held.set(false);
        self.reading.set(true);
        self.reader.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pop(q: &mut StreamQueue) -> Option<Vec<u8>> {
        let len = q.frames.front()?.0;
        let f: Vec<u8> = q.ring.iter().take(len).copied().collect();
        q.consume(len);
        Some(f)
    }

    #[test]
    fn stream_queue_drops_the_oldest_data_and_never_answers() {
        let mut q = StreamQueue::default();
        q.push_answer(&[0; 10]);
        let chunk = (TCP_QUEUE_BYTES - 10) / 4;
        for i in 0..4u8 {
            assert!(q.push_data(&vec![i + 1; chunk]), "fits");
        }
        // Full: the next frame evicts the oldest data frame, not the answer.
        assert!(!q.push_data(&vec![9; chunk]));
        assert!(q.len() <= TCP_QUEUE_BYTES);
        let order: Vec<u8> = std::iter::from_fn(|| pop(&mut q)).map(|f| f[0]).collect();
        assert_eq!(order, vec![0, 2, 3, 4, 9]);
        assert_eq!(q.len(), 0);
        // A frame bigger than the whole queue is refused outright.
        assert!(!q.push_data(&vec![0; TCP_QUEUE_BYTES + 1]));
        q.close();
        assert!(q.done());
    }

    #[test]
    fn stream_queue_answers_fill_their_budget_and_leave_room_when_taken() {
        let mut q = StreamQueue::default();
        let answer = 100;
        let mut queued = 0;
        while !q.answers_full() {
            q.push_answer(&[1; 100]);
            queued += 1;
        }
        assert_eq!(queued, TCP_ANSWER_BYTES.div_ceil(answer));
        assert!(q.len() <= TCP_ANSWER_BYTES + answer);
        // Relayed data still fits beside a full answer budget, and never evicts answers.
        assert!(q.push_data(&vec![2; TCP_QUEUE_BYTES - q.len()]));
        assert!(!q.push_data(&[3; 10]));
        assert!(q.answers_full());
        // Taking one answer makes room for the worker again.
        let len = q.frames[0].0;
        assert_eq!(q.chunk()[0], 1);
        assert!(q.consume(len));
        assert!(!q.answers_full());
        assert_eq!(q.answer_bytes(), (queued - 1) * answer);
    }

    #[test]
    fn a_partly_written_frame_is_never_dropped() {
        let mut q = StreamQueue::default();
        let half = TCP_QUEUE_BYTES / 2;
        assert!(q.push_data(&vec![1; half]));
        assert!(q.push_data(&vec![2; half]));
        // One frame per write.
        assert_eq!(q.chunk().len(), half);
        // The writer took some of the first frame: the second goes instead.
        assert!(!q.consume(10));
        assert_eq!(q.chunk().len(), half - 10);
        assert!(!q.push_data(&vec![3; half]));
        assert_eq!(q.len(), half - 10 + half);
        assert_eq!(q.chunk()[0], 1);
        let rest: Vec<u8> = q.ring.iter().copied().collect();
        assert_eq!(rest[half - 10], 3);
        // Written out, the ring gives its memory back.
        q.consume(q.len());
        assert_eq!(q.len(), 0);
        assert_eq!(q.ring.capacity(), 0);
    }
}
