//! Compiles the component RPCs (`proto/strata/{query,ingester,storegateway}/v1`) with protox, a
//! protobuf compiler in Rust, so no system `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): a build script compiled in one checkout is reused by
    // cargo from another (CI clones into new paths with a shared target directory).
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "strata/query/v1/query.proto",
        "strata/ingester/v1/ingester.proto",
        "strata/storegateway/v1/storegateway.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(files, [&root])?;
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        // Pushed batches and chunks stay slices of the received buffer instead of copies.
        .bytes([
            ".strata.ingester.v1.PushRequest.write_request",
            ".strata.query.v1.Chunk.data",
        ])
        .compile_fds(fds)?;
    Ok(())
}
