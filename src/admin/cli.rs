//! `creditd resync` and `creditd replay`: the same code as the admin endpoints, run from a
//! terminal against the database and Stripe, without an HTTP server or workers. Purchases they
//! make due are fulfilled by the running servers' workers.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{ACTOR_CLI, audit, replay, resync};
use crate::config::AdminCliConfig;
use crate::db;
use crate::db::resyncs::{Resync, ResyncStatus};
use crate::services::Services;

/// Connects to the database (applying no migrations: the servers own them) and to Stripe.
pub async fn services(config: &AdminCliConfig) -> anyhow::Result<Services> {
    config.validate().map_err(anyhow::Error::msg)?;
    let services = Services::connect(&config.database, &config.stripe, &config.policy).await?;
    if !db::is_ready(&services.db).await {
        anyhow::bail!(
            "the database is unreachable or not migrated; start a server or run `creditd migrate` first"
        );
    }
    Ok(services)
}

/// Runs a re-sync in the foreground with a progress bar, then prints a summary table.
pub async fn resync(
    config: &AdminCliConfig,
    params: resync::ResyncParams,
) -> anyhow::Result<Resync> {
    let services = services(config).await?;
    let owner = format!("cli-{}", crate::worker::owner_name(0));
    let created = resync::create(&services, &params, ACTOR_CLI, &owner).await?;
    let arguments = serde_json::to_value(&params)?;
    audit::record(
        &services,
        "resync.start",
        ACTOR_CLI,
        &arguments,
        &json!({"id": created.id, "status": "running"}),
    )
    .await?;
    eprintln!(
        "re-sync {} started{}",
        created.id,
        if params.dry_run { " (dry run)" } else { "" }
    );
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .expect("a valid progress template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut on_page = |r: &Resync| {
        let c = &r.counts;
        bar.set_message(format!(
            "page {}: seen {} new {} duplicate {} granted {} unmatched {} failed {}",
            r.pages, c.seen, c.new, c.duplicate, c.granted, c.unmatched, c.failed
        ));
    };
    let done = resync::run(&services, created, &owner, &mut on_page).await?;
    bar.finish_and_clear();
    println!("{}", summary(&done));
    if done.status == ResyncStatus::Running {
        println!(
            "this command lost the re-sync's lease; a server continues it: GET /admin/resync/{}",
            done.id
        );
    } else if !params.dry_run && done.counts.granted > 0 {
        println!(
            "{} purchase(s) are now due; the running creditd servers' workers create their grants.",
            done.counts.granted
        );
    }
    Ok(done)
}

/// The counts as a two-column table.
pub fn summary(r: &Resync) -> String {
    let mut out = format!("re-sync {}: {}\n", r.id, r.status);
    let c = &r.counts;
    for (name, value) in [
        ("seen", c.seen),
        ("new", c.new),
        ("duplicate", c.duplicate),
        ("granted", c.granted),
        ("unmatched", c.unmatched),
        ("failed", c.failed),
    ] {
        out.push_str(&format!("  {name:<10} {value:>8}\n"));
    }
    if let Some(error) = &r.error {
        out.push_str(&format!("  error: {error}\n"));
    }
    out
}

/// Replays one event and prints the outcome as JSON.
pub async fn replay(config: &AdminCliConfig, event_id: &str) -> anyhow::Result<()> {
    crate::ids::EventId::parse(event_id).map_err(|error| anyhow::anyhow!("event id {error}"))?;
    let services = services(config).await?;
    let arguments = json!({"event_id": event_id});
    let result = replay::replay(&services, event_id).await;
    let recorded = match &result {
        Ok(replayed) => serde_json::to_value(replayed)?,
        Err(error) => json!({"error": error.to_string()}),
    };
    audit::record(&services, "event.replay", ACTOR_CLI, &arguments, &recorded).await?;
    let replayed = result?;
    println!("{}", serde_json::to_value(&replayed)?);
    if replayed.outcome == crate::purchase::lifecycle::Outcome::Scheduled {
        println!("the purchase is now due; the running creditd servers' workers create its grant.");
    }
    Ok(())
}
