//! Tests of the scheduler's transitions, run in-process on a temporary
//! store (no host process, no sandbox): `sim.rs` drives the scheduler as a
//! runner would, `shapes.rs` checks the graph shapes users run, `props.rs`
//! random graphs built the way guests build them, `automations.rs`
//! schedules on an injected clock, `concurrency.rs` concurrency limits.

mod automations;
mod concurrency;
mod optional;
mod props;
mod shapes;
mod sim;
