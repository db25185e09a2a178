//! Authentication (API keys and tokens) and authorisation (roles).

pub mod jwt;
pub mod keys;

use std::path::Path;

pub use jwt::{Claims, TokenSigner};
pub use keys::{KeyInfo, KeyStore, Role};

/// Why a credential was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown key, wrong secret, or a token that does not verify.
    #[error("invalid credentials")]
    Invalid,
    /// The key or token has expired.
    #[error("the credentials have expired")]
    Expired,
    /// The token's key has been deleted.
    #[error("the key of this token has been revoked")]
    Revoked,
    /// Reading or writing the key files failed.
    #[error("{0}")]
    Io(String),
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Key id (directly or through a token).
    pub key_id: String,
    /// Role.
    pub role: Role,
}

/// Keys plus token signing.
#[derive(Debug)]
pub struct Authenticator {
    /// The key store.
    pub keys: KeyStore,
    /// The token signer.
    pub tokens: TokenSigner,
}

impl Authenticator {
    /// Opens the key store and token secret of `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Authenticator, AuthError> {
        Ok(Authenticator {
            keys: KeyStore::open(data_dir)?,
            tokens: TokenSigner::open(data_dir)?,
        })
    }

    /// Checks a bearer credential: an API key (`nqk_...`) or a token.
    pub fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        if bearer.starts_with("nqk_") {
            let info = self.keys.verify(bearer)?;
            return Ok(Principal {
                key_id: info.id,
                role: info.role,
            });
        }
        let claims = self.tokens.check(bearer)?;
        // The key must still exist: deleting a key revokes its tokens. Its role now wins,
        // in case it has been lowered since.
        let info = self.keys.active(&claims.sub)?;
        Ok(Principal {
            key_id: info.id,
            role: info.role.min(claims.role),
        })
    }
}

/// `nqdb init`: creates the first admin key of `data_dir`. Refuses if keys exist already.
pub fn init(data_dir: &Path, name: &str) -> Result<(KeyInfo, String), AuthError> {
    let auth = Authenticator::open(data_dir)?;
    if auth.keys.is_initialized() {
        return Err(AuthError::Io(format!(
            "{} already has API keys; create more with POST /api/v1/keys",
            data_dir.display()
        )));
    }
    auth.keys.create(name, Role::Admin, None)
}
