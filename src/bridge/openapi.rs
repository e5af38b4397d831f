//! The OpenAPI document, generated from the handlers' annotations and the wire types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::bridge::routes;

/// Adds the bearer scheme used by mutating routes when a token is configured.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
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
        routes::resume,
        routes::retry,
        routes::interrupt_all,
        routes::events,
        routes::tree,
        routes::semaphores,
        routes::openapi,
        routes::dashboard,
    ),
    modifiers(&BearerToken)
)]
pub(crate) struct ApiDoc;
