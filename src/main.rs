//! The `creditd` command line: serve, migrate, healthcheck, the operator tools resync and replay,
//! and (feature `sandbox`) the Stripe sandbox and the demo.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use creditd::admin::resync::Source;
use creditd::admin::resync_request::{ResyncRequest, Time};
use creditd::app::Application;
use creditd::config::{AdminCliConfig, DatabaseConfig, ServeConfig};
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
    /// Catch up with Stripe: record every event in a time range (or match paid invoices) through
    /// the webhook pipeline, in the foreground. The running servers' workers create the grants.
    Resync {
        #[command(flatten)]
        config: Box<AdminCliConfig>,
        /// Start of the range: unix seconds or RFC 3339 (events: at most 30 days ago).
        #[arg(long)]
        since: String,
        /// End of the range: unix seconds or RFC 3339; default now.
        #[arg(long)]
        until: Option<String>,
        /// Event types, comma-separated (default invoice.paid).
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// Only events whose webhook delivery has not succeeded.
        #[arg(long)]
        only_undelivered: bool,
        /// Report what would happen without recording anything.
        #[arg(long)]
        dry_run: bool,
        /// events, or invoices to match paid invoices older than Stripe's 30 days of events.
        #[arg(long, default_value = "events")]
        source: Source,
    },
    /// Replay one event: re-evaluate a recorded event, or fetch and record one never received.
    Replay {
        #[command(flatten)]
        config: Box<AdminCliConfig>,
        /// The event id, evt_...
        event_id: String,
    },
    /// Serve a stateful Stripe sandbox (no Stripe account needed), or act on a running one.
    #[cfg(feature = "sandbox")]
    Sandbox(Box<creditd::sandbox::cli::SandboxArgs>),
    /// Walk the billing-credits flow against a running creditd, printing each request as curl.
    #[cfg(feature = "sandbox")]
    Demo(creditd::sandbox::demo::DemoArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Serve(config) => serve(*config).await,
        Command::Migrate(config) => migrate(config).await,
        Command::Healthcheck { listen_addr } => healthcheck(listen_addr).await,
        Command::Resync {
            config,
            since,
            until,
            types,
            only_undelivered,
            dry_run,
            source,
        } => {
            let request = ResyncRequest {
                since: Some(Time::Text(since)),
                until: until.map(Time::Text),
                types: (!types.is_empty()).then_some(types),
                only_undelivered: Some(only_undelivered),
                dry_run: Some(dry_run),
                source: Some(source),
            };
            resync(&config, request).await
        }
        Command::Replay { config, event_id } => {
            creditd::admin::cli::replay(&config, &event_id).await
        }
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => creditd::sandbox::cli::run(*args).await,
        #[cfg(feature = "sandbox")]
        Command::Demo(args) => creditd::sandbox::demo::run(args).await,
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
    config.validate().map_err(anyhow::Error::msg)?;
    let pool = creditd::db::connect(&config).await?;
    creditd::db::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}

/// The same validation as `POST /admin/resync`, then the re-sync in the foreground.
async fn resync(config: &AdminCliConfig, request: ResyncRequest) -> anyhow::Result<()> {
    let params = request
        .validate(chrono::Utc::now().timestamp())
        .map_err(|e| anyhow::anyhow!("--{} {}", e.field.replace('_', "-"), e.message))?;
    let done = creditd::admin::cli::resync(config, params).await?;
    if done.status == "failed" {
        anyhow::bail!("re-sync {} failed", done.id);
    }
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
