//! `POST /auth/token` and the key management endpoints (`/keys`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::keys::now_secs;
use crate::auth::{AuthError, KeyInfo, Principal, Role};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiJson, AppState};

/// Exchange an API key for a token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The API key (`nqk_...`).
    pub api_key: String,
}

/// A short-lived token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT, for `Authorization: Bearer <token>`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
}

fn auth_error(e: AuthError) -> ApiError {
    match e {
        AuthError::Io(message) => ApiError::internal(message),
        other => ApiError::unauthorized(other.to_string()),
    }
}

/// Issues a short-lived token (JWT) for an API key.
#[utoipa::path(
    post,
    path = "/auth/token",
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        (status = 401, description = "Invalid, expired or deleted key", body = ErrorBody),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenRequest>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    let auth = &state.inner.auth;
    if !auth.keys.is_initialized() {
        return Err(ApiError::not_initialized());
    }
    let st = state.clone();
    // Argon2 is deliberately slow: keep it off the async workers.
    let info = tokio::task::spawn_blocking(move || st.inner.auth.keys.verify(&req.api_key))
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
        .map_err(auth_error)?;
    state.check_key_rate(&info.id)?;
    let ttl = state.inner.config.auth.token_ttl_seconds;
    let ttl = info
        .expires_at
        .map_or(ttl, |at| ttl.min(at.saturating_sub(now_secs())));
    let (token, claims) = auth
        .tokens
        .issue(&info.id, info.role, ttl)
        .map_err(auth_error)?;
    Ok(axum::Json(TokenResponse {
        token,
        token_type: "Bearer".into(),
        expires_at: claims.exp,
    }))
}

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A label.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// `admin`, `readwrite` or `readonly`.
    pub role: Role,
    /// Lifetime in seconds; none: until deleted.
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    #[serde(default, deserialize_with = "crate::state::positive_u32")]
    pub expires_in_seconds: Option<u32>,
}

/// A created key: the only time the key itself is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key (`nqk_...`); store it now, the server keeps only its hash.
    pub key: String,
    /// Its record.
    #[serde(flatten)]
    pub info: KeyInfo,
}

/// Creates an API key (admin).
#[utoipa::path(
    post,
    path = "/keys",
    tag = "auth",
    request_body = CreateKey,
    responses(
        (status = 201, description = "Created", body = CreatedKey),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "Bad role or field", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(req): ApiJson<CreateKey>,
) -> Result<(StatusCode, axum::Json<CreatedKey>), ApiError> {
    principal.require(Role::Admin)?;
    let name = req.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "name must be 1 to 200 characters",
        ));
    }
    if req.expires_in_seconds == Some(0) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "expires_in_seconds must be positive",
        ));
    }
    let expires_at = req
        .expires_in_seconds
        .map(|s| now_secs().saturating_add(s.into()));
    let st = state.clone();
    let name = name.to_string();
    let (info, key) =
        tokio::task::spawn_blocking(move || st.inner.auth.keys.create(&name, req.role, expires_at))
            .await
            .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
            .map_err(auth_error)?;
    tracing::info!(key = %info.id, role = %info.role, by = %principal.key_id, "API key created");
    Ok((StatusCode::CREATED, axum::Json(CreatedKey { key, info })))
}

/// Lists the API keys (admin); secrets are never shown.
#[utoipa::path(
    get,
    path = "/keys",
    tag = "auth",
    responses(
        (status = 200, description = "All keys", body = Vec<KeyInfo>),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<Vec<KeyInfo>>, ApiError> {
    principal.require(Role::Admin)?;
    Ok(axum::Json(state.inner.auth.keys.list()))
}

/// Deletes (revokes) an API key and every token issued for it (admin). The last admin key
/// cannot be deleted.
#[utoipa::path(
    delete,
    path = "/keys/{id}",
    tag = "auth",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 409, description = "The last admin key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Role::Admin)?;
    let keys = &state.inner.auth.keys;
    let all = keys.list();
    let target = all
        .iter()
        .find(|k| k.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no key {id:?}")))?;
    if target.role == Role::Admin && all.iter().filter(|k| k.role == Role::Admin).count() == 1 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin_key",
            "this is the last admin key; create another admin key before deleting it",
        ));
    }
    if !keys.delete(&id).map_err(auth_error)? {
        return Err(ApiError::not_found(format!("no key {id:?}")));
    }
    tracing::info!(key = %id, by = %principal.key_id, "API key deleted");
    Ok(StatusCode::NO_CONTENT)
}
