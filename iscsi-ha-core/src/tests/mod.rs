//! Planner and reconciler tests with in-memory fake ports (the only place fakes live).

pub(crate) mod fakes;
mod faults;
mod operator;
mod plan_order;
pub(crate) mod properties;
mod reconnect;
mod refresh;
