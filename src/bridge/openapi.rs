//! The OpenAPI 3.1 document, as client generators (openapi-python-client, openapi-typescript)
//! and schemathesis read it: built from the handlers' annotations and the wire types, then
//! finished here with what the derives cannot say.
//!
//! - Every operation answers its documented statuses, each with a description; the
//!   answers the bridge gives before any handler runs (the guard's, the token's, the
//!   body's, a shutdown's) are added to every operation they can come from.
//! - A body the server requires to be typed JSON is a required body whose schema takes
//!   `{}`, so that a generated client always sends it, with its `Content-Type`.
//! - Every interrupt strategy, metaparam and duration has a named schema (see `schemas`).
//! - The bearer scheme is always declared: with a token configured, changes need it and
//!   reads may carry it; without one, it may be sent and is not needed.
//! - `POST /executions` links its answer's id to every operation on that execution.

mod schemas;

use serde_json::{Value, json};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::bridge::{lifecycle, metrics, routes};

/// The document as served: `server` is the path prefix the bridge is mounted at (`/`
/// when served by itself), `token` whether changes need the bearer token.
pub(crate) fn document(token: bool, server: &str) -> Result<Value, serde_json::Error> {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![utoipa::openapi::Server::new(server)]);
    let mut doc = serde_json::to_value(doc)?;
    schemas::install(&mut doc);
    secure(&mut doc, token);
    link_submit(&mut doc);
    // `POST /executions` answers 200 with either body; the derive keeps one per type.
    if let Some(schema) =
        doc.pointer_mut("/paths/~1executions/post/responses/200/content/application~1json/schema")
    {
        *schema = json!({"oneOf": [
            {"$ref": "#/components/schemas/Created"},
            {"$ref": "#/components/schemas/DryRunView"},
        ]});
    }
    Ok(doc)
}

/// The bearer scheme, and each operation's requirement: with a token, changes need it
/// and reads may go without (loopback peers read without it); without a token nothing
/// needs it, and a client that sends it anyway is answered as usual.
fn secure(doc: &mut Value, token: bool) {
    doc["components"]["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "The bridge's token (`Bridge::with_token`, `TEND_BRIDGE_TOKEN`), as `Authorization: Bearer <token>`; reads may pass it as `?token=` instead."
        }
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            let changes = method != "get";
            operation["security"] = if token && changes {
                json!([{"bearer": []}])
            } else {
                json!([{}, {"bearer": []}])
            };
        }
    }
}

/// Links from `POST /executions`'s `201` to every operation on the execution it created,
/// so that a client (or schemathesis's stateful phase) follows them with a real id.
fn link_submit(doc: &mut Value) {
    let links: serde_json::Map<String, Value> = [
        ("GetExecution", "get_execution"),
        ("InterruptExecution", "interrupt_execution"),
        ("PauseExecution", "pause_execution"),
        ("CancelExecution", "cancel_execution"),
        ("ResumeExecution", "resume_execution"),
        ("RetryExecution", "retry_execution"),
        ("DeleteExecution", "delete_execution"),
    ]
    .into_iter()
    .map(|(name, operation)| {
        (
            name.to_owned(),
            json!({
                "operationId": operation,
                "parameters": {"id": "$response.body#/id"},
            }),
        )
    })
    .collect();
    if let Some(created) = doc.pointer_mut("/paths/~1executions/post/responses/201") {
        created["links"] = Value::Object(links);
    }
}

/// Documents on every operation the answers the bridge gives to any request before (or
/// beside) its handler: the guard's, the token's, the body's, a wrong method, shutdown.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let has_body = operation.request_body.is_some();
                let mut add = |status: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(error(description)));
                };
                add(
                    "401",
                    "a token is configured and the request lacks it (`unauthorized`)",
                );
                add(
                    "403",
                    "another origin's page (`cross_origin`) or an unknown host (`host_not_allowed`)",
                );
                add("405", "another method on this path");
                if path != "/" && path != "/openapi.json" {
                    add("503", "the runtime is shutting down (`shutting_down`)");
                }
                if has_body {
                    add("400", "a malformed body (`malformed_json`, `invalid_body`)");
                    add("408", "the body did not arrive in time (`request_timeout`)");
                    add("413", "the body is over 1 MiB (`payload_too_large`)");
                    add(
                        "415",
                        "the request is not typed `application/json` (`unsupported_media_type`)",
                    );
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tend debug bridge",
        description = "Inspect and steer the executions of a process that embeds tend. With a token configured, mutating routes need `Authorization: Bearer <token>`; reads need it too unless they come from loopback. Every POST is typed `application/json`, with `{}` where it takes no options."
    ),
    paths(
        routes::health,
        routes::list,
        routes::submit,
        routes::status,
        routes::interrupt,
        routes::pause,
        routes::cancel,
        routes::resume,
        routes::retry,
        routes::interrupt_all,
        lifecycle::shutdown,
        lifecycle::maintenance,
        lifecycle::sweep,
        routes::delete,
        routes::events,
        routes::tree,
        routes::semaphores,
        metrics::metrics,
        routes::openapi,
        routes::dashboard,
    ),
    tags(
        (name = "executions", description = "Submit, inspect and steer executions"),
        (name = "runtime", description = "The runtime as a whole: health, lifecycle, what it holds"),
    ),
    modifiers(&CommonResponses)
)]
pub(crate) struct ApiDoc;

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                all.push((method.clone(), path.clone(), operation));
            }
        }
        all
    }

    #[test]
    fn every_response_has_a_description_and_every_operation_an_id() {
        for token in [false, true] {
            let doc = super::document(token, "/").unwrap();
            for (method, path, operation) in operations(&doc) {
                assert!(
                    operation["operationId"].is_string(),
                    "{method} {path} has no operationId"
                );
                for (status, response) in operation["responses"].as_object().unwrap() {
                    assert!(
                        response["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status} has no description"
                    );
                }
            }
        }
    }

    #[test]
    fn every_post_requires_its_json_body_and_a_delete_takes_none() {
        let doc = super::document(true, "/").unwrap();
        for (method, path, operation) in operations(&doc) {
            let body = &operation["requestBody"];
            match method.as_str() {
                "post" => {
                    assert_eq!(body["required"], true, "{method} {path}");
                    assert!(
                        body["content"]["application/json"]["schema"].is_object(),
                        "{method} {path}"
                    );
                    assert!(operation["responses"]["415"].is_object(), "{method} {path}");
                }
                _ => {
                    assert!(body.is_null(), "{method} {path}");
                    for status in ["400", "408", "413", "415"] {
                        assert!(
                            operation["responses"][status].is_null() || path == "/executions",
                            "{method} {path} lists {status} for a body it never reads"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn changes_need_the_token_only_when_one_is_configured() {
        for token in [false, true] {
            let doc = super::document(token, "/").unwrap();
            for (method, path, operation) in operations(&doc) {
                let optional = operation["security"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r.as_object().unwrap().is_empty());
                assert_eq!(optional, !token || method == "get", "{method} {path}");
                assert!(operation["responses"]["401"].is_object(), "{method} {path}");
            }
        }
    }
}
