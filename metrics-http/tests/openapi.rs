//! The OpenAPI document against what the service really answers: every
//! JSON answer, over a memory backend holding every kind of metric, has
//! only fields its documented schema declares, of the documented JSON
//! types, and every field a schema declares is in some answer (a field
//! added to an answer but not to the document fails, and so does one the
//! document declares but no answer has).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use metrics_http::{HttpConfig, Source, router};
use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
use serde_json::{Map, Value};
use tower::ServiceExt;

mod common;
use common::TestSystem;

/// Fields no answer here has: a range answer says `partial` only when a
/// history store did not answer (the test has none).
const NEVER_HERE: [&str; 1] = ["partial"];

/// Per object schema met (by its place in the document): where it was
/// first met, the fields it declares, and those seen in some answer. A
/// field may be absent from one answer (a rollup has no step `grid`, a
/// counter's step no percentiles) but not from all.
type Coverage = BTreeMap<usize, (String, BTreeSet<String>, BTreeSet<String>)>;

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{uri}: {e}: {}", String::from_utf8_lossy(&body)));
    (status, v)
}

/// `schema` with its `$ref` followed.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            let target = &doc["components"]["schemas"][name];
            assert!(!target.is_null(), "dangling reference {r}");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Whether `value` is of the JSON type `ty` names.
fn of_type(ty: &str, value: &Value) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

/// What in `value` (at `at`) the schema does not describe, or describes
/// otherwise, into `errors`.
fn check(
    doc: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    errors: &mut Vec<String>,
    seen: &mut Coverage,
) {
    let schema = resolve(doc, schema);
    check_resolved(doc, schema, schema, value, at, errors, seen);
}

/// [`check`] of a resolved schema, whose coverage counts under `key`'s
/// place in the document.
fn check_resolved(
    doc: &Value,
    key: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    errors: &mut Vec<String>,
    seen: &mut Coverage,
) {
    if let Some(branches) = schema["oneOf"].as_array() {
        let mut all = Vec::new();
        for b in branches {
            let (mut e, mut s) = (Vec::new(), Coverage::new());
            check(doc, b, value, at, &mut e, &mut s);
            if e.is_empty() {
                // Only the branch that matched saw anything.
                for (k, (at, declared, fields)) in s {
                    seen.entry(k)
                        .or_insert_with(|| (at, declared, BTreeSet::new()))
                        .2
                        .extend(fields);
                }
                return;
            }
            all.push(e.join("; "));
        }
        errors.push(format!(
            "{at}: matches no branch of oneOf: [{}]",
            all.join(" | ")
        ));
        return;
    }
    if let Some(parts) = schema["allOf"].as_array() {
        // The parts of one object (a flattened field): their properties
        // together.
        let mut properties = Map::new();
        let mut required = Vec::new();
        for p in parts {
            let p = resolve(doc, p);
            assert!(
                p["allOf"].is_null() && p["oneOf"].is_null(),
                "{at}: nested composition"
            );
            if let Some(props) = p["properties"].as_object() {
                properties.extend(props.clone());
            }
            required.extend(p["required"].as_array().cloned().unwrap_or_default());
        }
        let merged = serde_json::json!({
            "type": "object", "properties": properties, "required": required,
        });
        check_resolved(doc, schema, &merged, value, at, errors, seen);
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| of_type(t, value)) {
        errors.push(format!("{at}: {value} is not of type {types:?}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    match value {
        Value::Object(fields) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in fields {
                    match props.get(k) {
                        Some(s) => check(doc, s, v, &format!("{at}.{k}"), errors, seen),
                        None => errors.push(format!("{at}.{k}: not in the document")),
                    }
                }
                let entry = seen.entry(key as *const Value as usize).or_insert_with(|| {
                    (
                        at.to_owned(),
                        props.keys().cloned().collect(),
                        BTreeSet::new(),
                    )
                });
                entry
                    .2
                    .extend(fields.keys().filter(|k| props.contains_key(*k)).cloned());
                for k in schema["required"].as_array().into_iter().flatten() {
                    let k = k.as_str().unwrap_or_default();
                    if !fields.contains_key(k) {
                        errors.push(format!("{at}.{k}: required but not in the answer"));
                    }
                }
            } else if let Some(each) = schema.get("additionalProperties").filter(|s| s.is_object())
            {
                for (k, v) in fields {
                    check(doc, each, v, &format!("{at}[{k}]"), errors, seen);
                }
            } else if types.contains(&"object") {
                errors.push(format!(
                    "{at}: an object whose fields the document does not state"
                ));
            }
        }
        Value::Array(items) => {
            if let Some(each) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check(doc, each, v, &format!("{at}[{i}]"), errors, seen);
                }
            }
        }
        _ => {}
    }
}

/// 2027-01-15T08:00:00Z: the start of a 10 s bin (and of an hour).
const T0: i64 = 1_800_000_000_000;

#[tokio::test]
async fn every_json_answer_has_exactly_the_fields_its_documented_schema_declares() {
    let clock = Arc::new(ManualClock::new(T0));
    let mem = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    let m = metrics_protocol::Metrics::new(mem.clone());
    for i in 0..20u32 {
        m.record_counter(
            "jobs.done",
            1.0,
            &[("queue", if i % 2 == 0 { "a" } else { "b" })],
        );
        m.record_histogram("payload.bytes", 100.0 * f64::from(i + 1), &[]);
        m.record_timer("db.query", Duration::from_millis(5 + u64::from(i)), &[]);
        if i % 5 == 0 {
            m.record_failure("checkout", "timeout", &[]);
        } else {
            m.record_success("checkout", &[]);
        }
    }
    m.record_gauge("queue.depth", 7.0, &[("queue", "a")]);
    clock.advance(Duration::from_secs(30));
    m.record_counter("jobs.done", 2.0, &[("queue", "a")]);
    clock.advance(Duration::from_secs(20));
    let system = TestSystem::over(mem.clone());
    let app = router(
        Source::from_system(Arc::new(system))
            .with_ranges(mem.clone())
            .with_exporter(metrics_exposition::Exporter::new(mem.clone())),
        &HttpConfig::default(),
    );
    let (status, doc) = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);

    let start = (T0 / 1000).to_string();
    let end = (T0 / 1000 + 60).to_string();
    let asked = [
        ("/api/v1/health", String::new()),
        ("/api/v1/series", String::new()),
        ("/api/v1/series", "type=gauge&tag=queue:a".into()),
        ("/api/v1/summary", "name=jobs.done".into()),
        ("/api/v1/summary", "name=jobs.done&window=5m".into()),
        ("/api/v1/summary", "name=payload.bytes&window=5m".into()),
        ("/api/v1/summary", "name=queue.depth".into()),
        ("/api/v1/summary", "name=db.query".into()),
        (
            "/api/v1/query_range",
            format!("name=jobs.done&start={start}&end={end}&step=10s&group_by=queue"),
        ),
        (
            "/api/v1/query_range",
            format!("name=payload.bytes&start={start}&end={end}&step=1m"),
        ),
        (
            "/api/v1/rollup",
            format!("name=jobs.done&period=hour&start={start}&end={end}"),
        ),
        ("/api/v1/timing", "name=db.query".into()),
        ("/api/v1/timing", "name=db.query&window=5m".into()),
        ("/api/v1/success", "operation=checkout".into()),
        ("/api/v1/success", "operation=checkout&window=5m".into()),
        ("/api/v1/top", "type=counter".into()),
        ("/api/v1/top", "type=histogram&limit=5".into()),
        ("/api/v1/top", "type=timer".into()),
        ("/api/v1/dashboards/{kind}", String::new()),
        // Errors are answers too.
        ("/api/v1/summary", "name=never.recorded".into()),
        ("/api/v1/timing", "name=db.query&window=x".into()),
    ];
    let mut covered = BTreeSet::new();
    let mut seen = Coverage::new();
    for (path, query) in asked {
        let uri = format!("{}?{query}", path.replace("{kind}", "overview"));
        let (status, answer) = get(&app, &uri).await;
        let response = &doc["paths"][path]["get"]["responses"][status.as_str()];
        assert!(
            !response.is_null(),
            "{uri}: {status} is not documented: {answer}"
        );
        let schema = &response["content"]["application/json"]["schema"];
        assert!(!schema.is_null(), "{uri}: no JSON schema for {status}");
        let mut errors = Vec::new();
        let at = format!("{path} {}: $", status.as_u16());
        check(&doc, schema, &answer, &at, &mut errors, &mut seen);
        assert!(
            errors.is_empty(),
            "{uri} ({status}):\n{}\n{answer:#}",
            errors.join("\n")
        );
        if status.is_success() {
            covered.insert(path);
        }
    }
    // Every path whose success is JSON was asked (a route added later is
    // asked here too).
    let json_paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, item)| {
            item["get"]["responses"]["200"]["content"]
                .as_object()
                .is_some_and(|c| c.len() == 1 && c.contains_key("application/json"))
        })
        .map(|(p, _)| p.as_str())
        .filter(|p| *p != "/api/v1/openapi.json")
        .collect();
    assert_eq!(covered, json_paths);
    let unseen: Vec<String> = seen
        .values()
        .flat_map(|(at, declared, fields)| {
            declared
                .difference(fields)
                .filter(|k| !NEVER_HERE.contains(&k.as_str()))
                .map(move |k| format!("{at}.{k}"))
        })
        .collect();
    assert!(
        unseen.is_empty(),
        "documented but in no answer: {unseen:#?}"
    );
}

/// The checker itself finds what it is there to find: a field the
/// document lacks, a documented field the answers lack, a wrong type, a
/// required field missing.
#[test]
fn the_checker_finds_extra_missing_and_mistyped_fields() {
    let doc = serde_json::json!({ "components": { "schemas": { "A": {
        "type": "object", "required": ["n"],
        "properties": { "n": { "type": "integer" }, "s": { "type": ["string", "null"] } } } } } });
    let schema = serde_json::json!({ "$ref": "#/components/schemas/A" });
    let errors = |v: Value| {
        let (mut e, mut seen) = (Vec::new(), Coverage::new());
        check(&doc, &schema, &v, "$", &mut e, &mut seen);
        let unseen: Vec<String> = seen
            .values()
            .flat_map(|(_, declared, fields)| declared.difference(fields).cloned())
            .collect();
        (e, unseen)
    };
    assert_eq!(
        errors(serde_json::json!({ "n": 1, "s": null })),
        (Vec::<String>::new(), Vec::<String>::new())
    );
    assert_eq!(
        errors(serde_json::json!({ "n": 1, "s": "x", "extra": 2 })).0,
        ["$.extra: not in the document"]
    );
    assert_eq!(errors(serde_json::json!({ "n": 1 })).1, ["s"]);
    assert_eq!(
        errors(serde_json::json!({ "n": 1.5, "s": null })).0,
        ["$.n: 1.5 is not of type [\"integer\"]"]
    );
    assert_eq!(
        errors(serde_json::json!({ "s": null })).0,
        ["$.n: required but not in the answer"]
    );
}
