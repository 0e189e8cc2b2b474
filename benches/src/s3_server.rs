//! `s3-server`: an S3-compatible server (the `s3s-fs` crate) on a local directory, for benchmarks
//! that need a real S3 endpoint on loopback. Objects are files under `<root>/<bucket>/`, so sizes
//! can be read straight from the directory.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result};
use clap::Parser;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "s3-server",
    about = "S3-compatible server on a directory (s3s-fs)"
)]
struct Cli {
    /// Directory holding the buckets.
    #[arg(long)]
    root: PathBuf,
    /// Bucket to create.
    #[arg(long, default_value = "strata")]
    bucket: String,
    /// Listen address (loopback).
    #[arg(long, default_value = "127.0.0.1:19600")]
    listen: String,
    #[arg(long, default_value = "bench")]
    access_key: String,
    #[arg(long, default_value = "benchsecret")]
    secret_key: String,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(cli.root.join(&cli.bucket))
        .with_context(|| format!("cannot create {}", cli.root.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let fs = s3s_fs::FileSystem::new(&cli.root)
            .map_err(|e| anyhow::anyhow!("s3s-fs on {}: {e:?}", cli.root.display()))?;
        let mut b = s3s::service::S3ServiceBuilder::new(fs);
        b.set_auth(s3s::auth::SimpleAuth::from_single(
            cli.access_key.as_str(),
            cli.secret_key.as_str(),
        ));
        let service = b.build();
        let listener = tokio::net::TcpListener::bind(&cli.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cli.listen))?;
        println!("s3-server listening on http://{}", listener.local_addr()?);
        let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        loop {
            tokio::select! {
                r = listener.accept() => {
                    let Ok((sock, _)) = r else { continue };
                    let conn = http.serve_connection(TokioIo::new(sock), service.clone()).into_owned();
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        Ok(())
    })
}
