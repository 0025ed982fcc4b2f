// SPDX-License-Identifier: MIT
//! Across processes: the binding's handles work from a child process (one
//! smoke test), a forked child cannot release its parent's ticket, the
//! errors that need a second process (busy, access denied), and the worker's
//! `name` command. That processes never exceed the max count and that a
//! killed holder's ticket comes back, the library proves itself (tests/library
//! `MultiProcess.*`, `Crash.*`, `Async.AKilledHolderHandsItsTicketToAnAsyncWaiter`)
//! and with this crate's worker among others in the cross-language test
//! (`xlang_chaos`).
//!
//! Child processes are this test binary itself, started with
//! `WHSEM_RS_CHILD` set, which makes `main` play the child's part instead
//! of running the tests. Hence a small harness of its own (`harness = false`
//! in Cargo.toml): the child roles are not tests. Forking the test process
//! directly would be fragile once several threads run; the fork test forks
//! inside a single-threaded child.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::time::Instant;

use support::{TestName, PATIENCE};
use whsem::{ErrorKind, Semaphore};

const CHILD_ROLE: &str = "WHSEM_RS_CHILD";
const CHILD_NAME: &str = "WHSEM_RS_CHILD_NAME";
const CHILD_MAX: &str = "WHSEM_RS_CHILD_MAX";

const TESTS: &[(&str, fn())] = &[
    (
        "a_ticket_of_a_child_process_is_held_until_it_releases",
        a_ticket_of_a_child_process_is_held_until_it_releases,
    ),
    (
        "error_busy_while_another_process_has_the_name_open",
        error_busy_while_another_process_has_the_name_open,
    ),
    (
        "error_access_denied_for_another_user",
        error_access_denied_for_another_user,
    ),
    (
        "error_wrong_process_for_a_ticket_inherited_through_fork",
        error_wrong_process_for_a_ticket_inherited_through_fork,
    ),
    (
        "worker_name_prints_the_finalized_name",
        worker_name_prints_the_finalized_name,
    ),
];

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(CHILD_ROLE) {
        std::process::exit(child(&role));
    }
    // Like libtest: positional arguments filter by substring; flags (such as
    // the --nocapture cargo may pass on) are accepted and ignored, and
    // --list lists.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|(n, _)| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())))
        .collect();
    if args.iter().any(|a| a == "--list") {
        for (n, _) in &selected {
            println!("{n}: test");
        }
        return ExitCode::SUCCESS;
    }
    println!("\nrunning {} tests", selected.len());
    let start = Instant::now();
    let mut failed = Vec::new();
    for (n, test) in &selected {
        let ok = catch_unwind(AssertUnwindSafe(test)).is_ok();
        println!("test {n} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*n);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len(),
        start.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("failures: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

// ---- the child's side -------------------------------------------------------------

fn child(role: &str) -> i32 {
    let name = std::env::var(CHILD_NAME).expect("the parent passes the name");
    match role {
        "hold" => hold(&name),
        "access" => access(&name),
        "fork" => fork_release(&name),
        other => {
            eprintln!("unknown child role {other}");
            2
        }
    }
}

/// Acquires one ticket, says so on stdout and holds it until its stdin
/// gives a line (or ends), then releases it and says so.
fn hold(name: &str) -> i32 {
    let max: u32 = std::env::var(CHILD_MAX).unwrap().parse().unwrap();
    let sem = Semaphore::open(name, max).unwrap();
    let ticket = sem
        .acquire(Some(PATIENCE))
        .unwrap()
        .expect("a ticket for the child");
    println!("held");
    let _ = std::io::stdin().read_line(&mut String::new());
    match ticket.release() {
        Ok(()) => {
            println!("released");
            0
        }
        Err(e) => {
            eprintln!("child release: {e}");
            1
        }
    }
}

extern "C" {
    fn fork() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn _exit(code: i32) -> !;
    fn geteuid() -> u32;
    fn setuid(uid: u32) -> i32;
    fn setgid(gid: u32) -> i32;
    fn setgroups(size: usize, list: *const u32) -> i32;
}

/// Becomes another user (as root) or takes its own access away, then
/// expects AccessDenied.
fn access(name: &str) -> i32 {
    unsafe {
        if geteuid() == 0 {
            let (uid, gid) = nobody();
            if setgroups(0, std::ptr::null()) != 0 || setgid(gid) != 0 || setuid(uid) != 0 {
                return 10;
            }
        } else {
            use std::os::unix::fs::PermissionsExt;
            let path = format!("/dev/shm/whsem.{name}");
            if std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).is_err() {
                return 11;
            }
        }
    }
    match Semaphore::open(name, 1) {
        Err(e) if e.kind() == ErrorKind::AccessDenied && !e.message().is_empty() => 0,
        Err(e) => {
            eprintln!("expected AccessDenied, got {e:?}");
            20
        }
        Ok(_) => 21,
    }
}

fn nobody() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .and_then(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
        })
        .unwrap_or((65534, 65534))
}

/// A ticket inherited through fork() belongs to the parent: the child's
/// release fails with WrongProcess and the parent's ticket stays held.
fn fork_release(name: &str) -> i32 {
    let sem = Semaphore::open(name, 1).unwrap();
    let ticket = sem.try_acquire().unwrap().unwrap();
    let pid = unsafe { fork() };
    if pid == 0 {
        // The forked child: only this thread exists here; leave with _exit
        // so that no destructor of the parent's objects runs twice.
        let code = match ticket.release() {
            Err(e) if e.kind() == ErrorKind::WrongProcess => {
                // The semaphore handle itself keeps working in the child.
                match sem.try_acquire() {
                    Ok(None) => 0,
                    _ => 31,
                }
            }
            _ => 30,
        };
        unsafe { _exit(code) };
    }
    let mut status = 0;
    if pid < 0 || unsafe { waitpid(pid, &mut status, 0) } != pid {
        return 40;
    }
    let child_code = (status >> 8) & 0xff;
    if status & 0x7f != 0 || child_code != 0 {
        eprintln!("forked child: wait status {status:#x}");
        return 41 + child_code;
    }
    // Still held by the parent after the child's attempt.
    if !matches!(sem.try_acquire(), Ok(None)) {
        return 50;
    }
    match ticket.release() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("parent release: {e}");
            51
        }
    }
}

// ---- the parent's side --------------------------------------------------------------

fn spawn_child(role: &str, name: &str, max: u32) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD_ROLE, role)
        .env(CHILD_NAME, name)
        .env(CHILD_MAX, max.to_string());
    cmd
}

/// A child holding one ticket; returns once it says it holds it.
struct Holder {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Holder {
    fn start(name: &str, max: u32) -> Holder {
        let mut child = spawn_child("hold", name, max)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            let n = stdout.read_line(&mut line).unwrap();
            assert!(
                n > 0,
                "the holder child exited before holding: {:?}",
                child.wait()
            );
            if line.trim() == "held" {
                break;
            }
        }
        Holder {
            child,
            stdin,
            stdout,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Tells the child to release its ticket; returns once it has, with
    /// its exit status.
    fn release(mut self) -> std::process::ExitStatus {
        writeln!(self.stdin, "release").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "released", "{:?}", self.child.wait());
        self.child.wait().unwrap()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The smoke test: a ticket that a child process takes through this crate
/// is held against this one (`info` names the child as its holder), and the
/// child's release wakes a future pending here.
fn a_ticket_of_a_child_process_is_held_until_it_releases() {
    let name = TestName::new("child");
    let sem = Semaphore::open(&name, 1).unwrap();
    let holder = Holder::start(&name, 1);
    assert!(
        sem.try_acquire().unwrap().is_none(),
        "the child holds the only ticket"
    );
    let info = sem.info().unwrap();
    assert!(
        info.holders
            .iter()
            .any(|h| h.pid == holder.pid() && h.tickets == 1),
        "{info:?}"
    );
    let mut fut = sem.acquire_async(Some(PATIENCE));
    assert!(support::executor::poll_once(&mut fut).is_none());
    let status = holder.release();
    assert!(status.success(), "the child's release failed: {status}");
    let ticket = support::executor::block_on(fut).unwrap();
    assert!(ticket.is_some(), "the child's released ticket did not come");
}

fn error_busy_while_another_process_has_the_name_open() {
    let name = TestName::new("busy");
    let holder = Holder::start(&name, 2);
    let err = whsem::remove(&name).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    assert!(!err.message().is_empty());
    drop(holder); // killed; the name goes with `name`, forcibly
}

fn error_access_denied_for_another_user() {
    let name = TestName::new("access");
    Semaphore::open(&name, 1).unwrap().close().unwrap(); // mode 0600, ours
    let status = spawn_child("access", &name, 1).status().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "the child did not get AccessDenied ({status})"
    );
}

fn error_wrong_process_for_a_ticket_inherited_through_fork() {
    let name = TestName::new("fork");
    let status = spawn_child("fork", &name, 1).status().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "see the child's stderr above ({status})"
    );
}

fn worker_name_prints_the_finalized_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_whsem-worker"))
        .args(["name", "abc"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "Global\\abc\n");
    let out = Command::new(env!("CARGO_BIN_EXE_whsem-worker"))
        .arg("bogus")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a usage error fails");
}
