// SPDX-License-Identifier: MIT
//! `acquire_async`: completion, timeouts, cancellation, and above all that
//! dropping a future never loses (or double-releases) a ticket, whatever it
//! races with.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use support::executor::{block_on, join_all, poll_once};
use support::{eventually, TestName, PATIENCE};
use whsem::{Acquire, CancelToken, ErrorKind, Semaphore, Ticket};

/// Every ticket of `sem` can be taken (so none was lost); gives them back.
fn assert_all_tickets_acquirable(sem: &Semaphore, max: u32) {
    let mut held: Vec<Ticket> = Vec::new();
    let complete = eventually(PATIENCE, || {
        while let Some(t) = sem.try_acquire().unwrap() {
            held.push(t);
        }
        held.len() == max as usize
    });
    assert!(
        complete,
        "only {} of {max} tickets could be acquired: a ticket was lost",
        held.len()
    );
    assert!(
        sem.try_acquire().unwrap().is_none(),
        "more than {max} tickets exist"
    );
    // Freed operations stop counting as waiters once the library's
    // dispatcher has settled them, which may take a moment.
    let mut info = None;
    let settled = eventually(PATIENCE, || {
        let i = sem.info().unwrap();
        let ok = i.free_count == 0 && i.waiters == 0;
        info = Some(i);
        ok
    });
    assert!(settled, "{info:?}");
}

#[test]
fn completes_at_once_when_a_ticket_is_free() {
    let name = TestName::new("async-free");
    let sem = Semaphore::open(&name, 1).unwrap();
    let ticket = block_on(sem.acquire_async(None))
        .unwrap()
        .expect("a free ticket");
    assert!(
        sem.try_acquire().unwrap().is_none(),
        "the future's ticket is held"
    );
    ticket.release().unwrap();
    assert!(sem.try_acquire().unwrap().is_some());
}

#[test]
fn a_pending_future_is_woken_by_a_release_on_another_thread() {
    let name = TestName::new("async-wake");
    let sem = Semaphore::open(&name, 1).unwrap();
    let held = sem.try_acquire().unwrap().unwrap();
    let mut fut = sem.acquire_async(Some(PATIENCE));
    assert!(
        poll_once(&mut fut).is_none(),
        "pending while the ticket is held"
    );
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        held.release().unwrap();
    });
    let ticket = block_on(fut).unwrap();
    assert!(ticket.is_some());
    releaser.join().unwrap();
}

#[test]
fn timeout_and_try_once_resolve_to_none() {
    let name = TestName::new("async-timeout");
    let sem = Semaphore::open(&name, 1).unwrap();
    let _held = sem.try_acquire().unwrap().unwrap();
    assert!(block_on(sem.acquire_async(Some(Duration::from_millis(20))))
        .unwrap()
        .is_none());
    assert!(block_on(sem.acquire_async(Some(Duration::ZERO)))
        .unwrap()
        .is_none());
    assert_eq!(sem.info().unwrap().waiters, 0);
}

#[test]
fn cancel_tokens_end_futures() {
    let name = TestName::new("async-cancel");
    let sem = Semaphore::open(&name, 1).unwrap();
    let token = CancelToken::new().unwrap();
    token.cancel();
    let err = block_on(sem.acquire_async_cancelable(None, &token)).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Canceled,
        "already canceled, although a ticket is free"
    );

    let _held = sem.try_acquire().unwrap().unwrap();
    let token = CancelToken::new().unwrap();
    let fut = sem.acquire_async_cancelable(None, &token);
    let canceler = token.clone();
    let thread = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        canceler.cancel();
    });
    drop(token); // the future keeps the source alive and cancelable
    assert_eq!(block_on(fut).unwrap_err().kind(), ErrorKind::Canceled);
    thread.join().unwrap();
    assert_eq!(sem.info().unwrap().waiters, 0);
}

/// Leaves a message on this thread that belongs to no acquisition, as an
/// earlier failing call would.
fn unrelated_message() {
    // SAFETY: a plain handle argument; 0 is never a handle.
    let status = unsafe { whsem::sys::whsem_release(0) };
    assert_eq!(status, whsem::sys::WHSEM_E_INVALID_HANDLE);
}

#[test]
fn an_async_error_carries_the_message_of_its_own_ending() {
    // The library's dispatcher thread finds the segment truncated under the
    // pending acquisition; the message reaches the future all the same.
    let name = TestName::new("async-corrupt");
    let sem = Semaphore::open(&name, 1).unwrap();
    let held = sem.try_acquire().unwrap().unwrap();
    let mut fut = sem.acquire_async(None);
    assert!(
        poll_once(&mut fut).is_none(),
        "pending while the ticket is held"
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(name.segment_path())
        .unwrap()
        .set_len(0)
        .unwrap();
    unrelated_message();
    let err = block_on(fut).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.message().contains("truncated"), "{err:?}");
    let _ = held.release(); // an error or not, but no crash

    // An ending that needs no explanation brings none, not an older one.
    let name = TestName::new("async-cancel-message");
    let sem = Semaphore::open(&name, 1).unwrap();
    let _held = sem.try_acquire().unwrap().unwrap();
    let token = CancelToken::new().unwrap();
    let mut fut = sem.acquire_async_cancelable(None, &token);
    assert!(poll_once(&mut fut).is_none());
    token.cancel();
    unrelated_message();
    let err = block_on(fut).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled);
    assert_eq!(err.message(), "", "{err:?}");
}

#[test]
fn a_never_polled_future_does_nothing() {
    let name = TestName::new("async-lazy");
    let sem = Semaphore::open(&name, 1).unwrap();
    let fut = sem.acquire_async(None);
    assert_eq!(sem.info().unwrap().free_count, 1);
    drop(fut);
    assert!(sem.try_acquire().unwrap().is_some());
}

#[test]
#[should_panic(expected = "polled after it completed")]
fn polling_after_completion_panics() {
    let name = TestName::new("async-twice");
    let sem = Semaphore::open(&name, 1).unwrap();
    let mut fut = sem.acquire_async(None);
    let first = eventually(PATIENCE, || poll_once(&mut fut).is_some());
    assert!(first);
    poll_once(&mut fut);
}

/// Yields to the executor once, so a task holds its ticket across a
/// suspension point.
struct YieldNow(bool);
impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

// Whether holders stay within the max count is not this crate's to prove
// (tests/library Semantics.ThreadsNeverExceedMaxCount, and xlang_chaos with
// asynchronous workers): these check that every future is woken and
// completes, and that no ticket is lost on the way.

#[test]
fn many_tasks_on_one_executor_all_complete() {
    const MAX: u32 = 2;
    const TASKS: usize = 60;
    let name = TestName::new("async-join");
    let sem = Semaphore::open(&name, MAX).unwrap();
    let completed = AtomicUsize::new(0);
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (sem, completed) = (&sem, &completed);
            async move {
                let ticket = sem
                    .acquire_async(Some(PATIENCE))
                    .await?
                    .expect("a ticket within the patience");
                for _ in 0..(i % 4) {
                    YieldNow(false).await;
                }
                completed.fetch_add(1, Ordering::Relaxed);
                ticket.release()
            }
        })
        .collect();
    for result in join_all(tasks) {
        result.unwrap();
    }
    assert_eq!(completed.load(Ordering::Relaxed), TASKS);
    assert_all_tickets_acquirable(&sem, MAX);
}

#[test]
fn futures_run_on_several_threads_at_once() {
    const MAX: u32 = 2;
    let name = TestName::new("async-threads");
    let sem = Arc::new(Semaphore::open(&name, MAX).unwrap());
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let sem = sem.clone();
            thread::spawn(move || {
                for _ in 0..300 {
                    let ticket = block_on(sem.acquire_async(Some(PATIENCE)))
                        .unwrap()
                        .expect("a ticket within the patience");
                    drop(ticket);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_all_tickets_acquirable(&sem, MAX);
}

/// Spins for a number of iterations that changes from race to race, so the
/// drop lands before, during and after the grant and the callback.
fn jitter(i: usize) {
    for _ in 0..(i * 7919) % 2000 {
        std::hint::spin_loop();
    }
}

#[test]
fn dropping_a_future_racing_with_a_grant_never_loses_a_ticket() {
    const RACES: usize = 10_000;
    let name = TestName::new("async-race");
    let sem = Semaphore::open(&name, 1).unwrap();
    let mut held = sem.try_acquire().unwrap().unwrap();
    let mut taken_by_future = 0;
    for i in 0..RACES {
        let mut fut = sem.acquire_async(None);
        assert!(
            poll_once(&mut fut).is_none(),
            "race {i}: the only ticket is held"
        );
        drop(held); // the grant to the pending operation starts now...
        jitter(i);
        if i % 3 == 0 {
            // ...sometimes the future wins it before being dropped...
            if let Some(result) = poll_once(&mut fut) {
                drop(result.unwrap().expect("granted"));
                taken_by_future += 1;
            }
        }
        drop(fut); // ...and the drop cancels whatever is left.
        held = sem
            .acquire(Some(PATIENCE))
            .unwrap()
            .unwrap_or_else(|| panic!("race {i}: the ticket was lost"));
    }
    drop(held);
    assert_all_tickets_acquirable(&sem, 1);
    eprintln!("{RACES} races; the future took the ticket in {taken_by_future}");
}

#[test]
fn dropping_futures_while_other_threads_release_never_loses_a_ticket() {
    const MAX: u32 = 2;
    const RACES: usize = 10_000;
    let name = TestName::new("async-race-threads");
    let sem = Arc::new(Semaphore::open(&name, MAX).unwrap());
    // The releaser gets the held tickets and releases them while this
    // thread drops its pending futures.
    let (to_releaser, inbox) = mpsc::channel::<Vec<Ticket>>();
    let barrier = Arc::new(Barrier::new(2));
    let releaser = {
        let barrier = barrier.clone();
        thread::spawn(move || {
            for (i, tickets) in inbox.into_iter().enumerate() {
                barrier.wait();
                jitter(i);
                drop(tickets);
            }
        })
    };
    let mut completed = 0;
    for i in 0..RACES {
        let held: Vec<Ticket> = (0..MAX)
            .map(|_| {
                sem.acquire(Some(PATIENCE))
                    .unwrap()
                    .unwrap_or_else(|| panic!("race {i}: a ticket was lost"))
            })
            .collect();
        // A slot becomes None once its future has completed (the 1 ms one
        // may time out at any poll on a loaded machine).
        let mut futs = vec![
            Some(sem.acquire_async(None)),
            Some(sem.acquire_async(Some(Duration::from_millis(1)))),
        ];
        let mut poll_all = |futs: &mut Vec<Option<Acquire<'_>>>| {
            for slot in futs.iter_mut() {
                if let Some(result) = slot.as_mut().and_then(poll_once) {
                    *slot = None;
                    if let Some(ticket) = result.unwrap() {
                        completed += 1;
                        drop(ticket);
                    }
                }
            }
        };
        poll_all(&mut futs);
        to_releaser.send(held).unwrap();
        barrier.wait();
        jitter(i + 1);
        if i % 4 == 1 {
            poll_all(&mut futs);
        }
        // On some iterations drop them on another thread as well.
        if i % 5 == 0 {
            thread::scope(|s| {
                s.spawn(move || drop(futs));
            });
        } else {
            drop(futs);
        }
    }
    drop(to_releaser);
    releaser.join().unwrap();
    assert_all_tickets_acquirable(&sem, MAX);
    eprintln!("{RACES} races of {MAX} futures; {completed} completed before their drop");
}

#[test]
fn a_panicking_waker_does_not_unwind_into_the_library() {
    struct Panicky;
    impl Wake for Panicky {
        fn wake(self: Arc<Self>) {
            panic!("this waker panics on purpose");
        }
    }
    let name = TestName::new("async-panic");
    let sem = Semaphore::open(&name, 1).unwrap();
    let held = sem.try_acquire().unwrap().unwrap();
    let mut fut = sem.acquire_async(Some(PATIENCE));
    let waker = Waker::from(Arc::new(Panicky));
    assert!(Pin::new(&mut fut)
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    drop(held); // the library's callback thread now calls the panicking waker
    let mut result = None;
    assert!(eventually(PATIENCE, || {
        result = poll_once(&mut fut);
        result.is_some()
    }));
    assert!(
        result.unwrap().unwrap().is_some(),
        "the future still completes with the ticket"
    );
    // The callback thread survived: later futures are still woken.
    assert!(block_on(sem.acquire_async(Some(PATIENCE)))
        .unwrap()
        .is_some());
}
