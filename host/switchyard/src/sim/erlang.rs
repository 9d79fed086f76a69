//! Erlang C (M/M/N), the yardstick for the simulator: probability of waiting,
//! service level and ASA for Poisson arrivals, exponential handle times and no
//! abandons (see DESIGN.md, "Erlang C").

/// Erlang C figures for one queue.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ErlangC {
    /// Offered load A = λ·AHT, erlangs.
    pub load_erlangs: f64,
    /// Agents N.
    pub agents: u32,
    /// Probability that an arrival waits.
    pub p_wait: f64,
    /// Share answered within the threshold.
    pub service_level: f64,
    /// Average speed of answer, seconds.
    pub asa_s: f64,
    /// A/N.
    pub occupancy: f64,
}

/// Erlang B by the recursion B(0)=1, B(k) = A·B(k−1) / (k + A·B(k−1)).
pub fn erlang_b(load: f64, agents: u32) -> f64 {
    let mut b = 1.0;
    for k in 1..=agents {
        b = load * b / (k as f64 + load * b);
    }
    b
}

/// Erlang C for `per_hour` arrivals, mean handle time `aht_s`, `agents` agents
/// and service-level threshold `threshold_s`. `None` when the load is not below
/// the number of agents (the queue grows without bound).
pub fn erlang_c(per_hour: f64, aht_s: f64, agents: u32, threshold_s: f64) -> Option<ErlangC> {
    let load = per_hour / 3600.0 * aht_s;
    let n = agents as f64;
    if !(load > 0.0 && load < n) {
        return None;
    }
    let b = erlang_b(load, agents);
    let p_wait = n * b / (n - load * (1.0 - b));
    let service_level = 1.0 - p_wait * (-(n - load) * threshold_s / aht_s).exp();
    let asa_s = p_wait * aht_s / (n - load);
    Some(ErlangC { load_erlangs: load, agents, p_wait, service_level, asa_s, occupancy: load / n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_worked_case() {
        // λ = 4.2/min, AHT = 2 min, N = 12, t = 20 s.
        let e = erlang_c(252.0, 120.0, 12, 20.0).unwrap();
        assert!((e.load_erlangs - 8.4).abs() < 1e-9);
        assert!((e.p_wait - 0.184).abs() < 0.001, "{e:?}");
        assert!((e.service_level - 0.899).abs() < 0.001, "{e:?}");
        assert!((e.asa_s - 6.1).abs() < 0.05, "{e:?}");
        assert!((e.occupancy - 0.70).abs() < 1e-9);
        assert!(erlang_c(252.0, 120.0, 8, 20.0).is_none());
    }
}
