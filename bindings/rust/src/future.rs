// SPDX-License-Identifier: MIT
//! The asynchronous acquisition: a [`Future`] woken by libwhsem's callback.
//!
//! Ownership of the ticket is kept simple on purpose. The callback only wakes
//! the task; it never touches the operation. The ticket is moved out of the
//! operation by `poll`, and the operation is freed by `poll` (once final) or
//! by `drop` (which cancels it and returns an untaken ticket to the pool).
//! `poll` and `drop` both have exclusive access to the future, so they
//! cannot race with each other, and the callback cannot race with either
//! over the ticket: no interleaving can lose or double-release it.

use std::ffi::c_void;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::cancel::CancelToken;
use crate::error::Error;
use crate::semaphore::{Semaphore, Ticket};
use crate::sys;

/// The future of [`Semaphore::acquire_async`]: resolves to `Ok(Some(ticket))`,
/// `Ok(None)` on timeout, or an error ([`ErrorKind::Canceled`](crate::ErrorKind::Canceled)
/// when its [`CancelToken`] was canceled).
///
/// Dropping it before it completes cancels the acquisition; a ticket granted
/// meanwhile returns to the pool. `Send`, `Unpin`, and usable from any
/// executor.
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a> {
    sem: sys::whsem_sem,
    timeout_ms: i64,
    // Held so the source stays alive (and cancelable) for the whole wait.
    cancel: Option<CancelToken>,
    state: State,
    _sem: PhantomData<&'a Semaphore>,
}

enum State {
    NotStarted,
    Pending {
        op: sys::whsem_op,
        shared: Arc<Shared>,
    },
    Done,
}

/// What the callback and the future share: where to send the wake-up.
struct Shared {
    waker: Mutex<Option<Waker>>,
}

impl Shared {
    fn waker(&self) -> MutexGuard<'_, Option<Waker>> {
        // A panic while holding this lock cannot leave it inconsistent: it
        // only ever holds an Option<Waker>.
        self.waker.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<'a> Acquire<'a> {
    pub(crate) fn new(
        sem: &'a Semaphore,
        timeout_ms: i64,
        cancel: Option<CancelToken>,
    ) -> Acquire<'a> {
        Acquire {
            sem: sem.as_raw(),
            timeout_ms,
            cancel,
            state: State::NotStarted,
            _sem: PhantomData,
        }
    }

    fn start(&mut self, waker: &Waker) -> Result<(), Error> {
        let shared = Arc::new(Shared {
            waker: Mutex::new(Some(waker.clone())),
        });
        // The callback runs exactly once per started operation, even after
        // whsem_op_free, so it owns this reference and gives it back.
        let user_data = Arc::into_raw(Arc::clone(&shared)) as *mut c_void;
        let cancel = self.cancel.as_ref().map_or(0, CancelToken::raw);
        let mut op = 0;
        // SAFETY: valid callback and out-pointer; user_data stays valid until
        // the callback reclaims it.
        let status = unsafe {
            sys::whsem_acquire_async(
                self.sem,
                self.timeout_ms,
                cancel,
                Some(on_complete),
                user_data,
                &mut op,
            )
        };
        if status != sys::WHSEM_OK {
            let error = Error::last(status);
            // No operation was created, so no callback will run.
            // SAFETY: the pointer came from Arc::into_raw above.
            drop(unsafe { Arc::from_raw(user_data as *const Shared) });
            return Err(error);
        }
        self.state = State::Pending { op, shared };
        Ok(())
    }

    /// Takes the ticket of a final operation and frees the operation.
    fn finish(op: sys::whsem_op, status: sys::whsem_status) -> Result<Option<Ticket>, Error> {
        let result = match status {
            sys::WHSEM_OK => {
                let mut raw = 0;
                // SAFETY: a valid out-pointer.
                let taken = unsafe { sys::whsem_op_take_ticket(op, &mut raw) };
                if taken == sys::WHSEM_OK {
                    NonZeroU64::new(raw)
                        .map(|handle| Some(Ticket::from_handle(handle)))
                        .ok_or_else(|| {
                            Error::invalid_handle("the library returned a null ticket handle")
                        })
                } else {
                    Err(Error::last(taken))
                }
            }
            sys::WHSEM_TIMEOUT => Ok(None),
            // whsem_op_poll, just called on this thread, made the message of
            // the operation's ending this thread's message (libwhsem 1.1),
            // whichever library thread ended it.
            other => Err(Error::last(other)),
        };
        // SAFETY: plain handle argument; the operation is final and ours.
        unsafe { sys::whsem_op_free(op) };
        result
    }
}

impl Future for Acquire<'_> {
    type Output = Result<Option<Ticket>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let State::NotStarted = this.state {
            if let Err(error) = this.start(cx.waker()) {
                this.state = State::Done;
                return Poll::Ready(Err(error));
            }
        }
        let (op, status) = match &this.state {
            State::Pending { op, shared } => {
                let mut waker = shared.waker();
                // Checked under the lock: the callback runs only after the
                // final status is visible, and takes the waker under this
                // lock, so a PENDING seen here means the waker stored below
                // will be the one it wakes.
                // SAFETY: plain handle argument.
                let status = unsafe { sys::whsem_op_poll(*op) };
                if status == sys::WHSEM_PENDING {
                    match waker.as_mut() {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => *waker = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                }
                (*op, status)
            }
            State::Done => panic!("`Acquire` polled after it completed"),
            State::NotStarted => unreachable!("started above"),
        };
        this.state = State::Done;
        Poll::Ready(Acquire::finish(op, status))
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if let State::Pending { op, .. } = self.state {
            // Cancels the operation if it is still pending and releases a
            // ticket that nobody took; the callback still runs (and only
            // wakes a task that no longer waits).
            // SAFETY: plain handle argument.
            unsafe { sys::whsem_op_free(op) };
        }
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::NotStarted => "not started",
            State::Pending { .. } => "pending",
            State::Done => "done",
        };
        f.debug_struct("Acquire").field("state", &state).finish()
    }
}

unsafe extern "C" fn on_complete(
    _op: sys::whsem_op,
    _status: sys::whsem_status,
    user_data: *mut c_void,
) {
    // A panic must not unwind into the library's thread; a waker is foreign
    // code (the executor's) and may panic. There is nobody to report it to.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: user_data is the reference leaked in start(); the library
        // calls back exactly once per operation, so it is reclaimed once.
        let shared = unsafe { Arc::from_raw(user_data as *const Shared) };
        let waker = shared.waker().take();
        drop(shared);
        if let Some(waker) = waker {
            waker.wake();
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_future_is_send_and_unpin() {
        fn send_unpin<T: Send + Unpin>() {}
        send_unpin::<Acquire<'static>>();
    }
}
