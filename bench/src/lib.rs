//! Load generators and benchmarks for l2x. Every figure carries its method: seeded data,
//! setup outside the timed part, HDR percentiles up to p99.99 and max, the machine and the
//! pinning stated. Results are kept in `docs/BENCHMARKS.md`.
//!
//! [`workload`] generates seeded command streams whose cancels and amends always target
//! live orders.

pub mod workload;
