//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's fixed parts; the paths come from the router (see `server::router`), so a
/// route without documentation cannot be added.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "NeuroQuantumDB API",
        description = "SQL over HTTP: statements, transactions, schema, keys and tokens. \
                       Authenticate with `Authorization: Bearer <API key or token>`."
    ),
    servers((url = "/api/v1")),
    modifiers(&BearerAuth),
    tags(
        (name = "sql", description = "Running statements"),
        (name = "transactions", description = "Transactions across requests"),
        (name = "schema", description = "Tables"),
        (name = "auth", description = "API keys and tokens"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "websocket", description = "WebSocket connections (protocol in docs/websocket.md)")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`nqk_...`) or a token from POST /auth/token",
                    ))
                    .build(),
            ),
        );
    }
}
