//! The `argosy` binary: parses the command line and maps errors to one line + exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = argosy::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ARGOSY_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match argosy::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
