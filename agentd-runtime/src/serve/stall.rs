//! The slow-client limits of a connection: a write that makes no progress
//! for too long, and a request head that does not arrive in time.
//!
//! Owns [`WriteStall`], [`ConnClock`] and [`HeadDeadline`]. hyper waits
//! forever on a client that stops *reading*: a reply larger than the socket
//! buffer would then hold the connection, its slot and, during a drain, the
//! whole shutdown. [`WriteStall`] arms a timer only while a write is
//! pending, so a client that reads normally costs nothing extra.
//!
//! A client that is slow to *send* a request head (slowloris), or that
//! keeps an idle keep-alive connection, is cut off by [`HeadDeadline`]:
//! `--read-timeout-secs` after the connection last wrote (its accept, or
//! the end of its last reply) with no request in flight, the connection is
//! closed without a reply. The time is kept on a coarse clock, so the cut
//! may come up to one scheduler tick (a few milliseconds) early. hyper's own header read timeout does the same
//! but allocates, registers and cancels a timer for every request;
//! [`HeadDeadline`] keeps one timer per connection and moves it only when
//! it fires, so a request costs a clock read and two counter updates
//! (docs/performance.md, "Serving CPU, round 5"). The body has a limit of its
//! own (`handler::read_body`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// What a connection's [`HeadDeadline`] reads: whether a request is in
/// flight, and when the connection last wrote. Shared by the connection's
/// service (requests), its [`WriteStall`] (writes) and its deadline.
#[derive(Debug)]
pub(crate) struct ConnClock {
    /// Requests handed to the service and not yet answered.
    busy: AtomicU32,
    /// When the connection last wrote (or was accepted), on [`coarse_nanos`]'s
    /// clock.
    wrote: AtomicU64,
}

impl ConnClock {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            busy: AtomicU32::new(0),
            wrote: AtomicU64::new(coarse_nanos()),
        })
    }

    /// Mark a request in flight until the guard drops (answered or
    /// abandoned).
    pub(crate) fn request(self: &Arc<Self>) -> ConnRequest {
        self.busy.fetch_add(1, Ordering::Relaxed);
        ConnRequest(Arc::clone(self))
    }

    /// The connection wrote (or finished its TLS handshake): the wait for
    /// the next head starts now.
    pub(crate) fn touch(&self) {
        self.wrote.store(coarse_nanos(), Ordering::Relaxed);
    }

    /// When the connection must next be looked at, or `None` when it has
    /// waited `limit` for a request head with nothing in flight.
    fn next_deadline(&self, limit: Duration) -> Option<Instant> {
        let now = Instant::now();
        if self.busy.load(Ordering::Relaxed) > 0 {
            return Some(now + limit);
        }
        let limit_nanos = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        let due = self
            .wrote
            .load(Ordering::Relaxed)
            .saturating_add(limit_nanos);
        let left = due.saturating_sub(coarse_nanos());
        (left > 0).then(|| now + Duration::from_nanos(left))
    }
}

/// A monotonic clock in nanoseconds, read once per request and per reply:
/// Linux's `CLOCK_MONOTONIC_COARSE` (the last scheduler tick's time, a
/// few milliseconds behind at most, read without the conversions of
/// `Instant`), which is precise enough for limits in whole seconds.
#[cfg(target_os = "linux")]
fn coarse_nanos() -> u64 {
    // Both clocks count from the same origin; the coarse one is always there
    // since Linux 2.6.32.
    crate::clock::nanos(libc::CLOCK_MONOTONIC_COARSE)
        .or_else(|| crate::clock::nanos(libc::CLOCK_MONOTONIC))
        .unwrap_or(0)
}

/// Nanoseconds since the first reading, from `Instant`.
#[cfg(not(target_os = "linux"))]
fn coarse_nanos() -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A request in flight on a [`ConnClock`]'s connection.
#[derive(Debug)]
pub(crate) struct ConnRequest(Arc<ConnClock>);

impl Drop for ConnRequest {
    fn drop(&mut self) {
        // Answered: the reply's write follows at once (and touches again),
        // but a deadline looked at in between must not see an old write.
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection future that ends with `None` once its [`ConnClock`] says it
/// waited `limit` for a request head (dropping the connection closes it).
#[derive(Debug)]
pub(crate) struct HeadDeadline<F> {
    conn: F,
    clock: Arc<ConnClock>,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
    /// The timer has been polled since it was last set, so it wakes us.
    armed: bool,
}

impl<F> HeadDeadline<F> {
    pub(crate) fn new(conn: F, clock: Arc<ConnClock>, limit: Duration) -> Self {
        let timer = Box::pin(tokio::time::sleep(limit));
        Self {
            conn,
            clock,
            limit,
            timer,
            armed: false,
        }
    }
}

impl<F: Future + Unpin> Future for HeadDeadline<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Poll::Ready(done) = Pin::new(&mut this.conn).poll(cx) {
            return Poll::Ready(Some(done));
        }
        // The common case: the timer is set and has not fired.
        if this.armed && !this.timer.is_elapsed() {
            return Poll::Pending;
        }
        loop {
            if !this.armed {
                this.armed = true;
                if this.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            match this.clock.next_deadline(this.limit) {
                None => return Poll::Ready(None),
                Some(deadline) => {
                    this.timer
                        .as_mut()
                        .reset(tokio::time::Instant::from_std(deadline));
                    this.armed = false;
                }
            }
        }
    }
}

/// `inner`, whose writes fail with `TimedOut` after `limit` without progress.
#[derive(Debug)]
pub(crate) struct WriteStall<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write is pending; cleared by any progress.
    timer: Option<Pin<Box<Sleep>>>,
    /// Told of every write that makes progress.
    clock: Option<Arc<ConnClock>>,
}

impl<S> WriteStall<S> {
    pub(crate) fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            timer: None,
            clock: None,
        }
    }

    /// Tell `clock` of every write that makes progress.
    pub(crate) fn with_clock(mut self, clock: Arc<ConnClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    fn wrote(&self, polled: &Poll<io::Result<usize>>) {
        if let (Some(clock), Poll::Ready(Ok(1..))) = (&self.clock, polled) {
            clock.touch();
        }
    }

    /// Turn a pending write into an error once the stall outlives the limit.
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.timer = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timer = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading the response",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStall<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStall<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&polled);
        self.check(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&polled);
        self.check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use crate::serve::test_runtime as runtime;

    #[test]
    fn a_reader_that_never_reads_fails_the_write() {
        runtime().block_on(async {
            // A 64-byte pipe that nobody reads fills at once.
            let (near, _far) = tokio::io::duplex(64);
            let mut w = WriteStall::new(near, Duration::from_millis(50));
            let big = vec![0_u8; 4096];
            let err = tokio::time::timeout(Duration::from_secs(10), w.write_all(&big))
                .await
                .unwrap_or_else(|_| panic!("the stall guard never fired"))
                .expect_err("the write must fail");
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        });
    }

    #[test]
    fn a_reader_that_keeps_reading_is_never_cut_off() {
        runtime().block_on(async {
            let (near, mut far) = tokio::io::duplex(64);
            let mut w = WriteStall::new(near, Duration::from_millis(200));
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                let mut chunk = [0_u8; 16];
                // Slower than the writer, but steady: each read is progress.
                while got.len() < 2048 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    match far.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&chunk[..n]),
                    }
                }
                got.len()
            });
            let data = vec![7_u8; 2048];
            assert!(w.write_all(&data).await.is_ok());
            assert_eq!(reader.await.ok(), Some(2048));
        });
    }

    /// A connection that never finishes on its own.
    fn forever() -> Pin<Box<std::future::Pending<()>>> {
        Box::pin(std::future::pending())
    }

    const LIMIT: Duration = Duration::from_millis(150);
    /// How far behind the coarse clock may be: one scheduler tick (4 ms at
    /// 250 Hz, 10 ms at 100 Hz), with room.
    const TICK: Duration = Duration::from_millis(20);

    #[test]
    fn a_connection_that_sends_no_head_is_cut_off_after_the_limit() {
        runtime().block_on(async {
            let clock = ConnClock::new();
            let started = Instant::now();
            let ended = tokio::time::timeout(
                Duration::from_secs(10),
                HeadDeadline::new(forever(), clock, LIMIT),
            )
            .await;
            assert_eq!(ended, Ok(None), "the deadline never fired");
            let waited = started.elapsed();
            assert!(waited + TICK >= LIMIT, "cut off early, after {waited:?}");
            assert!(waited < LIMIT * 10, "cut off late, after {waited:?}");
        });
    }

    #[test]
    fn a_finished_connection_passes_its_result_through() {
        runtime().block_on(async {
            let conn = Box::pin(async { 42 });
            let ended = HeadDeadline::new(conn, ConnClock::new(), LIMIT).await;
            assert_eq!(ended, Some(42));
        });
    }

    #[test]
    fn a_request_in_flight_holds_the_connection_and_its_end_restarts_the_wait() {
        runtime().block_on(async {
            let clock = ConnClock::new();
            let in_flight = clock.request();
            let deadline = HeadDeadline::new(forever(), Arc::clone(&clock), LIMIT);
            let watched = tokio::spawn(async move {
                let ended = deadline.await;
                (ended, Instant::now())
            });
            // Three limits with a request in flight: never cut off.
            tokio::time::sleep(LIMIT * 3).await;
            assert!(!watched.is_finished(), "cut off with a request in flight");
            let answered = Instant::now();
            drop(in_flight);
            let (ended, at) = tokio::time::timeout(Duration::from_secs(10), watched)
                .await
                .unwrap_or_else(|_| panic!("never cut off after the request ended"))
                .unwrap_or_else(|e| panic!("the watcher task: {e}"));
            assert_eq!(ended, None);
            let idle = at.duration_since(answered);
            assert!(
                idle + TICK >= LIMIT,
                "cut off {idle:?} after the reply, before the limit"
            );
        });
    }

    #[test]
    fn writes_that_make_progress_restart_the_wait() {
        runtime().block_on(async {
            let clock = ConnClock::new();
            let (near, mut far) = tokio::io::duplex(1024);
            let mut w = WriteStall::new(near, LIMIT).with_clock(Arc::clone(&clock));
            let deadline = HeadDeadline::new(forever(), Arc::clone(&clock), LIMIT);
            let watched = tokio::spawn(deadline);
            // A long reply written in pieces over four limits.
            let started = Instant::now();
            while started.elapsed() < LIMIT * 4 {
                assert!(w.write_all(b"part").await.is_ok());
                let mut got = [0_u8; 4];
                assert!(far.read_exact(&mut got).await.is_ok());
                assert!(!watched.is_finished(), "cut off while replying");
                tokio::time::sleep(LIMIT / 5).await;
            }
            let ended = tokio::time::timeout(Duration::from_secs(10), watched)
                .await
                .unwrap_or_else(|_| panic!("never cut off after the writes stopped"))
                .unwrap_or_else(|e| panic!("the watcher task: {e}"));
            assert_eq!(ended, None);
        });
    }
}
