//! Careful paired timing: each case's two sides run in the same process,
//! interleaved sample by sample (A, B, A, B, …), so a noisy neighbour on a shared
//! machine slows both sides alike and the *ratio* stays meaningful even when
//! absolute times drift.
//!
//! A sample runs one side for a calibrated number of iterations (enough for
//! about `sample_time`); a side's estimate is the median of its per-iteration
//! sample times (robust to the odd descheduled sample, as criterion's
//! estimates are).

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long and how often to sample.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Warm-up per side before calibration.
    pub warm_up: Duration,
    /// Target time of one sample.
    pub sample_time: Duration,
    /// Samples per side.
    pub samples: usize,
}

impl Plan {
    /// The quick plan of the documented command (the whole suite in about a minute).
    pub fn quick() -> Plan {
        Plan { warm_up: Duration::from_millis(20), sample_time: Duration::from_millis(2), samples: 21 }
    }

    /// A longer plan for steadier numbers (`-- --full`).
    pub fn full() -> Plan {
        Plan { warm_up: Duration::from_millis(200), sample_time: Duration::from_millis(10), samples: 51 }
    }
}

/// Iterations that take about `target`, found by doubling.
fn calibrate<R>(f: &mut impl FnMut() -> R, target: Duration) -> u64 {
    let mut iters = 1u64;
    loop {
        let started = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        let took = started.elapsed();
        if took >= target || iters >= 1 << 30 {
            let per_iter = took.as_nanos().max(1) as f64 / iters as f64;
            return ((target.as_nanos() as f64 / per_iter).ceil() as u64).max(1);
        }
        iters *= 2;
    }
}

fn warm<R>(f: &mut impl FnMut() -> R, time: Duration) {
    let started = Instant::now();
    while started.elapsed() < time {
        black_box(f());
    }
}

fn sample<R>(f: &mut impl FnMut() -> R, iters: u64) -> f64 {
    let started = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    started.elapsed().as_nanos() as f64 / iters as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
}

/// Median ns per iteration of `a` and of `b`, sampled interleaved.
pub fn paired<RA, RB>(plan: Plan, mut a: impl FnMut() -> RA, mut b: impl FnMut() -> RB) -> (f64, f64) {
    warm(&mut a, plan.warm_up);
    warm(&mut b, plan.warm_up);
    let iters_a = calibrate(&mut a, plan.sample_time);
    let iters_b = calibrate(&mut b, plan.sample_time);
    let mut sa = Vec::with_capacity(plan.samples);
    let mut sb = Vec::with_capacity(plan.samples);
    for _ in 0..plan.samples {
        sa.push(sample(&mut a, iters_a));
        sb.push(sample(&mut b, iters_b));
    }
    (median(sa), median(sb))
}
