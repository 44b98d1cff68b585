//! Parses the Stripe OpenAPI subset compiled into the binary and checks (and type-coerces) form parameters against
//! an operation's schema: unknown keys, missing required keys, integers, booleans, enums, maxLength,
//! arrays, `anyOf` and `$ref` into `components.schemas`.

use super::error::ApiError;
use super::form::as_indexed;
use super::manual_ops;
use serde_json::{Map, Value, json};

/// The OpenAPI subset (Stripe's spec, API 2026-07-29.dahlia), compiled in so that an installed
/// `creditd sandbox` needs no file beside it.
pub const OPENAPI_SUBSET: &str = include_str!("spec/stripe-openapi-subset.json");

/// One HTTP operation the fake serves.
#[derive(Debug)]
pub struct Operation {
    pub id: String,
    pub method: String,
    pub template: String,
    /// An object schema covering all query and form parameters.
    pub params: Value,
}

#[derive(Debug)]
pub struct Spec {
    pub ops: Vec<Operation>,
    components: Value,
}

impl Spec {
    pub fn load() -> Spec {
        let doc: Value =
            serde_json::from_str(OPENAPI_SUBSET).expect("sandbox: OpenAPI subset is not JSON");
        let mut ops = Vec::new();
        for (template, methods) in doc["paths"].as_object().expect("paths") {
            for (method, op) in methods.as_object().expect("methods") {
                ops.push(Operation {
                    id: op["operationId"].as_str().expect("operationId").to_string(),
                    method: method.to_uppercase(),
                    template: template.clone(),
                    params: params_schema(op),
                });
            }
        }
        for (id, method, template, params) in manual_ops::operations() {
            ops.push(Operation {
                id,
                method,
                template,
                params,
            });
        }
        Spec {
            ops,
            components: doc["components"]["schemas"].clone(),
        }
    }

    /// Finds the operation for `method path`, with the values of its `{...}` path segments.
    pub fn find(&self, method: &str, path: &str) -> Option<(&Operation, Vec<String>)> {
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        'ops: for op in self
            .ops
            .iter()
            .filter(|o| o.method.eq_ignore_ascii_case(method))
        {
            let tsegs: Vec<&str> = op.template.split('/').collect();
            if tsegs.len() != segs.len() {
                continue;
            }
            let mut args = Vec::new();
            for (t, s) in tsegs.iter().zip(&segs) {
                if t.starts_with('{') {
                    if s.is_empty() {
                        continue 'ops;
                    }
                    args.push(s.to_string());
                } else if t != s {
                    continue 'ops;
                }
            }
            return Some((op, args));
        }
        None
    }

    /// Validates the raw form tree against `op` and returns it with types coerced.
    pub fn validate(&self, op: &Operation, raw: &Value) -> Result<Value, ApiError> {
        self.check(&op.params, raw, "")
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                self.components
                    .get(name)
                    .map(|s| self.resolve(s))
                    .unwrap_or(&Value::Null)
            }
            None => schema,
        }
    }

    fn check(&self, schema: &Value, v: &Value, param: &str) -> Result<Value, ApiError> {
        let schema = self.resolve(schema);
        if let Some(alts) = schema.get("anyOf").and_then(Value::as_array) {
            return self.check_any_of(alts, v, param);
        }
        let ty = schema.get("type").and_then(Value::as_str);
        match ty {
            Some("object") => self.check_object(schema, v, param),
            Some("array") => self.check_array(schema, v, param),
            Some("integer") => {
                let s = scalar(v, param, "integer")?;
                s.trim().parse::<i64>().map(|n| json!(n)).map_err(|_| {
                    ApiError::invalid(format!("Invalid integer: {s}"))
                        .param(param)
                        .code("parameter_invalid_integer")
                })
            }
            Some("boolean") => match scalar(v, param, "boolean")? {
                "true" => Ok(json!(true)),
                "false" => Ok(json!(false)),
                s => Err(ApiError::invalid(format!("Invalid boolean: {s}")).param(param)),
            },
            Some("string") => self.check_string(schema, v, param),
            _ => Ok(v.clone()),
        }
    }

    fn check_any_of(&self, alts: &[Value], v: &Value, param: &str) -> Result<Value, ApiError> {
        let mut first = None;
        let mut same_shape = None;
        for alt in alts {
            match self.check(alt, v, param) {
                Ok(x) => return Ok(x),
                Err(e) => {
                    let alt = self.resolve(alt);
                    let wants_tree = matches!(
                        alt.get("type").and_then(Value::as_str),
                        Some("object") | Some("array")
                    );
                    if same_shape.is_none() && wants_tree == v.is_object() {
                        same_shape = Some(e.clone());
                    }
                    first.get_or_insert(e);
                }
            }
        }
        Err(same_shape
            .or(first)
            .unwrap_or_else(|| ApiError::invalid("Invalid value").param(param)))
    }

    fn check_string(&self, schema: &Value, v: &Value, param: &str) -> Result<Value, ApiError> {
        let s = scalar(v, param, "string")?;
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.iter().any(|a| a.as_str() == Some(s)) {
                let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                let msg = if names == [""] {
                    format!("Invalid {param}: must be an empty string to unset")
                } else {
                    format!("Invalid {param}: must be one of {}", names.join(", "))
                };
                return Err(ApiError::invalid(msg).param(param));
            }
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if s.chars().count() as u64 > max {
                return Err(ApiError::invalid(format!(
                    "Invalid string: {s}; must be at most {max} characters"
                ))
                .param(param)
                .code("string_length_exceeds_maximum"));
            }
        }
        match schema.get("format").and_then(Value::as_str) {
            Some("currency") if s.len() != 3 || !s.chars().all(|c| c.is_ascii_alphabetic()) => {
                Err(ApiError::invalid(format!("Invalid currency: {s}")).param(param))
            }
            Some("decimal")
                if s.trim()
                    .parse::<f64>()
                    .map(|f| !f.is_finite())
                    .unwrap_or(true) =>
            {
                Err(ApiError::invalid(format!("Invalid decimal: {s}")).param(param))
            }
            Some("currency") => Ok(json!(s.to_ascii_lowercase())),
            _ => Ok(json!(s)),
        }
    }

    fn check_object(&self, schema: &Value, v: &Value, param: &str) -> Result<Value, ApiError> {
        let Value::Object(map) = v else {
            let what = if param.is_empty() { "request" } else { param };
            return Err(
                ApiError::invalid(format!("Invalid object: {what} must be a hash")).param(param),
            );
        };
        let props = schema.get("properties").and_then(Value::as_object);
        let extra = schema.get("additionalProperties");
        let subset_keys = schema.get("x-subset-keys").and_then(Value::as_array);
        let free_form = props.is_none_or(Map::is_empty) && extra.is_none() && subset_keys.is_none();
        let mut out = Map::new();
        for (k, val) in map {
            let sub = if param.is_empty() {
                k.clone()
            } else {
                format!("{param}[{k}]")
            };
            let prop = props.and_then(|p| p.get(k));
            let checked = match (prop, extra) {
                (Some(ps), _) => self.check(ps, val, &sub)?,
                (None, Some(e)) if e.is_object() => self.check(e, val, &sub)?,
                (None, Some(Value::Bool(true))) => val.clone(),
                _ if free_form => val.clone(),
                _ if subset_keys.is_some_and(|ks| ks.iter().any(|x| x.as_str() == Some(k))) => {
                    val.clone()
                }
                _ => return Err(ApiError::unknown(&sub)),
            };
            out.insert(k.clone(), checked);
        }
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap_or_default();
            if !map.contains_key(r) {
                let sub = if param.is_empty() {
                    r.to_string()
                } else {
                    format!("{param}[{r}]")
                };
                return Err(ApiError::missing(&sub));
            }
        }
        Ok(Value::Object(out))
    }

    fn check_array(&self, schema: &Value, v: &Value, param: &str) -> Result<Value, ApiError> {
        let items = match v {
            Value::Object(m) => as_indexed(m),
            _ => None,
        }
        .ok_or_else(|| ApiError::invalid(format!("Invalid array: {param}")).param(param))?;
        let item_schema = schema.get("items").cloned().unwrap_or(Value::Null);
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| self.check(&item_schema, item, &format!("{param}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    }
}

fn scalar<'a>(v: &'a Value, param: &str, what: &str) -> Result<&'a str, ApiError> {
    v.as_str().ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid {what}: {param} must be a {what}, not a hash"
        ))
        .param(param)
    })
}

/// Merges an operation's query parameters and form body schema into one object schema.
fn params_schema(op: &Value) -> Value {
    let body = &op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    let mut props = body["properties"].as_object().cloned().unwrap_or_default();
    let mut required: Vec<Value> = body["required"].as_array().cloned().unwrap_or_default();
    for p in op["parameters"].as_array().into_iter().flatten() {
        if p["in"] != "query" {
            continue;
        }
        let name = p["name"].as_str().expect("param name").to_string();
        props.insert(name.clone(), p["schema"].clone());
        if p["required"] == json!(true) {
            required.push(json!(name));
        }
    }
    json!({ "type": "object", "additionalProperties": false, "properties": props, "required": required })
}
