// SPDX-License-Identifier: MIT
use std::ffi::CStr;
use std::fmt;
use std::io;

use crate::sys;

/// What went wrong, as a closed set of categories to `match` on.
///
/// Mirrors the statuses of libwhsem; new kinds may be added in minor
/// versions, hence `#[non_exhaustive]` (1.1 added [`Unsupported`](ErrorKind::Unsupported),
/// [`TicketLost`](ErrorKind::TicketLost) and [`Unavailable`](ErrorKind::Unavailable)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument is out of range (a max count of 0, for instance).
    InvalidArgument,
    /// A handle is stale, already released or of the wrong kind. Only
    /// reachable through the raw-handle escape hatches (`from_raw`).
    InvalidHandle,
    /// The name is not valid UTF-8 or contains a NUL byte, or is not a valid
    /// exact name (see [`OpenOptions::exact_name`](crate::OpenOptions::exact_name)).
    InvalidName,
    /// A live process has the name open with another max count.
    MaxCountMismatch,
    /// The operating system refused access to the shared state (another
    /// user's semaphore, for instance), or the PostgreSQL server refused the
    /// login or the objects libwhsem needs (a wrong password, a role that
    /// may not create the `whsem` schema).
    AccessDenied,
    /// The shared state is not a valid semaphore.
    Corrupt,
    /// The shared state was created by an incompatible version of libwhsem.
    Incompatible,
    /// A fixed capacity is exhausted (1024 processes per name; on
    /// PostgreSQL, the server's `max_connections`).
    Limit,
    /// Memory allocation failed.
    OutOfMemory,
    /// The ticket belongs to another process: it was inherited through
    /// `fork()`, and only the process that acquired it can release it. On
    /// PostgreSQL, semaphore handles inherited through `fork()` answer this
    /// too: the child opens the name again.
    WrongProcess,
    /// An unexpected operating system error.
    Os,
    /// The name is in use by another process (see [`remove`](crate::remove)).
    Busy,
    /// No semaphore has that name.
    NotFound,
    /// A [`CancelToken`](crate::CancelToken) ended the acquisition.
    Canceled,
    /// The installed libwhsem does not implement the functions this crate
    /// was built for: too old, or with different signatures.
    LibraryMismatch,
    /// A status this version of the crate does not know.
    Other,
    // Added with libwhsem 1.1, after the others so that no kind's value
    // (`as` casts) changes.
    /// The operation does not exist for this platform or backend.
    Unsupported,
    /// The ticket was lost while this process lived: the connection or
    /// server that carried it went away (PostgreSQL backend), and the server
    /// may have given it to someone else already. See
    /// [`Ticket::lost`](crate::Ticket::lost).
    TicketLost,
    /// The backend cannot be reached or loaded: the server is down or
    /// refuses connections, or its client library (libpq) is not installed.
    /// Worth retrying later.
    Unavailable,
}

impl ErrorKind {
    fn from_status(status: i32) -> ErrorKind {
        match status {
            sys::WHSEM_E_INVALID_ARGUMENT => ErrorKind::InvalidArgument,
            sys::WHSEM_E_INVALID_HANDLE => ErrorKind::InvalidHandle,
            sys::WHSEM_E_INVALID_NAME => ErrorKind::InvalidName,
            sys::WHSEM_E_MAX_COUNT_MISMATCH => ErrorKind::MaxCountMismatch,
            sys::WHSEM_E_ACCESS_DENIED => ErrorKind::AccessDenied,
            sys::WHSEM_E_CORRUPT => ErrorKind::Corrupt,
            sys::WHSEM_E_INCOMPATIBLE => ErrorKind::Incompatible,
            sys::WHSEM_E_LIMIT => ErrorKind::Limit,
            sys::WHSEM_E_NO_MEMORY => ErrorKind::OutOfMemory,
            sys::WHSEM_E_WRONG_PROCESS => ErrorKind::WrongProcess,
            sys::WHSEM_E_OS => ErrorKind::Os,
            sys::WHSEM_E_BUSY => ErrorKind::Busy,
            sys::WHSEM_E_NOT_FOUND => ErrorKind::NotFound,
            sys::WHSEM_CANCELED => ErrorKind::Canceled,
            sys::WHSEM_E_UNSUPPORTED => ErrorKind::Unsupported,
            sys::WHSEM_E_TICKET_LOST => ErrorKind::TicketLost,
            sys::WHSEM_E_UNAVAILABLE => ErrorKind::Unavailable,
            _ => ErrorKind::Other,
        }
    }

    fn description(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::InvalidHandle => "invalid handle",
            ErrorKind::InvalidName => "invalid name",
            ErrorKind::MaxCountMismatch => "the semaphore is open with another max count",
            ErrorKind::AccessDenied => "access denied",
            ErrorKind::Corrupt => "the semaphore's shared state is corrupt",
            ErrorKind::Incompatible => "the semaphore was created by an incompatible libwhsem",
            ErrorKind::Limit => "a capacity limit is exhausted",
            ErrorKind::OutOfMemory => "out of memory",
            ErrorKind::WrongProcess => "the ticket belongs to another process",
            ErrorKind::Os => "operating system error",
            ErrorKind::Busy => "the semaphore is in use",
            ErrorKind::NotFound => "no semaphore has that name",
            ErrorKind::Canceled => "the acquisition was canceled",
            ErrorKind::Unsupported => "not supported here",
            ErrorKind::TicketLost => "the ticket was lost",
            ErrorKind::Unavailable => "the backend is unavailable",
            ErrorKind::LibraryMismatch => "the installed libwhsem does not match this binding",
            ErrorKind::Other => "unknown libwhsem error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// An error from libwhsem: its [kind](Error::kind), the library's status
/// code and the detail message the library gave for the failing call.
///
/// Small (one pointer), so `Result<Option<Ticket>, Error>` stays cheap on
/// the fast path.
#[derive(Clone)]
pub struct Error(Box<Repr>);

#[derive(Clone)]
struct Repr {
    kind: ErrorKind,
    status: i32,
    message: String,
}

impl Error {
    /// The error of a call that just returned `status` on this thread, with
    /// the library's message. Must run before this thread makes another
    /// libwhsem call: the message is per thread and per call.
    #[cold]
    #[inline(never)]
    pub(crate) fn last(status: i32) -> Error {
        // SAFETY: whsem_last_error never returns NULL and the text stays
        // valid until this thread's next libwhsem call; it is copied first.
        let message = unsafe { CStr::from_ptr(sys::whsem_last_error()) }
            .to_string_lossy()
            .into_owned();
        Error::new(ErrorKind::from_status(status), status, message)
    }

    /// The error of a status that comes without a message of its own: a
    /// blocking acquisition canceled through its token leaves the thread's
    /// message as it was, which then belongs to some earlier call.
    #[cold]
    pub(crate) fn without_message(status: i32) -> Error {
        Error::new(ErrorKind::from_status(status), status, String::new())
    }

    pub(crate) fn new(kind: ErrorKind, status: i32, message: impl Into<String>) -> Error {
        Error(Box::new(Repr {
            kind,
            status,
            message: message.into(),
        }))
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Error {
        Error::new(
            ErrorKind::InvalidArgument,
            sys::WHSEM_E_INVALID_ARGUMENT,
            message,
        )
    }

    pub(crate) fn invalid_handle(message: impl Into<String>) -> Error {
        Error::new(
            ErrorKind::InvalidHandle,
            sys::WHSEM_E_INVALID_HANDLE,
            message,
        )
    }

    pub(crate) fn invalid_name(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidName, sys::WHSEM_E_INVALID_NAME, message)
    }

    /// The category of the error.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// libwhsem's status code (the `WHSEM_E_*` values of [`sys`](crate::sys);
    /// [`sys::WHSEM_CANCELED`](crate::sys::WHSEM_CANCELED) for
    /// [`ErrorKind::Canceled`]). Errors detected by this crate before calling
    /// the library carry the status the library would have returned.
    pub fn status(&self) -> i32 {
        self.0.status
    }

    /// The library's detail message, e.g. which name and which max counts
    /// disagreed. May be empty.
    pub fn message(&self) -> &str {
        &self.0.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.message.is_empty() {
            f.write_str(self.0.kind.description())
        } else {
            f.write_str(&self.0.message)
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("status", &self.0.status)
            .field("message", &self.0.message)
            .finish()
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match err.kind() {
            ErrorKind::InvalidArgument | ErrorKind::InvalidHandle => io::ErrorKind::InvalidInput,
            ErrorKind::InvalidName => io::ErrorKind::InvalidInput,
            ErrorKind::AccessDenied => io::ErrorKind::PermissionDenied,
            ErrorKind::Corrupt | ErrorKind::Incompatible => io::ErrorKind::InvalidData,
            ErrorKind::OutOfMemory => io::ErrorKind::OutOfMemory,
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::Canceled => io::ErrorKind::Interrupted,
            ErrorKind::Busy => io::ErrorKind::AddrInUse,
            ErrorKind::Unsupported => io::ErrorKind::Unsupported,
            // The session that carried the ticket was ended under it.
            ErrorKind::TicketLost => io::ErrorKind::ConnectionAborted,
            ErrorKind::Unavailable => io::ErrorKind::ConnectionRefused,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_maps_to_its_kind() {
        let cases = [
            (sys::WHSEM_E_INVALID_ARGUMENT, ErrorKind::InvalidArgument),
            (sys::WHSEM_E_INVALID_HANDLE, ErrorKind::InvalidHandle),
            (sys::WHSEM_E_INVALID_NAME, ErrorKind::InvalidName),
            (sys::WHSEM_E_MAX_COUNT_MISMATCH, ErrorKind::MaxCountMismatch),
            (sys::WHSEM_E_ACCESS_DENIED, ErrorKind::AccessDenied),
            (sys::WHSEM_E_CORRUPT, ErrorKind::Corrupt),
            (sys::WHSEM_E_INCOMPATIBLE, ErrorKind::Incompatible),
            (sys::WHSEM_E_LIMIT, ErrorKind::Limit),
            (sys::WHSEM_E_NO_MEMORY, ErrorKind::OutOfMemory),
            (sys::WHSEM_E_WRONG_PROCESS, ErrorKind::WrongProcess),
            (sys::WHSEM_E_OS, ErrorKind::Os),
            (sys::WHSEM_E_BUSY, ErrorKind::Busy),
            (sys::WHSEM_E_NOT_FOUND, ErrorKind::NotFound),
            (sys::WHSEM_CANCELED, ErrorKind::Canceled),
            (sys::WHSEM_E_UNSUPPORTED, ErrorKind::Unsupported),
            (sys::WHSEM_E_TICKET_LOST, ErrorKind::TicketLost),
            (sys::WHSEM_E_UNAVAILABLE, ErrorKind::Unavailable),
            (-1000, ErrorKind::Other),
        ];
        for (status, kind) in cases {
            let err = Error::without_message(status);
            assert_eq!(err.kind(), kind, "status {status}");
            assert_eq!(err.status(), status);
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn display_prefers_the_library_message() {
        let err = Error::new(
            ErrorKind::Busy,
            sys::WHSEM_E_BUSY,
            "name 'x' is open in pid 7",
        );
        assert_eq!(err.to_string(), "name 'x' is open in pid 7");
        let err = Error::new(ErrorKind::Busy, sys::WHSEM_E_BUSY, "");
        assert_eq!(err.to_string(), "the semaphore is in use");
        let io: io::Error = Error::new(ErrorKind::NotFound, sys::WHSEM_E_NOT_FOUND, "gone").into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert_eq!(io.to_string(), "gone");
    }

    #[test]
    fn errors_are_small_and_thread_safe() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }
}
