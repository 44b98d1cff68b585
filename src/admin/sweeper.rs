//! The sweeper: asks Stripe about unpaid purchases' invoices and applies what it finds (paid,
//! void, uncollectible) through the state machine. It
//! covers events that Stripe never created or never delivered and that fell out of the 30-day
//! event window. Bounded per run and sent through the rate-limited Stripe client.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::attempt;
use crate::db;
use crate::purchase::lifecycle::{Happening, Outcome};
use crate::services::Services;
use crate::stripe::api;
use crate::stripe::types::Invoice;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    pub checked: usize,
    pub scheduled: usize,
    pub errors: usize,
}

/// Checks up to `batch` purchases still awaiting payment, those checked longest ago first; a
/// purchase is not checked again within `min_age`.
pub async fn sweep_once(services: &Services, batch: i64, min_age: Duration) -> sqlx::Result<Sweep> {
    let claimed = db::purchases::claim_for_sweep(&services.db, batch, min_age).await?;
    let mut sweep = Sweep::default();
    for (purchase_id, invoice_id) in claimed {
        sweep.checked += 1;
        let request = api::get_invoice(&invoice_id);
        let outcome: Result<Invoice, _> =
            attempt::send_and_record(services, &purchase_id, &request).await?;
        let invoice = match outcome {
            Ok(invoice) => invoice,
            Err(error) => {
                sweep.errors += 1;
                tracing::warn!(%purchase_id, %invoice_id, %error, "sweeper could not read an invoice");
                continue;
            }
        };
        let happening = match invoice.status.as_deref() {
            Some("paid") => Happening::Paid,
            Some("void") => Happening::Voided,
            Some("uncollectible") => Happening::MarkedUncollectible,
            _ => continue,
        };
        let applied = db::lifecycle::apply_happening(
            &services.db,
            &invoice_id,
            invoice.purchase_id_in_metadata(),
            None,
            happening,
        )
        .await?;
        if applied.outcome == Outcome::Canceled {
            services.metrics.catch_up("sweeper", "canceled");
        }
        if applied.outcome == Outcome::Scheduled {
            sweep.scheduled += 1;
            services.metrics.catch_up("sweeper", "scheduled");
            tracing::warn!(
                %purchase_id,
                %invoice_id,
                "sweeper found a paid invoice without a recorded invoice.paid; scheduled its grant"
            );
            services.wake.notify_one();
        }
    }
    Ok(sweep)
}

/// Sweeps every `interval` until `shutdown`; the first sweep runs one interval after start.
pub async fn run(services: Services, interval: Duration, batch: i64, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
        let result = tokio::select! {
            result = sweep_once(&services, batch, interval / 2) => result,
            _ = shutdown.cancelled() => return,
        };
        match result {
            Ok(sweep) if sweep.checked > 0 => {
                tracing::info!(
                    checked = sweep.checked,
                    scheduled = sweep.scheduled,
                    errors = sweep.errors,
                    "sweep finished"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "sweep failed"),
        }
    }
}
