//! Distributions of handle times and patience: exponential, lognormal (given
//! mean and standard deviation), fixed and uniform, in seconds.

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use serde::Deserialize;

/// A distribution as written in a scenario: `{ dist = "exponential", mean_s = 120 }`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum DistSpec {
    /// Exponential with the given mean.
    Exponential {
        /// Mean, seconds.
        mean_s: f64,
    },
    /// Lognormal with the given mean and standard deviation (of the values, not
    /// of their logarithm).
    Lognormal {
        /// Mean, seconds.
        mean_s: f64,
        /// Standard deviation, seconds.
        sd_s: f64,
    },
    /// Always the same value.
    Fixed {
        /// The value, seconds.
        #[serde(alias = "mean_s")]
        value_s: f64,
    },
    /// Uniform between two values.
    Uniform {
        /// Lower bound, seconds.
        min_s: f64,
        /// Upper bound, seconds.
        max_s: f64,
    },
}

impl DistSpec {
    /// The mean, seconds.
    pub fn mean_s(&self) -> f64 {
        match *self {
            DistSpec::Exponential { mean_s } | DistSpec::Lognormal { mean_s, .. } => mean_s,
            DistSpec::Fixed { value_s } => value_s,
            DistSpec::Uniform { min_s, max_s } => (min_s + max_s) / 2.0,
        }
    }

    /// Check the parameters.
    pub fn check(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        match *self {
            DistSpec::Exponential { mean_s } if ok(mean_s) && mean_s > 0.0 => Ok(()),
            DistSpec::Lognormal { mean_s, sd_s } if ok(mean_s) && mean_s > 0.0 && ok(sd_s) => Ok(()),
            DistSpec::Fixed { value_s } if ok(value_s) => Ok(()),
            DistSpec::Uniform { min_s, max_s } if ok(min_s) && ok(max_s) && min_s <= max_s => Ok(()),
            other => Err(format!("invalid parameters {other:?} (means must be positive, values 0 or more)")),
        }
    }

    /// A sampler (parameters checked by [`DistSpec::check`]).
    pub fn sampler(&self) -> Sampler {
        match *self {
            DistSpec::Exponential { mean_s } => {
                Exp::new(1.0 / mean_s.max(f64::MIN_POSITIVE)).map(Sampler::Exp).unwrap_or(Sampler::Fixed(mean_s))
            }
            DistSpec::Lognormal { mean_s, sd_s } => {
                let sigma2 = (1.0 + (sd_s * sd_s) / (mean_s * mean_s)).ln();
                let mu = mean_s.ln() - sigma2 / 2.0;
                LogNormal::new(mu, sigma2.sqrt()).map(Sampler::LogNormal).unwrap_or(Sampler::Fixed(mean_s))
            }
            DistSpec::Fixed { value_s } => Sampler::Fixed(value_s),
            DistSpec::Uniform { min_s, max_s } => Sampler::Uniform(min_s, max_s),
        }
    }
}

/// A ready-to-draw distribution.
#[derive(Debug, Clone, Copy)]
pub enum Sampler {
    /// Exponential.
    Exp(Exp<f64>),
    /// Lognormal.
    LogNormal(LogNormal<f64>),
    /// Constant.
    Fixed(f64),
    /// Uniform.
    Uniform(f64, f64),
}

impl Sampler {
    /// Draw seconds.
    pub fn sample_s<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            Sampler::Exp(d) => d.sample(rng),
            Sampler::LogNormal(d) => d.sample(rng),
            Sampler::Fixed(v) => *v,
            Sampler::Uniform(lo, hi) => lo + (hi - lo) * rng.random::<f64>(),
        }
    }

    /// Draw milliseconds (rounded).
    pub fn sample_ms<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        (self.sample_s(rng) * 1000.0).round().max(0.0) as u64
    }
}
