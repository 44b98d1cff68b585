//! `creditd sandbox`: serve the sandbox, or steer a running one through its `/_sandbox/` routes.

use super::FakeStripe;
use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::net::SocketAddr;
use url::Url;

#[derive(Args)]
pub struct SandboxArgs {
    /// Where the sandbox serves the Stripe API and its /_sandbox/ controls.
    #[arg(long, env = "SANDBOX_LISTEN_ADDR", default_value = "127.0.0.1:12111")]
    listen_addr: SocketAddr,
    /// Deliver every event to this URL, signed, e.g. http://127.0.0.1:8080/webhooks/stripe.
    #[arg(long, env = "SANDBOX_WEBHOOK_URL")]
    webhook_url: Option<Url>,
    /// The webhook signing secret; the same variable creditd reads, so one export wires both.
    #[arg(
        long,
        env = "STRIPE_WEBHOOK_SECRET",
        default_value = "whsec_sandbox",
        hide_env_values = true
    )]
    webhook_secret: String,
    /// Keep the state in this JSON file across restarts (read at start, written at stop);
    /// default: in memory only.
    #[arg(long, env = "SANDBOX_STATE_FILE")]
    state_file: Option<std::path::PathBuf>,
    /// The running sandbox that actions talk to.
    #[arg(long, env = "SANDBOX_URL", default_value = "http://127.0.0.1:12111")]
    url: Url,
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Subcommand)]
enum Action {
    /// Create a customer (cus_...).
    Customer,
    /// Pay an open or uncollectible invoice, by card (default) or out of band.
    Pay {
        invoice: String,
        #[arg(long)]
        out_of_band: bool,
    },
    /// Void an open or uncollectible invoice.
    Void { invoice: String },
    /// Mark an open invoice uncollectible.
    MarkUncollectible { invoice: String },
    /// Refund the card payment of a paid invoice (all that is left, or --amount).
    Refund {
        invoice: String,
        #[arg(long)]
        amount: Option<i64>,
    },
    /// The bank returns a refund after all: it fails (`refund.failed`).
    FailRefund { refund: String },
    /// The bank disputes the card payment of a paid invoice (--inquiry: no money moved yet).
    Dispute {
        invoice: String,
        #[arg(long)]
        inquiry: bool,
    },
    /// Close a dispute: won or lost.
    CloseDispute { dispute: String, outcome: String },
    /// Bill metered usage that the customer's credits pay for first.
    UseCredits {
        customer: String,
        amount: i64,
        #[arg(long, default_value = "usd")]
        currency: String,
    },
    /// Save a card as the customer's default payment method: succeeds, declines or
    /// requires_authentication.
    Card {
        customer: String,
        #[arg(default_value = "succeeds")]
        behaviour: String,
    },
    /// Remove the customer's default payment method.
    RemoveCard { customer: String },
    /// The customer pays a Checkout Session (cs_...).
    CheckoutComplete { session: String },
    /// Stripe expires an open Checkout Session now.
    CheckoutExpire { session: String },
    /// Set the customer's balance (negative = credit applied to its next invoice).
    Balance {
        customer: String,
        #[arg(allow_negative_numbers = true)]
        amount: i64,
    },
    /// Give the customer a percent-off coupon.
    Discount { customer: String, percent_off: f64 },
    /// Deliver an event to the webhook endpoint again, now.
    DeliverAgain { event: String },
    /// Inject a fault: 500, 429, 400, drop, stored_500, effect_then_500, effect_then_stored_500, delay.
    Fault {
        kind: String,
        #[arg(long, default_value = "*")]
        method: String,
        /// Requests whose path starts with this.
        #[arg(long, default_value = "/v1/")]
        path: String,
        /// How many matching requests (0 = until cleared).
        #[arg(long, default_value_t = 1)]
        times: u64,
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
    /// Remove every injected fault.
    ClearFaults,
}

impl Action {
    /// The control route and JSON body for this action.
    fn request(&self) -> (reqwest::Method, String, Value) {
        let post = reqwest::Method::POST;
        match self {
            Action::Customer => (post, "customers".into(), json!({})),
            Action::Pay {
                invoice,
                out_of_band,
            } => (
                post,
                format!("invoices/{invoice}/pay"),
                json!({ "out_of_band": out_of_band }),
            ),
            Action::Void { invoice } => (post, format!("invoices/{invoice}/void"), json!({})),
            Action::MarkUncollectible { invoice } => (
                post,
                format!("invoices/{invoice}/mark_uncollectible"),
                json!({}),
            ),
            Action::Refund { invoice, amount } => (
                post,
                format!("invoices/{invoice}/refund"),
                json!({ "amount": amount }),
            ),
            Action::FailRefund { refund } => (post, format!("refunds/{refund}/fail"), json!({})),
            Action::Dispute { invoice, inquiry } => (
                post,
                format!("invoices/{invoice}/dispute"),
                json!({ "inquiry": inquiry }),
            ),
            Action::CloseDispute { dispute, outcome } => (
                post,
                format!("disputes/{dispute}/close"),
                json!({ "outcome": outcome }),
            ),
            Action::UseCredits {
                customer,
                amount,
                currency,
            } => (
                post,
                format!("customers/{customer}/use_credits"),
                json!({ "amount": amount, "currency": currency }),
            ),
            Action::Card {
                customer,
                behaviour,
            } => (
                post,
                format!("customers/{customer}/card"),
                json!({ "behaviour": behaviour }),
            ),
            Action::RemoveCard { customer } => (
                reqwest::Method::DELETE,
                format!("customers/{customer}/card"),
                json!({}),
            ),
            Action::CheckoutComplete { session } => {
                (post, format!("checkout/{session}/complete"), json!({}))
            }
            Action::CheckoutExpire { session } => {
                (post, format!("checkout/{session}/expire"), json!({}))
            }
            Action::Balance { customer, amount } => (
                post,
                format!("customers/{customer}/balance"),
                json!({ "amount": amount }),
            ),
            Action::Discount {
                customer,
                percent_off,
            } => (
                post,
                format!("customers/{customer}/discount"),
                json!({ "percent_off": percent_off }),
            ),
            Action::DeliverAgain { event } => (post, format!("events/{event}/deliver"), json!({})),
            Action::Fault {
                kind,
                method,
                path,
                times,
                delay_ms,
            } => (
                post,
                "faults".into(),
                json!({ "kind": kind, "method": method, "path": path, "times": times,
                    "delay_ms": delay_ms }),
            ),
            Action::ClearFaults => (reqwest::Method::DELETE, "faults".into(), json!({})),
        }
    }
}

pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    match &args.action {
        None => serve(&args).await,
        Some(action) => control(&args.url, action).await,
    }
}

async fn control(base: &Url, action: &Action) -> anyhow::Result<()> {
    let (method, path, body) = action.request();
    let url = base.join(&format!("/_sandbox/{path}"))?;
    let response = reqwest::Client::new()
        .request(method, url.clone())
        .json(&body)
        .send()
        .await
        .with_context(|| format!("is the sandbox running at {base}?"))?;
    let status = response.status();
    let answer: Value = response.json().await.context("the sandbox's answer")?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}

async fn serve(args: &SandboxArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen_addr)
        .await
        .with_context(|| format!("binding {}", args.listen_addr))?;
    if !args.listen_addr.ip().is_loopback() {
        tracing::warn!(addr = %args.listen_addr, "the sandbox's controls need no key: keep it off shared networks");
    }
    let fake = FakeStripe::serve(listener);
    if let Some(path) = args.state_file.as_deref().filter(|p| p.exists()) {
        fake.load_state(path)?;
        tracing::info!(path = %path.display(), "sandbox state loaded");
    }
    if let Some(url) = &args.webhook_url {
        fake.set_webhook_endpoint(url.as_str(), &[&args.webhook_secret]);
    }
    // Stripe retries for three days; a laptop needs minutes, e.g. while creditd restarts.
    let retries = [1, 5, 30, 120, 600, 3600].map(std::time::Duration::from_secs);
    fake.retry_failed_deliveries(&retries);
    tracing::info!(
        addr = %args.listen_addr,
        webhook_url = args.webhook_url.as_ref().map(Url::as_str),
        "sandbox serving the Stripe API; any sk_test_ key is accepted"
    );
    eprintln!(
        "creditd sandbox: Stripe API on {}, controls under /_sandbox/, webhooks to {}",
        fake.base_url(),
        args.webhook_url
            .as_ref()
            .map_or("nowhere (no --webhook-url)", Url::as_str)
    );
    stop_signal().await;
    match &args.state_file {
        Some(path) => {
            fake.save_state(path)?;
            tracing::info!(path = %path.display(), "sandbox stopped; state saved");
        }
        None => tracing::info!("sandbox stopped; its state is gone"),
    }
    Ok(())
}

async fn stop_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
