//! The `herald-loadgen` binary: see the `herald_loadgen` crate docs.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use herald_loadgen::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(execute(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald-loadgen: {e:#}");
            ExitCode::from(4)
        }
    }
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => {
            let json = args.server.json.clone();
            let report = herald_loadgen::run(args).await?;
            print!("{}", report.table());
            write_json(json.as_deref(), &report)?;
            Ok(exit_code(report.is_clean(), report.has_failures()))
        }
        Command::Catchup(args) => {
            let json = args.server.json.clone();
            let report = herald_loadgen::catchup(args).await?;
            print!("{}", report.table());
            write_json(json.as_deref(), &report)?;
            Ok(exit_code(report.is_clean(), report.has_failures()))
        }
        Command::Compare(args) => {
            let read = |path: &std::path::Path| -> anyhow::Result<serde_json::Value> {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
            };
            let (a, b) = (read(&args.a)?, read(&args.b)?);
            let (name_a, name_b) = args.names.split_once(',').unwrap_or(("a", "b"));
            print!("{}", herald_loadgen::compare((name_a, &a), (name_b, &b)));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// 1 for delivery anomalies (what scripts check), else 3 for failed
/// connections or publishes, else 0.
fn exit_code(ok: bool, failed: bool) -> ExitCode {
    match (ok, failed) {
        (false, _) => ExitCode::from(1),
        (true, true) => ExitCode::from(3),
        (true, false) => ExitCode::SUCCESS,
    }
}

fn write_json(
    path: Option<&std::path::Path>,
    report: &impl serde::Serialize,
) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let text = serde_json::to_string_pretty(report).context("serializing the report")?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
