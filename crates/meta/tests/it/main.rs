//! Integration tests of strata-meta: the conformance suite on every backend, and the Raft
//! cluster's failure and recovery procedures, with real gRPC on 127.0.0.1.

mod cluster;
mod conformance;
mod support;
mod tls;
