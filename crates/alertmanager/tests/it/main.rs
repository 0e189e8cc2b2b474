//! Integration tests of strata-alertmanager (one binary).

mod amtool;
mod bucket;
mod common;
mod differential;
mod metrics;
mod notifiers;
mod restart;
mod ring;
mod security;
mod tenants;
mod time_intervals;
