//! The `velvet` binary: reads the configuration and runs a node.

use std::io::Write;
use std::process::ExitCode;

use velvet::{App, Settings};

/// sysexits' EX_CONFIG: the configuration is wrong, retrying will not help.
const EXIT_CONFIG: u8 = 78;
/// sysexits' EX_UNAVAILABLE: a service the node needs cannot be reached.
const EXIT_UNAVAILABLE: u8 = 69;
/// sysexits' EX_OSERR: the system refused, e.g. the port is taken.
const EXIT_OSERR: u8 = 71;

const USAGE: &str = "usage:
  velvet [serve]               run a node
  velvet verify-draw FILE      recompute a draw from its saved proof (JSON)
  velvet loadtest [FLAGS]      drive a node with the shape of a launch (--help)

Settings: config/default.toml, then config/$VELVET_ENV.toml, then
VELVET__SECTION__KEY environment variables.";

/// Recomputes a saved proof; exit 0 only if everything matches.
fn verify_draw(file: &str) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("velvet: cannot read {file}: {e}");
            return ExitCode::from(2);
        }
    };
    let proof: velvet::draw::Proof = match serde_json::from_str(&text) {
        Ok(proof) => proof,
        Err(e) => {
            eprintln!("velvet: {file} is not a draw proof: {e}");
            return ExitCode::from(2);
        }
    };
    match velvet::draw::verify(&proof) {
        Ok(()) => {
            println!(
                "ok: draw {} ({}) recomputed: {} entrants, {} winners, seed matches its \
                 commitment",
                proof.draw_id,
                proof.algorithm,
                proof.entrant_count,
                proof.winner_ids.len()
            );
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("MISMATCH: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve(),
        Some("verify-draw") => match args.get(1) {
            Some(file) => verify_draw(file),
            None => {
                eprintln!("usage: velvet verify-draw PROOF.json");
                ExitCode::from(2)
            }
        },
        Some("loadtest") => velvet::loadtest::main(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
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
            use velvet::app::StartError as E;
            ExitCode::from(match e {
                E::Store(_) | E::Migration(_) => EXIT_UNAVAILABLE,
                E::Bind { .. } => EXIT_OSERR,
                E::Config { .. } | E::Experiences { .. } => EXIT_CONFIG,
            })
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
