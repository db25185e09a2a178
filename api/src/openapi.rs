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
        (name = "websocket", description = "WebSocket connections (protocol in docs/websocket.md)"),
        (name = "quantum", description = "QUBO, Max-Cut and TSP solving with the quantum-inspired samplers")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

/// Responses every operation can give, added (once the router has collected the paths) where
/// a handler's annotation does not list them:
/// authentication and rate limiting apply to all authenticated operations, and body parsing
/// to all operations with a body.
pub(crate) fn common_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{RefOr, Response, ResponseBuilder};
    let error = |description: &str| -> RefOr<Response> {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for item in openapi.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.delete,
            &mut item.put,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let with_body = op.request_body.is_some();
            let responses = &mut op.responses.responses;
            let mut add = |code: &str, description: &str| {
                responses
                    .entry(code.to_string())
                    .or_insert_with(|| error(description));
            };
            if secured {
                add("401", "Missing, invalid, expired or revoked credentials");
                add("429", "Rate limited");
                add("503", "Not initialised (run nqdb init)");
            }
            if with_body {
                add("400", "Malformed JSON or invalid request");
                add("413", "Body larger than limits.max_body_bytes");
                add("422", "JSON of the wrong shape");
                add("503", "Not initialised (run nqdb init)");
            }
            add(
                "408",
                "The request took longer than limits.request_timeout_ms",
            );
        }
    }
}

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
