//! Across processes: the max count holds over several processes (the
//! worker binary, blocking and async), a killed holder's ticket comes back,
//! a forked child cannot release its parent's ticket, and the errors that
//! need a second process (busy, access denied).
//!
//! Child processes are this test binary itself, started with
//! `WHSEM_RS_CHILD` set, which makes `main` play the child's part instead
//! of running the tests. Hence a small harness of its own (`harness = false`
//! in Cargo.toml): the child roles are not tests. Forking the test process
//! directly would be fragile once several threads run; the fork test forks
//! inside a single-threaded child.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use support::{eventually, TestName, PATIENCE};
use whsem::{ErrorKind, Semaphore};

const CHILD_ROLE: &str = "WHSEM_RS_CHILD";
const CHILD_NAME: &str = "WHSEM_RS_CHILD_NAME";
const CHILD_MAX: &str = "WHSEM_RS_CHILD_MAX";

const TESTS: &[(&str, fn())] = &[
    (
        "a_killed_holders_ticket_comes_back",
        a_killed_holders_ticket_comes_back,
    ),
    (
        "a_killed_holders_ticket_reaches_an_async_waiter",
        a_killed_holders_ticket_reaches_an_async_waiter,
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
        "worker_processes_never_exceed_the_max_count",
        worker_processes_never_exceed_the_max_count,
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

/// Acquires one ticket, says so on stdout and holds it until killed.
fn hold(name: &str) -> i32 {
    let max: u32 = std::env::var(CHILD_MAX).unwrap().parse().unwrap();
    let sem = Semaphore::open(name, max).unwrap();
    let _ticket = sem
        .acquire(Some(PATIENCE))
        .unwrap()
        .expect("a ticket for the child");
    println!("held");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
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
    _stdout: BufReader<ChildStdout>,
}

impl Holder {
    fn start(name: &str, max: u32) -> Holder {
        let mut child = spawn_child("hold", name, max)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
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
            _stdout: stdout,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no chance to release anything
        self.child.wait().unwrap();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn a_killed_holders_ticket_comes_back() {
    let name = TestName::new("killed");
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
    let recoveries = info.recoveries;
    holder.kill();
    let ticket = sem.acquire(Some(PATIENCE)).unwrap();
    assert!(
        ticket.is_some(),
        "the dead child's ticket was not reclaimed"
    );
    assert!(sem.info().unwrap().recoveries > recoveries);
}

fn a_killed_holders_ticket_reaches_an_async_waiter() {
    let name = TestName::new("killed-async");
    let sem = Semaphore::open(&name, 1).unwrap();
    let holder = Holder::start(&name, 1);
    let mut fut = sem.acquire_async(Some(PATIENCE));
    assert!(support::executor::poll_once(&mut fut).is_none());
    holder.kill();
    let ticket = support::executor::block_on(fut).unwrap();
    assert!(ticket.is_some());
}

fn error_busy_while_another_process_has_the_name_open() {
    let name = TestName::new("busy");
    let holder = Holder::start(&name, 2);
    let err = whsem::remove(&name).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    assert!(!err.message().is_empty());
    holder.kill();
    // Once the other process is gone the name can be removed.
    let mut last = None;
    assert!(
        eventually(PATIENCE, || {
            last = Some(whsem::remove(&name));
            matches!(last, Some(Ok(())))
        }),
        "{last:?}"
    );
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

/// One line of a worker log: `acq|rel <pid> <lang> <ns>`.
struct Event {
    acquire: bool,
    pid: u32,
    ns: u64,
}

fn parse_log(text: &str) -> Vec<Event> {
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 4, "malformed log line {line:?}");
            assert!(f[0] == "acq" || f[0] == "rel", "{line:?}");
            assert_eq!(f[2], "rust", "{line:?}");
            Event {
                acquire: f[0] == "acq",
                pid: f[1].parse().unwrap(),
                ns: f[3].parse().unwrap(),
            }
        })
        .collect()
}

fn worker_processes_never_exceed_the_max_count() {
    const MAX: usize = 2;
    const WORKERS: usize = 5;
    let name = TestName::new("workers");
    let log = std::env::temp_dir().join(format!("{}.log", name.as_str()));
    let _ = std::fs::remove_file(&log);
    let workers: Vec<Child> = (0..WORKERS)
        .map(|i| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_whsem-worker"));
            cmd.args([
                "run",
                "--name",
                &name,
                "--max",
                &MAX.to_string(),
                "--duration-ms",
                "1500",
            ])
            .arg("--log")
            .arg(&log)
            .args(["--hold-us", "300"]);
            if i % 2 == 1 {
                cmd.arg("--async");
            }
            cmd.spawn().unwrap()
        })
        .collect();
    for mut w in workers {
        let status = w.wait().unwrap();
        assert!(status.success(), "a worker failed: {status}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    let mut events = parse_log(&text);
    events.sort_by_key(|e| (e.ns, e.acquire)); // at equal times, count releases first
    let mut inside: HashMap<u32, i32> = HashMap::new();
    let (mut now, mut peak, mut acquisitions) = (0usize, 0usize, 0usize);
    for e in &events {
        let mine = inside.entry(e.pid).or_default();
        if e.acquire {
            *mine += 1;
            now += 1;
            acquisitions += 1;
            peak = peak.max(now);
        } else {
            assert!(
                *mine > 0,
                "pid {} released a ticket it did not log acquiring",
                e.pid
            );
            *mine -= 1;
            now -= 1;
        }
    }
    assert!(peak <= MAX, "{peak} holders at once with max {MAX}");
    assert_eq!(now, 0, "every logged acquisition was released");
    assert_eq!(inside.len(), WORKERS, "every worker acquired at least once");
    assert!(acquisitions >= WORKERS);
    eprintln!("{acquisitions} acquisitions by {WORKERS} processes, at most {peak} at once");
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
