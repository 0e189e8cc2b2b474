//! Integration tests of strata-alertmanager (one binary).

mod amtool;
mod common;
mod differential;
mod metrics;
mod notifiers;
mod restart;
mod ring;
mod tenants;
mod time_intervals;
