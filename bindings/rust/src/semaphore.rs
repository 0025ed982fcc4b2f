// SPDX-License-Identifier: MIT
use std::ffi::{CStr, CString};
use std::fmt;
use std::mem::ManuallyDrop;
use std::num::NonZeroU64;
use std::os::raw::c_char;
use std::ptr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cancel::CancelToken;
use crate::error::Error;
use crate::future::Acquire;
use crate::lost::Lost;
use crate::{abi_check, sys};

/// A named counting semaphore shared by every process on the machine that
/// opens the same name with the same max count (or, opened with
/// [`OpenOptions::backend`], by every process on every machine that opens it
/// in the same PostgreSQL database).
///
/// Open it with [`Semaphore::open`] (or [`Semaphore::options`] for more
/// control); acquire [`Ticket`]s with [`try_acquire`](Semaphore::try_acquire),
/// [`acquire`](Semaphore::acquire) or [`acquire_async`](Semaphore::acquire_async).
/// At most `max_count` tickets exist at any time, over all processes; a
/// ticket of a process that dies, even by `SIGKILL`, returns to the pool.
///
/// A `Semaphore` is `Send` and `Sync`: share it between threads with an
/// `Arc` or a scoped borrow. Dropping it closes this process's handle; tickets
/// acquired through it stay valid and are released as usual.
///
/// ```
/// use std::time::Duration;
/// use whsem::Semaphore;
///
/// # fn main() -> Result<(), whsem::Error> {
/// # let name = format!("doc-semaphore-{}", std::process::id());
/// let sem = Semaphore::open(&name, 2)?;
/// let first = sem.try_acquire()?.expect("two tickets are free");
/// let second = sem.acquire(Some(Duration::from_secs(5)))?.expect("one ticket is free");
/// assert!(sem.try_acquire()?.is_none(), "both tickets are held");
/// drop(first); // releases
/// second.release()?; // releases, reporting errors
/// # drop(sem);
/// # whsem::remove(&name)?;
/// # Ok(())
/// # }
/// ```
pub struct Semaphore {
    handle: NonZeroU64,
}

/// Options and flags for opening a [`Semaphore`], in the style of
/// [`std::fs::OpenOptions`].
///
/// ```
/// use std::time::Duration;
/// use whsem::Semaphore;
///
/// # fn main() -> Result<(), whsem::Error> {
/// # let name = format!("doc-options-{}", std::process::id());
/// let sem = Semaphore::options()
///     .mode(0o660) // the owner's group may use it too
///     .abandonment_check(Some(Duration::from_millis(500)))
///     .open(&name, 4)?;
/// assert_eq!(sem.max_count()?, 4);
/// # drop(sem);
/// # whsem::remove(&name)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default, Debug)]
pub struct OpenOptions {
    exact_name: bool,
    abandonment_check_ms: i32,
    mode: u32,
    backend: Backend,
    connection_check_ms: i32,
}

/// Where a semaphore lives, as a builder's `backend` method was told
/// ([`OpenOptions::backend`], [`RemoveOptions::backend`](crate::RemoveOptions::backend),
/// [`ListOptions::backend`](crate::ListOptions::backend)).
#[derive(Clone, Default)]
pub(crate) enum Backend {
    #[default]
    ThisMachine,
    Server(CString),
    // Reported by the call that uses it: a builder method has no way to fail.
    HasNul,
}

impl Backend {
    pub(crate) fn new(conninfo: &str) -> Backend {
        if conninfo.is_empty() {
            Backend::ThisMachine
        } else {
            CString::new(conninfo).map_or(Backend::HasNul, Backend::Server)
        }
    }

    /// The C string (NULL for this machine); it points into `self`.
    pub(crate) fn as_ptr(&self) -> Result<*const c_char, Error> {
        match self {
            Backend::ThisMachine => Ok(ptr::null()),
            Backend::Server(conninfo) => Ok(conninfo.as_ptr()),
            // Not echoed: the string may hold a password.
            Backend::HasNul => Err(Error::invalid_argument(
                "the backend's connection string contains a NUL character",
            )),
        }
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection string is left out: it may hold a password.
        let what = match self {
            Backend::ThisMachine => "this machine",
            Backend::Server(_) => "a server (connection string not shown)",
            Backend::HasNul => "invalid (a NUL character)",
        };
        fmt::Debug::fmt(what, f)
    }
}

/// One held ticket of a [`Semaphore`]. Dropping it releases it; so does
/// [`release`](Ticket::release), which also reports errors.
///
/// A ticket is `Send` and `Sync`: it may be released on another thread
/// than the one that acquired it, and it may outlive its `Semaphore`. It
/// belongs to the process that acquired it: a child created by `fork()`
/// cannot release its parent's tickets ([`ErrorKind::WrongProcess`](crate::ErrorKind::WrongProcess)).
/// A ticket of a PostgreSQL-backed semaphore can be lost while its process
/// lives: [`check`](Ticket::check) and [`lost`](Ticket::lost) tell.
#[must_use = "dropping a Ticket releases it at once"]
pub struct Ticket {
    handle: NonZeroU64,
}

/// A snapshot of a semaphore's shared state, from [`Semaphore::info`].
///
/// The counters (`acquisitions` ... `created`) count since the name was
/// created, over every process that uses it with libwhsem 1.1 or later. A
/// backend that keeps no counters leaves them zero, and `created` at
/// [`UNIX_EPOCH`]; its [`Semaphore::wait_histogram`] and
/// [`Semaphore::waiters_history`] fail with
/// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported). On
/// PostgreSQL another process's counts arrive within a second or two, and
/// for a role that may not create the counters' table they are zero too,
/// the other two failing with
/// [`ErrorKind::AccessDenied`](crate::ErrorKind::AccessDenied) (saying what
/// an administrator should run).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Info {
    /// The max count.
    pub max_count: u32,
    /// Tickets nobody holds right now.
    pub free_count: u32,
    /// Acquisitions waiting, over all processes.
    pub waiters: u32,
    /// Processes that have the name open.
    pub processes: u32,
    /// Crash recoveries so far: dead processes whose tickets were reclaimed,
    /// and internal locks taken over from a process that died holding them.
    pub recoveries: u64,
    /// The processes holding tickets.
    pub holders: Vec<Holder>,
    /// Tickets handed out.
    pub acquisitions: u64,
    /// Acquisitions with a timeout that ended without a ticket when it was
    /// up; a [`try_acquire`](Semaphore::try_acquire) that finds none free
    /// is not one.
    pub timeouts: u64,
    /// Acquisitions ended by a [`CancelToken`], a dropped
    /// [`acquire_async`](Semaphore::acquire_async) future or a closed
    /// handle.
    pub cancellations: u64,
    /// Acquisitions that found no ticket free and waited, however they
    /// ended: what [`Semaphore::wait_histogram`] counts.
    pub waits: u64,
    /// The time those waited, summed.
    pub wait_time: Duration,
    /// Tickets given back: released, or reclaimed from a process that
    /// ended holding them.
    pub releases: u64,
    /// The time released tickets were held, summed, measured with a coarse
    /// clock: exact over many holds, not for one.
    pub hold_time: Duration,
    /// When the name was created.
    pub created: SystemTime,
}

/// A process holding tickets of a semaphore.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// Its process id: in the pid namespace of the semaphore's creator on
    /// this machine; on PostgreSQL, on its [`host`](Holder::host).
    pub pid: u32,
    /// Tickets it holds.
    pub tickets: u32,
    /// Its acquisitions still waiting.
    pub waiting: u32,
    /// Since when it has been holding tickets. Exact for a ticket handed to
    /// a waiter; a ticket taken from the free pool is stamped by the next
    /// scan (every abandonment-check period while anyone waits, and every
    /// [`Semaphore::info`]), which keeps the uncontended path free of clock
    /// reads.
    pub since: SystemTime,
    /// The host it runs on, as it reported it (PostgreSQL); empty on this
    /// machine's backend.
    pub host: String,
}

/// A period for libwhsem's options: `None` is [`sys::WHSEM_INFINITE`], a
/// duration is at least 1 ms (0 would mean the default).
fn period_ms(period: Option<Duration>) -> i32 {
    match period {
        None => sys::WHSEM_INFINITE as i32,
        Some(d) => timeout_ms(Some(d)).max(1) as i32,
    }
}

/// Milliseconds for libwhsem: `None` waits forever; a duration is rounded up
/// (a 1 µs timeout still waits, `Duration::ZERO` tries once) and clamped to
/// the largest timeout the library accepts (about 24.8 days).
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> i64 {
    match timeout {
        None => sys::WHSEM_INFINITE,
        Some(d) => {
            let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
            ms.min(i32::MAX as u128) as i64
        }
    }
}

pub(crate) fn c_name(name: &str) -> Result<CString, Error> {
    CString::new(name)
        .map_err(|_| Error::invalid_name(format!("the name {name:?} contains a NUL character")))
}

/// Runs an "ask, then fill" call until the buffer is large enough.
pub(crate) fn fill_bytes(
    mut call: impl FnMut(*mut c_char, usize, &mut usize) -> i32,
) -> Result<Vec<u8>, Error> {
    let mut buf: Vec<u8> = vec![0; 256];
    loop {
        let mut needed = 0usize;
        let status = call(buf.as_mut_ptr().cast(), buf.len(), &mut needed);
        if status == sys::WHSEM_OK {
            buf.truncate(needed);
            return Ok(buf);
        }
        // Too small: the size was reported; it may grow again before the
        // next call (a list), hence the loop.
        if status == sys::WHSEM_E_INVALID_ARGUMENT && needed > buf.len() {
            buf.resize(needed, 0);
            continue;
        }
        return Err(Error::last(status));
    }
}

/// The text of a filled buffer: up to the first NUL.
pub(crate) fn c_text(mut bytes: Vec<u8>) -> String {
    if let Some(end) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(end);
    }
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl OpenOptions {
    /// Default options: the semaphore lives on this machine, the name is
    /// finalized, dead holders are looked for every 100 ms while someone
    /// waits, a new semaphore gets mode `0o600`.
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }

    /// Use the name exactly as given instead of finalizing it (see
    /// [`safe_name`](crate::safe_name)); it must then already be a valid
    /// finalized name, such as one from [`list`](crate::list), or opening
    /// fails with [`ErrorKind::InvalidName`](crate::ErrorKind::InvalidName).
    pub fn exact_name(&mut self, exact: bool) -> &mut OpenOptions {
        self.exact_name = exact;
        self
    }

    /// How often waiters of this handle look for tickets held by dead
    /// processes: `Some(period)` (rounded up to whole milliseconds; default
    /// 100 ms), or `None` to look only when an internal lock's owner is
    /// found dead.
    pub fn abandonment_check(&mut self, period: Option<Duration>) -> &mut OpenOptions {
        self.abandonment_check_ms = period_ms(period);
        self
    }

    /// Where the semaphore lives: `conninfo` is a libpq connection string
    /// (`"host=db dbname=jobs user=app"`) or a `postgresql://` URI naming a
    /// PostgreSQL database, whose semaphore is shared by every process on
    /// every machine that opens the same name there. `""` (the default)
    /// means this machine.
    ///
    /// Passwords come through libpq's own means (`~/.pgpass`, `PGPASSFILE`,
    /// `PGPASSWORD`, the string itself) and never appear in an [`Error`] or
    /// in this type's `Debug` output. libpq is loaded at the first open on
    /// a server: without it, opening fails with
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable), as it does
    /// when the server cannot be reached; a refused login is
    /// [`ErrorKind::AccessDenied`](crate::ErrorKind::AccessDenied). A
    /// string containing a NUL character makes opening fail with
    /// [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument).
    ///
    /// Tickets of a server's semaphore live in database sessions and can be
    /// lost while this process lives: see [`Ticket::lost`].
    pub fn backend(&mut self, conninfo: &str) -> &mut OpenOptions {
        self.backend = Backend::new(conninfo);
        self
    }

    /// PostgreSQL: how often a connection carrying tickets is checked, so
    /// that a holder learns of a lost ticket within about three periods even
    /// when the network fails silently (a server restart or a closed
    /// connection is seen at once). `Some(period)` is rounded up to whole
    /// milliseconds (default 1 s); `None` sends no checks. Ignored on this
    /// machine, where tickets cannot be lost.
    pub fn connection_check(&mut self, period: Option<Duration>) -> &mut OpenOptions {
        self.connection_check_ms = period_ms(period);
        self
    }

    /// Permission bits of a semaphore this call creates, e.g. `0o660` to let
    /// the owner's group in. Applied exactly, not masked by the umask.
    /// Default `0o600`.
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.mode = mode;
        self
    }

    /// The C options; they point into `self`, so they live no longer.
    fn raw(&self) -> Result<sys::whsem_open_options, Error> {
        let backend = self.backend.as_ptr()?;
        Ok(sys::whsem_open_options {
            struct_size: std::mem::size_of::<sys::whsem_open_options>() as u32,
            flags: if self.exact_name {
                sys::WHSEM_OPEN_EXACT_NAME
            } else {
                0
            },
            abandonment_check_ms: self.abandonment_check_ms,
            mode: self.mode,
            backend,
            connection_check_ms: self.connection_check_ms,
        })
    }

    /// Opens the semaphore `name`, creating it with `max_count` tickets
    /// (1 ... 2³¹ − 1) if it does not exist.
    ///
    /// Fails with [`ErrorKind::MaxCountMismatch`](crate::ErrorKind::MaxCountMismatch)
    /// if a live process has it open with another max count.
    pub fn open(&self, name: &str, max_count: u32) -> Result<Semaphore, Error> {
        abi_check::ensure()?;
        let max = i32::try_from(max_count).map_err(|_| {
            Error::invalid_argument(format!("max_count is {max_count}; use 1 ... {}", i32::MAX))
        })?;
        let name = c_name(name)?;
        let opts = self.raw()?;
        let mut handle = 0;
        // SAFETY: valid string, options struct (and the string it points to)
        // and out-pointer for the call.
        let status = unsafe { sys::whsem_open(name.as_ptr(), max, &opts, &mut handle) };
        Semaphore::opened(status, handle)
    }

    /// Opens an existing semaphore, adopting its max count;
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) if nothing has
    /// that name.
    pub fn open_existing(&self, name: &str) -> Result<Semaphore, Error> {
        abi_check::ensure()?;
        let name = c_name(name)?;
        let opts = self.raw()?;
        let mut handle = 0;
        // SAFETY: as in open.
        let status = unsafe { sys::whsem_open_existing(name.as_ptr(), &opts, &mut handle) };
        Semaphore::opened(status, handle)
    }
}

impl Semaphore {
    /// Opens the semaphore `name`, creating it with `max_count` tickets if it
    /// does not exist; see [`OpenOptions::open`].
    pub fn open(name: &str, max_count: u32) -> Result<Semaphore, Error> {
        OpenOptions::new().open(name, max_count)
    }

    /// Opens an existing semaphore, adopting its max count; see
    /// [`OpenOptions::open_existing`].
    pub fn open_existing(name: &str) -> Result<Semaphore, Error> {
        OpenOptions::new().open_existing(name)
    }

    /// Options for opening a semaphore: `Semaphore::options().mode(0o660).open(name, 2)`.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    fn opened(status: i32, handle: u64) -> Result<Semaphore, Error> {
        if status != sys::WHSEM_OK {
            return Err(Error::last(status));
        }
        NonZeroU64::new(handle)
            .map(|handle| Semaphore { handle })
            .ok_or_else(|| Error::invalid_handle("the library returned a null semaphore handle"))
    }

    /// Takes a ticket if one is free, without waiting: `Ok(None)` if none is.
    ///
    /// Makes no system call when the semaphore is not contended.
    #[inline]
    pub fn try_acquire(&self) -> Result<Option<Ticket>, Error> {
        self.acquire_raw(0, 0)
    }

    /// Waits up to `timeout` for a ticket (`None`: as long as it takes).
    /// A timeout is `Ok(None)`, not an error. `Some(Duration::ZERO)` is
    /// [`try_acquire`](Semaphore::try_acquire).
    ///
    /// Blocks the calling thread; in async code use
    /// [`acquire_async`](Semaphore::acquire_async).
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<Option<Ticket>, Error> {
        self.acquire_raw(timeout_ms(timeout), 0)
    }

    /// Like [`acquire`](Semaphore::acquire), and [`CancelToken::cancel`] ends
    /// the wait early with [`ErrorKind::Canceled`](crate::ErrorKind::Canceled).
    /// A token that is already canceled fails the call even when a ticket is
    /// free.
    ///
    /// ```
    /// use std::time::Duration;
    /// use whsem::{CancelToken, ErrorKind, Semaphore};
    ///
    /// # fn main() -> Result<(), whsem::Error> {
    /// # let name = format!("doc-cancel-{}", std::process::id());
    /// let sem = Semaphore::open(&name, 1)?;
    /// let _held = sem.try_acquire()?;
    /// let token = CancelToken::new()?;
    /// let canceler = token.clone();
    /// std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_millis(50));
    ///     canceler.cancel();
    /// });
    /// let err = sem.acquire_cancelable(None, &token).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Canceled);
    /// # drop(sem);
    /// # whsem::remove(&name)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire_cancelable(
        &self,
        timeout: Option<Duration>,
        cancel: &CancelToken,
    ) -> Result<Option<Ticket>, Error> {
        self.acquire_raw(timeout_ms(timeout), cancel.raw())
    }

    #[inline]
    fn acquire_raw(&self, timeout_ms: i64, cancel: u64) -> Result<Option<Ticket>, Error> {
        let mut ticket = 0;
        // SAFETY: a valid out-pointer; every handle value is checked by the library.
        let status =
            unsafe { sys::whsem_acquire(self.handle.get(), timeout_ms, cancel, &mut ticket) };
        if status == sys::WHSEM_OK {
            if let Some(handle) = NonZeroU64::new(ticket) {
                return Ok(Some(Ticket { handle }));
            }
        } else if status == sys::WHSEM_TIMEOUT {
            return Ok(None);
        }
        Err(acquire_error(status))
    }

    /// A future that acquires a ticket without blocking a thread; it
    /// resolves like [`acquire`](Semaphore::acquire). Works with any
    /// executor: libwhsem wakes it from a thread of its own.
    ///
    /// Like every Rust future it does nothing until polled. Dropping it before
    /// it completes cancels the acquisition; a ticket that was granted in the
    /// meantime goes back to the pool, never lost.
    ///
    /// ```
    /// use std::time::Duration;
    /// use whsem::Semaphore;
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::sync::Arc;
    /// #     use std::task::{Context, Poll, Wake};
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl Wake for Unpark { fn wake(self: Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Arc::new(Unpark(std::thread::current())).into();
    /// #     let mut cx = Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    ///
    /// # fn main() -> Result<(), whsem::Error> {
    /// # let name = format!("doc-async-{}", std::process::id());
    /// let sem = Semaphore::open(&name, 1)?;
    /// // `block_on` is any executor's: tokio, async-std, smol, futures...
    /// let ticket = block_on(async {
    ///     sem.acquire_async(Some(Duration::from_secs(5))).await
    /// })?;
    /// assert!(ticket.is_some());
    /// # drop(ticket);
    /// # drop(sem);
    /// # whsem::remove(&name)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire_async(&self, timeout: Option<Duration>) -> Acquire<'_> {
        Acquire::new(self, timeout_ms(timeout), None)
    }

    /// [`acquire_async`](Semaphore::acquire_async) that `cancel` can end
    /// with [`ErrorKind::Canceled`](crate::ErrorKind::Canceled).
    pub fn acquire_async_cancelable(
        &self,
        timeout: Option<Duration>,
        cancel: &CancelToken,
    ) -> Acquire<'_> {
        Acquire::new(self, timeout_ms(timeout), Some(cancel.clone()))
    }

    /// The finalized name (see [`safe_name`](crate::safe_name)).
    pub fn name(&self) -> Result<String, Error> {
        let handle = self.handle.get();
        // SAFETY: buffer pointer and size describe a live allocation.
        fill_bytes(|buf, size, needed| unsafe { sys::whsem_name(handle, buf, size, needed) })
            .map(c_text)
    }

    /// The max count.
    pub fn max_count(&self) -> Result<u32, Error> {
        let mut max = 0;
        // SAFETY: a valid out-pointer.
        let status = unsafe { sys::whsem_max_count(self.handle.get(), &mut max) };
        if status != sys::WHSEM_OK {
            return Err(Error::last(status));
        }
        Ok(max as u32)
    }

    /// A snapshot of the shared state and of the processes holding tickets.
    /// Also reclaims the tickets of dead processes.
    pub fn info(&self) -> Result<Info, Error> {
        // whsem_query_processes rather than whsem_query: its rows carry the
        // host. It also lists processes holding nothing, left out below.
        let mut rows: Vec<sys::whsem_process> = Vec::new();
        loop {
            let mut info = sys::whsem_info {
                struct_size: std::mem::size_of::<sys::whsem_info>() as u32,
                ..Default::default()
            };
            let mut count = 0usize;
            let ptr = match rows.first_mut() {
                None => ptr::null_mut(),
                Some(first) => {
                    // The first element's size is the stride of all.
                    first.struct_size = std::mem::size_of::<sys::whsem_process>() as u32;
                    rows.as_mut_ptr()
                }
            };
            // SAFETY: `ptr` and `rows.len()` describe a live allocation (or
            // NULL and 0) whose first element gives its element size;
            // `info` and `count` are valid out-pointers.
            let status = unsafe {
                sys::whsem_query_processes(
                    self.handle.get(),
                    &mut info,
                    ptr,
                    rows.len(),
                    &mut count,
                )
            };
            if status != sys::WHSEM_OK {
                return Err(Error::last(status));
            }
            if count > rows.len() {
                // More processes than room: ask again with some slack, since
                // more may arrive meanwhile.
                rows.resize(count + 4, sys::whsem_process::default());
                continue;
            }
            rows.truncate(count);
            return Ok(Info {
                max_count: info.max_count.max(0) as u32,
                free_count: info.free_count.max(0) as u32,
                waiters: info.waiters,
                processes: info.processes,
                recoveries: info.recoveries,
                holders: rows
                    .iter()
                    .filter(|p| p.tickets > 0)
                    .map(Holder::from_row)
                    .collect(),
                acquisitions: info.acquisitions,
                timeouts: info.timeouts,
                cancellations: info.cancellations,
                waits: info.waits,
                wait_time: Duration::from_nanos(info.wait_ns),
                releases: info.releases,
                hold_time: Duration::from_nanos(info.hold_ns),
                created: unix_ms(info.created_unix_ms),
            });
        }
    }

    /// Closes the handle now, reporting errors (dropping closes too).
    /// Pending [`acquire_async`](Semaphore::acquire_async) futures cannot
    /// exist at this point: they borrow the semaphore.
    pub fn close(self) -> Result<(), Error> {
        let this = ManuallyDrop::new(self);
        // SAFETY: plain handle argument.
        let status = unsafe { sys::whsem_close(this.handle.get()) };
        if status != sys::WHSEM_OK {
            return Err(Error::last(status));
        }
        Ok(())
    }

    /// The raw `whsem_sem` handle, for use with [`sys`](crate::sys); still
    /// owned by this `Semaphore`.
    pub fn as_raw(&self) -> sys::whsem_sem {
        self.handle.get()
    }

    /// Gives up ownership of the raw handle: it is no longer closed on drop.
    pub fn into_raw(self) -> sys::whsem_sem {
        ManuallyDrop::new(self).handle.get()
    }

    /// Takes ownership of a raw `whsem_sem` handle (closed on drop).
    /// `None` for 0.
    ///
    /// # Safety
    ///
    /// The handle must be owned by the caller and not be closed elsewhere:
    /// libwhsem validates every handle, so misuse cannot corrupt memory, but
    /// another owner's later use of it would fail.
    pub unsafe fn from_raw(raw: sys::whsem_sem) -> Option<Semaphore> {
        NonZeroU64::new(raw).map(|handle| Semaphore { handle })
    }
}

impl Holder {
    fn from_row(row: &sys::whsem_process) -> Holder {
        let host = if row.host.is_null() {
            String::new()
        } else {
            // SAFETY: the library's static storage, NUL-terminated.
            unsafe { CStr::from_ptr(row.host) }
                .to_string_lossy()
                .into_owned()
        };
        Holder {
            pid: u32::try_from(row.pid).unwrap_or(0),
            tickets: row.tickets.max(0) as u32,
            waiting: row.waiting,
            since: unix_ms(row.holding_since_unix_ms),
            host,
        }
    }
}

/// A time of libwhsem's, in milliseconds since the epoch (0: none).
fn unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

#[cold]
#[inline(never)]
fn acquire_error(status: i32) -> Error {
    if status == sys::WHSEM_OK {
        return Error::invalid_handle("the library returned a null ticket handle");
    }
    if status == sys::WHSEM_CANCELED {
        return Error::without_message(status);
    }
    Error::last(status)
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        // SAFETY: plain handle argument. Nothing to report from a drop; use
        // close() to see errors.
        unsafe { sys::whsem_close(self.handle.get()) };
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("handle", &self.handle)
            .finish()
    }
}

impl Ticket {
    pub(crate) fn from_handle(handle: NonZeroU64) -> Ticket {
        Ticket { handle }
    }

    /// Releases the ticket, reporting errors (dropping releases too, but
    /// silently). [`ErrorKind::WrongProcess`](crate::ErrorKind::WrongProcess)
    /// in a `fork()` child that inherited the ticket; the parent's ticket then
    /// stays held. [`ErrorKind::TicketLost`](crate::ErrorKind::TicketLost) if
    /// the ticket was lost (see [`lost`](Ticket::lost)): it is released all
    /// the same.
    ///
    /// On PostgreSQL the release is sent and not waited for: this process
    /// never sees the ticket still taken, another process may for a round
    /// trip.
    pub fn release(self) -> Result<(), Error> {
        let this = ManuallyDrop::new(self);
        // SAFETY: plain handle argument.
        let status = unsafe { sys::whsem_release(this.handle.get()) };
        if status != sys::WHSEM_OK {
            return Err(Error::last(status));
        }
        Ok(())
    }

    /// `Ok(())` while the ticket is held; an error of kind
    /// [`ErrorKind::TicketLost`](crate::ErrorKind::TicketLost), saying why,
    /// once it is known to be lost (see [`lost`](Ticket::lost)). Asks the
    /// library only, never the server: cheap enough to call before each
    /// step of a long job. Always `Ok(())` on this machine's backend.
    pub fn check(&self) -> Result<(), Error> {
        // SAFETY: plain handle argument.
        let status = unsafe { sys::whsem_ticket_check(self.handle.get()) };
        if status != sys::WHSEM_OK {
            return Err(Error::last(status));
        }
        Ok(())
    }

    /// A future that resolves when this ticket's life ends:
    ///
    /// * `Err(error)`, of kind [`ErrorKind::TicketLost`](crate::ErrorKind::TicketLost),
    ///   when the ticket is lost while this process lives: the PostgreSQL
    ///   session that carried it ended (`pg_terminate_backend`, a server
    ///   restart, a network failure noticed through
    ///   [`OpenOptions::connection_check`]). The server has given the ticket
    ///   back, so someone else may hold it already: stop the work it
    ///   guards. Releasing the ticket then returns that error too.
    /// * `Ok(())` once the ticket was released (dropped or
    ///   [`release`](Ticket::release)d) without having been lost, so that
    ///   a task awaiting only this future ends with the ticket.
    /// * `Err(error)` of another kind in the rare case that the library
    ///   could not watch the ticket (out of memory, or a watch set through
    ///   [`sys::whsem_ticket_watch`](crate::sys::whsem_ticket_watch) on the
    ///   raw handle: the library takes one watch per ticket).
    ///
    /// A ticket of this machine's backend cannot be lost (it lives exactly
    /// as long as its process): its future **never resolves**, not even
    /// after the release. Await it beside the work it guards (a `select`),
    /// not alone in a task of its own.
    ///
    /// The future is `Send`, `Sync`, `Unpin` and `'static`: it does not
    /// borrow the ticket. Any number may exist for one ticket (each call
    /// returns one, clones are more); they share one watch in the library,
    /// which wakes them from its own thread, with no thread of this crate
    /// and no statement on the server. Polled again after it resolved, it
    /// gives the same answer. For threads without an executor,
    /// [`Lost::wait_timeout`] blocks instead.
    ///
    /// ```no_run
    /// use std::process::Command;
    /// use std::time::Duration;
    /// use whsem::Semaphore;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sem = Semaphore::options()
    ///     .backend("postgresql://app@db.example/jobs")
    ///     .open("nightly-import", 2)?;
    /// let Some(ticket) = sem.acquire(Some(Duration::from_secs(30)))? else {
    ///     return Ok(()); // busy
    /// };
    /// let lost = ticket.lost();
    /// let mut job = Command::new("./import").spawn()?;
    /// // Wait for the job, and stop it at once if the ticket is lost.
    /// while job.try_wait()?.is_none() {
    ///     if let Some(Err(loss)) = lost.wait_timeout(Duration::from_millis(100)) {
    ///         job.kill()?;
    ///         return Err(loss.into());
    ///     }
    /// }
    /// ticket.release()?; // TicketLost too if it was lost just now
    /// # Ok(())
    /// # }
    /// ```
    pub fn lost(&self) -> Lost {
        Lost::watch(self.handle.get())
    }

    /// The raw `whsem_ticket` handle; still owned by this `Ticket`.
    pub fn as_raw(&self) -> sys::whsem_ticket {
        self.handle.get()
    }

    /// Gives up ownership: the ticket is no longer released on drop.
    pub fn into_raw(self) -> sys::whsem_ticket {
        ManuallyDrop::new(self).handle.get()
    }

    /// Takes ownership of a raw `whsem_ticket` handle (released on drop).
    /// `None` for 0.
    ///
    /// # Safety
    ///
    /// The ticket must be owned by the caller and not be released elsewhere:
    /// libwhsem validates every handle, so misuse cannot corrupt memory, but
    /// the other owner's release would fail.
    pub unsafe fn from_raw(raw: sys::whsem_ticket) -> Option<Ticket> {
        NonZeroU64::new(raw).map(|handle| Ticket { handle })
    }
}

impl Drop for Ticket {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: plain handle argument. Nothing to report from a drop; use
        // release() to see errors.
        unsafe { sys::whsem_release(self.handle.get()) };
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("handle", &self.handle)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_and_clamp() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_nanos(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(5))), 5);
        assert_eq!(timeout_ms(Some(Duration::from_micros(5001))), 6);
        assert_eq!(timeout_ms(Some(Duration::MAX)), i32::MAX as i64);
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Semaphore>();
        send_sync::<Ticket>();
        assert_eq!(std::mem::size_of::<Option<Ticket>>(), 8);
    }
}
