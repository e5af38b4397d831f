//! The OpenAPI document, generated from the handlers' annotations and the wire types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::bridge::{lifecycle, metrics, routes};

/// Adds the bearer scheme and references it from every operation (required for changes,
/// optional for reads, which loopback peers make without it).
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let bearer = || SecurityRequirement::new("bearer", Vec::<String>::new());
        for (_, operation, mutating) in operations(openapi) {
            operation.security = Some(if mutating {
                vec![bearer()]
            } else {
                vec![SecurityRequirement::default(), bearer()]
            });
        }
    }
}

/// Documents on every operation the answers the bridge gives to any request before (or
/// beside) its handler: the guard's, the body's, the token's, a wrong method, shutdown.
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
        for (path, operation, mutating) in operations(openapi) {
            let mut add = |status: &str, description: &str| {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::T(error(description)));
            };
            add("401", "a token is configured and the request lacks it");
            add(
                "403",
                "another origin's page (`cross_origin`) or an unknown host (`host_not_allowed`)",
            );
            add("405", "another method on this path");
            if path != "/" && path != "/openapi.json" {
                add("503", "the runtime is shutting down");
            }
            if mutating {
                add("400", "a malformed body");
                add("408", "the body did not arrive in time");
                add("413", "the body is over 1 MiB");
                add("415", "the request is not typed `application/json`");
            }
        }
    }
}

/// Every operation with its path and whether it changes anything.
fn operations(
    openapi: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (String, &mut utoipa::openapi::path::Operation, bool)> {
    openapi.paths.paths.iter_mut().flat_map(|(path, item)| {
        let reads = item.get.iter_mut().map(|o| (o, false));
        let changes = item
            .post
            .iter_mut()
            .chain(item.put.iter_mut())
            .chain(item.delete.iter_mut())
            .chain(item.patch.iter_mut())
            .map(|o| (o, true));
        reads
            .chain(changes)
            .map(move |(o, mutating)| (path.clone(), o, mutating))
    })
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tend debug bridge",
        description = "Inspect and steer the executions of a process that embeds tend. With a token configured, mutating routes need `Authorization: Bearer <token>`; reads need it too unless they come from loopback."
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
    modifiers(&BearerToken, &CommonResponses)
)]
pub(crate) struct ApiDoc;
