//! `creditd demo`: Stripe's "Set up billing credits" guide walked through creditd against whatever
//! creditd and Stripe it is pointed at (the sandbox by default). Every step prints its curl line
//! and answer; the first step that does not behave as the README says ends the demo with an error.

use super::demo_http::{Auth, Call, show};
use anyhow::{Context, bail, ensure};
use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct DemoArgs {
    /// The creditd to walk through.
    #[arg(long, env = "CREDITD_URL", default_value = "http://127.0.0.1:8080")]
    creditd_url: String,
    /// creditd's API token (scripts/dev's default).
    #[arg(
        long,
        env = "API_TOKEN",
        default_value = "dev-api-token-change-me",
        hide_env_values = true
    )]
    api_token: String,
    /// creditd's admin token, for the explain view (scripts/dev's default).
    #[arg(
        long,
        env = "ADMIN_TOKEN",
        default_value = "dev-admin-token-change-me",
        hide_env_values = true
    )]
    admin_token: String,
    /// Stripe, or the sandbox, as creditd's STRIPE_API_BASE.
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        default_value = "http://127.0.0.1:12111"
    )]
    stripe_url: String,
    /// The key for Stripe's own API (any sk_test_ key for the sandbox).
    #[arg(
        long,
        env = "STRIPE_SECRET_KEY",
        default_value = "sk_test_sandbox",
        hide_env_values = true
    )]
    stripe_key: String,
    /// An existing customer to buy for; default: a new one.
    #[arg(long, env = "DEMO_CUSTOMER")]
    customer: Option<String>,
    /// How long to wait for the grant.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

pub(super) const AMOUNT: i64 = 1000;
pub(super) const USED: i64 = 400;

pub(super) struct Demo {
    args: DemoArgs,
    http: reqwest::Client,
    step: usize,
    /// True when `stripe_url` answers the sandbox's control routes.
    sandbox: bool,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let health = format!("{}/_sandbox/health", args.stripe_url);
    let sandbox = matches!(http.get(&health).send().await, Ok(r) if r.status().is_success());
    let mut demo = Demo {
        args,
        http,
        step: 0,
        sandbox,
    };
    let customer = demo.customer().await?;
    let (purchase, invoice) = demo.buy(&customer).await?;
    demo.show_invoice(&invoice, "open", AMOUNT).await?;
    demo.pay(&invoice).await?;
    let grant = demo.wait_for_grant(&purchase).await?;
    demo.balance(&customer, AMOUNT).await?;
    demo.transactions(&customer, &grant).await?;
    if demo.sandbox {
        demo.use_credits(&customer).await?;
        demo.balance(&customer, AMOUNT - USED).await?;
    } else {
        println!("\n(Using credits needs a metered subscription invoice at Stripe; skipped.)");
    }
    demo.explain(&purchase).await?;
    println!(
        "\nDemo complete: purchase {purchase} paid by invoice {invoice} became grant {grant}."
    );
    Ok(())
}

impl Demo {
    pub(super) fn creditd(&self, method: Method, path: &str) -> Call {
        let url = format!("{}{path}", self.args.creditd_url);
        Call::new(
            method,
            url,
            Auth::Bearer("API_TOKEN", self.args.api_token.clone()),
        )
    }

    pub(super) fn stripe(&self, method: Method, path: &str) -> Call {
        let url = format!("{}{path}", self.args.stripe_url);
        Call::new(
            method,
            url,
            Auth::Basic("STRIPE_SECRET_KEY", self.args.stripe_key.clone()),
        )
    }

    pub(super) fn sandbox_control(&self, path: &str) -> Call {
        Call::new(
            Method::POST,
            format!("{}/_sandbox/{path}", self.args.stripe_url),
            Auth::None,
        )
    }

    /// Prints the step, sends `call`, prints the answer (only `keys` when given), checks 2xx.
    /// The operator's view: every status change, event and Stripe call behind the purchase.
    async fn explain(&mut self, purchase: &str) -> anyhow::Result<()> {
        let url = format!("{}/admin/purchases/{purchase}", self.args.creditd_url);
        let auth = Auth::Bearer("ADMIN_TOKEN", self.args.admin_token.clone());
        let call = Call::new(Method::GET, url, auth);
        let keys = ["id", "status", "history", "stripe_calls", "grant"];
        let title = "How creditd explains the purchase (admin API)";
        let answer = self.step(title, call, Some(&keys)).await?;
        ensure!(
            answer["id"] == purchase,
            "the explain view is of another purchase"
        );
        Ok(())
    }

    pub(super) async fn step(
        &mut self,
        title: &str,
        call: Call,
        keys: Option<&[&str]>,
    ) -> anyhow::Result<Value> {
        self.step += 1;
        println!("\n## {}. {title}\n$ {}", self.step, call.curl());
        let (status, answer) = call.send(&self.http).await?;
        let ok = (200..300).contains(&status);
        println!("{}", show(&answer, keys.filter(|_| ok)));
        ensure!(
            (200..300).contains(&status),
            "step {}: {title}: answered {status}",
            self.step
        );
        Ok(answer)
    }

    async fn customer(&mut self) -> anyhow::Result<String> {
        if let Some(c) = &self.args.customer {
            return Ok(c.clone());
        }
        let call = self
            .stripe(Method::POST, "/v1/customers")
            .form(&[("name", "creditd demo")]);
        let answer = self
            .step("Create a customer at Stripe", call, Some(&["id", "object"]))
            .await?;
        id(&answer, "id", "cus_")
    }

    async fn buy(&mut self, customer: &str) -> anyhow::Result<(String, String)> {
        let body = json!({ "customer": customer, "amount": AMOUNT, "currency": "usd",
            "description": "credit purchase", "credit": { "name": "Prepaid credits" } });
        let key = format!("demo-{}", super::state::new_id(""));
        let call = self
            .creditd(Method::POST, "/v1/purchases")
            .json(body)
            .idempotency_key(key);
        let mut purchase = self
            .step(
                "Buy credits: creditd creates and finalizes the invoice",
                call,
                None,
            )
            .await?;
        let id = id(&purchase, "id", "pur_")?;
        let deadline = Instant::now() + Duration::from_secs(self.args.timeout_secs);
        // creditd answers 202 while the invoice is still being made; its worker finishes it.
        while purchase["invoice_id"].is_null() && purchase["status"] == "creating_invoice" {
            ensure!(
                Instant::now() < deadline,
                "the purchase never got its invoice"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            purchase = self
                .creditd(Method::GET, &format!("/v1/purchases/{id}"))
                .send(&self.http)
                .await?
                .1;
        }
        ensure!(
            purchase["status"] == "awaiting_payment",
            "purchase is {}",
            purchase["status"]
        );
        Ok((id, self::id(&purchase, "invoice_id", "in_")?))
    }

    async fn show_invoice(&mut self, invoice: &str, status: &str, due: i64) -> anyhow::Result<()> {
        let call = self.stripe(Method::GET, &format!("/v1/invoices/{invoice}"));
        let keys = [
            "id",
            "status",
            "customer",
            "total",
            "amount_due",
            "amount_paid",
            "currency",
            "hosted_invoice_url",
            "metadata",
        ];
        let inv = self
            .step("The invoice at Stripe", call, Some(&keys))
            .await?;
        ensure!(
            inv["status"] == status && inv["amount_due"] == due,
            "unexpected invoice"
        );
        Ok(())
    }

    async fn pay(&mut self, invoice: &str) -> anyhow::Result<()> {
        let (title, call) = match self.sandbox {
            true => (
                "The customer pays by card",
                self.sandbox_control(&format!("invoices/{invoice}/pay")),
            ),
            false => (
                "Mark the invoice paid (out of band, as the Dashboard's \"Mark as paid\")",
                self.stripe(Method::POST, &format!("/v1/invoices/{invoice}/pay"))
                    .form(&[("paid_out_of_band", "true")]),
            ),
        };
        self.step(title, call, Some(&["id", "type", "status"]))
            .await?;
        Ok(())
    }

    async fn wait_for_grant(&mut self, purchase: &str) -> anyhow::Result<String> {
        let call = self.creditd(Method::GET, &format!("/v1/purchases/{purchase}"));
        self.step += 1;
        println!(
            "\n## {}. Stripe sends invoice.paid; wait for the grant\n$ {}",
            self.step,
            call.curl()
        );
        let deadline = Instant::now() + Duration::from_secs(self.args.timeout_secs);
        loop {
            let (status, answer) = call.send(&self.http).await?;
            ensure!(status == 200, "answered {status}: {answer}");
            match answer["status"].as_str().unwrap_or_default() {
                "granted" => {
                    println!("{}", show(&answer, None));
                    return id(&answer, "credit_grant_id", "credgr_");
                }
                "awaiting_payment" | "granting" => {}
                other => bail!("the purchase ended {other}: {}", show(&answer, None)),
            }
            if Instant::now() > deadline {
                bail!(
                    "no grant after {}s: {}",
                    self.args.timeout_secs,
                    show(&answer, None)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

pub(super) fn id(v: &Value, field: &str, prefix: &str) -> anyhow::Result<String> {
    v[field]
        .as_str()
        .filter(|s| s.starts_with(prefix))
        .map(str::to_string)
        .with_context(|| format!("no {field} ({prefix}…) in {v}"))
}
