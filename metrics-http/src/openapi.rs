//! The OpenAPI 3.1 document of the JSON API, served at
//! `/api/v1/openapi.json`, generated from the handlers' own types: each
//! handler states its path, parameters and answers (`#[utoipa::path]`),
//! each answer is the type the handler serialises (`ToSchema`, its doc
//! comments the schemas' descriptions), each parameter a type whose doc
//! comment states its rule once ([`crate::params::doc`]).

use std::sync::OnceLock;

use axum::Json;
use axum::extract::RawQuery;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::ApiError;
use crate::params::Params;

/// The document: every route of `api_routes` and the schemas of their
/// answers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "metrics-http",
        description = "Queries over a metrics system built on metrics-protocol. Durations are in milliseconds. Every error (also a malformed request, a wrong method, a head or body too large) is a JSON object `{error, message, parameter}` naming the bad parameter or part of the request, if any. With METRICS_HTTP_TOKEN set, every request needs `Authorization: Bearer <token>`. HTTP/1.1, and HTTP/2 with prior knowledge."
    ),
    paths(
        document,
        crate::api::health,
        crate::api::series,
        crate::api::summary,
        crate::range::query_range,
        crate::range::rollup,
        crate::api::timing,
        crate::api::success,
        crate::api::top,
        crate::api::dashboard,
        crate::api::export,
        crate::api::stream,
    ),
    // Schemas only parameters name (those of answers are found from them).
    components(schemas(metrics_query::Period, metrics_exposition::ExportFormat)),
    modifiers(&CommonErrors)
)]
struct ApiDoc;

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "The OpenAPI document of the JSON API.", body = Object))
)]
pub(crate) async fn document(RawQuery(q): RawQuery) -> Result<Json<serde_json::Value>, ApiError> {
    Params::parse(q.as_deref(), &[])?;
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    Ok(Json(DOC.get_or_init(build).clone()))
}

/// The document as JSON.
pub(crate) fn build() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

/// The answers every operation may give besides its own: a bad
/// parameter or request, a missing token, a wrong method, a timeout, a
/// head or body too large, too many requests waiting (unless the
/// operation says what its 503 is).
struct CommonErrors;

impl CommonErrors {
    const ANSWERS: [(&str, &str); 7] = [
        (
            "400",
            "A bad parameter (unknown, repeated, malformed, not UTF-8 once percent-decoded), named in the error; or a malformed request (request line, header, `Content-Length`), the part named.",
        ),
        ("401", "A token is required and was not given."),
        ("405", "A method other than GET or HEAD."),
        (
            "408",
            "The answer, waiting for a thread included, took longer than the server allows (10 s by default).",
        ),
        (
            "413",
            "A request body larger than the server takes (64 KiB by default).",
        ),
        (
            "431",
            "A request head (request line and headers) larger than the server takes (16 KiB by default).",
        ),
        (
            "503",
            "Too many requests of this kind are waiting for the server's threads (`overloaded`); retry after the `Retry-After` seconds.",
        ),
    ];

    fn add(op: &mut Operation) {
        for (status, description) in Self::ANSWERS {
            op.responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| {
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("Error")))
                                .build(),
                        )
                        .build()
                        .into()
                });
        }
    }
}

impl Modify for CommonErrors {
    fn modify(&self, doc: &mut Document) {
        for item in doc.paths.paths.values_mut() {
            if let Some(op) = item.get.as_mut() {
                Self::add(op);
            }
        }
    }
}
