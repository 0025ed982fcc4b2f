//! What the safe API costs over calling libwhsem directly: an uncontended
//! try-acquire + release, per pair, through `Semaphore::try_acquire` and
//! dropping the `Ticket`, next to the same two C calls made directly through
//! `whsem::sys` (an `extern "C"` call is a plain C call: that is the C
//! figure). Both run in the same process, on the same semaphore, with
//! repetitions interleaved, so the ratio is robust to a noisy machine.
//!
//!     cargo run --release --example bench -- [--pairs N] [--reps R]
//!
//! (bench.sh builds, runs this and, if present, the core C benchmark.)

use std::hint::black_box;
use std::time::Instant;

use whsem::{sys, RemoveOptions, Semaphore};

fn main() {
    let mut pairs: u64 = 2_000_000;
    let mut reps: usize = 9;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .expect("a number after the flag")
        };
        match a.as_str() {
            "--pairs" => pairs = value(),
            "--reps" => reps = value() as usize,
            "--bench" => {} // passed by `cargo bench`-style runners
            other => panic!("unknown argument {other}; use --pairs N --reps R"),
        }
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
