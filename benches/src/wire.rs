//! Remote write 1.0 messages: the prost types `strata-proto` generates from proto/prometheus/*.proto.

pub use strata_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
