//! The OpenAPI document of the API. It is generated from the handlers'
//! annotations by the same router builder that registers the routes, so a
//! route cannot exist without being documented.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

/// The document's fixed part; paths are added as routes are registered.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sandflow",
        description = "Workflows whose tasks run as WebAssembly components. Every error answers \
                       `{\"error\": {\"code\", \"message\"}}` with a 4xx status."
    ),
    modifiers(&BearerTokens),
    components(schemas(ErrorBody)),
    tags(
        (name = "jobs", description = "submit, inspect, cancel and retry jobs"),
        (name = "modules", description = "upload task components"),
        (name = "runners", description = "the runner protocol (runner tokens)"),
        (name = "clusters", description = "pools of runners"),
        (name = "host", description = "liveness, counters and this document"),
    )
)]
pub struct ApiDoc;

/// Declares the `admin` and `runner` bearer-token schemes.
struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for role in ["admin", "runner"] {
            let scheme = HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(format!("a {role} token from the host's token file")));
            components.add_security_scheme(role, SecurityScheme::Http(scheme.build()));
        }
    }
}
