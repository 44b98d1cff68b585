//! Parameter schemas for the operations the OpenAPI subset lacks (invoice retrieve, list, void,
//! pay, mark_uncollectible; invoice item retrieve; customer create and retrieve; payments, refunds,
//! disputes, credit notes; Checkout Sessions create, list, retrieve), taken from
//! stripe-python's typed params and kept in `spec/sdk-operations.json`, in the spec's own shape so
//! that one validator serves all.

use serde_json::Value;

const SDK_OPERATIONS: &str = include_str!("spec/sdk-operations.json");

/// `(operation id, method, path template, parameter schema)` for each extra operation.
pub fn operations() -> Vec<(String, String, String, Value)> {
    let doc: Value = serde_json::from_str(SDK_OPERATIONS).expect("sdk-operations.json is JSON");
    let text = |op: &Value, key: &str| op[key].as_str().expect("operation field").to_string();
    doc["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .map(|op| {
            let (id, method) = (text(op, "operationId"), text(op, "method"));
            (id, method, text(op, "path"), op["params"].clone())
        })
        .collect()
}
