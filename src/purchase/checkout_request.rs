//! The `funding` object of a purchase request: `{"method": "invoice"}` (the default) or
//! `{"method": "checkout", "success_url", "cancel_url", "save_payment_method"}`, parsed by serde
//! so every error names its field.

use serde::Deserialize;
use serde_json::Value;

use super::CheckoutFunding;
use super::request::FieldError;

/// Stripe's limit on Checkout URLs.
const MAX_URL_LENGTH: usize = 2048;

// A plain struct, not an internally tagged enum: serde buffers a tagged enum's content, so errors
// inside a variant would lose their path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FundingRequest {
    method: Method,
    #[serde(default)]
    success_url: Option<String>,
    #[serde(default)]
    cancel_url: Option<String>,
    #[serde(default)]
    save_payment_method: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Method {
    Invoice,
    Checkout,
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
    let checkout_only = [
        ("success_url", parsed.success_url.is_some()),
        ("cancel_url", parsed.cancel_url.is_some()),
        ("save_payment_method", parsed.save_payment_method.is_some()),
    ];
    match parsed.method {
        Method::Invoice => match checkout_only.iter().find(|(_, given)| *given) {
            Some((name, _)) => Err(FieldError {
                field: format!("funding.{name}"),
                message: "applies only to method 'checkout'".into(),
            }),
            None => Ok(None),
        },
        Method::Checkout => {
            let required = |url: Option<String>, field: &str| {
                url.ok_or_else(|| FieldError {
                    field: field.into(),
                    message: "is required for method 'checkout'".into(),
                })
            };
            let success_url = required(parsed.success_url, "funding.success_url")?;
            let cancel_url = required(parsed.cancel_url, "funding.cancel_url")?;
            check_url(&success_url, "funding.success_url")?;
            check_url(&cancel_url, "funding.cancel_url")?;
            Ok(Some(CheckoutFunding {
                success_url,
                cancel_url,
                save_payment_method: parsed.save_payment_method.unwrap_or(false),
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
    }
}
