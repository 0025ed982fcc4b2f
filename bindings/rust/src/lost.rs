// SPDX-License-Identifier: MIT
//! Telling a holder that its ticket was lost: [`Lost`], built on
//! `whsem_ticket_watch`.
//!
//! The library takes one watch per ticket and calls its callback exactly
//! once, on a thread of its own: with `WHSEM_E_TICKET_LOST`, or with
//! `WHSEM_OK` when the ticket is released without loss. Any number of
//! [`Lost`] futures may exist for one ticket, so the watch is shared: a
//! registry maps each watched ticket to its [`Watch`], which the first call
//! creates and registers and the callback takes out again. The callback owns
//! one reference to the watch (the `user_data`), reclaimed exactly once
//! there, or at once if nothing was registered.

use std::collections::hash_map::{Entry, HashMap};
use std::ffi::c_void;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::sys;

/// The future of [`Ticket::lost`](crate::Ticket::lost): resolves with
/// `Err(error)` of kind [`ErrorKind::TicketLost`](crate::ErrorKind::TicketLost)
/// when the ticket is lost, `Ok(())` once it was released without loss, and
/// never for a ticket of this machine's backend (which cannot be lost). See
/// [`Ticket::lost`](crate::Ticket::lost) for the whole contract.
///
/// `Send`, `Sync`, `Unpin`, `'static`; cloning gives another future on the
/// same watch. Polling it again after it resolved gives the same answer.
#[must_use = "futures do nothing unless polled"]
pub struct Lost {
    watch: Arc<Watch>,
    // Where this future's waker sits in the watch, once it was polled.
    key: Option<u64>,
}

/// One ticket's watch, shared by its `Lost` futures and the callback.
#[derive(Default)]
struct Watch {
    state: Mutex<WatchState>,
    ended: Condvar,
}

#[derive(Default)]
struct WatchState {
    outcome: Option<Result<(), Error>>,
    // One slot per pending future, removed when it is dropped, so that a
    // loop that makes and drops futures does not grow this.
    wakers: Vec<(u64, Waker)>,
    next_key: u64,
}

/// References to watches held by the library for callbacks still to come.
static OUTSTANDING: AtomicIsize = AtomicIsize::new(0);

fn registry() -> MutexGuard<'static, HashMap<sys::whsem_ticket, Arc<Watch>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<sys::whsem_ticket, Arc<Watch>>>> = OnceLock::new();
    // Every critical section below leaves the map consistent, so a panic
    // elsewhere while it was held does not spoil it.
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Takes `ticket`'s entry out of the registry if it is still `watch`.
fn unregister(ticket: sys::whsem_ticket, watch: &Arc<Watch>) {
    let mut map = registry();
    if map.get(&ticket).is_some_and(|w| Arc::ptr_eq(w, watch)) {
        map.remove(&ticket);
    }
}

impl Watch {
    fn state(&self) -> MutexGuard<'_, WatchState> {
        // Only plain assignments happen under this lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the outcome (the first one only) and wakes every waiter.
    fn end(&self, outcome: Result<(), Error>) {
        let wakers = {
            let mut state = self.state();
            if state.outcome.is_some() {
                return;
            }
            state.outcome = Some(outcome);
            std::mem::take(&mut state.wakers)
        };
        self.ended.notify_all();
        // Outside the lock: a waker may poll its future at once.
        for (_, waker) in wakers {
            // An executor's panicking waker must not keep the others asleep
            // nor unwind into the library's thread.
            let _ = catch_unwind(AssertUnwindSafe(|| waker.wake()));
        }
    }
}

impl Lost {
    pub(crate) fn watch(ticket: sys::whsem_ticket) -> Lost {
        let (watch, fresh) = match registry().entry(ticket) {
            Entry::Occupied(e) => (Arc::clone(e.get()), false),
            Entry::Vacant(e) => (Arc::clone(e.insert(Arc::new(Watch::default()))), true),
        };
        // Registered outside the registry's lock, which the callback takes:
        // it may run on the library's thread before this call returns.
        if fresh {
            start(ticket, &watch);
        }
        Lost { watch, key: None }
    }

    /// Blocks the calling thread until the ticket's life ends or `timeout`
    /// passes: `None` if it is still held (or cannot be lost), else what the
    /// future resolves with. `Duration::ZERO` only looks.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<(), Error>> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.watch.state();
        loop {
            if let Some(outcome) = &state.outcome {
                return Some(outcome.clone());
            }
            let left = match deadline {
                // Too far to represent: as good as forever.
                None => Duration::from_secs(3600),
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            };
            if left.is_zero() {
                return None;
            }
            state = self
                .watch
                .ended
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Registers the library's watch for a watch just put in the registry.
fn start(ticket: sys::whsem_ticket, watch: &Arc<Watch>) {
    let user_data = Arc::into_raw(Arc::clone(watch)) as *mut c_void;
    OUTSTANDING.fetch_add(1, Ordering::AcqRel);
    // SAFETY: a valid callback; user_data stays valid until the callback
    // reclaims it, or below if nothing was registered.
    let status = unsafe { sys::whsem_ticket_watch(ticket, 0, Some(on_ticket_event), user_data) };
    if status == sys::WHSEM_OK {
        return;
    }
    let error = Error::last(status);
    // No callback will come: the reference meant for it is ours again.
    // SAFETY: the pointer came from Arc::into_raw above.
    drop(unsafe { Arc::from_raw(user_data as *const Watch) });
    OUTSTANDING.fetch_sub(1, Ordering::AcqRel);
    unregister(ticket, watch);
    if status == sys::WHSEM_E_UNSUPPORTED {
        // A ticket that cannot be lost: its watch never ends.
        return;
    }
    // The library watches a ticket once, so a ticket lost earlier (whose
    // watch already ended and left the registry) is refused: say it is lost.
    watch.end(Err(loss(ticket).unwrap_or(error)));
}

/// The loss of `ticket` with the library's reason, if it is known lost.
fn loss(ticket: sys::whsem_ticket) -> Option<Error> {
    // SAFETY: plain handle argument; a released ticket is only an error.
    let status = unsafe { sys::whsem_ticket_check(ticket) };
    (status == sys::WHSEM_E_TICKET_LOST).then(|| Error::last(status))
}

unsafe extern "C" fn on_ticket_event(
    ticket: sys::whsem_ticket,
    status: sys::whsem_status,
    user_data: *mut c_void,
) {
    // Nothing may unwind into the library's thread.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the reference leaked in start(); the library calls back
        // exactly once per watch, so it is reclaimed once.
        let watch = unsafe { Arc::from_raw(user_data as *const Watch) };
        OUTSTANDING.fetch_sub(1, Ordering::AcqRel);
        unregister(ticket, &watch);
        let outcome = if status == sys::WHSEM_OK {
            Ok(())
        } else {
            // The ticket may be released already, taking its reason along.
            Err(loss(ticket).unwrap_or_else(|| Error::without_message(status)))
        };
        watch.end(outcome);
    }));
}

impl Future for Lost {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = this.watch.state();
        if let Some(outcome) = &state.outcome {
            return Poll::Ready(outcome.clone());
        }
        match this.key {
            Some(key) => {
                if let Some((_, waker)) = state.wakers.iter_mut().find(|(k, _)| *k == key) {
                    if !waker.will_wake(cx.waker()) {
                        *waker = cx.waker().clone();
                    }
                }
            }
            None => {
                let key = state.next_key;
                state.next_key += 1;
                state.wakers.push((key, cx.waker().clone()));
                this.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for Lost {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.watch.state().wakers.retain(|(k, _)| *k != key);
        }
    }
}

impl Clone for Lost {
    fn clone(&self) -> Lost {
        Lost {
            watch: Arc::clone(&self.watch),
            key: None,
        }
    }
}

impl fmt::Debug for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.watch.state().outcome {
            None => "held",
            Some(Ok(())) => "released",
            Some(Err(e)) if e.kind() == ErrorKind::TicketLost => "lost",
            Some(Err(_)) => "not watched",
        };
        f.debug_struct("Lost").field("state", &state).finish()
    }
}

/// For this crate's tests: watches whose callback the library still owes.
/// Back to where it was once every watched ticket was released or lost; a
/// callback that never came, or came twice, shows here.
#[doc(hidden)]
pub fn __watch_callbacks_outstanding() -> isize {
    OUTSTANDING.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct CountingWaker(std::sync::atomic::AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn parts() -> (Lost, Arc<CountingWaker>, Waker) {
        let lost = Lost {
            watch: Arc::new(Watch::default()),
            key: None,
        };
        let counter = Arc::new(CountingWaker(Default::default()));
        let waker = Waker::from(Arc::clone(&counter));
        (lost, counter, waker)
    }

    #[test]
    fn the_future_is_send_sync_unpin_and_static() {
        fn check<T: Future + Send + Sync + Unpin + 'static>() {}
        check::<Lost>();
    }

    #[test]
    fn every_pending_future_is_woken_once_with_the_outcome() {
        let (mut first, counter, waker) = parts();
        let mut second = first.clone();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut first).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut first).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut second).poll(&mut cx).is_pending());
        assert_eq!(first.watch.state().wakers.len(), 2, "one slot per future");
        first
            .watch
            .end(Err(Error::without_message(sys::WHSEM_E_TICKET_LOST)));
        first.watch.end(Ok(())); // a second outcome is ignored
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        for lost in [&mut first, &mut second] {
            match Pin::new(lost).poll(&mut cx) {
                Poll::Ready(Err(e)) => assert_eq!(e.kind(), ErrorKind::TicketLost),
                other => panic!("expected the loss, got {other:?}"),
            }
        }
        assert!(matches!(first.wait_timeout(Duration::ZERO), Some(Err(_))));
    }

    #[test]
    fn dropped_futures_leave_no_waker_behind() {
        let (lost, _counter, waker) = parts();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..1000 {
            let mut f = lost.clone();
            assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        }
        assert!(lost.watch.state().wakers.is_empty());
    }

    #[test]
    fn waiting_times_out_while_held_and_returns_once_ended() {
        let (lost, _counter, _waker) = parts();
        assert!(lost.wait_timeout(Duration::ZERO).is_none());
        assert!(lost.wait_timeout(Duration::from_millis(20)).is_none());
        let watch = Arc::clone(&lost.watch);
        let ender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            watch.end(Ok(()));
        });
        // Generous: only the end, not its timing, is checked.
        assert!(matches!(lost.wait_timeout(Duration::MAX), Some(Ok(()))));
        ender.join().unwrap();
    }
}
