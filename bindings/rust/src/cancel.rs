// SPDX-License-Identifier: MIT
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::Error;
use crate::{abi_check, sys};

/// Cancels waits for tickets: every [`acquire_cancelable`](crate::Semaphore::acquire_cancelable)
/// and [`acquire_async_cancelable`](crate::Semaphore::acquire_async_cancelable)
/// using the token ends promptly with [`ErrorKind::Canceled`](crate::ErrorKind::Canceled)
/// once [`cancel`](CancelToken::cancel) is called, and later ones do not
/// start.
///
/// Cloning is cheap and every clone cancels the same waits: hand one to the
/// thread that decides, keep one for the waits. `Send` and `Sync`.
#[derive(Clone)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

struct Inner {
    handle: sys::whsem_cancel,
    canceled: AtomicBool,
}

impl CancelToken {
    /// A token that has not been canceled.
    pub fn new() -> Result<CancelToken, Error> {
        abi_check::ensure()?;
        let mut handle = 0;
        // SAFETY: a valid out-pointer.
        let status = unsafe { sys::whsem_cancel_new(&mut handle) };
        if status != sys::WHSEM_OK {
            return Err(Error::last(status));
        }
        Ok(CancelToken {
            inner: Arc::new(Inner {
                handle,
                canceled: AtomicBool::new(false),
            }),
        })
    }

    /// Cancels every wait using this token, now and later. Idempotent.
    pub fn cancel(&self) {
        self.inner.canceled.store(true, Ordering::Release);
        // SAFETY: plain handle argument. It cannot fail: the handle is live
        // for as long as `inner` is.
        let status = unsafe { sys::whsem_cancel_trigger(self.inner.handle) };
        debug_assert_eq!(status, sys::WHSEM_OK);
    }

    /// Whether [`cancel`](CancelToken::cancel) was called on this token or a clone.
    pub fn is_canceled(&self) -> bool {
        self.inner.canceled.load(Ordering::Acquire)
    }

    pub(crate) fn raw(&self) -> sys::whsem_cancel {
        self.inner.handle
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: plain handle argument. Waits still using the source are
        // unaffected (the library keeps what they need).
        unsafe { sys::whsem_cancel_free(self.handle) };
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("canceled", &self.is_canceled())
            .finish()
    }
}
