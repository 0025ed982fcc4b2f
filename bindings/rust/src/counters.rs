// SPDX-License-Identifier: MIT
//! The counters of a name beyond [`Info`](crate::Info)'s: the wait-time
//! histogram and the recent history of waiters.

use std::time::Duration;

use crate::error::Error;
use crate::semaphore::Semaphore;
use crate::sys;

/// How long the acquisitions of a name that found no ticket free waited
/// ([`Info::waits`](crate::Info::waits) of them), over every process and
/// since the name was created, in log-scale buckets: the first counts
/// waits under 1.024 µs, each next one waits up to twice as long as the
/// one before, and the last counts waits of 2⁴⁰ ns (about 18 minutes) or
/// more. From [`Semaphore::wait_histogram`].
///
/// ```
/// # fn main() -> Result<(), whsem::Error> {
/// # let name = format!("doc-histogram-{}", std::process::id());
/// let sem = whsem::Semaphore::open(&name, 1)?;
/// let histogram = sem.wait_histogram()?;
/// match histogram.percentile(0.99) {
///     Some(p99) => println!("99% of {} waits took {p99:?} or less", histogram.total()),
///     None => println!("nobody has waited yet"),
/// }
/// # drop(sem);
/// # whsem::remove(&name)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WaitHistogram {
    /// The buckets, shortest waits first.
    pub buckets: Vec<WaitBucket>,
}

/// One bucket of a [`WaitHistogram`]: the waits that lasted from `min` up
/// to, not including, `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WaitBucket {
    /// The shortest wait it counts.
    pub min: Duration,
    /// Where its waits end (exclusive); `None` for the last bucket, which
    /// has no upper bound.
    pub max: Option<Duration>,
    /// The waits it counts.
    pub count: u64,
}

impl WaitHistogram {
    /// Gives `counts`, as `whsem_wait_histogram` orders them (see
    /// [`sys::WHSEM_WAIT_BUCKETS`]), their bounds.
    pub(crate) fn from_counts(counts: &[u64]) -> WaitHistogram {
        let last = counts.len().saturating_sub(1);
        let buckets = counts
            .iter()
            .enumerate()
            .map(|(i, &count)| WaitBucket {
                min: if i == 0 {
                    Duration::ZERO
                } else {
                    Duration::from_nanos(1 << (9 + i))
                },
                max: (i < last).then(|| Duration::from_nanos(1 << (10 + i))),
                count,
            })
            .collect();
        WaitHistogram { buckets }
    }

    /// The number of waits it counts.
    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b.count).sum()
    }

    /// An estimate of the wait that a fraction `p` (0 ... 1) of the waits
    /// did not exceed: `percentile(0.99)` is the 99th percentile. The
    /// bucket that holds it is known exactly; inside it the waits are taken
    /// as spread evenly on the log scale (the first bucket: on a linear
    /// one), so the estimate is off by at most a factor of two. A wait in
    /// the last bucket, which has no upper bound, is reported as that
    /// bucket's `min`. `None` when there are no waits or `p` is outside
    /// 0 ... 1.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let total = self.total();
        if total == 0 || !(0.0..=1.0).contains(&p) {
            return None;
        }
        let rank = p * total as f64;
        let mut below = 0.0;
        let mut last = None;
        for bucket in self.buckets.iter().filter(|b| b.count > 0) {
            let n = bucket.count as f64;
            if below + n >= rank {
                return Some(bucket.at((rank - below) / n));
            }
            below += n;
            last = Some(bucket);
        }
        // Rounding left the rank beyond the sum: the longest waits.
        last.map(|bucket| bucket.at(1.0))
    }
}

impl WaitBucket {
    /// The wait a fraction `f` (0 ... 1) of the way through the bucket.
    fn at(&self, f: f64) -> Duration {
        match self.max {
            None => self.min,
            Some(max) if self.min.is_zero() => max.mul_f64(f),
            Some(_) => self.min.mul_f64(f.exp2()),
        }
    }
}

impl Semaphore {
    /// The histogram of the name's wait times, over every process and since
    /// the name was created. A backend that keeps no counters fails with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn wait_histogram(&self) -> Result<WaitHistogram, Error> {
        let handle = self.as_raw();
        // SAFETY: buffer pointer and capacity describe a live allocation.
        let counts = fill_series(
            sys::WHSEM_WAIT_BUCKETS as usize,
            |buf, capacity, count| unsafe {
                sys::whsem_wait_histogram(handle, buf, capacity, count)
            },
        )?;
        Ok(WaitHistogram::from_counts(&counts))
    }

    /// How many acquisitions of the name waited, over every process, in
    /// each second of the recent past: the most seen during that second,
    /// oldest first, the last element being the current second. The
    /// backend decides how many seconds it keeps (60 or more). A backend
    /// that keeps no counters fails with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn waiters_history(&self) -> Result<Vec<u32>, Error> {
        let handle = self.as_raw();
        // SAFETY: buffer pointer and capacity describe a live allocation.
        fill_series(64, |buf, capacity, count| unsafe {
            sys::whsem_waiters_history(handle, buf, capacity, count)
        })
    }
}

/// Runs an "ask, then fill" call that answers numbers, starting with room
/// for `guess` of them.
fn fill_series<T: Copy + Default>(
    guess: usize,
    mut call: impl FnMut(*mut T, usize, &mut usize) -> i32,
) -> Result<Vec<T>, Error> {
    let mut buf = vec![T::default(); guess];
    loop {
        let mut count = 0usize;
        let status = call(buf.as_mut_ptr(), buf.len(), &mut count);
        if status != sys::WHSEM_OK {
            return Err(Error::last(status));
        }
        if count <= buf.len() {
            buf.truncate(count);
            return Ok(buf);
        }
        buf.resize(count, T::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_follow_the_header() {
        let h = WaitHistogram::from_counts(&[0; sys::WHSEM_WAIT_BUCKETS as usize]);
        assert_eq!(h.buckets.len(), 32);
        assert_eq!(h.buckets[0].min, Duration::ZERO);
        assert_eq!(h.buckets[0].max, Some(Duration::from_nanos(1024)));
        for pair in h.buckets.windows(2) {
            assert_eq!(Some(pair[1].min), pair[0].max, "{pair:?}");
        }
        for b in &h.buckets[1..31] {
            assert_eq!(b.max, Some(b.min * 2), "{b:?}");
        }
        assert_eq!(h.buckets[31].min, Duration::from_nanos(1 << 40));
        assert_eq!(h.buckets[31].max, None);
        assert_eq!(h.percentile(0.5), None, "no waits, no median");
    }

    #[test]
    fn percentiles_interpolate_inside_a_bucket_on_its_scale() {
        let mut counts = [0u64; 32];
        counts[0] = 4; // four waits under 1.024 µs
        counts[11] = 4; // four of 2^20 ... 2^21 ns
        let h = WaitHistogram::from_counts(&counts);
        assert_eq!(h.total(), 8);
        for (p, want) in [
            (0.0, 0),
            (0.25, 512),        // half-way through the first bucket, linearly
            (0.5, 1024),        // the first bucket's end
            (0.625, 1_246_974), // 2^20 ns × 2^0.25
            (0.75, 1_482_910),  // 2^20 ns × √2: half-way on the log scale
            (1.0, 2_097_152),   // the last wait's bucket's end
        ] {
            let got = h.percentile(p).expect("waits are counted").as_nanos() as i128;
            assert!(
                (got - want).abs() <= 1,
                "percentile({p}) = {got} ns, want {want}"
            );
        }
        for p in [-0.1, 1.01, f64::NAN] {
            assert_eq!(h.percentile(p), None, "percentile({p})");
        }
        counts[31] = 100;
        assert_eq!(
            WaitHistogram::from_counts(&counts).percentile(0.99),
            Some(Duration::from_nanos(1 << 40)),
            "among the longest waits: the last bucket's start"
        );
    }
}
