//! The served OpenAPI document: what utoipa derives from the route annotations, completed with
//! what holds for every operation, so a new route cannot leave it out: which endpoints need no
//! key, and the error answers (with the error body) that the shared layers give: 400 for a bad
//! parameter or body, 401/403/429 from authentication and the per-key limit, 404 for a path's
//! resource, 502 under `strict`, 500 from the panic guard, 503 from the deadline or the store.
//! The query parameters every account route parses the same way (`coffer_core::query`) get the
//! constraints that parser enforces, and the values that depend on this service's configuration
//! (its providers, its page size) are written in when the document is built.

use serde_json::{Value, json};

/// Answered without an API key (probes and scrapers have none).
pub const PUBLIC: &[&str] = &["/healthz", "/readyz", "/metrics"];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

/// What the document depends on in this service's configuration.
pub struct Context {
    /// The configured provider ids.
    pub providers: Vec<String>,
    /// `server.max_page_size`.
    pub max_page_size: u32,
    /// `rates.base`: always worth 1, so never set by hand.
    pub base: String,
}

/// The document as served.
pub fn document(api: &utoipa::openapi::OpenApi, ctx: &Context) -> Value {
    let mut doc = serde_json::to_value(api).unwrap_or_else(|_| json!({}));
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(*method) {
                    complete(path, op);
                    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                        params.iter_mut().for_each(|p| constrain(p, ctx));
                    }
                }
            }
        }
    }
    let schemas = &mut doc["components"]["schemas"];
    if schemas.get("LinkBody").is_some() {
        schemas["LinkBody"]["properties"]["provider"]["enum"] = json!(ctx.providers);
    }
    if schemas.get("PutRates").is_some() {
        let settable: Vec<&str> = currencies()
            .into_iter()
            .filter(|c| *c != ctx.base)
            .collect();
        schemas["PutRates"]["properties"]["rates"]["propertyNames"] = json!({"enum": settable});
        schemas["PutRates"]["properties"]["rates"]["additionalProperties"] =
            json!({"type": "string", "pattern": decimal(true)});
    }
    doc
}

/// Every currency code Coffer knows.
fn currencies() -> Vec<&'static str> {
    coffer_core::currency::REGISTRY
        .iter()
        .map(|c| c.code)
        .collect()
}

/// Digits a decimal holds exactly (`rust_decimal`): at most 28 after the point, and at most 28
/// from the first significant one.
const DIGITS: usize = 28;

/// A decimal the server reads exactly, as a pattern: `i` significant integer digits leave room
/// for `DIGITS - i` after the point. `positive`: greater than zero, no `-`.
fn decimal(positive: bool) -> String {
    let mut alts: Vec<String> = (1..=DIGITS)
        .map(|i| {
            let frac = DIGITS - i;
            let tail = if i > 1 {
                format!("[0-9]{{{}}}", i - 1)
            } else {
                String::new()
            };
            if frac == 0 {
                format!("[1-9]{tail}\\.?")
            } else {
                format!("[1-9]{tail}(\\.[0-9]{{0,{frac}}})?")
            }
        })
        .collect();
    if positive {
        // Below one: a non-zero digit somewhere among the 28 after the point.
        alts.extend(
            (0..DIGITS).map(|z| format!("0?\\.0{{{z}}}[1-9][0-9]{{0,{}}}", DIGITS - 1 - z)),
        );
        format!("^\\+?0*({})$", alts.join("|"))
    } else {
        alts.push(format!("0(\\.[0-9]{{0,{DIGITS}}})?"));
        alts.push(format!("\\.[0-9]{{1,{DIGITS}}}"));
        format!("^[+-]?0*({})$", alts.join("|"))
    }
}

const STATUSES: &str = "(active|inactive|suspended|pending)";

/// A comma list of `item`s.
fn list(item: &str) -> String {
    format!("^{item}(,{item})*$")
}

/// The constraints of a query parameter, by its name: the query parser is shared, so a name
/// means the same on every route.
fn constrain(p: &mut Value, ctx: &Context) {
    if p["in"] != "query" {
        return;
    }
    // A query parameter is absent or a string: never JSON `null`.
    if let Some(types) = p["schema"]["type"].as_array() {
        let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        p["schema"]["type"] = if kept.len() == 1 {
            kept[0].clone()
        } else {
            json!(kept)
        };
    }
    let name = p["name"].as_str().unwrap_or_default().to_owned();
    let schema = &mut p["schema"];
    let sorts: Vec<&str> = coffer_core::query::sort::SortField::ALL
        .iter()
        .map(|f| f.as_str())
        .collect();
    match name.as_str() {
        "currency" => schema["enum"] = json!(currencies()),
        "search.status" => schema["pattern"] = json!(list(STATUSES)),
        "search.balance_type" => {
            let types: Vec<&str> = coffer_core::BalanceType::ALL
                .iter()
                .map(|t| t.as_str())
                .collect();
            schema["pattern"] = json!(list(&format!("({})", types.join("|"))));
        }
        "stack" => schema["enum"] = json!(["currency"]),
        "sort" => {
            // Empty: the default order.
            let one = format!("[-+]?({})", sorts.join("|"));
            schema["pattern"] = json!(format!("^({one}(,{one})*)?$"));
        }
        "limit" if schema["maximum"].is_null() => {
            schema["minimum"] = json!(1);
            schema["maximum"] = json!(ctx.max_page_size);
        }
        n if n.starts_with("search.balance.") => schema["pattern"] = json!(decimal(false)),
        n if n.starts_with("search.") && schema["type"] == "string" => {
            schema["minLength"] = json!(1);
        }
        _ => {}
    }
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn complete(path: &str, op: &mut Value) {
    let public = PUBLIC.contains(&path);
    if public {
        op["security"] = json!([]);
    }
    let has = |name: &str| {
        op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == name))
    };
    let takes_input = op["parameters"].as_array().is_some_and(|p| !p.is_empty())
        || op.get("requestBody").is_some();
    let strict = has("strict");
    let secured = !public && op["security"] != json!([]);
    let mut add = Vec::new();
    if takes_input {
        add.push((
            "400",
            "A parameter or the body is invalid; the body names it.",
        ));
    }
    if secured {
        add.push(("401", "No API key, or an unknown or revoked one."));
        add.push(("403", "The key's role may not use this endpoint."));
        add.push((
            "429",
            "The key's request rate is exceeded; `Retry-After` says when to retry.",
        ));
    }
    if path.contains('{') {
        add.push(("404", "No such resource (or not in the key's scope)."));
    }
    if strict {
        add.push(("502", "`strict` was asked and a provider failed."));
    }
    if !public {
        add.push(("500", "An internal error."));
        add.push((
            "503",
            "Past `server.request_timeout`, or the store is unavailable.",
        ));
    }
    let Some(responses) = op["responses"].as_object_mut() else {
        return;
    };
    for (status, description) in add {
        let r = responses
            .entry(status)
            .or_insert_with(|| error(description));
        if r.get("description").is_none() {
            r["description"] = json!(description);
        }
    }
    // OpenAPI requires a description on every response.
    for (status, r) in responses.iter_mut() {
        if r.get("description").is_none() {
            r["description"] = json!(format!("HTTP {status}"));
        }
    }
}
