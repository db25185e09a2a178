//! API keys: created by `nqdb init` and `POST /keys`, stored as argon2id hashes only.
//!
//! A key reads `nqk_<id>_<secret>`. The id finds the record without trying every hash; the
//! secret is checked against the argon2id hash. Argon2 costs milliseconds on purpose, so after
//! the first successful check the key's SHA-256 digest is remembered in memory and later
//! requests compare digests: the file never holds anything that lets someone log in, and a
//! busy client does not pay the hash on every request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use parking_lot::RwLock;
use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::AuthError;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only statements.
    Readonly,
    /// Reads, writes and DDL.
    Readwrite,
    /// Everything, including key management.
    Admin,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Readonly => "readonly",
            Role::Readwrite => "readwrite",
            Role::Admin => "admin",
        })
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "readonly" => Ok(Role::Readonly),
            "readwrite" => Ok(Role::Readwrite),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?} (admin, readwrite, readonly)"
            )),
        }
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    /// Public id (the part after `nqk_`).
    pub id: String,
    /// A label.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// Expiry, seconds since the Unix epoch; none: never.
    pub expires_at: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    #[serde(flatten)]
    info: KeyInfo,
    /// argon2id PHC string.
    hash: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<StoredKey>,
}

#[derive(Debug)]
struct Entry {
    stored: StoredKey,
    /// SHA-256 of the full key once argon2 accepted it.
    verified: Option<[u8; 32]>,
}

/// The key store: a JSON file in the data directory, loaded into memory.
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    keys: RwLock<BTreeMap<String, Entry>>,
    /// Modification time of the file when last read: `nqdb init` run while the server is up
    /// writes the file from another process, and the server picks it up.
    loaded: parking_lot::Mutex<Option<std::time::SystemTime>>,
}

/// File holding the keys, inside the data directory.
pub const KEYS_FILE: &str = "auth/keys.json";

const PREFIX: &str = "nqk_";

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut buf = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| AuthError::Io(format!("the system random source failed: {e}")))?;
    Ok(buf)
}

impl KeyStore {
    /// Opens the key store of `data_dir` (empty if the file does not exist yet).
    pub fn open(data_dir: &Path) -> Result<KeyStore, AuthError> {
        let path = data_dir.join(KEYS_FILE);
        let store = KeyStore {
            keys: RwLock::new(BTreeMap::new()),
            loaded: parking_lot::Mutex::new(None),
            path,
        };
        store.reload()?;
        Ok(store)
    }

    fn modified(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
    }

    /// Reads the file again if another process changed it.
    fn refresh(&self) {
        let loaded = *self.loaded.lock();
        if self.modified() != loaded
            && let Err(e) = self.reload()
        {
            tracing::warn!("keeping the keys in memory: {e}");
        }
    }

    fn reload(&self) -> Result<(), AuthError> {
        let path = &self.path;
        // Lock order everywhere: keys, then loaded.
        let mut keys = self.keys.write();
        let mut loaded = self.loaded.lock();
        let modified = self.modified();
        let file: KeyFile = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| AuthError::Io(format!("{} is damaged: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => KeyFile::default(),
            Err(e) => return Err(AuthError::Io(format!("reading {}: {e}", path.display()))),
        };
        let old = std::mem::take(&mut *keys);
        for stored in file.keys {
            // Keep what was verified for keys that did not change.
            let verified = old
                .get(&stored.info.id)
                .filter(|e| e.stored.hash == stored.hash)
                .and_then(|e| e.verified);
            keys.insert(stored.info.id.clone(), Entry { stored, verified });
        }
        *loaded = modified;
        Ok(())
    }

    /// True once at least one key exists (`nqdb init` ran).
    pub fn is_initialized(&self) -> bool {
        if self.keys.read().is_empty() {
            self.refresh();
        }
        !self.keys.read().is_empty()
    }

    /// Creates a key; returns its record and the key itself, which is shown only now.
    pub fn create(
        &self,
        name: &str,
        role: Role,
        expires_at: Option<u64>,
    ) -> Result<(KeyInfo, String), AuthError> {
        let id = hex(&random_bytes::<6>()?);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let key = format!("{PREFIX}{id}_{secret}");
        let salt = SaltString::encode_b64(&random_bytes::<16>()?)
            .map_err(|e| AuthError::Io(format!("salt: {e}")))?;
        let hash = Argon2::default()
            .hash_password(key.as_bytes(), &salt)
            .map_err(|e| AuthError::Io(format!("hashing the key: {e}")))?
            .to_string();
        let info = KeyInfo {
            id: id.clone(),
            name: name.to_string(),
            role,
            created_at: now_secs(),
            expires_at,
        };
        let mut keys = self.keys.write();
        keys.insert(
            id.clone(),
            Entry {
                stored: StoredKey {
                    info: info.clone(),
                    hash,
                },
                verified: None,
            },
        );
        if let Err(e) = self.persist(&keys) {
            keys.remove(&id);
            return Err(e);
        }
        Ok((info, key))
    }

    /// Deletes (revokes) a key; false if there was none.
    pub fn delete(&self, id: &str) -> Result<bool, AuthError> {
        let mut keys = self.keys.write();
        let Some(entry) = keys.remove(id) else {
            return Ok(false);
        };
        if let Err(e) = self.persist(&keys) {
            keys.insert(id.to_string(), entry);
            return Err(e);
        }
        Ok(true)
    }

    /// All keys.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.keys
            .read()
            .values()
            .map(|e| e.stored.info.clone())
            .collect()
    }

    /// The key's record if `id` exists and has not expired.
    pub fn active(&self, id: &str) -> Result<KeyInfo, AuthError> {
        let keys = self.keys.read();
        let entry = keys.get(id).ok_or(AuthError::Revoked)?;
        check_expiry(&entry.stored.info)?;
        Ok(entry.stored.info.clone())
    }

    /// Checks a presented key; returns its record.
    pub fn verify(&self, key: &str) -> Result<KeyInfo, AuthError> {
        let id = key
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .map(|(id, _)| id)
            .ok_or(AuthError::Invalid)?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if !self.keys.read().contains_key(id) {
            self.refresh();
        }
        let hash = {
            let keys = self.keys.read();
            let entry = keys.get(id).ok_or(AuthError::Invalid)?;
            check_expiry(&entry.stored.info)?;
            if let Some(known) = entry.verified {
                return if constant_time_eq(&known, &digest) {
                    Ok(entry.stored.info.clone())
                } else {
                    Err(AuthError::Invalid)
                };
            }
            entry.stored.hash.clone()
        };
        // The expensive check runs without holding the lock.
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| AuthError::Io(format!("stored hash of key {id} is damaged: {e}")))?;
        Argon2::default()
            .verify_password(key.as_bytes(), &parsed)
            .map_err(|_| AuthError::Invalid)?;
        let mut keys = self.keys.write();
        let entry = keys.get_mut(id).ok_or(AuthError::Revoked)?;
        entry.verified = Some(digest);
        Ok(entry.stored.info.clone())
    }

    /// Writes the file atomically: a temporary file, fsync, rename, fsync of the directory.
    fn persist(&self, keys: &BTreeMap<String, Entry>) -> Result<(), AuthError> {
        let file = KeyFile {
            keys: keys.values().map(|e| e.stored.clone()).collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| AuthError::Io(format!("encoding keys: {e}")))?;
        write_atomically(&self.path, &bytes)?;
        *self.loaded.lock() = self.modified();
        Ok(())
    }
}

fn check_expiry(info: &KeyInfo) -> Result<(), AuthError> {
    match info.expires_at {
        Some(at) if at <= now_secs() => Err(AuthError::Expired),
        _ => Ok(()),
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new file, never a mix;
/// the file is readable by its owner only.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), AuthError> {
    use std::io::Write;
    let io =
        |what: &str, e: std::io::Error| AuthError::Io(format!("{what} {}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    let tmp = path.with_extension("tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(|e| io("creating", e))?;
        f.write_all(bytes).map_err(|e| io("writing", e))?;
        f.sync_all().map_err(|e| io("syncing", e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io("replacing", e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing the directory of", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_verify_survive_reopen_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        assert!(!store.is_initialized());
        let (info, key) = store.create("first", Role::Admin, None).unwrap();
        assert!(key.starts_with("nqk_"));
        assert_eq!(store.verify(&key).unwrap().id, info.id);
        // The cached digest path accepts it again and still rejects a near miss.
        assert_eq!(store.verify(&key).unwrap().role, Role::Admin);
        let mut wrong = key.clone();
        wrong.pop();
        wrong.push(if key.ends_with('A') { 'B' } else { 'A' });
        assert!(matches!(store.verify(&wrong), Err(AuthError::Invalid)));
        // Only the hash is on disk. The secret is everything after the id: base64url, so it
        // may itself contain `_` (splitting at every `_` made this flaky).
        let file = std::fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap();
        let secret = key.splitn(3, '_').nth(2).unwrap();
        assert_eq!(secret.len(), 43);
        assert!(!file.contains(secret));
        assert!(file.contains("$argon2id$"));

        let reopened = KeyStore::open(dir.path()).unwrap();
        assert_eq!(reopened.verify(&key).unwrap().id, info.id);
        assert!(reopened.delete(&info.id).unwrap());
        assert!(matches!(reopened.verify(&key), Err(AuthError::Invalid)));
        assert!(!KeyStore::open(dir.path()).unwrap().is_initialized());
    }

    #[test]
    fn expired_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        let (_, key) = store
            .create("old", Role::Readonly, Some(now_secs() - 1))
            .unwrap();
        assert!(matches!(store.verify(&key), Err(AuthError::Expired)));
    }

    #[test]
    fn a_damaged_key_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("auth")).unwrap();
        std::fs::write(dir.path().join(KEYS_FILE), b"{not json").unwrap();
        let err = KeyStore::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }
}
