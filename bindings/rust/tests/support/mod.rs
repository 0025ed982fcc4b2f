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
