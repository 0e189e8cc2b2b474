//! Compiles `proto/strata/meta/v1/meta.proto` (the meta store's Kv and Raft services) with
//! protox, a protobuf compiler in Rust, so no system `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): a build script compiled in one checkout is reused by
    // cargo from another (CI clones into new paths with a shared target directory).
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let file = "strata/meta/v1/meta.proto";
    println!("cargo:rerun-if-changed={}", root.join(file).display());
    let fds = protox::compile([file], [&root])?;
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        // Values are `bytes::Bytes` end to end, without copies.
        .bytes([".strata.meta.v1"])
        .compile_fds(fds)?;
    Ok(())
}
