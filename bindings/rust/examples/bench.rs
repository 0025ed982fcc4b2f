// SPDX-License-Identifier: MIT
//! What the safe API costs over calling libwhsem directly: an uncontended
//! try-acquire + release, per pair, through `Semaphore::try_acquire` and
//! dropping the `Ticket`, next to the same two C calls made directly through
//! `whsem::sys` (an `extern "C"` call is a plain C call: that is the C
//! figure). Both run in the same process, on the same semaphore, with
//! repetitions interleaved, so the ratio is robust to a noisy machine.
//!
//!     cargo run --release --example bench -- [--pairs N] [--reps R]
//!
//! With `--backend CONNINFO` it measures instead a PostgreSQL-backed name's
//! uncontended try-acquire + release through the safe API as
//! `whsem_bench_pg --parts a` measures the C calls (figure (a): every pair
//! timed, nearest-rank percentiles, after a warm-up), so that the two
//! programs can be run in turns against one server:
//!
//!     cargo run --release --example bench -- --backend CONNINFO [--iterations N] [--warmup N]
//!
//! (bench.sh builds, runs this and, if present, the core C benchmark; with
//! BACKEND=pg, this and whsem_bench_pg in turns on a cluster of its own.)

use std::hint::black_box;
use std::time::Instant;

use whsem::{sys, RemoveOptions, Semaphore};

fn main() {
    let mut pairs: u64 = 2_000_000;
    let mut reps: usize = 9;
    let mut backend = None;
    let mut iterations: usize = 2000;
    let mut warmup: usize = 200;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--backend" {
            backend = Some(
                it.next()
                    .expect("a connection string after --backend")
                    .clone(),
            );
            continue;
        }
        let mut value = || {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .expect("a number after the flag")
        };
        match a.as_str() {
            "--pairs" => pairs = value(),
            "--reps" => reps = value() as usize,
            "--iterations" => iterations = value().max(1) as usize,
            "--warmup" => warmup = value() as usize,
            "--bench" => {} // passed by `cargo bench`-style runners
            other => panic!(
                "unknown argument {other}; use --pairs N --reps R, or --backend CONNINFO \
                 --iterations N --warmup N"
            ),
        }
    }
    if let Some(conninfo) = backend {
        on_server(&conninfo, iterations, warmup);
        return;
    }

    let name = format!("whsem-rs-bench-{}", std::process::id());
    let sem = Semaphore::open(&name, 1).expect("open");
    let raw = sem.as_raw();

    let run_raw = |n: u64| -> f64 {
        let start = Instant::now();
        for _ in 0..n {
            let mut t = 0;
            // SAFETY: a valid out-pointer; the handle is live.
            let st = unsafe { sys::whsem_acquire(black_box(raw), 0, 0, &mut t) };
            assert_eq!(st, sys::WHSEM_OK);
            // SAFETY: the ticket just acquired.
            let st = unsafe { sys::whsem_release(t) };
            assert_eq!(st, sys::WHSEM_OK);
        }
        start.elapsed().as_nanos() as f64 / n as f64
    };
    let run_safe = |n: u64| -> f64 {
        let sem = black_box(&sem);
        let start = Instant::now();
        for _ in 0..n {
            let ticket = sem
                .try_acquire()
                .expect("try_acquire")
                .expect("the ticket is free");
            drop(black_box(ticket));
        }
        start.elapsed().as_nanos() as f64 / n as f64
    };

    // Warm up caches, the CPU's frequency and the library's handle table.
    run_raw(pairs / 10 + 1);
    run_safe(pairs / 10 + 1);

    let mut raw_ns = Vec::new();
    let mut safe_ns = Vec::new();
    let mut ratios = Vec::new();
    for rep in 0..reps {
        // Alternate which goes first, so neither always gets the warmer start.
        let (r, s) = if rep % 2 == 0 {
            let r = run_raw(pairs);
            (r, run_safe(pairs))
        } else {
            let s = run_safe(pairs);
            (run_raw(pairs), s)
        };
        raw_ns.push(r);
        safe_ns.push(s);
        ratios.push(s / r);
    }
    drop(sem);
    let _ = RemoveOptions::new().force(true).remove(&name);

    let (raw_med, safe_med, ratio_med) = (
        median(&mut raw_ns),
        median(&mut safe_ns),
        median(&mut ratios),
    );
    println!("libwhsem {} — uncontended try-acquire + release, {pairs} pairs x {reps} repetitions (medians)", whsem::library_version());
    println!(
        "  C (direct extern \"C\" calls):      {raw_med:7.2} ns/pair   (min {:.2}, max {:.2})",
        min(&raw_ns),
        max(&raw_ns)
    );
    println!(
        "  Rust safe API (try_acquire+drop): {safe_med:7.2} ns/pair   (min {:.2}, max {:.2})",
        min(&safe_ns),
        max(&safe_ns)
    );
    println!(
        "  ratio Rust/C: {ratio_med:.3}x (median of per-repetition ratios; min {:.3}, max {:.3})",
        min(&ratios),
        max(&ratios)
    );
    println!(
        "  target <= 1.2x: {}",
        if ratio_med <= 1.2 { "PASS" } else { "MISS" }
    );
}

/// Figure (a) of whsem_bench_pg through the safe API: the same name shape,
/// max count, warm-up and percentiles, and a `RESULT` line like its
/// `--results` ones for bench.sh.
fn on_server(conninfo: &str, iterations: usize, warmup: usize) {
    let name = format!("bench-pg-a-rs-{}", std::process::id());
    let sem = Semaphore::options()
        .backend(conninfo)
        .open(&name, 2)
        .unwrap_or_else(|e| panic!("open {name}: {e}"));
    let mut us = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let start = Instant::now();
        let ticket = sem
            .try_acquire()
            .expect("try_acquire")
            .expect("the ticket is free");
        drop(black_box(ticket));
        if i >= warmup {
            us.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    us.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (nearest_rank(&us, 50.0), nearest_rank(&us, 99.0));
    eprintln!(
        "(a) Rust safe API, uncontended try-acquire + release: median {p50:.0} us, p99 {p99:.0} us \
         ({iterations} pairs after {warmup} warm-up)"
    );
    println!("RESULT rust a_median_us {p50:.3}");
}

/// The nearest-rank percentile of sorted values, as whsem_bench_pg's.
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}
