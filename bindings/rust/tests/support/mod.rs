// SPDX-License-Identifier: MIT
//! Helpers shared by the integration tests: unique names that clean up
//! after themselves, and a small std-only executor.
#![allow(dead_code)]

pub mod executor;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A semaphore name no other test (or earlier run, or other suite) uses;
/// removes the name, forcibly, when dropped, even when the test panics.
pub struct TestName(pub String);

/// A semaphore name no other test (or earlier run, or other suite) uses.
pub fn unique_name(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "whsem-rs-{what}-{}-{n}-{}",
        std::process::id(),
        nanos % 1_000_000
    )
}

impl TestName {
    pub fn new(what: &str) -> TestName {
        TestName(unique_name(what))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file that holds the semaphore's shared state (plain ASCII names
    /// map to `whsem.<name>`).
    pub fn segment_path(&self) -> String {
        format!("/dev/shm/whsem.{}", self.0)
    }
}

impl std::ops::Deref for TestName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for TestName {
    fn drop(&mut self) {
        let _ = whsem::RemoveOptions::new().force(true).remove(&self.0);
    }
}

/// Polls `cond` until it holds or `limit` passes; generous limits keep the
/// tests independent of the machine's load.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub const PATIENCE: Duration = Duration::from_secs(20);

/// Every way an acquisition can end is counted once, in `Info`, in the
/// histogram and in the history: on `sem`, a name of its own with one
/// ticket that this test alone uses, on any backend that keeps counters.
pub fn counters_count_every_ending(sem: &whsem::Semaphore) {
    use whsem::{CancelToken, ErrorKind};

    let start = SystemTime::now();
    let began = Instant::now();
    let fresh = sem.info().unwrap();
    assert_eq!(
        (fresh.acquisitions, fresh.waits, fresh.releases),
        (0, 0, 0),
        "a new name has counted already: {fresh:?}"
    );
    let created = fresh.created;
    assert!(
        created + Duration::from_secs(60) > start
            && created < SystemTime::now() + Duration::from_secs(60),
        "created {created:?}: not about now ({start:?})"
    );

    let held = sem.try_acquire().unwrap().expect("acquisition 1");
    assert!(sem.try_acquire().unwrap().is_none(), "a try: no wait, no timeout");
    // Wait 1, timeout 1.
    const WAIT: Duration = Duration::from_millis(60);
    assert!(
        sem.acquire(Some(WAIT)).unwrap().is_none(),
        "wait 1 times out"
    );

    let token = CancelToken::new().unwrap();
    std::thread::scope(|s| {
        // Wait 2, cancellation 1: a token, once the wait is seen.
        let waiting = s.spawn(|| sem.acquire_cancelable(None, &token));
        assert!(eventually(PATIENCE, || sem.info().unwrap().waiters == 1));
        token.cancel();
        let err = waiting.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Canceled);

        // Wait 3, cancellation 2: a future dropped while it waits.
        let mut abandoned = sem.acquire_async(None);
        assert!(
            executor::poll_once(&mut abandoned).is_none(),
            "the ticket is held"
        );
        assert!(eventually(PATIENCE, || sem.info().unwrap().waiters == 1));
        drop(abandoned);
        assert!(eventually(PATIENCE, || sem.info().unwrap().waiters == 0));

        // Wait 4, acquisition 2: granted by the release of the held ticket
        // (release 1), then released (release 2).
        let granted = s.spawn(|| sem.acquire(None).unwrap().expect("granted").release());
        assert!(eventually(PATIENCE, || sem.info().unwrap().waiters == 1));
        held.release().unwrap();
        granted.join().unwrap().unwrap();
    });
    let elapsed = began.elapsed();

    let info = sem.info().unwrap();
    assert_eq!(
        (
            info.acquisitions,
            info.timeouts,
            info.cancellations,
            info.waits,
            info.releases
        ),
        (2, 1, 2, 4, 2),
        "(acquisitions, timeouts, cancellations, waits, releases) in {info:?}"
    );
    // Loose bounds: wait 1 lasted about its 60 ms (the library may start
    // timing it after its first look), the first ticket was held through
    // it (a coarse clock may miss a tick of it); upper bounds, what this
    // test's own clock saw.
    assert!(
        info.wait_time >= WAIT * 9 / 10 && info.wait_time <= 3 * elapsed,
        "waited {:?} in all, want {:?} ... {:?}",
        info.wait_time,
        WAIT * 9 / 10,
        3 * elapsed
    );
    assert!(
        info.hold_time >= WAIT / 2 && info.hold_time <= 2 * elapsed,
        "held {:?} in all, want {:?} ... {:?}",
        info.hold_time,
        WAIT / 2,
        2 * elapsed
    );

    let histogram = sem.wait_histogram().unwrap();
    assert_eq!(
        histogram.buckets.len(),
        whsem::sys::WHSEM_WAIT_BUCKETS as usize
    );
    assert_eq!(histogram.total(), info.waits, "{histogram:?}");
    let long: u64 = histogram
        .buckets
        .iter()
        .filter(|b| b.min >= Duration::from_millis(32))
        .map(|b| b.count)
        .sum();
    let slowest = histogram.percentile(1.0).unwrap();
    assert!(
        long >= 1 && slowest >= Duration::from_millis(32),
        "the {WAIT:?} wait is not among the long waits ({long} there, slowest {slowest:?}): {histogram:?}"
    );

    let history = sem.waiters_history().unwrap();
    assert!(history.len() >= 60, "{} seconds of history", history.len());
    assert_eq!(
        history.iter().max(),
        Some(&1),
        "one waiter at a time: {history:?}"
    );
}
