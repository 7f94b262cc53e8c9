//! The `velvet` binary: reads the configuration and runs a node.

use std::io::Write;
use std::process::ExitCode;

use velvet::{App, Settings};

/// sysexits' EX_CONFIG: the configuration is wrong, retrying will not help.
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve(),
        Some("-h" | "--help" | "help") => {
            println!(
                "usage: velvet [serve]\n\nSettings: config/default.toml, then \
                      config/$VELVET_ENV.toml, then VELVET__SECTION__KEY variables."
            );
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("velvet: unknown command `{other}` (try --help)");
            ExitCode::from(2)
        }
    }
}

fn serve() -> ExitCode {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("velvet: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    velvet::telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("velvet: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "node failed to start");
            eprintln!("velvet: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

async fn run(settings: Settings) -> Result<(), velvet::app::StartError> {
    let node = App::build(settings).await?.spawn().await?;
    // Scripts that start a node on port 0 read this line to find it.
    println!("listening on {}", node.addr);
    let _ = std::io::stdout().flush();
    tracing::info!(addr = %node.addr, "listening");
    shutdown_signal().await;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
