// SPDX-License-Identifier: MIT
//! Semantics of the synchronous API and every error a caller can provoke.
//! (That threads never exceed the max count is the library's to prove:
//! tests/library `Semantics.ThreadsNeverExceedMaxCount`.)

mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use support::{TestName, PATIENCE};
use whsem::{sys, CancelToken, ErrorKind, ListOptions, RemoveOptions, Semaphore, Ticket};

// ---- semantics ---------------------------------------------------------------

#[test]
fn tickets_are_counted_and_dropping_releases() {
    let name = TestName::new("count");
    let sem = Semaphore::open(&name, 2).unwrap();
    let a = sem.try_acquire().unwrap().expect("first of two");
    let b = sem
        .acquire(Some(Duration::from_secs(5)))
        .unwrap()
        .expect("second of two");
    assert!(
        sem.try_acquire().unwrap().is_none(),
        "a third ticket must not exist"
    );
    assert!(
        sem.acquire(Some(Duration::from_millis(30)))
            .unwrap()
            .is_none(),
        "a timeout is Ok(None)"
    );
    assert!(sem.acquire(Some(Duration::ZERO)).unwrap().is_none());
    drop(a);
    let c = sem
        .try_acquire()
        .unwrap()
        .expect("dropping a ticket releases it");
    b.release().unwrap();
    c.release().unwrap();
    assert_eq!(sem.info().unwrap().free_count, 2);
}

#[test]
fn a_ticket_may_be_released_on_another_thread() {
    let name = TestName::new("send");
    let sem = Semaphore::open(&name, 1).unwrap();
    let ticket = sem.try_acquire().unwrap().unwrap();
    thread::spawn(move || ticket.release().unwrap())
        .join()
        .unwrap();
    let again = sem
        .try_acquire()
        .unwrap()
        .expect("released by the other thread");
    // Sync too: a shared reference may be looked at from elsewhere.
    let shared = Arc::new(again);
    let peek = Arc::clone(&shared);
    assert_ne!(thread::spawn(move || peek.as_raw()).join().unwrap(), 0);
}

#[test]
fn a_blocked_acquire_gets_the_ticket_another_thread_releases() {
    let name = TestName::new("block");
    let sem = Semaphore::open(&name, 1).unwrap();
    let held = sem.try_acquire().unwrap().unwrap();
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        drop(held);
    });
    let ticket = sem.acquire(None).unwrap();
    assert!(ticket.is_some(), "waiting forever ends with a ticket");
    releaser.join().unwrap();
}

#[test]
fn tickets_outlive_their_semaphore() {
    let name = TestName::new("outlive");
    let sem = Semaphore::open(&name, 1).unwrap();
    let ticket = sem.try_acquire().unwrap().unwrap();
    sem.close().unwrap();
    let other = Semaphore::open(&name, 1).unwrap();
    assert!(
        other.try_acquire().unwrap().is_none(),
        "still held after close"
    );
    ticket.release().unwrap();
    assert!(other.try_acquire().unwrap().is_some());
}

#[test]
fn names_counts_and_info() {
    let name = TestName::new("info");
    let sem = Semaphore::open(&name, 3).unwrap();
    let finalized = format!("Global\\{}", name.as_str());
    assert_eq!(sem.name().unwrap(), finalized);
    assert_eq!(whsem::safe_name(&name).unwrap(), finalized);
    assert_eq!(sem.max_count().unwrap(), 3);
    assert!(whsem::list().unwrap().contains(&finalized));

    let _t1 = sem.try_acquire().unwrap().unwrap();
    let _t2 = sem.try_acquire().unwrap().unwrap();
    let info = sem.info().unwrap();
    assert_eq!(info.max_count, 3);
    assert_eq!(info.free_count, 1);
    assert_eq!(info.waiters, 0);
    assert!(info.processes >= 1);
    let me = info
        .holders
        .iter()
        .find(|h| h.pid == std::process::id())
        .expect("this process holds tickets");
    assert_eq!(me.tickets, 2);
    assert!(me.since > std::time::UNIX_EPOCH);
    assert_eq!(me.host, "", "this machine's backend names no host");
    // A process that holds nothing is no holder.
    drop((_t1, _t2));
    assert!(sem.info().unwrap().holders.is_empty());
}

#[test]
fn an_empty_backend_is_this_machine() {
    let name = TestName::new("local-backend");
    let sem = Semaphore::options()
        .backend("postgresql://somewhere/else")
        .backend("")
        .open(&name, 1)
        .unwrap();
    assert!(
        std::path::Path::new(&name.segment_path()).exists(),
        "in shared memory"
    );
    sem.close().unwrap();
}

#[test]
fn a_local_ticket_is_never_lost() {
    let name = TestName::new("never-lost");
    let sem = Semaphore::open(&name, 1).unwrap();
    let ticket = sem.try_acquire().unwrap().unwrap();
    ticket.check().unwrap();
    let mut lost = ticket.lost();
    let mut again = ticket.lost(); // any number of them
    assert!(support::executor::poll_once(&mut lost).is_none());
    assert!(lost.wait_timeout(Duration::from_millis(20)).is_none());
    ticket.release().unwrap();
    // Documented: a ticket that cannot be lost has a future that never
    // resolves, not even after the release.
    assert!(support::executor::poll_once(&mut lost).is_none());
    assert!(support::executor::poll_once(&mut again).is_none());
    assert!(again.wait_timeout(Duration::from_millis(20)).is_none());
    assert_eq!(
        whsem::__watch_callbacks_outstanding(),
        0,
        "the library keeps nothing for a local ticket"
    );
}

#[test]
fn open_existing_adopts_the_max_count_and_exact_names_find_the_same_semaphore() {
    let name = TestName::new("existing");
    let created = Semaphore::open(&name, 5).unwrap();
    let existing = Semaphore::open_existing(&name).unwrap();
    assert_eq!(existing.max_count().unwrap(), 5);
    let exact = Semaphore::options()
        .exact_name(true)
        .open(&format!("Global\\{}", name.as_str()), 5)
        .unwrap();
    let held: Vec<Ticket> = (0..5)
        .map(|_| created.try_acquire().unwrap().unwrap())
        .collect();
    assert!(existing.try_acquire().unwrap().is_none());
    assert!(
        exact.try_acquire().unwrap().is_none(),
        "one pool, however it was opened"
    );
    drop(held);
    assert!(exact.try_acquire().unwrap().is_some());
}

#[test]
fn long_and_unusual_names_are_finalized_like_every_binding() {
    assert_eq!(whsem::safe_name("abc").unwrap(), "Global\\abc");
    assert_eq!(
        whsem::safe_name("").unwrap(),
        "Global\\EMPTYz4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
    );
    let long = "x".repeat(1000);
    let finalized = whsem::safe_name(&long).unwrap();
    assert!(finalized.encode_utf16().count() <= 260, "{finalized}");
    // Non-ASCII names round-trip.
    let name = TestName::new("ünïcødé-名前");
    let sem = Semaphore::open(&name, 1).unwrap();
    assert_eq!(sem.name().unwrap(), format!("Global\\{}", name.as_str()));
}

#[test]
fn options_mode_and_abandonment_check() {
    let name = TestName::new("mode");
    let sem = Semaphore::options()
        .mode(0o640)
        .abandonment_check(Some(Duration::from_millis(250)))
        .open(&name, 1)
        .unwrap();
    let mode = std::fs::metadata(name.segment_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640, "the mode is applied exactly");
    let never = Semaphore::options()
        .abandonment_check(None)
        .open(&name, 1)
        .unwrap();
    let t = never.try_acquire().unwrap().unwrap();
    assert!(sem.try_acquire().unwrap().is_none());
    drop(t);
}

#[test]
fn remove_makes_the_next_open_create_a_fresh_semaphore() {
    let name = TestName::new("remove");
    let old = Semaphore::open(&name, 1).unwrap();
    let _held = old.try_acquire().unwrap().unwrap();
    drop(old);
    whsem::remove(&name).unwrap();
    let fresh = Semaphore::open(&name, 2).unwrap();
    assert_eq!(fresh.max_count().unwrap(), 2);
    assert_eq!(fresh.info().unwrap().free_count, 2);
    drop(fresh);
    RemoveOptions::new()
        .exact_name(true)
        .remove(&format!("Global\\{}", name.as_str()))
        .unwrap();
    assert_eq!(
        whsem::remove(&name).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn list_and_remove_read_the_backend_as_open_does() {
    let name = TestName::new("list");
    let sem = Semaphore::open(&name, 1).unwrap();
    let finalized = sem.name().unwrap();
    for names in [
        whsem::list().unwrap(),
        ListOptions::new().list().unwrap(),
        ListOptions::new().backend("").list().unwrap(),
    ] {
        assert!(names.contains(&finalized), "{finalized} missing");
    }
    drop(sem);
    RemoveOptions::new().backend("").remove(&name).unwrap();
    assert!(!whsem::list().unwrap().contains(&finalized));

    // Never a panic, never the string in a message: a NUL character is
    // InvalidArgument, a server that cannot be reached Unavailable.
    let secret = "hunter2-rs-list";
    let nul = format!("host=x\0password={secret}");
    let unreachable = format!("host=/nonexistent password={secret}");
    for (conninfo, kind) in [
        (&nul, ErrorKind::InvalidArgument),
        (&unreachable, ErrorKind::Unavailable),
    ] {
        let mut list = ListOptions::new();
        list.backend(conninfo);
        let mut remove = RemoveOptions::new();
        remove.backend(conninfo);
        for shown in [format!("{list:?}"), format!("{remove:?}")] {
            assert!(!shown.contains(secret), "{shown}");
        }
        for err in [list.list().unwrap_err(), remove.remove(&name).unwrap_err()] {
            assert_eq!(err.kind(), kind, "{err}");
            assert!(!format!("{err:?}").contains(secret), "{err:?}");
        }
    }
}

#[test]
fn cancel_tokens_end_waits() {
    let name = TestName::new("cancel");
    let sem = Semaphore::open(&name, 1).unwrap();

    // Already canceled: fails even though a ticket is free.
    let token = CancelToken::new().unwrap();
    token.cancel();
    assert!(token.is_canceled());
    let err = sem
        .acquire_cancelable(Some(Duration::ZERO), &token)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled);
    assert_eq!(err.status(), sys::WHSEM_CANCELED);
    assert_eq!(sem.info().unwrap().free_count, 1);

    // Canceled by another thread while waiting.
    let _held = sem.try_acquire().unwrap().unwrap();
    let token = CancelToken::new().unwrap();
    assert!(!token.is_canceled());
    let canceler = token.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        canceler.cancel();
    });
    let err = sem.acquire_cancelable(None, &token).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled);
    t.join().unwrap();

    // An untouched token does not disturb a normal wait.
    let calm = CancelToken::new().unwrap();
    drop(_held);
    assert!(sem
        .acquire_cancelable(Some(PATIENCE), &calm)
        .unwrap()
        .is_some());
}

// ---- errors --------------------------------------------------------------------

#[test]
fn error_invalid_argument() {
    let name = TestName::new("arg");
    let err = Semaphore::open(&name, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(err.status(), sys::WHSEM_E_INVALID_ARGUMENT);
    assert!(
        !err.message().is_empty(),
        "the library's message is carried"
    );
    let err = Semaphore::open(&name, u32::MAX).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("max_count"), "{err}");
    // A builder cannot fail: a NUL in the connection string is open's error,
    // which does not repeat the string (it may hold a password).
    let mut options = Semaphore::options();
    options.backend("host=db password=sekrit\0-rest");
    let shown = format!("{options:?}");
    assert!(!shown.contains("sekrit"), "{shown}");
    for err in [
        options.open(&name, 1).unwrap_err(),
        options.open_existing(&name).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("NUL"), "{err}");
        assert!(!format!("{err:?}").contains("sekrit"), "{err:?}");
    }
}

#[test]
fn error_invalid_handle() {
    let name = TestName::new("handle");
    let sem = Semaphore::open(&name, 1).unwrap();
    let raw = sem.try_acquire().unwrap().unwrap().into_raw();
    assert_eq!(unsafe { sys::whsem_release(raw) }, sys::WHSEM_OK);
    // A handle released behind the ticket's back: a clean error, no crash.
    let stale = unsafe { Ticket::from_raw(raw) }.unwrap();
    let err = stale.release().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidHandle);
    assert!(!err.message().is_empty());
    assert!(unsafe { Ticket::from_raw(0) }.is_none());
    // A semaphore handle used as a ticket.
    let wrong = unsafe { Ticket::from_raw(sem.as_raw()) }.unwrap();
    assert_eq!(
        wrong.release().unwrap_err().kind(),
        ErrorKind::InvalidHandle
    );
}

#[test]
fn error_invalid_name() {
    let err = Semaphore::options()
        .exact_name(true)
        .open("not-a-finalized-name", 1)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidName);
    assert!(!err.message().is_empty());
    let err = Semaphore::open("nul\0inside", 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidName);
    assert_eq!(
        whsem::safe_name("a\0b").unwrap_err().kind(),
        ErrorKind::InvalidName
    );
}

#[test]
fn error_max_count_mismatch() {
    let name = TestName::new("mismatch");
    let _sem = Semaphore::open(&name, 2).unwrap();
    let err = Semaphore::open(&name, 3).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MaxCountMismatch);
    assert_eq!(err.status(), sys::WHSEM_E_MAX_COUNT_MISMATCH);
    assert!(!err.message().is_empty());
    // Display is the library's message; Debug shows everything.
    assert_eq!(err.to_string(), err.message());
    assert!(format!("{err:?}").contains("MaxCountMismatch"));
    // Usable as a std error (and with `?` in io code).
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
    assert!(!boxed.to_string().is_empty());
}

#[test]
fn error_not_found() {
    let name = TestName::new("missing");
    let err = Semaphore::open_existing(&name).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!err.message().is_empty());
    assert_eq!(
        whsem::remove(&name).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

fn make_segment(what: &str) -> TestName {
    let name = TestName::new(what);
    Semaphore::open(&name, 2).unwrap().close().unwrap();
    name
}

fn poke(name: &TestName, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(name.segment_path())
        .unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

#[test]
fn error_corrupt() {
    let name = make_segment("corrupt");
    poke(&name, 0, b"JUNKJUNK");
    let err = Semaphore::open(&name, 2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(!err.message().is_empty());

    let truncated = make_segment("truncated");
    std::fs::OpenOptions::new()
        .write(true)
        .open(truncated.segment_path())
        .unwrap()
        .set_len(100)
        .unwrap();
    assert_eq!(
        Semaphore::open(&truncated, 2).unwrap_err().kind(),
        ErrorKind::Corrupt
    );
}

#[test]
fn error_incompatible() {
    let name = make_segment("layout");
    poke(&name, 8, &99u32.to_ne_bytes()); // the layout version
    let err = Semaphore::open(&name, 2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Incompatible);
    assert!(err.message().contains("99"), "{err}");
}

#[test]
fn every_acquire_entry_point_reports_errors_with_messages() {
    // Tickets of a closed semaphore stay valid; the raw handle does not.
    let name = TestName::new("closed");
    let sem = Semaphore::open(&name, 1).unwrap();
    let raw = sem.into_raw();
    assert_eq!(unsafe { sys::whsem_close(raw) }, sys::WHSEM_OK);
    let stale = unsafe { Semaphore::from_raw(raw) }.unwrap();
    for result in [
        stale.try_acquire(),
        stale.acquire(Some(Duration::from_millis(10))),
        stale.acquire_cancelable(None, &CancelToken::new().unwrap()),
        support::executor::block_on(stale.acquire_async(None)),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidHandle);
        assert!(!err.message().is_empty(), "{err:?}");
    }
    assert_eq!(stale.name().unwrap_err().kind(), ErrorKind::InvalidHandle);
    assert_eq!(
        stale.max_count().unwrap_err().kind(),
        ErrorKind::InvalidHandle
    );
    assert_eq!(stale.info().unwrap_err().kind(), ErrorKind::InvalidHandle);
    assert_eq!(stale.close().unwrap_err().kind(), ErrorKind::InvalidHandle);
}

#[test]
fn the_error_message_belongs_to_the_failing_call_on_its_thread() {
    // Another thread's failures must not leak into this thread's error.
    let name = TestName::new("tls");
    let _sem = Semaphore::open(&name, 2).unwrap();
    let noisy = {
        let name = name.0.clone();
        thread::spawn(move || {
            for _ in 0..2000 {
                let _ = Semaphore::open_existing(&format!("{name}-missing"));
            }
        })
    };
    for _ in 0..2000 {
        let err = Semaphore::open(&name, 3).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MaxCountMismatch);
        assert!(!err.message().contains("-missing"), "{err}");
    }
    noisy.join().unwrap();
}
