//! Builds the application from its configuration and runs it until shutdown, draining cleanly.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::ServeConfig;
use crate::services::Services;
use crate::state::{AppState, WebhookSettings};
use crate::{db, http, worker};

pub struct Application {
    listener: TcpListener,
    state: AppState,
    config: ServeConfig,
}

impl Application {
    /// Connects, migrates and binds; nothing is served until [`Application::run_until_stopped`].
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let services = Services::connect(&config.database, &config.stripe, &config.policy).await?;
        db::migrate(&services.db).await?;
        let state = AppState {
            services,
            api_token: config.api_token.clone(),
            admin_token: config.admin_token.clone(),
            webhook: Arc::new(WebhookSettings {
                secrets: config.webhook_secrets(),
                tolerance_secs: config.webhook_tolerance_secs,
                max_body_bytes: config.webhook_max_body_bytes,
            }),
            shutdown: CancellationToken::new(),
            request_timeout: Duration::from_millis(config.http_request_timeout_ms),
            outbound: Arc::new(crate::outbound::Outbound {
                settings: config.outbound_settings().map_err(anyhow::Error::msg)?,
                wake: Notify::new(),
            }),
        };
        let listener = TcpListener::bind(config.listen_addr).await?;
        Ok(Application {
            listener,
            state,
            config,
        })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves and works until `stop` fires; then stops accepting, finishes in-flight requests and
    /// claimed purchases within the drain time, and returns.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            config,
        } = self;
        let poll = Duration::from_millis(config.worker_poll_interval_ms);
        let workers = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut owners = Vec::with_capacity(config.worker_count);
        for index in 0..config.worker_count {
            let owner = worker::owner_name(index);
            owners.push(owner.clone());
            tasks.spawn(worker::run(
                state.services.clone(),
                owner,
                poll,
                workers.clone(),
            ));
        }
        // Delivery workers hold leases on webhook deliveries, not purchases: their owners are
        // not in `owners`, and a delivery cut off by the drain is retried when its lease expires.
        for index in 0..state.outbound.settings.workers {
            tasks.spawn(crate::outbound::worker::run(
                state.services.clone(),
                state.outbound.clone(),
                format!("outbound-{}", worker::owner_name(index)),
                workers.clone(),
            ));
        }
        tasks.spawn(crate::retention::run(
            state.services.clone(),
            config.event_payload_retention_days,
            workers.clone(),
        ));
        tasks.spawn(worker::run_matcher(
            state.services.clone(),
            poll,
            workers.clone(),
        ));
        tasks.spawn(crate::admin::sweeper::run(
            state.services.clone(),
            Duration::from_secs(config.sweeper_interval_secs),
            config.sweeper_batch,
            workers.clone(),
        ));
        // Picks up re-syncs whose process died, once their lease has expired.
        let resume_every = (state.services.policy.lease / 2)
            .clamp(Duration::from_millis(500), Duration::from_secs(30));
        tasks.spawn(crate::admin::resync::run_resumer(
            state.services.clone(),
            resume_every,
            workers.clone(),
        ));
        tracing::info!(addr = %listener.local_addr()?, workers = config.worker_count, "creditd serving");

        let shutdown = state.shutdown.clone();
        let recorder = state.services.recorder.clone();
        let pool = state.services.db.clone();
        let router = http::router(state);
        let server_stop = stop.clone();
        let server = http::server::serve(
            listener,
            router,
            Duration::from_millis(config.http_header_read_timeout_ms),
            async move {
                server_stop.cancelled().await;
                shutdown.cancel();
            },
        );
        let mut server = tokio::spawn(server);
        let mut server_done = false;
        tokio::select! {
            result = &mut server => {
                result?;
                server_done = true;
            }
            _ = stop.cancelled() => {}
        }
        tracing::info!(
            drain_secs = config.shutdown_drain_secs,
            "shutting down: draining requests and workers"
        );
        workers.cancel();
        let drain = Duration::from_secs(config.shutdown_drain_secs);
        let drained = tokio::time::timeout(drain, async {
            if !server_done {
                let _ = (&mut server).await;
            }
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("drain time exceeded; abandoning remaining work");
            server.abort();
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        // Whatever is still leased to this process's workers (an attempt cut off by the drain
        // limit) goes back to the queue now rather than when its lease would have expired.
        match db::leases::release_all(&pool, &owners).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "released purchases still in hand"),
            Err(error) => tracing::warn!(%error, "could not release leases; they expire instead"),
        }
        recorder.close().await;
        pool.close().await;
        tracing::info!("creditd stopped");
        Ok(())
    }
}
