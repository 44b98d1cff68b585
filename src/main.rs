//! The `creditd` command line: serve, migrate, healthcheck.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use creditd::app::Application;
use creditd::config::{DatabaseConfig, ServeConfig};
use creditd::telemetry::{self, LogFormat};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    version,
    about = "Turns paid Stripe invoices into exactly one billing credit grant each"
)]
struct Cli {
    /// Log format: json for machines, pretty for people.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "json",
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, serve HTTP and run the fulfilment workers.
    Serve(Box<ServeConfig>),
    /// Apply pending migrations and exit.
    Migrate(DatabaseConfig),
    /// Exit 0 when the local server answers /healthz (for container health checks).
    Healthcheck {
        #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
        listen_addr: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Serve(config) => serve(*config).await,
        Command::Migrate(config) => migrate(config).await,
        Command::Healthcheck { listen_addr } => healthcheck(listen_addr).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "creditd failed");
            eprintln!("creditd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    let stop = CancellationToken::new();
    tokio::spawn(stop_on_signal(stop.clone()));
    app.run_until_stopped(stop).await
}

async fn migrate(config: DatabaseConfig) -> anyhow::Result<()> {
    let pool = creditd::db::connect(&config).await?;
    creditd::db::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn healthcheck(listen_addr: SocketAddr) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{}/healthz", listen_addr.port());
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?;
    client.get(&url).send().await?.error_for_status()?;
    Ok(())
}

async fn stop_on_signal(stop: CancellationToken) {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
    }
    stop.cancel();
}
