//! The `argosy` binary: parses the command line and maps errors to one line + exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = argosy::cli::Cli::parse();
    init_logging(cli.log_format());
    match argosy::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr in `format`, filtered by `ARGOSY_LOG` (default `warn`).
fn init_logging(format: argosy::cli::LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("ARGOSY_LOG").unwrap_or_else(|_| "warn".into());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        argosy::cli::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Collectors want bare JSON: no color escapes inside the strings.
        argosy::cli::LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}
