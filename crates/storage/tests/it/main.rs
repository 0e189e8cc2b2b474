//! Integration tests of the block format and the bucket: a stock Parquet reader (pyarrow) reads
//! a block Strata wrote, and the bucket behaves the same on the local filesystem and on a real
//! S3-compatible server (s3s-fs, run in-process on 127.0.0.1).

mod buckets;
mod fixtures;
mod pyarrow;
