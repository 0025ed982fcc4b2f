// SPDX-License-Identifier: MIT
//! The counters of this machine's backend: `Info`'s, the wait histogram
//! and the waiters' history (the PostgreSQL suite, tests/pg.rs, runs the
//! same check there).

mod support;

use support::TestName;
use whsem::{ErrorKind, Semaphore};

#[test]
fn counters_count_every_ending() {
    let name = TestName::new("counters");
    support::counters_count_every_ending(&Semaphore::open(&name, 1).unwrap());
}

#[test]
fn counters_of_a_closed_handle_are_an_error() {
    let name = TestName::new("counters-closed");
    let sem = Semaphore::open(&name, 1).unwrap();
    // SAFETY: the handle is closed here and then only asked about.
    let stale = unsafe { Semaphore::from_raw(sem.as_raw()) }.unwrap();
    sem.close().unwrap();
    assert_eq!(
        stale.wait_histogram().unwrap_err().kind(),
        ErrorKind::InvalidHandle
    );
    assert_eq!(
        stale.waiters_history().unwrap_err().kind(),
        ErrorKind::InvalidHandle
    );
    // Its drop closes the closed handle again: InvalidHandle, unreported.
}
