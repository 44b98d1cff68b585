//! The `funding` object of a purchase request: `{"method": "invoice"}` (the default) or
//! `{"method": "checkout", "success_url", "cancel_url", "save_payment_method"}`, read by serde as
//! part of the purchase request, then checked by the rules serde cannot express.

use serde::Deserialize;
use utoipa::ToSchema;

use super::CheckoutFunding;
use super::request::FieldError;

/// Stripe's limit on Checkout URLs.
const MAX_URL_LENGTH: usize = 2048;

/// How creditd funds the invoice it creates: `invoice` (the default) or a Stripe `checkout` page.
// A plain struct, not an internally tagged enum: serde buffers a tagged enum's content, so errors
// inside a variant would lose their path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object")]
pub struct FundingRequest {
    method: FundingMethod,
    /// Required for `checkout`: where Stripe sends the customer after paying.
    #[serde(default)]
    success_url: Option<String>,
    /// Required for `checkout`: where Stripe sends the customer who gives up.
    #[serde(default)]
    cancel_url: Option<String>,
    /// Only for `checkout`: save the card for automatic top-ups.
    #[serde(default)]
    save_payment_method: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum FundingMethod {
    Invoice,
    Checkout,
}

impl FundingRequest {
    /// The rules serde cannot express; `Ok(None)` means an invoice creditd creates (the default).
    pub fn validate(self) -> Result<Option<CheckoutFunding>, FieldError> {
        let checkout_only = [
            ("success_url", self.success_url.is_some()),
            ("cancel_url", self.cancel_url.is_some()),
            ("save_payment_method", self.save_payment_method.is_some()),
        ];
        match self.method {
            FundingMethod::Invoice => match checkout_only.iter().find(|(_, given)| *given) {
                Some((name, _)) => Err(FieldError {
                    field: format!("funding.{name}"),
                    message: "applies only to method 'checkout'".into(),
                }),
                None => Ok(None),
            },
            FundingMethod::Checkout => {
                let required = |url: Option<String>, field: &str| {
                    url.ok_or_else(|| FieldError {
                        field: field.into(),
                        message: "is required for method 'checkout'".into(),
                    })
                };
                let success_url = required(self.success_url, "funding.success_url")?;
                let cancel_url = required(self.cancel_url, "funding.cancel_url")?;
                check_url(&success_url, "funding.success_url")?;
                check_url(&cancel_url, "funding.cancel_url")?;
                Ok(Some(CheckoutFunding {
                    success_url,
                    cancel_url,
                    save_payment_method: self.save_payment_method.unwrap_or(false),
                }))
            }
        }
    }
}

fn check_url(url: &str, field: &str) -> Result<(), FieldError> {
    let parsed = reqwest::Url::parse(url).ok();
    let web = parsed
        .as_ref()
        .is_some_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
    if !web || url.len() > MAX_URL_LENGTH {
        return Err(FieldError {
            field: field.to_owned(),
            message: format!("must be an http(s) URL of at most {MAX_URL_LENGTH} characters"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::purchase::request;
    use serde_json::{Value, json};

    /// The checkout a purchase asking for `funding` gets.
    fn parse(funding: &Value) -> Result<Option<CheckoutFunding>, FieldError> {
        let body =
            json!({"customer": "cus_1", "amount": 5000, "currency": "usd", "funding": funding});
        let purchase = request::parse(&body, 1_800_000_000)?;
        Ok(purchase.funding.and_then(|funding| funding.checkout))
    }

    #[test]
    fn checkout_needs_both_urls_and_names_what_is_wrong() {
        let ok = json!({"method": "checkout", "success_url": "https://a.example/ok",
                        "cancel_url": "https://a.example/no", "save_payment_method": true});
        assert!(parse(&ok).unwrap().unwrap().save_payment_method);
        assert_eq!(parse(&json!({"method": "invoice"})).unwrap(), None);
        let field = |v: Value| parse(&v).unwrap_err().field;
        assert_eq!(
            field(json!({"method": "checkout", "success_url": "https://a.example"})),
            "funding.cancel_url"
        );
        assert_eq!(
            field(
                json!({"method": "checkout", "success_url": "ftp://x", "cancel_url": "https://a.example"})
            ),
            "funding.success_url"
        );
        assert_eq!(
            field(
                json!({"method": "checkout", "success_url": "https://a.example",
                         "cancel_url": "https://a.example", "save_payment_method": "yes"})
            ),
            "funding.save_payment_method"
        );
        assert_eq!(field(json!({"method": "wire"})), "funding.method");
        assert_eq!(
            field(json!({"method": "invoice", "success_url": "https://a.example"})),
            "funding.success_url"
        );
        assert_eq!(
            field(json!({"method": "invoice", "extra": 1})),
            "funding.extra"
        );
        // Serde's derive would read the struct from an array in field order; the API takes objects.
        let positional = json!(["checkout", "https://a.example", "https://a.example", true]);
        assert_eq!(field(positional), "funding");
    }
}
