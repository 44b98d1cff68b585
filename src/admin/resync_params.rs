//! What a re-sync covers: its validated parameters (stored with it), and the Stripe list request for
//! each page. Requests become parameters in [`super::resync_request`].

use crate::stripe::StripeRequest;
use crate::stripe::form::Form;

/// How long Stripe keeps events.
pub const EVENT_RETENTION_SECS: i64 = 30 * 86_400;
/// Objects per page, Stripe's maximum.
pub const PAGE_SIZE: i64 = 100;
/// Most `types[]` Stripe accepts.
pub const MAX_TYPES: usize = 20;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Events,
    Invoices,
}

/// What a re-sync covers; stored with it and read again when it resumes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResyncParams {
    /// Unix seconds, inclusive.
    pub since: i64,
    /// Unix seconds, inclusive; None for "up to now".
    pub until: Option<i64>,
    pub types: Vec<String>,
    pub only_undelivered: bool,
    pub dry_run: bool,
    pub source: Source,
}

impl ResyncParams {
    /// The listing request for the page after `cursor`.
    pub fn page_request(&self, cursor: Option<&str>) -> StripeRequest {
        let mut form = Form::new();
        let path = match self.source {
            Source::Events => {
                for (i, t) in self.types.iter().enumerate() {
                    form.push(format!("types[{i}]"), t);
                }
                if self.only_undelivered {
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
        if self.source == Source::Events {
            form.push("created[gte]", self.since);
        }
        form.push_opt("created[lte]", self.until);
        form.push("limit", PAGE_SIZE);
        form.push_opt("starting_after", cursor);
        StripeRequest::get(path, form)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_requests_use_stripes_parameters() {
        let p = ResyncParams {
            since: 100,
            until: Some(200),
            types: vec!["invoice.paid".into(), "invoice.voided".into()],
            only_undelivered: true,
            dry_run: false,
            source: Source::Events,
        };
        let request = p.page_request(Some("evt_1"));
        assert_eq!(request.path, "/v1/events");
        assert_eq!(
            request.params.encode(),
            "types%5B0%5D=invoice.paid&types%5B1%5D=invoice.voided&delivery_success=false\
             &created%5Bgte%5D=100&created%5Blte%5D=200&limit=100&starting_after=evt_1"
        );
    }
}
