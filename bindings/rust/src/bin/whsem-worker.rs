// SPDX-License-Identifier: MIT
//! The Rust worker of the cross-language test: every binding has one with
//! the same command line, so that one test can run them all against one
//! semaphore and check the log.
//!
//!   whsem-worker name NAME
//!   whsem-worker run --name NAME --max N --duration-ms MS --log PATH [--async] [--hold-us US]
//!                    [--backend CONNINFO]
//!
//! With --backend the name lives on that PostgreSQL server, where a ticket
//! can be lost while its holder lives: the worker watches each ticket it
//! holds (`Ticket::lost`: `Lost::wait_timeout`, or the future itself with
//! --async) for the whole hold, and a loss cuts the hold short with a
//! "lost" line instead of "rel". Acquisitions that end with Unavailable or
//! TicketLost (the server restarting, a waiting session ended) are tried
//! again, as is opening while the server is unavailable.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::raw::c_long;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use whsem::{Error, ErrorKind, Semaphore, Ticket};

#[path = "../../tests/support/executor.rs"]
mod executor;

const USAGE: &str = "usage: whsem-worker name NAME\n       \
                     whsem-worker run --name NAME --max N --duration-ms MS --log PATH [--async] [--hold-us US] \
                     [--backend CONNINFO]";

/// How long to wait before trying again when the server cannot be reached.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

struct RunArgs {
    name: String,
    max: u32,
    duration: Duration,
    log: String,
    use_async: bool,
    hold: Duration,
    backend: Option<String>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("name") if args.len() == 2 => name(&args[1]),
        Some("run") => parse_run(&args[1..]).and_then(|a| run(&a)),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("whsem-worker: {message}");
            ExitCode::FAILURE
        }
    }
}

fn name(name: &str) -> Result<(), String> {
    let finalized = whsem::safe_name(name).map_err(|e| e.to_string())?;
    println!("{finalized}");
    Ok(())
}

fn parse_run(args: &[String]) -> Result<RunArgs, String> {
    let mut name = None;
    let mut max = None;
    let mut duration = None;
    let mut log = None;
    let mut use_async = false;
    let mut hold = Duration::from_micros(200);
    let mut backend = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--name" => name = Some(value()?),
            "--max" => max = Some(number(value()?)?),
            "--duration-ms" => duration = Some(Duration::from_millis(number(value()?)?)),
            "--log" => log = Some(value()?),
            "--hold-us" => hold = Duration::from_micros(number(value()?)?),
            "--async" => use_async = true,
            "--backend" => backend = Some(value()?),
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    let missing = |what: &str| format!("{what} is required\n{USAGE}");
    Ok(RunArgs {
        name: name.ok_or_else(|| missing("--name"))?,
        max: u32::try_from(max.ok_or_else(|| missing("--max"))?)
            .map_err(|_| "--max is too large".to_string())?,
        duration: duration.ok_or_else(|| missing("--duration-ms"))?,
        log: log.ok_or_else(|| missing("--log"))?,
        use_async,
        hold,
        backend,
    })
}

fn run(args: &RunArgs) -> Result<(), String> {
    let start = Instant::now();
    let sem = open(args, start)?;
    // O_APPEND: each line is one write() at the end of the file, so lines
    // from many processes never interleave.
    let mut log = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&args.log)
        .map_err(|e| format!("{}: {e}", args.log))?;
    let pid = std::process::id();
    let timeout = Some(Duration::from_millis(5000));
    while start.elapsed() < args.duration {
        let acquired = if args.use_async {
            executor::block_on(sem.acquire_async(timeout))
        } else {
            sem.acquire(timeout)
        };
        let ticket = match acquired {
            Ok(Some(ticket)) => ticket,
            Ok(None) => continue, // no ticket within 5 s: not an error, try again
            // The server restarting, or this wait's session ended.
            Err(e) if retried(&e) => {
                std::thread::sleep(RETRY_PAUSE);
                continue;
            }
            Err(e) => return Err(format!("acquire: {e}")),
        };
        append(&mut log, &format!("acq {pid} rust {}\n", monotonic_ns()))?;
        if let Some(loss) = hold(args, &ticket)? {
            append(&mut log, &format!("lost {pid} rust {}\n", monotonic_ns()))?;
            // Expected: a lost ticket's release says so.
            release(ticket).map_err(|e| format!("release after {loss}: {e}"))?;
            continue;
        }
        append(&mut log, &format!("rel {pid} rust {}\n", monotonic_ns()))?;
        // A loss between the end of the hold and here is told by the
        // release alone: the log already ended the hold.
        release(ticket).map_err(|e| format!("release: {e}"))?;
    }
    sem.close().map_err(|e| format!("close: {e}"))
}

fn open(args: &RunArgs, start: Instant) -> Result<Semaphore, String> {
    let mut options = Semaphore::options();
    if let Some(conninfo) = &args.backend {
        options.backend(conninfo);
    }
    loop {
        match options.open(&args.name, args.max) {
            Ok(sem) => return Ok(sem),
            Err(e) if e.kind() == ErrorKind::Unavailable && start.elapsed() < args.duration => {
                std::thread::sleep(RETRY_PAUSE);
            }
            Err(e) => return Err(format!("open {}: {e}", args.name)),
        }
    }
}

fn retried(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::TicketLost)
}

/// Holds `ticket` for the hold time; on a server, until it is lost if that
/// comes first: `Some(the loss)`.
fn hold(args: &RunArgs, ticket: &Ticket) -> Result<Option<Error>, String> {
    if args.backend.is_none() {
        std::thread::sleep(args.hold);
        return Ok(None);
    }
    let lost = ticket.lost();
    let ended = if args.use_async {
        executor::block_on_timeout(lost, args.hold)
    } else {
        lost.wait_timeout(args.hold)
    };
    match ended {
        None => Ok(None),
        Some(Err(e)) if e.kind() == ErrorKind::TicketLost => Ok(Some(e)),
        Some(Err(e)) => Err(format!("watching the ticket: {e}")),
        Some(Ok(())) => Err("the ticket was released while held".to_string()),
    }
}

/// Releases `ticket`; a loss is no failure (see `hold`).
fn release(ticket: Ticket) -> Result<(), Error> {
    match ticket.release() {
        Err(e) if e.kind() != ErrorKind::TicketLost => Err(e),
        _ => Ok(()),
    }
}

fn append(log: &mut File, line: &str) -> Result<(), String> {
    match log.write(line.as_bytes()) {
        Ok(n) if n == line.len() => Ok(()),
        Ok(n) => Err(format!(
            "short write to the log ({n} of {} bytes)",
            line.len()
        )),
        Err(e) => Err(format!("log: {e}")),
    }
}

#[repr(C)]
struct Timespec {
    tv_sec: c_long, // time_t
    tv_nsec: c_long,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// CLOCK_MONOTONIC in nanoseconds: the clock every language's worker logs,
/// so that lines of different processes can be ordered. (`Instant` reads the
/// same clock but does not expose its value.)
fn monotonic_ns() -> u64 {
    const CLOCK_MONOTONIC: i32 = 1;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
