//! Hand-written parameter schemas for the invoice operations that the OpenAPI subset lacks
//! (retrieve, list, void, pay, mark_uncollectible); same shape as the spec's so one validator serves all.

use serde_json::{Value, json};

fn expand() -> Value {
    json!({ "type": "array", "items": { "type": "string", "maxLength": 5000 } })
}

fn object(props: Value) -> Value {
    json!({ "type": "object", "additionalProperties": false, "properties": props, "required": [] })
}

/// `(operation id, method, path template, parameter schema)` for each extra operation.
pub fn operations() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let id_string = json!({ "type": "string", "maxLength": 5000 });
    let created = json!({ "anyOf": [
        { "type": "object", "title": "range_query_specs", "properties": {
            "gt": { "type": "integer" }, "gte": { "type": "integer" },
            "lt": { "type": "integer" }, "lte": { "type": "integer" } } },
        { "type": "integer" } ] });
    vec![
        (
            "GetInvoicesInvoice",
            "GET",
            "/v1/invoices/{invoice}",
            object(json!({ "expand": expand() })),
        ),
        (
            "GetInvoices",
            "GET",
            "/v1/invoices",
            object(json!({
                "customer": id_string,
                "status": { "type": "string", "enum": ["draft", "open", "paid", "uncollectible", "void"] },
                "created": created,
                "collection_method": { "type": "string", "enum": ["charge_automatically", "send_invoice"] },
                "limit": { "type": "integer" },
                "starting_after": id_string,
                "ending_before": id_string,
                "expand": expand(),
            })),
        ),
        (
            "PostInvoicesInvoiceVoid",
            "POST",
            "/v1/invoices/{invoice}/void",
            object(json!({ "expand": expand() })),
        ),
        (
            "PostInvoicesInvoicePay",
            "POST",
            "/v1/invoices/{invoice}/pay",
            object(json!({ "expand": expand(), "paid_out_of_band": { "type": "boolean" } })),
        ),
        (
            "PostInvoicesInvoiceMarkUncollectible",
            "POST",
            "/v1/invoices/{invoice}/mark_uncollectible",
            object(json!({ "expand": expand() })),
        ),
    ]
}
