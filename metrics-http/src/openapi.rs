//! The OpenAPI 3 document of the JSON API, served at `/api/v1/openapi.json`.

use std::sync::OnceLock;

use axum::Json;
use serde_json::{Value, json};

/// `GET /api/v1/openapi.json`.
pub(crate) async fn document() -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(build).clone())
}

fn q(name: &str, required: bool, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": required,
            "description": description, "schema": schema })
}

fn window() -> Value {
    q(
        "window",
        false,
        "Only the last part of history: `300` (seconds), `500ms`, `30s`, `5m`, `1h`, `1d`; above zero, at most a year and at most what the system keeps, and at least one of its finest bins (10 s by default; a shorter window holds no whole bin): else 400 naming `window`, the message giving the shortest or longest window allowed. Default: all time.",
        json!({ "type": "string", "pattern": "^([1-9][0-9]*(\\.[0-9]+)?|0\\.[0-9]*[1-9][0-9]*)(ms|s|m|h|d)?$" }),
    )
}

fn tag() -> Value {
    json!({ "name": "tag", "in": "query", "required": false, "style": "form", "explode": true,
            "description": "Only series tagged `key:value` (repeat for several).",
            "schema": { "type": "array", "items": { "type": "string", "pattern": "^[^:]+:.+$" } } })
}

fn instance() -> Value {
    q(
        "instance",
        false,
        "Whose history: absent for the instance serving the request, an instance's name for its history in the shared store, `*` for every instance merged. Other instances need a shared history store (else 400 naming `instance`).",
        json!({ "type": "string", "pattern": "\\S" }),
    )
}

fn metric_type(required: bool) -> Value {
    q(
        "type",
        required,
        "Kind of metric.",
        json!({ "type": "string", "enum": ["counter", "gauge", "histogram", "timer", "rate"] }),
    )
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn err(description: &str) -> Value {
    ok(description, json!({ "$ref": "#/components/schemas/Error" }))
}

fn get(
    summary: &str,
    op: &str,
    params: Vec<Value>,
    mut responses: serde_json::Map<String, Value>,
) -> Value {
    responses.insert(
        "400".into(),
        err("A bad parameter (unknown, repeated, malformed, not UTF-8 once percent-decoded), named in the error; or a malformed request (request line, header, `Content-Length`), the part named."),
    );
    responses.insert("401".into(), err("A token is required and was not given."));
    responses.insert("405".into(), err("A method other than GET or HEAD."));
    responses.insert(
        "408".into(),
        err("The answer, waiting for a thread included, took longer than the server allows (10 s by default)."),
    );
    responses.insert(
        "413".into(),
        err("A request body larger than the server takes (64 KiB by default)."),
    );
    responses.insert(
        "431".into(),
        err("A request head (request line and headers) larger than the server takes (16 KiB by default)."),
    );
    responses.entry("503").or_insert_with(|| {
        err("Too many requests of this kind are waiting for the server's threads (`overloaded`); retry after the `Retry-After` seconds.")
    });
    json!({ "get": { "summary": summary, "operationId": op, "parameters": params,
                     "responses": responses } })
}

fn responses(list: Vec<(&str, Value)>) -> serde_json::Map<String, Value> {
    list.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn unsupported() -> (&'static str, Value) {
    (
        "501",
        err("The system cannot answer queries (a write-only backend such as StatsD alone)."),
    )
}

pub(crate) fn build() -> Value {
    let num = json!({ "type": "number" });
    let num_or_null = json!({ "type": "number", "nullable": true });
    // The bins of a range query and of a rollup.
    let bins = json!({ "type": "array", "items": { "type": "object",
        "required": ["start", "end", "covers_start", "covers_end", "count", "sum", "min", "max", "avg"], "properties": {
        "start": { "type": "string" }, "end": { "type": "string" },
        "covers_start": { "type": "string" }, "covers_end": { "type": "string" },
        "count": { "type": "integer", "minimum": 0 },
        "sum": num_or_null, "min": num_or_null, "max": num_or_null, "avg": num_or_null } } });
    let tags = json!({ "type": "object", "additionalProperties": { "type": "string" } });
    // Why a range or rollup answer lacks part of the history.
    let partial = json!({ "type": "string", "description": "Present only when part of the history could not be asked: a history store that is down or did not answer within its bound (1 s by default). Says why and what the answer holds instead (recent history from memory only). Absent when the answer is complete." });
    let metric_type_schema =
        json!({ "type": "string", "enum": ["counter", "gauge", "histogram", "timer", "rate"] });
    let unit = json!({ "type": "string", "description": "The unit of the values, the one `/metrics` exports them in: `bytes` for a metric described in a size unit or named `...bytes`, `milliseconds` for timers, `count` for plain counts." });
    json!({
      "openapi": "3.0.3",
      "info": {
        "title": "metrics-http",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Queries over a metrics system built on metrics-protocol. Durations are in milliseconds. Every error (also a malformed request, a wrong method, a head or body too large) is a JSON object `{error, message, parameter}` naming the bad parameter or part of the request, if any. With METRICS_HTTP_TOKEN set, every request needs `Authorization: Bearer <token>`. HTTP/1.1, and HTTP/2 with prior knowledge."
      },
      "paths": {
        "/api/v1/openapi.json": get("This document (OpenAPI 3)", "openapi", vec![], responses(vec![
            ("200", ok("The OpenAPI document of the JSON API.", json!({ "type": "object" }))),
        ])),
        "/api/v1/health": get("Health of every backend and check", "health", vec![], responses(vec![
            ("200", ok("Healthy or degraded.", json!({ "$ref": "#/components/schemas/HealthReport" }))),
            ("503", ok("Unhealthy (a health report), or too many requests of this kind are waiting for the server's threads (an error, `overloaded`; retry after the `Retry-After` seconds).",
                json!({ "oneOf": [ { "$ref": "#/components/schemas/HealthReport" }, { "$ref": "#/components/schemas/Error" } ] }))),
        ])),
        "/api/v1/series": get("Every series: name, type, unit, tags, current value", "series", vec![
            q("prefix", false, "Only names starting with this.", json!({ "type": "string" })),
            metric_type(false), tag(),
        ], responses(vec![
            ("200", ok("The series.", json!({ "type": "object", "required": ["series"], "properties": {
                "series": { "type": "array", "items": { "type": "object",
                    "required": ["name", "type", "unit", "tags", "value"], "properties": {
                    "name": { "type": "string" }, "type": metric_type_schema, "unit": unit,
                    "tags": tags, "value": num_or_null } } } } }))),
            unsupported(),
        ])),
        "/api/v1/summary": get("Summary of every series of a metric, merged", "summary", vec![
            q("name", true, "Metric name.", json!({ "type": "string", "minLength": 1 })),
            window(),
            q("instance", false, "Whose history: absent for the instance serving the request, an instance's name (its history in the shared store), `*` for every instance merged. With an instance, `window` is required. Other instances need a shared history store (else 400 naming `instance`).",
              json!({ "type": "string", "pattern": "\\S" })),
        ], responses(vec![
            ("200", ok("The summary, in the metric's `unit` (the one `/metrics` gives it: `bytes` for sizes, milliseconds for timers). A counter's is `total` (the sum of its increments), `increments` (how many) and `rate` (total per second over the window, null for all time), without sample statistics (the backend keeps a counter's bins, not its increments, so extremes would be of bins). Gauges, histograms and timers: `count` samples, their `sum`, `avg`, `min`, `max`, and percentiles for distributions.",
                json!({ "oneOf": [ { "$ref": "#/components/schemas/MetricSummary" }, { "$ref": "#/components/schemas/CounterSummary" } ] }))),
            ("404", err("Nothing recorded under this name (in the window).")),
            unsupported(),
        ])),
        "/api/v1/query_range": get("History in bins of `step`, per value of a tag", "query_range", vec![
            q("name", true, "Metric name.", json!({ "type": "string", "minLength": 1 })),
            q("start", false, "RFC 3339 time, Unix seconds, `now`, or a time before now: `-` and a duration (`-5m`, `-1.5h`; also `now-5m`). Default: an hour before `end`.", json!({ "type": "string", "minLength": 1 })),
            q("end", false, "RFC 3339 time, Unix seconds, `now`, or a time before now (`-5m`); after start. Default: now. Only bins that have ended by `end` count, so the bin being filled (the last 10 s by default) is left out.", json!({ "type": "string", "minLength": 1 })),
            q("step", true, "Bin width, a duration (`10s`, `1m`); a multiple of the system's finest bin; at most 11000 bins.",
              json!({ "type": "string", "pattern": "^([1-9][0-9]*(\\.[0-9]+)?|0\\.[0-9]*[1-9][0-9]*)(ms|s|m|h|d)?$" })),
            tag(),
            q("group_by", false, "One group per value of this tag.", json!({ "type": "string", "minLength": 1 })),
            instance(),
        ], responses(vec![
            ("200", ok("Groups of bins (`series`), one per `group_by` value (one without it), oldest bin first. The range is answered on its step grid (`grid`): `start` rounded down and `end` rounded up to whole steps counted from the Unix epoch, so stored bins (aligned the same way) each lie in one step and no step holds a sample from outside its `[start, end)`. Each bin is `[start, end)`, one step; `[covers_start, covers_end)` is what its stored bins really span (wider where stored bins are coarser than the step: such a bin counts whole in the step holding its start).", json!({ "type": "object", "required": ["series"], "properties": {
                "series": { "type": "array", "items": { "type": "object", "required": ["group", "bins"], "properties": {
                    "group": { "type": "string", "nullable": true },
                    "bins": bins.clone() } } },
                "grid": { "type": "object", "required": ["start", "end", "step_seconds"], "description": "The step grid the answer was given on: the asked range rounded out to whole steps.", "properties": {
                    "start": { "type": "string", "format": "date-time" },
                    "end": { "type": "string", "format": "date-time" },
                    "step_seconds": { "type": "number" } } },
                "partial": partial.clone() } }))),
            ("404", err("Nothing recorded under this name.")),
            ("501", err("The system keeps no binned history (the protocol has no range query; the main program plugs in the memory backend's).")),
        ])),
        "/api/v1/rollup": get("Calendar rollups (UTC hour, day, ISO week, month), per value of a tag", "rollup", vec![
            q("name", true, "Metric name.", json!({ "type": "string", "minLength": 1 })),
            q("period", true, "Calendar period.", json!({ "type": "string", "enum": ["hour", "day", "week", "month"] })),
            q("start", false, "RFC 3339 time, Unix seconds, `now`, or a time before now: `-` and a duration (`-5m`, `-1.5h`; also `now-5m`). Default: an hour before `end`.", json!({ "type": "string", "minLength": 1 })),
            q("end", false, "RFC 3339 time, Unix seconds, `now`, or a time before now (`-5m`); after start. Default: now. Only bins that have ended by `end` count, so the bin being filled (the last 10 s by default) is left out.", json!({ "type": "string", "minLength": 1 })),
            tag(),
            q("group_by", false, "One group per value of this tag.", json!({ "type": "string", "minLength": 1 })),
            instance(),
        ], responses(vec![
            ("200", ok("Series of periods, oldest first. Each period is `[start, end)`; only bins wholly inside the request's range count, each in the period holding its start; `[covers_start, covers_end)` is what they really span (narrower at the edges, wider where stored bins are coarser than the period).",
                json!({ "type": "object", "required": ["series"], "properties": {
                "series": { "type": "array", "items": { "type": "object", "required": ["group", "bins"], "properties": {
                    "group": { "type": "string", "nullable": true },
                    "bins": bins } } },
                "partial": partial } }))),
            ("404", err("Nothing recorded under this name (in the range, for the instance).")),
            ("501", err("The system keeps no binned history.")),
        ])),
        "/api/v1/timing": get("Timing statistics of a timer", "timing", vec![
            q("name", true, "Timer (operation) name.", json!({ "type": "string", "minLength": 1 })),
            window(),
        ], responses(vec![
            ("200", ok("Count and durations in milliseconds.", json!({ "type": "object",
                "required": ["name", "count", "sum", "avg", "min", "max", "p50", "p90", "p95", "p99"],
                "properties": { "name": { "type": "string" }, "window_ms": num_or_null,
                  "count": { "type": "integer", "minimum": 0 }, "sum": num, "avg": num, "min": num,
                  "max": num, "p50": num, "p90": num, "p95": num, "p99": num } }))),
            ("404", err("No timings of this name (in the window).")),
            unsupported(),
        ])),
        "/api/v1/success": get("Success rate and failures by error type of an operation", "success", vec![
            q("operation", true, "Operation name.", json!({ "type": "string", "minLength": 1 })),
            window(),
            instance(),
        ], responses(vec![
            ("200", ok("Rate from 0 to 1 and failure counts.", json!({ "type": "object",
                "required": ["operation", "success_rate", "failures"], "properties": {
                  "operation": { "type": "string" }, "window_ms": num_or_null,
                  "success_rate": num_or_null,
                  "failures": { "type": "object", "additionalProperties": { "type": "integer", "minimum": 0 } } } }))),
            ("404", err("No outcomes of this operation (in the window).")),
            unsupported(),
        ])),
        "/api/v1/top": get("The series of one type with the largest values", "top", vec![
            metric_type(false),
            q("limit", false, "How many (default 10).", json!({ "type": "integer", "minimum": 1, "maximum": 1000 })),
        ], responses(vec![
            ("200", ok("Largest first.", json!({ "type": "object", "required": ["type", "metrics"], "properties": {
                "type": metric_type_schema,
                "metrics": { "type": "array", "items": { "$ref": "#/components/schemas/MetricValue" } } } }))),
            unsupported(),
        ])),
        "/api/v1/dashboards/{kind}": get("Data of one dashboard", "dashboard", vec![
            json!({ "name": "kind", "in": "path", "required": true, "schema": { "type": "string",
                    "enum": ["overview", "performance", "errors", "resources"] } }),
        ], responses(vec![
            ("200", ok("Panels in display order.", json!({ "type": "object",
                "required": ["kind", "title", "generated_at", "panels"], "properties": {
                  "kind": { "type": "string" }, "title": { "type": "string" },
                  "generated_at": { "type": "string" }, "panels": { "type": "array", "items": { "type": "object" } } } }))),
            unsupported(),
        ])),
        "/api/v1/export": get("Everything recorded, in one format", "export", vec![
            q("format", false, "Default json.", json!({ "type": "string", "enum": ["json", "csv", "prometheus", "openmetrics"] })),
        ], responses(vec![
            ("200", json!({ "description": "The export.", "content": {
                "application/json": { "schema": {} },
                "text/csv": { "schema": { "type": "string" } },
                "text/plain": { "schema": { "type": "string" } },
                "application/openmetrics-text": { "schema": { "type": "string" } } } })),
            unsupported(),
        ])),
        "/api/v1/stream": get("Values recorded from now on, as server-sent events", "stream", vec![
            q("prefix", false, "Only names starting with this.", json!({ "type": "string" })),
            json!({ "name": "type", "in": "query", "required": false, "style": "form", "explode": true,
                    "description": "Only these kinds (repeat for several).",
                    "schema": { "type": "array", "items": metric_type_schema } }),
            tag(),
        ], responses(vec![
            ("200", json!({ "description": "Events `metric` (data: a MetricValue) and `lagged` (data: {\"missed\": n}, values this subscriber lost by falling behind).",
                "content": { "text/event-stream": { "schema": { "type": "string" } } } })),
            ("503", err("As many subscribers as the server takes are connected (`too_many_streams`, 32 by default); retry after the `Retry-After` seconds.")),
        ])),
      },
      "components": { "schemas": {
        "Error": { "type": "object", "required": ["error", "message"], "properties": {
            "error": { "type": "string" }, "message": { "type": "string" },
            "parameter": { "type": "string", "nullable": true } } },
        "MetricValue": { "type": "object", "required": ["name", "type", "unit", "value", "timestamp", "tags"],
          "properties": { "name": { "type": "string" }, "type": metric_type_schema, "unit": unit,
            "value": num_or_null, "timestamp": { "type": "string" }, "tags": tags,
            "metadata": { "type": "object", "description": "Statistics of a distribution (`sum`, `avg`, `min`, `max`, `p50`, `p95`, `p99`) as numbers; anything else as a string.",
              "additionalProperties": { "oneOf": [ { "type": "number" }, { "type": "string" } ] } } } },
        "CounterSummary": { "type": "object",
          "required": ["name", "metric_type", "unit", "series", "total", "increments", "rate"],
          "properties": { "name": { "type": "string" }, "metric_type": { "type": "string", "enum": ["counter"] }, "unit": unit,
            "series": { "type": "integer", "minimum": 0 },
            "total": num_or_null, "increments": { "type": "integer", "minimum": 0 }, "rate": num_or_null,
            "window": num_or_null, "covers": num_or_null } },
        "MetricSummary": { "type": "object",
          "required": ["name", "metric_type", "unit", "series", "count", "sum", "avg", "min", "max"],
          "properties": { "name": { "type": "string" }, "metric_type": metric_type_schema, "unit": unit,
            "series": { "type": "integer", "minimum": 0 }, "count": { "type": "integer", "minimum": 0 },
            "sum": num_or_null, "avg": num_or_null, "min": num_or_null, "max": num_or_null,
            "last": num_or_null, "p50": num_or_null, "p90": num_or_null, "p95": num_or_null,
            "p99": num_or_null, "window": num_or_null, "covers": num_or_null,
            "quantiles_cover": num_or_null } },
        "HealthReport": { "type": "object",
          "required": ["status", "healthy", "error_rate", "dropped", "backends", "checks", "timestamp"],
          "properties": {
            "status": { "type": "string", "enum": ["healthy", "degraded", "unhealthy"] },
            "healthy": { "type": "boolean" }, "error_rate": num_or_null,
            "dropped": { "type": "object", "additionalProperties": { "type": "integer", "minimum": 0 } },
            "backends": { "type": "array", "items": { "type": "object", "required": ["name", "status"],
              "properties": { "name": { "type": "string" },
                "status": { "type": "string", "enum": ["healthy", "degraded", "unhealthy"] } } } },
            "checks": { "type": "array", "items": { "type": "object", "required": ["name", "status"],
              "properties": { "name": { "type": "string" },
                "status": { "type": "string", "enum": ["healthy", "degraded", "unhealthy"] } } } },
            "timestamp": { "type": "string" } } }
      } }
    })
}
