//! The listings a re-sync pages through: Stripe's events, or its paid invoices.

use crate::admin::resync_params::{PAGE_SIZE, ResyncParams, Source};
use crate::stripe::StripeRequest;
use crate::stripe::form::Form;

/// The listing request for the page after `cursor`.
pub fn list_page(params: &ResyncParams, cursor: Option<&str>) -> StripeRequest {
    let mut form = Form::new();
    let path = match params.source {
        Source::Events => {
            for (i, t) in params.types.iter().enumerate() {
                form.push(format!("types[{i}]"), t);
            }
            if params.only_undelivered {
                form.push("delivery_success", "false");
            }
            "/v1/events"
        }
        Source::Invoices => {
            form.push("status", "paid");
            "/v1/invoices"
        }
    };
    // Events are listed by when they happened. Invoices are listed by creation, so an invoice
    // paid inside the window may have been created any time before it: list every paid
    // invoice created up to the window's end and keep those paid inside it.
    if params.source == Source::Events {
        form.push("created[gte]", params.since);
    }
    form.push_opt("created[lte]", params.until);
    form.push("limit", PAGE_SIZE);
    form.push_opt("starting_after", cursor);
    StripeRequest::get(path, form)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn page_requests_use_stripes_parameters() {
        let p = ResyncParams::parse(
            &json!({"since": 100, "until": 200, "only_undelivered": true, "types": ["invoice.paid", "invoice.voided"]}),
            300,
        )
        .unwrap();
        let request = list_page(&p, Some("evt_1"));
        assert_eq!(request.path, "/v1/events");
        assert_eq!(
            request.params.encode(),
            "types%5B0%5D=invoice.paid&types%5B1%5D=invoice.voided&delivery_success=false\
             &created%5Bgte%5D=100&created%5Blte%5D=200&limit=100&starting_after=evt_1"
        );
    }
}
