//! Short-lived tokens (JWT, HS256) that `POST /auth/token` issues for an API key.
//!
//! The signing secret is random, made by `nqdb init`, and lives beside the keys; a token names
//! its key, so deleting the key also invalidates its tokens.

use std::path::Path;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;
use super::keys::{Role, now_secs, random_bytes, write_atomically};

/// File holding the token signing secret, inside the data directory.
pub const SECRET_FILE: &str = "auth/jwt.secret";

/// The claims of our tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The API key id the token was issued for.
    pub sub: String,
    /// The key's role when the token was issued.
    pub role: Role,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
}

/// Signs and checks tokens.
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner")
    }
}

impl TokenSigner {
    /// Loads the secret of `data_dir`, creating it if missing.
    pub fn open(data_dir: &Path) -> Result<TokenSigner, AuthError> {
        let path = data_dir.join(SECRET_FILE);
        let secret = match std::fs::read_to_string(&path) {
            Ok(text) => base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .ok()
                .filter(|s| s.len() >= 32)
                .ok_or_else(|| AuthError::Io(format!("{} is damaged", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = random_bytes::<32>()?.to_vec();
                write_atomically(
                    &path,
                    base64::engine::general_purpose::STANDARD
                        .encode(&secret)
                        .as_bytes(),
                )?;
                secret
            }
            Err(e) => return Err(AuthError::Io(format!("reading {}: {e}", path.display()))),
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(TokenSigner {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation,
        })
    }

    /// A token for key `id` with `role`, valid for `ttl_seconds`.
    pub fn issue(
        &self,
        id: &str,
        role: Role,
        ttl_seconds: u64,
    ) -> Result<(String, Claims), AuthError> {
        let iat = now_secs();
        let claims = Claims {
            sub: id.to_string(),
            role,
            iat,
            exp: iat + ttl_seconds,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Io(format!("signing a token: {e}")))?;
        Ok((token, claims))
    }

    /// Checks a token's signature and expiry.
    pub fn check(&self, token: &str) -> Result<Claims, AuthError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_foreign_tokens_fail() {
        let dir = tempfile::tempdir().unwrap();
        let signer = TokenSigner::open(dir.path()).unwrap();
        let (token, claims) = signer.issue("abc", Role::Readwrite, 60).unwrap();
        assert_eq!(signer.check(&token).unwrap(), claims);
        // The same secret after reopening.
        assert_eq!(
            TokenSigner::open(dir.path())
                .unwrap()
                .check(&token)
                .unwrap(),
            claims
        );
        let other = tempfile::tempdir().unwrap();
        let foreign = TokenSigner::open(other.path()).unwrap();
        assert!(matches!(foreign.check(&token), Err(AuthError::Invalid)));
        assert!(matches!(
            signer.check("not.a.token"),
            Err(AuthError::Invalid)
        ));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let signer = TokenSigner::open(dir.path()).unwrap();
        let claims = Claims {
            sub: "abc".into(),
            role: Role::Admin,
            iat: now_secs() - 100,
            exp: now_secs() - 10,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &signer.encoding)
            .unwrap();
        assert!(matches!(signer.check(&token), Err(AuthError::Expired)));
    }
}
