//! Native test harness (placeholder).
