//! Integration tests of strata-alertmanager (one binary).

mod amtool;
mod differential;
