//! The run pool: the threads that execute route runs off the reactor
//! (docs/operations.md "Where runs execute"; measured in
//! docs/performance.md "Issue 19 round 3: the pool handoff and the inline path").
//!
//! Built for the one thing the server asks of it, handing a run from the
//! reactor thread to a worker and its reply back, with as few cross-thread
//! wake-ups as that allows:
//!
//! - **Threads**: started on demand, up to `max_threads` (`--max-runs`); an
//!   idle one exits after [`KEEP_ALIVE`]. The handler takes a run permit
//!   before submitting, so a submitted run always has a thread: an idle one,
//!   a new one, or one finishing its run (which takes the queue's next job
//!   before it looks anywhere else). Nothing waits behind a slow run.
//! - **To a worker**: one short critical section (a `VecDeque` push under a
//!   mutex). A worker that finished a run spins for up to [`SPIN`] on an
//!   atomic before parking on the condvar, so under load the next job is
//!   picked up without a futex wake; the submitter wakes a parked worker
//!   only when the queue holds more jobs than workers already looking at it.
//! - **Back to the reactor**: the worker stores the result in the run's slot
//!   and queues the waiting request's waker; one reactor task (the
//!   *drainer*) wakes every queued waker locally. Only the first reply of a
//!   batch wakes the reactor from outside (tokio's remote wake: an `eventfd`
//!   write); replies that land while the drainer is already scheduled cost a
//!   mutex push.
//! - **Panics** in a run are caught on the worker ([`RunError::Panicked`]);
//!   the worker lives on. A job dropped unrun (no thread could be started)
//!   resolves to [`RunError::NoThread`].
//!
//! The pool never limits how many runs are in flight (the permits do) and
//! never runs anything but what it is given.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How long a worker with nothing to do keeps looking at the queue before
/// it parks. Under load the next run arrives well within this, so the
/// hand-off needs no futex wake; idle, it is a few microseconds of CPU per
/// burst.
const SPIN: Duration = Duration::from_micros(20);

/// How long a parked worker waits for work before its thread exits.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Why a submitted run produced no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunError {
    /// The run panicked (caught on the worker).
    Panicked,
    /// No thread could be started for it; it never ran.
    NoThread,
}

type Job = Box<dyn FnOnce() + Send>;

/// The pool. Dropping it stops its idle workers; busy ones finish their
/// run first.
pub(crate) struct RunPool {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Parked workers wait here.
    wake: Condvar,
    /// Jobs in the queue, for spinning workers to watch without the lock.
    queued: AtomicUsize,
    /// Workers spinning on `queued`: each will look at the queue under the
    /// lock before it parks.
    spinning: AtomicUsize,
    max_threads: usize,
    replies: Replies,
}

struct Queue {
    jobs: VecDeque<Job>,
    /// Threads started and not exited.
    threads: usize,
    /// Parked workers not yet told to wake.
    sleeping: usize,
    /// Parked workers told to wake that have not yet looked at the queue.
    woken: usize,
    stopped: bool,
}

impl RunPool {
    /// A pool of at most `max_threads` threads. Must be called inside the
    /// server's tokio runtime: it spawns the reactor task that delivers
    /// replies.
    pub(crate) fn new(max_threads: usize) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                threads: 0,
                sleeping: 0,
                woken: 0,
                stopped: false,
            }),
            wake: Condvar::new(),
            queued: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
            max_threads: max_threads.max(1),
            replies: Replies::default(),
        });
        tokio::spawn(Drainer {
            shared: Arc::clone(&shared),
            batch: Vec::new(),
        });
        Self { shared }
    }

    /// Run `f` on a worker; the handle resolves to its value.
    ///
    /// The caller holds a run permit for `f` (at most `max_threads` runs are
    /// ever submitted at once), so `f` starts without waiting for another run.
    pub(crate) fn run<T, F>(&self, f: F) -> RunHandle<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState {
                result: None,
                waker: None,
            }),
        });
        let completer = Completer {
            slot: Some(Arc::clone(&slot)),
            shared: Arc::clone(&self.shared),
        };
        let job: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(f)).map_err(|_| RunError::Panicked);
            completer.complete(result);
        });
        self.shared.submit(job);
        RunHandle { slot }
    }
}

impl Drop for RunPool {
    fn drop(&mut self) {
        lock(&self.shared.queue).stopped = true;
        self.shared.wake.notify_all();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks (jobs run outside them);
    // a poisoned one is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn submit(self: &Arc<Self>, job: Job) {
        let mut queue = lock(&self.queue);
        // Workers that will look at the queue without being woken: the
        // spinning ones and the ones already told to wake.
        let looking = self.spinning.load(Ordering::SeqCst) + queue.woken;
        if queue.jobs.len() < looking {
            self.push(&mut queue, job);
            return;
        }
        if queue.sleeping > 0 {
            queue.sleeping -= 1;
            queue.woken += 1;
            self.push(&mut queue, job);
            drop(queue);
            self.wake.notify_one();
            return;
        }
        if queue.threads < self.max_threads {
            queue.threads += 1;
            drop(queue);
            // A new thread's first job is handed to it directly. If the
            // thread cannot be started the job is dropped unrun, which
            // resolves its handle to `NoThread`.
            let shared = Arc::clone(self);
            let started = std::thread::Builder::new()
                .name("agentd-run".to_owned())
                .spawn(move || {
                    job();
                    shared.work();
                });
            if started.is_err() {
                lock(&self.queue).threads -= 1;
            }
            return;
        }
        // Every thread is busy: one of them is finishing the run whose
        // permit the caller just took, and takes this job next.
        self.push(&mut queue, job);
    }

    fn push(&self, queue: &mut Queue, job: Job) {
        queue.jobs.push_back(job);
        self.queued.fetch_add(1, Ordering::SeqCst);
    }

    /// A worker's loop after its first job.
    fn work(&self) {
        let mut queue = lock(&self.queue);
        loop {
            if let Some(job) = queue.jobs.pop_front() {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                drop(queue);
                job();
                queue = lock(&self.queue);
                continue;
            }
            if queue.stopped {
                queue.threads -= 1;
                return;
            }
            drop(queue);
            self.spin();
            queue = lock(&self.queue);
            if !queue.jobs.is_empty() {
                continue;
            }
            if queue.stopped {
                queue.threads -= 1;
                return;
            }
            // Parked: counted in `sleeping` until a submitter moves one
            // parked worker to `woken` (whichever wakes first takes it).
            queue.sleeping += 1;
            let deadline = Instant::now() + KEEP_ALIVE;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let (guard, _) = self
                    .wake
                    .wait_timeout(queue, left)
                    .unwrap_or_else(PoisonError::into_inner);
                queue = guard;
                if queue.woken > 0 {
                    queue.woken -= 1;
                    break;
                }
                if queue.stopped || Instant::now() >= deadline {
                    queue.sleeping -= 1;
                    queue.threads -= 1;
                    return;
                }
            }
        }
    }

    /// Until a job is queued or [`SPIN`] has passed.
    fn spin(&self) {
        self.spinning.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        'spin: loop {
            for _ in 0..64 {
                if self.queued.load(Ordering::SeqCst) > 0 {
                    break 'spin;
                }
                std::hint::spin_loop();
            }
            if started.elapsed() >= SPIN {
                break;
            }
            // Let the reactor (or the client, on a small machine) have the
            // core between looks.
            std::thread::yield_now();
        }
        self.spinning.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Where a run's result waits for its request.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

struct SlotState<T> {
    result: Option<Result<T, RunError>>,
    waker: Option<Waker>,
}

/// The worker's side of a slot; resolves it to `NoThread` if dropped unused.
struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
    shared: Arc<Shared>,
}

impl<T> Completer<T> {
    fn complete(mut self, result: Result<T, RunError>) {
        if let Some(slot) = self.slot.take() {
            self.fill(&slot, result);
        }
    }

    fn fill(&self, slot: &Slot<T>, result: Result<T, RunError>) {
        let waker = {
            let mut state = lock(&slot.state);
            state.result = Some(result);
            state.waker.take()
        };
        if let Some(waker) = waker {
            self.shared.replies.push(waker);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.fill(&slot, Err(RunError::NoThread));
        }
    }
}

/// A submitted run's result, for the request that waits for it. Dropping it
/// detaches the run (it still finishes).
pub(crate) struct RunHandle<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Future for RunHandle<T> {
    type Output = Result<T, RunError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = lock(&self.slot.state);
        if let Some(result) = state.result.take() {
            return Poll::Ready(result);
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for RunHandle<T> {
    fn drop(&mut self) {
        // No wake-up for a request that is gone.
        lock(&self.slot.state).waker = None;
    }
}

/// Wakers of requests whose run finished, for the drainer.
#[derive(Default)]
struct Replies {
    ready: Mutex<Vec<Waker>>,
    /// The drainer's own waker.
    drainer: Mutex<Option<Waker>>,
    /// The drainer has been woken and has not yet emptied `ready`: a reply
    /// queued now needs no wake of its own.
    scheduled: AtomicBool,
}

impl Replies {
    fn push(&self, waker: Waker) {
        lock(&self.ready).push(waker);
        if !self.scheduled.swap(true, Ordering::SeqCst)
            && let Some(drainer) = lock(&self.drainer).as_ref()
        {
            drainer.wake_by_ref();
        }
    }
}

/// The reactor task that wakes the requests of finished runs, from the
/// reactor thread (a local wake, no system call), one batch per remote wake.
struct Drainer {
    shared: Arc<Shared>,
    /// Swapped with `Replies::ready`, so neither side allocates per batch.
    batch: Vec<Waker>,
}

impl Future for Drainer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let replies = &this.shared.replies;
        {
            let mut drainer = lock(&replies.drainer);
            match drainer.as_ref() {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *drainer = Some(cx.waker().clone()),
            }
        }
        loop {
            std::mem::swap(&mut *lock(&replies.ready), &mut this.batch);
            if this.batch.is_empty() {
                // Cleared before the last look: a reply pushed after that
                // look sees `false` and wakes this task again.
                replies.scheduled.store(false, Ordering::SeqCst);
                if lock(&replies.ready).is_empty() {
                    return Poll::Pending;
                }
                replies.scheduled.store(true, Ordering::SeqCst);
                continue;
            }
            for waker in this.batch.drain(..) {
                waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    use crate::serve::test_runtime as runtime;

    #[test]
    fn a_run_returns_its_value_and_a_panic_is_contained() {
        runtime().block_on(async {
            let pool = RunPool::new(2);
            assert_eq!(pool.run(|| 6 * 7).await, Ok(42));
            let panicked = pool.run(|| -> u32 { panic!("a run that panics") }).await;
            assert_eq!(panicked, Err(RunError::Panicked));
            // The worker that caught the panic serves the next run.
            assert_eq!(pool.run(|| "again").await, Ok("again"));
        });
    }

    #[test]
    fn every_permitted_run_starts_at_once_even_when_all_block() {
        // Four runs that each wait for the other three: they finish only
        // if all four run at the same time, none queued behind another.
        runtime().block_on(async {
            let pool = RunPool::new(4);
            let barrier = Arc::new(Barrier::new(4));
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let barrier = Arc::clone(&barrier);
                    pool.run(move || {
                        barrier.wait();
                        i
                    })
                })
                .collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap_or_else(|e| panic!("run: {e:?}"));
            }
            assert_eq!(sum, 6);
            assert!(lock(&pool.shared.queue).threads <= 4);
        });
    }

    #[test]
    fn many_runs_in_waves_all_reply() {
        runtime().block_on(async {
            let pool = RunPool::new(3);
            for wave in 0..200_u64 {
                let handles: Vec<_> = (0..3).map(|i| pool.run(move || wave * 3 + i)).collect();
                for (i, h) in (0..3).zip(handles) {
                    assert_eq!(h.await, Ok(wave * 3 + i));
                }
            }
            assert!(lock(&pool.shared.queue).threads <= 3);
        });
    }

    #[test]
    fn a_dropped_handle_detaches_the_run() {
        runtime().block_on(async {
            let pool = RunPool::new(1);
            let (tx, rx) = std::sync::mpsc::channel();
            drop(pool.run(move || tx.send(1)));
            // The run still happens; the next one is served by the same thread.
            assert_eq!(pool.run(|| 2).await, Ok(2));
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)).ok(), Some(1));
        });
    }
}
