//! The demo's steps after the grant: the balance, the grant's transactions, and using credits.

use super::demo::{AMOUNT, Demo, USED};
use anyhow::ensure;
use reqwest::Method;
use serde_json::json;

impl Demo {
    pub(super) async fn balance(&mut self, customer: &str, want: i64) -> anyhow::Result<()> {
        let call = self.creditd(
            Method::GET,
            &format!("/v1/customers/{customer}/credit_balance"),
        );
        let answer = self
            .step("The customer's credit balance", call, None)
            .await?;
        let have = answer["balances"][0]["available"]["value"].as_i64();
        ensure!(
            have == Some(want),
            "available balance is {have:?}, expected {want}"
        );
        Ok(())
    }

    pub(super) async fn transactions(&mut self, customer: &str, grant: &str) -> anyhow::Result<()> {
        let path = format!("/v1/customers/{customer}/credit_transactions?credit_grant={grant}");
        let answer = self
            .step(
                "The grant's transactions",
                self.creditd(Method::GET, &path),
                None,
            )
            .await?;
        let credited = answer["data"].as_array().into_iter().flatten().any(|t| {
            t["credit"]["type"] == "credits_granted"
                && t["credit"]["amount"]["monetary"]["value"] == AMOUNT
        });
        ensure!(credited, "no credits_granted transaction of {AMOUNT}");
        Ok(())
    }

    pub(super) async fn use_credits(&mut self, customer: &str) -> anyhow::Result<()> {
        let call = self
            .sandbox_control(&format!("customers/{customer}/use_credits"))
            .json(json!({ "amount": USED, "currency": "usd" }));
        let keys = [
            "id",
            "status",
            "billing_reason",
            "subtotal",
            "total_pretax_credit_amounts",
            "amount_due",
        ];
        let title = "Metered usage is billed; the credits pay for it";
        let inv = self.step(title, call, Some(&keys)).await?;
        ensure!(
            inv["status"] == "paid" && inv["amount_due"] == 0,
            "credits did not cover the usage"
        );
        Ok(())
    }
}
