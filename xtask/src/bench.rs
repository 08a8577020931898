//! The benches: `detection` (how each rollout policy treats a bad and a good version on production-like
//! traffic, over the [`scenarios`]), `perf` (what one controller call costs) and `rollouts` (whole rollouts
//! on the local stack). Each prints a table; none is a timed test.

pub mod detection;
pub mod perf;
pub mod rollouts;
mod scenarios;
