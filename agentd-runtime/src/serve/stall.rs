//! A socket wrapper that fails a write which makes no progress for too
//! long.
//!
//! Owns [`WriteStall`]. hyper times out a client that is slow to *send*
//! (the header read timeout, our body timeout) but waits forever on a
//! client that stops *reading*: a reply larger than the socket buffer would
//! then hold the connection, its slot and, during a drain, the whole
//! shutdown. The wrapper arms a timer only while a write is pending, so a
//! client that reads normally costs nothing extra. It never touches reads.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `inner`, whose writes fail with `TimedOut` after `limit` without progress.
#[derive(Debug)]
pub(crate) struct WriteStall<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write is pending; cleared by any progress.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteStall<S> {
    pub(crate) fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            timer: None,
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
        self.check(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
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
}
