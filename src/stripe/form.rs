//! Stripe's form encoding: nested parameters flattened into bracket keys, in a stable order.

use url::form_urlencoded;

/// An ordered list of `key=value` pairs such as `amount[monetary][value]=5000`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn new() -> Self {
        Form(Vec::new())
    }

    pub fn with(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.push(key, value);
        self
    }

    pub fn push(&mut self, key: impl Into<String>, value: impl ToString) {
        self.0.push((key.into(), value.to_string()));
    }

    pub fn push_opt(&mut self, key: impl Into<String>, value: Option<impl ToString>) {
        if let Some(value) = value {
            self.push(key, value);
        }
    }

    /// `metadata[k]=v` for every entry, sorted so the same map always encodes the same way
    /// (Stripe compares parameters when it replays an idempotency key).
    pub fn push_map<'a>(
        &mut self,
        prefix: &str,
        entries: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) {
        let mut entries: Vec<_> = entries.into_iter().collect();
        entries.sort();
        for (key, value) in entries {
            self.push(format!("{prefix}[{key}]"), value);
        }
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn encode(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.0)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn encodes_bracket_keys_and_sorted_maps() {
        let metadata = BTreeMap::from([
            ("z".to_string(), "1".to_string()),
            ("a".to_string(), "x y".to_string()),
        ]);
        let mut form = Form::new().with("amount[monetary][value]", 5000);
        form.push_map("metadata", &metadata);
        assert_eq!(
            form.encode(),
            "amount%5Bmonetary%5D%5Bvalue%5D=5000&metadata%5Ba%5D=x+y&metadata%5Bz%5D=1"
        );
    }
}
