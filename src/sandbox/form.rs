//! Parses Stripe's bracketed form encoding (`a[b][0][c]=v`, `types[]=x`) into a nested JSON tree of strings.
//!
//! Every leaf is a JSON string; every bracket level is a JSON object whose keys are the bracket
//! contents (`[]` appends the next index). The schema validator later turns index-keyed objects into
//! arrays and strings into integers/booleans where the schema says so.

use serde_json::{Map, Value};

/// Parses a raw `application/x-www-form-urlencoded` string (body or query string).
pub fn parse(raw: &str) -> Result<Value, String> {
    let mut root = Map::new();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let segments = split_key(&key)?;
        insert(&mut root, &segments, value.into_owned(), &key)?;
    }
    Ok(Value::Object(root))
}

fn split_key(key: &str) -> Result<Vec<String>, String> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return Err(format!("Invalid parameter name: {key}"));
    }
    let mut segments = vec![head.to_string()];
    while !rest.is_empty() {
        if !rest.starts_with('[') {
            return Err(format!("Invalid parameter name: {key}"));
        }
        let close = rest
            .find(']')
            .ok_or_else(|| format!("Invalid parameter name: {key}"))?;
        segments.push(rest[1..close].to_string());
        rest = &rest[close + 1..];
    }
    Ok(segments)
}

fn insert(
    node: &mut Map<String, Value>,
    segs: &[String],
    value: String,
    key: &str,
) -> Result<(), String> {
    let seg = if segs[0].is_empty() {
        node.len().to_string()
    } else {
        segs[0].clone()
    };
    if segs.len() == 1 {
        if matches!(node.get(&seg), Some(Value::Object(_))) {
            return Err(format!("Conflicting parameter: {key}"));
        }
        node.insert(seg, Value::String(value));
        return Ok(());
    }
    let child = node.entry(seg).or_insert_with(|| Value::Object(Map::new()));
    match child {
        Value::Object(m) => insert(m, &segs[1..], value, key),
        _ => Err(format!("Conflicting parameter: {key}")),
    }
}

/// If every key of `m` is a decimal index, returns the values ordered by index.
pub fn as_indexed(m: &Map<String, Value>) -> Option<Vec<&Value>> {
    if m.is_empty() {
        return Some(Vec::new());
    }
    let mut items: Vec<(usize, &Value)> = Vec::with_capacity(m.len());
    for (k, v) in m {
        items.push((k.parse::<usize>().ok()?, v));
    }
    items.sort_by_key(|(i, _)| *i);
    Some(items.into_iter().map(|(_, v)| v).collect())
}

/// The raw tree with index-keyed objects turned into arrays (strings stay strings), for recording.
pub fn arrays_as_lists(v: &Value) -> Value {
    match v {
        Value::Object(m) if !m.is_empty() => match as_indexed(m) {
            Some(items) => Value::Array(items.into_iter().map(arrays_as_lists).collect()),
            None => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), arrays_as_lists(v)))
                    .collect(),
            ),
        },
        other => other.clone(),
    }
}
