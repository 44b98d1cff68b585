//! The `funding` object of a purchase request: `{"method": "invoice"}` (the default) or
//! `{"method": "checkout", "success_url", "cancel_url", "save_payment_method"}`, parsed by serde
//! so every error names its field.

use serde::Deserialize;
use serde_json::Value;

use super::CheckoutFunding;
use super::request::FieldError;

/// Stripe's limit on Checkout URLs.
const MAX_URL_LENGTH: usize = 2048;

#[derive(Debug, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
enum FundingRequest {
    Invoice {},
    Checkout {
        success_url: String,
        cancel_url: String,
        #[serde(default)]
        save_payment_method: bool,
    },
}

/// Parses `funding`; `Ok(None)` means an invoice creditd creates (the default).
pub fn parse(value: &Value) -> Result<Option<CheckoutFunding>, FieldError> {
    let parsed: FundingRequest = serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." || path.is_empty() {
            "funding".to_string()
        } else {
            format!("funding.{path}")
        };
        FieldError {
            field,
            message: error.into_inner().to_string(),
        }
    })?;
    match parsed {
        FundingRequest::Invoice {} => Ok(None),
        FundingRequest::Checkout {
            success_url,
            cancel_url,
            save_payment_method,
        } => {
            check_url(&success_url, "funding.success_url")?;
            check_url(&cancel_url, "funding.cancel_url")?;
            Ok(Some(CheckoutFunding {
                success_url,
                cancel_url,
                save_payment_method,
            }))
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
    use serde_json::json;

    #[test]
    fn checkout_needs_both_urls_and_names_what_is_wrong() {
        let ok = json!({"method": "checkout", "success_url": "https://a.example/ok",
                        "cancel_url": "https://a.example/no", "save_payment_method": true});
        assert!(parse(&ok).unwrap().unwrap().save_payment_method);
        assert_eq!(parse(&json!({"method": "invoice"})).unwrap(), None);
        let field = |v: Value| parse(&v).unwrap_err().field;
        assert_eq!(
            field(json!({"method": "checkout", "success_url": "https://a.example"})),
            "funding"
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
        assert_eq!(field(json!({"method": "wire"})), "funding");
        assert_eq!(field(json!({"method": "invoice", "extra": 1})), "funding");
    }
}
