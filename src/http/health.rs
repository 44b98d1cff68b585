//! Liveness, readiness and the Prometheus scrape endpoint.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db;
use crate::http::wire;
use crate::state::AppState;

/// Longest a readiness check waits for the database; a stalled database is not ready. Below the
/// readiness probe's 2 s timeout, so the answer is ours rather than the kubelet's give-up.
const READY_CHECK_LIMIT: std::time::Duration = std::time::Duration::from_millis(1500);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = wire::Status)))]
async fn healthz() -> impl IntoResponse {
    axum::Json(wire::Status::new("ok"))
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = wire::Status), (status = 503, description = "Not ready", body = wire::Status)))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(wire::Status::new("shutting_down")),
        );
    }
    // Both connection sets: the pool serves the API and workers, the recorder the webhook. A
    // replica whose webhook path cannot record must not receive webhooks.
    let services = &state.services;
    let limit = READY_CHECK_LIMIT;
    let checks = async { tokio::join!(db::is_ready(&services.db), services.recorder.check()) };
    if let Ok((true, true)) = tokio::time::timeout(limit, checks).await {
        (StatusCode::OK, axum::Json(wire::Status::new("ready")))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(wire::Status::new(
                "database unavailable, webhook recording unavailable, or migrations pending",
            )),
        )
    }
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let services = &state.services;
    let metrics = &services.metrics;
    let gauges = async {
        let by_status = db::status_counts::by_status(&services.db).await?;
        let oldest = db::status_counts::oldest_paid_ungranted_secs(&services.db).await?;
        Ok::<_, sqlx::Error>((by_status, oldest))
    };
    match gauges.await {
        Ok((by_status, oldest)) => metrics.set_purchase_gauges(&by_status, oldest),
        Err(error) => tracing::warn!(%error, "could not read purchase gauges"),
    }
    match db::purchases::paid_without_credits(&state.services.db).await {
        Ok(count) => metrics.set_paid_without_credits(count),
        Err(error) => tracing::warn!(%error, "could not count paid purchases without credits"),
    }
    match db::webhook_deliveries::oldest_undelivered_secs(&services.db).await {
        Ok(age) => metrics.outbound().set_oldest_undelivered(age),
        Err(error) => tracing::warn!(%error, "could not read the oldest undelivered webhook"),
    }
    match db::topups::counts(&state.services.db).await {
        Ok((active, paused, disabled, failed)) => {
            metrics.set_topups(active, paused, disabled, failed)
        }
        Err(error) => tracing::warn!(%error, "could not count auto top-up rules"),
    }
    let pool = &services.db;
    let idle = pool.num_idle();
    let max = pool.options().get_max_connections() as usize;
    metrics.set_db_connections(
        "pool",
        (pool.size() as usize).saturating_sub(idle),
        idle,
        max,
    );
    let recorder = services.recorder.usage();
    metrics.set_db_connections("recorder", recorder.in_use, recorder.idle, recorder.max);
    metrics.set_events_waiting(recorder.waiting);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}
