//! `strata`: every component in one process by default, or the ones named by `--target`.

mod app;
mod auth;
mod clients;
mod config;
mod http_server;
mod modules;
#[cfg(test)]
mod secrets_tests;
mod wiring;

use clap::Parser;
use std::path::PathBuf;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Strata: long-term storage for Prometheus metrics.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about)]
pub struct Cli {
    /// YAML configuration file; every field has a default (see --print-default-config).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Comma-separated components to run.
    #[arg(long, default_value = "all", value_name = "TARGET")]
    pub target: String,
    /// Overrides server.http_listen_address.
    #[arg(long, value_name = "HOST:PORT")]
    pub http_listen_address: Option<String>,
    /// Overrides data_dir (default ./data).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Overrides server.log_level.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Prints the configuration with every default, then exits.
    #[arg(long)]
    pub print_default_config: bool,
    /// Validates the configuration and exits.
    #[arg(long)]
    pub check_config: bool,
    /// Reads a password from standard input, prints its argon2id hash for the users file
    /// (`password_hash`) and exits.
    #[arg(long)]
    pub hash_password: bool,
    /// Reads a bearer token from standard input, prints its hash for the users file
    /// (`bearer_token_hash: sha256:...`) and exits.
    #[arg(long)]
    pub hash_token: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Tools that run instead of the server.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Rule tools.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum RulesCommand {
    /// Runs rule unit-test files (the format of `promtool test rules`); exits 1 if any fails.
    Test {
        /// Unit-test files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Rules {
        command: RulesCommand::Test { files },
    }) = &cli.command
    {
        return rules_test(files);
    }
    match app::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// `strata rules test FILE...`: promtool's report on standard output, exit status 1 when a
/// test failed.
fn rules_test(files: &[PathBuf]) -> std::process::ExitCode {
    // Multi-threaded: alert templates that `query` block their worker while the query runs.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout();
    if rt.block_on(strata_ruler::unittest::run_files(files, &mut out)) {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
