// SPDX-License-Identifier: MIT
//! The binding on the PostgreSQL backend, against the cluster of CTest's
//! `pg` fixture (test `rust_pg`, labels pg and rust):
//!
//!     ctest --test-dir build -L pg -R rust_pg --output-on-failure
//!
//! `WHSEM_TEST_BACKEND` is the fixture's connection string and
//! `PGSERVICEFILE` the service file it names. Not part of a plain
//! `cargo test` (Cargo.toml: `test = false`), which has no server; without
//! the variable these tests fail, saying so.
//!
//! The library keeps one set of connections per connection string in a
//! process, so each test adds a parameter of its own to the string: its
//! sessions are its own (terminating one touches no other test), and two
//! strings in one test stand for two processes.

mod support;

use std::net::TcpListener;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use support::executor::{block_on, block_on_timeout, poll_once};
// Names live in the throw-away cluster's table: nothing to remove.
use support::{eventually, unique_name, PATIENCE};
use whsem::{ErrorKind, Semaphore, Ticket};

/// The fixture's connection string.
fn fixture() -> String {
    std::env::var("WHSEM_TEST_BACKEND").unwrap_or_else(|_| {
        panic!(
            "WHSEM_TEST_BACKEND is not set: these tests need the pg fixture's cluster \
             (ctest -L pg -R rust_pg)"
        )
    })
}

/// The fixture's connection string, made this test's own by `tag`.
fn backend(tag: &str) -> String {
    // A parameter the library leaves alone (it sets application_name).
    format!("{} fallback_application_name=whsem-rs-{tag}", fixture())
}

/// One test at a time: the watch count of the leak test is per process.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A test's own name, opened through its own connections, during its turn.
struct Case {
    sem: Semaphore,
    name: String,
    _turn: MutexGuard<'static, ()>,
}

impl Case {
    fn new(tag: &str, max: u32) -> Case {
        let turn = serial();
        let name = unique_name(tag);
        Case {
            sem: open(tag, &name, max),
            name,
            _turn: turn,
        }
    }
}

fn open(tag: &str, name: &str, max: u32) -> Semaphore {
    Semaphore::options()
        .backend(&backend(tag))
        .open(name, max)
        .unwrap_or_else(|e| panic!("open {name} on the server: {e}"))
}

/// The newest psql of the machine's PostgreSQL, as tests/pg/cluster.py
/// finds its server binaries.
fn psql_path() -> String {
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("bin/psql"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .map_or_else(|| "psql".to_string(), |p| p.display().to_string())
}

/// Runs `sql` as the cluster's administrator; its output, unaligned.
fn admin(sql: &str) -> String {
    let base = fixture();
    let out = Command::new(psql_path())
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &base,
            "-c",
            sql,
        ])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Ends every session that holds a ticket of `name` (not the marker every
/// open session holds, index -1); how many it ended.
fn terminate_holders(name: &str) -> usize {
    let finalized = whsem::safe_name(name).unwrap();
    let ended = admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM (SELECT DISTINCT l.pid FROM pg_locks l \
         JOIN whsem.semaphore s ON l.classid = s.id::oid WHERE l.locktype = 'advisory' \
         AND l.objsubid = 2 AND l.granted AND l.objid <> 4294967295 AND s.name = '{finalized}') h"
    ));
    ended.lines().filter(|l| *l == "t").count()
}

fn hold(sem: &Semaphore) -> Ticket {
    sem.try_acquire()
        .expect("try_acquire")
        .expect("a ticket is free")
}

// ---- the semantics, on the server ---------------------------------------------

#[test]
fn tickets_are_counted_on_the_server() {
    let Case { sem, name, _turn } = Case::new("count", 2);
    let a = hold(&sem);
    let b = sem
        .acquire(Some(Duration::from_secs(5)))
        .unwrap()
        .expect("second of two");
    assert!(sem.try_acquire().unwrap().is_none(), "no third ticket");
    assert!(
        sem.acquire(Some(Duration::from_millis(50)))
            .unwrap()
            .is_none(),
        "a timeout is Ok(None)"
    );
    a.check().expect("held");
    drop(a);
    let c = sem.try_acquire().unwrap().expect("dropping released");
    b.release().unwrap();
    c.release().unwrap();
    assert_eq!(sem.max_count().unwrap(), 2);
    assert_eq!(sem.name().unwrap(), whsem::safe_name(&name).unwrap());
}

#[test]
fn info_names_the_holders_host() {
    let Case { sem, _turn, .. } = Case::new("info", 3);
    let _a = hold(&sem);
    let _b = hold(&sem);
    let info = sem.info().unwrap();
    assert_eq!((info.max_count, info.free_count), (3, 1));
    assert_eq!(info.holders.len(), 1, "{info:?}");
    let me = &info.holders[0];
    assert_eq!((me.pid, me.tickets), (std::process::id(), 2));
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(
        !me.host.is_empty() && hostname.trim().starts_with(&me.host),
        "host {:?}, machine {:?}",
        me.host,
        hostname.trim()
    );
}

#[test]
fn another_max_count_is_refused_while_the_name_is_open() {
    let _serial = serial();
    let name = unique_name("mismatch");
    let _sem = open("mismatch-a", &name, 2);
    let err = Semaphore::options()
        .backend(&backend("mismatch-b"))
        .open(&name, 3)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MaxCountMismatch, "{err}");
    let same = Semaphore::options()
        .backend(&backend("mismatch-b"))
        .open_existing(&name)
        .unwrap();
    assert_eq!(same.max_count().unwrap(), 2, "open_existing adopts it");
}

#[test]
fn a_waiter_elsewhere_gets_the_released_ticket() {
    let _serial = serial();
    let name = unique_name("handoff");
    let holder = open("handoff-a", &name, 1);
    let ticket = hold(&holder);
    // Another "process": its own sessions, queued in the server.
    let waiter = open("handoff-b", &name, 1);
    thread::scope(|s| {
        let blocking = s.spawn(|| waiter.acquire(Some(PATIENCE)));
        thread::sleep(Duration::from_millis(50));
        ticket.release().unwrap();
        let got = blocking
            .join()
            .unwrap()
            .unwrap()
            .expect("the released ticket");
        // Then the same through the future.
        let pending = s.spawn(|| block_on(holder.acquire_async(Some(PATIENCE))));
        thread::sleep(Duration::from_millis(50));
        drop(got);
        assert!(pending.join().unwrap().unwrap().is_some());
    });
}

#[test]
fn an_async_acquisition_times_out_and_dropping_it_loses_nothing() {
    let Case { sem, _turn, .. } = Case::new("async", 1);
    let held = hold(&sem);
    let timed_out = block_on(sem.acquire_async(Some(Duration::from_millis(50)))).unwrap();
    assert!(timed_out.is_none());
    let mut abandoned = sem.acquire_async(None);
    assert!(poll_once(&mut abandoned).is_none(), "the ticket is held");
    drop(held);
    drop(abandoned);
    let again = sem.acquire(Some(PATIENCE)).unwrap();
    assert!(again.is_some(), "the dropped wait took nothing with it");
}

// ---- lost tickets --------------------------------------------------------------

#[test]
fn a_terminated_session_loses_the_ticket_and_every_watcher_is_told() {
    let Case { sem, name, _turn } = Case::new("terminate", 1);
    let ticket = hold(&sem);
    let lost = ticket.lost();
    let mut polled = ticket.lost();
    assert!(poll_once(&mut polled).is_none(), "held: pending");
    assert!(lost.wait_timeout(Duration::ZERO).is_none());
    thread::scope(|s| {
        let blocked = s.spawn(|| lost.wait_timeout(PATIENCE));
        assert_eq!(terminate_holders(&name), 1, "one session held it");
        let told = block_on_timeout(polled, PATIENCE).expect("the future resolved");
        let err = told.expect_err("a loss is an error");
        assert_eq!(err.kind(), ErrorKind::TicketLost);
        assert!(err.to_string().contains("lost"), "{err}");
        let blocked = blocked.join().unwrap().expect("the blocked thread woke");
        assert_eq!(blocked.unwrap_err().kind(), ErrorKind::TicketLost);
    });
    assert_eq!(ticket.check().unwrap_err().kind(), ErrorKind::TicketLost);
    // A future made after the loss resolves at once.
    let late = block_on_timeout(ticket.lost(), PATIENCE).expect("resolved");
    assert_eq!(late.unwrap_err().kind(), ErrorKind::TicketLost);
    // The server gave the ticket back: another session can take it.
    let other = open("terminate-b", &name, 1);
    assert!(
        eventually(PATIENCE, || other.try_acquire().unwrap().is_some()),
        "the lost ticket went back to the server"
    );
    let err = ticket.release().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TicketLost, "{err}");
    // The handle keeps working: a new ticket through it.
    assert!(sem.acquire(Some(PATIENCE)).unwrap().is_some());
}

#[test]
fn a_released_tickets_future_resolves_ok() {
    let Case { sem, _turn, .. } = Case::new("released", 1);
    let ticket = hold(&sem);
    let lost = ticket.lost();
    let mut polled = lost.clone();
    assert!(poll_once(&mut polled).is_none());
    ticket.release().unwrap();
    assert!(block_on_timeout(polled, PATIENCE)
        .expect("resolved")
        .is_ok());
    assert!(matches!(lost.wait_timeout(PATIENCE), Some(Ok(()))));
    // A ticket released by drop, its future awaited in a thread of its own.
    let ticket = sem.acquire(Some(PATIENCE)).unwrap().expect("free again");
    let watcher = {
        let lost = ticket.lost();
        thread::spawn(move || block_on_timeout(lost, PATIENCE))
    };
    drop(ticket);
    assert!(watcher.join().unwrap().expect("resolved").is_ok());
}

#[test]
fn every_watch_ends_exactly_once() {
    let _serial = serial();
    let outstanding = whsem::__watch_callbacks_outstanding;
    assert!(
        eventually(PATIENCE, || outstanding() == 0),
        "a watch of an earlier test never ended: {}",
        outstanding()
    );
    let name = unique_name("leak");
    let kept = open("leak-a", &name, 20);
    let doomed = open("leak-b", &name, 20);
    let kept_tickets: Vec<Ticket> = (0..10).map(|_| hold(&kept)).collect();
    let doomed_tickets: Vec<Ticket> = (0..10).map(|_| hold(&doomed)).collect();
    let mut futures = Vec::new();
    for t in kept_tickets.iter().chain(&doomed_tickets) {
        // Several futures per ticket share its one watch.
        for _ in 0..3 {
            let mut f = t.lost();
            assert!(poll_once(&mut f).is_none());
            futures.push(f);
        }
    }
    assert_eq!(outstanding(), 20, "one watch per ticket");
    drop(kept_tickets);
    assert!(terminate_holders(&name) >= 1);
    let outcomes: Vec<_> = futures
        .into_iter()
        .map(|f| block_on_timeout(f, PATIENCE).expect("every future resolves"))
        .collect();
    let released = outcomes.iter().filter(|o| o.is_ok()).count();
    let lost = outcomes
        .iter()
        .filter(|o| matches!(o, Err(e) if e.kind() == ErrorKind::TicketLost))
        .count();
    assert_eq!((released, lost), (30, 30), "{outcomes:?}");
    for t in doomed_tickets {
        assert_eq!(t.release().unwrap_err().kind(), ErrorKind::TicketLost);
    }
    // Each callback gave its reference back, once: none missing, none twice.
    assert!(
        eventually(PATIENCE, || outstanding() == 0),
        "outstanding {}",
        outstanding()
    );
    thread::sleep(Duration::from_millis(100));
    assert_eq!(outstanding(), 0);
}

#[test]
fn futures_made_on_many_threads_at_once_share_one_watch() {
    let Case { sem, _turn, .. } = Case::new("race", 1);
    let outstanding = whsem::__watch_callbacks_outstanding;
    assert!(eventually(PATIENCE, || outstanding() == 0));
    let ticket = hold(&sem);
    let start = std::sync::Barrier::new(8);
    let futures: Vec<_> = thread::scope(|s| {
        let spawned: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let mut lost = ticket.lost();
                    assert!(poll_once(&mut lost).is_none());
                    lost
                })
            })
            .collect();
        spawned.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(
        outstanding(),
        1,
        "the first call registered, the others shared"
    );
    drop(ticket);
    for lost in futures {
        assert!(block_on_timeout(lost, PATIENCE).expect("resolved").is_ok());
    }
    assert!(eventually(PATIENCE, || outstanding() == 0));
}

// ---- counters --------------------------------------------------------------------

#[test]
fn counters_count_every_ending() {
    let Case { sem, _turn, .. } = Case::new("counters", 1);
    support::counters_count_every_ending(&sem);
}

// ---- names -----------------------------------------------------------------------

#[test]
fn the_servers_names_are_listed_and_removed() {
    let Case { sem, name, _turn } = Case::new("names", 1);
    let finalized = sem.name().unwrap();
    let server = backend("names");
    let listed = || {
        whsem::ListOptions::new()
            .backend(&server)
            .list()
            .unwrap()
            .contains(&finalized)
    };
    assert!(listed(), "{finalized} missing from the server's names");
    assert!(
        !whsem::list().unwrap().contains(&finalized),
        "a server's name is not this machine's"
    );
    assert_eq!(
        whsem::remove(&name).unwrap_err().kind(),
        ErrorKind::NotFound,
        "this machine has no such name"
    );

    // Open through other connections, which stand for another process:
    // busy until forced.
    let other = open("names-other", &name, 1);
    let mut remove = whsem::RemoveOptions::new();
    remove.backend(&server);
    assert_eq!(remove.remove(&name).unwrap_err().kind(), ErrorKind::Busy);
    assert!(listed(), "a busy name stays");
    remove.force(true).remove(&name).unwrap();
    assert!(!listed(), "{finalized} still listed after its removal");
    assert_eq!(
        remove.remove(&name).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    drop((sem, other));

    // Removed, the name is new again: another max count is fine.
    let fresh = open("names", &name, 3);
    assert_eq!(fresh.max_count().unwrap(), 3);
    drop(fresh);
    whsem::RemoveOptions::new()
        .backend(&server)
        .exact_name(true)
        .remove(&finalized)
        .unwrap();
    assert!(!listed());
}

// ---- refused connections -------------------------------------------------------

/// A TCP port on this machine where nothing listens.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn assert_not_shown(secret: &str, err: &whsem::Error) {
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        err.message().to_string(),
    ] {
        assert!(!shown.contains(secret), "the password shows in {shown:?}");
    }
}

#[test]
fn an_unreachable_server_is_unavailable_and_the_password_never_shows() {
    let _serial = serial();
    let port = closed_port();
    let secret = "sekrit-rs-unreachable";
    for conninfo in [
        format!(
            "host=127.0.0.1 port={port} dbname=postgres user=app password={secret} connect_timeout=5"
        ),
        format!("postgresql://app:{secret}@127.0.0.1:{port}/postgres?connect_timeout=5"),
    ] {
        let mut options = Semaphore::options();
        options.backend(&conninfo);
        assert!(!format!("{options:?}").contains(secret));
        let err = options.open(&unique_name("unreachable"), 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(!err.message().is_empty(), "a reason is given");
        assert_not_shown(secret, &err);
        assert_eq!(
            std::io::Error::from(err).kind(),
            std::io::ErrorKind::ConnectionRefused
        );
    }
}

#[test]
fn a_wrong_password_is_access_denied_and_never_shown() {
    let _serial = serial();
    let port = admin("SHOW port");
    let secret = "not-the-password-42";
    // The cluster's role with a password, over TCP (tests/pg/cluster.py).
    let err = Semaphore::options()
        .backend(&format!(
            "host=127.0.0.1 port={port} dbname=postgres user=whsem_pw password={secret}"
        ))
        .open(&unique_name("password"), 1)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
    assert_not_shown(secret, &err);
}

#[test]
fn the_connection_check_can_be_set_or_turned_off() {
    let _serial = serial();
    let name = unique_name("check");
    // Whether checks find a silent network failure is the library's to
    // prove; here, that either setting opens and serves tickets.
    for (tag, period) in [
        ("check-set", Some(Duration::from_millis(1500))),
        ("check-off", None),
    ] {
        let sem = Semaphore::options()
            .backend(&backend(tag))
            .connection_check(period)
            .open(&name, 1)
            .unwrap();
        let ticket = sem.acquire(Some(PATIENCE)).unwrap().expect("free");
        ticket.check().unwrap();
        ticket.release().unwrap();
    }
}
