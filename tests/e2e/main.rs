//! End-to-end tests: each starts the real `sandflow` host on 127.0.0.1:0 and
//! drives it over HTTP with components built from `examples/` and
//! `tests/fixtures/`.

mod auth;
mod automations;
mod bad_input;
mod cache;
mod clone;
mod concurrency;
mod containment;
mod contract;
mod crash;
mod diagram;
mod egress;
mod failures;
mod floods;
mod foundation;
mod fuzz;
mod harness;
mod hostile;
mod javascript;
mod limits;
mod migrate;
mod netns;
mod observe;
mod optional;
mod otlp;
mod outputs;
mod python;
mod query;
mod remote;
mod restart;
mod secrets;
mod shapes;
mod store_faults;
mod usage;
