//! Byte layouts of the MVCC trees.
//!
//! A version key is the user key in an order-preserving escaped form followed by the inverted
//! commit timestamp, so all versions of a key are adjacent and the newest comes first:
//!
//! - every `0x00` byte of the user key becomes `0x00 0xFF`, and the key ends with `0x00 0x01`.
//!   No encoded key is then a prefix of another, and byte order of encoded keys is byte order of
//!   user keys;
//! - then `u64::MAX - commit_ts`, big endian.
//!
//! A write record (the value under a version key) is `kind (u8) | start_ts (u64 LE) | value`.
//! A lock record (value in the lock tree, keyed by the raw user key) is
//! `kind (u8) | start_ts (u64) | ttl_ms (u64) | created_ms (u64) | primary_len (u32) | primary |
//! value`.

use crate::error::{Result, StorageError};

/// What a write record or a lock does to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum WriteKind {
    /// A value.
    Put = 1,
    /// A tombstone.
    Delete = 2,
    /// A marker that the transaction starting at this timestamp was rolled back (stored at
    /// `commit_ts = start_ts`), so a late prewrite of it is refused.
    Rollback = 3,
    /// A lock taken without a value (`SELECT ... FOR UPDATE` in 2PC); as a write record, the
    /// commit of such a lock (no data change).
    Lock = 4,
}

impl WriteKind {
    fn from_byte(b: u8) -> Option<WriteKind> {
        Some(match b {
            1 => WriteKind::Put,
            2 => WriteKind::Delete,
            3 => WriteKind::Rollback,
            4 => WriteKind::Lock,
            _ => return None,
        })
    }
}

/// Appends the escaped form of `key` (without timestamp) to `out`.
pub fn encode_user_key(key: &[u8], out: &mut Vec<u8>) {
    out.reserve(key.len() + 2);
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// The version key of `key` at `ts`.
pub fn version_key(key: &[u8], ts: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 10);
    encode_user_key(key, &mut out);
    out.extend_from_slice(&(u64::MAX - ts).to_be_bytes());
    out
}

/// The prefix shared by every version of `key`.
pub fn versions_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2);
    encode_user_key(key, &mut out);
    out
}

/// Splits a version key into the user key and the commit timestamp.
pub fn decode_version_key(raw: &[u8]) -> Result<(Vec<u8>, u64)> {
    if raw.len() < 10 {
        return Err(malformed_key(raw.len()));
    }
    let (body, ts) = raw.split_at(raw.len() - 8);
    let ts = u64::MAX - u64::from_be_bytes(ts.try_into().expect("8 bytes"));
    let key = decode_user_key(body).map_err(|_| malformed_key(raw.len()))?;
    Ok((key, ts))
}

/// The user key of an escaped key body (a version key without its timestamp): copies the runs
/// between zero bytes whole.
pub fn decode_user_key(body: &[u8]) -> Result<Vec<u8>> {
    let mut key = Vec::with_capacity(body.len());
    let mut rest = body;
    loop {
        let Some(zero) = rest.iter().position(|&b| b == 0) else {
            return Err(malformed_key(body.len()));
        };
        key.extend_from_slice(&rest[..zero]);
        match rest.get(zero + 1) {
            Some(0xFF) => {
                key.push(0);
                rest = &rest[zero + 2..];
            }
            Some(0x01) if zero + 2 == rest.len() => return Ok(key),
            _ => return Err(malformed_key(body.len())),
        }
    }
}

fn malformed_key(len: usize) -> StorageError {
    StorageError::Integrity(format!("malformed MVCC version key ({len} bytes)"))
}

/// The commit timestamp of a version key, without decoding its user key.
pub fn version_ts(raw: &[u8]) -> Result<u64> {
    match raw.len().checked_sub(8) {
        Some(at) if at >= 2 => {
            let inverted = u64::from_be_bytes(raw[at..].try_into().expect("8 bytes"));
            Ok(u64::MAX - inverted)
        }
        _ => Err(StorageError::Integrity(format!(
            "malformed MVCC version key ({} bytes)",
            raw.len()
        ))),
    }
}

/// Bytes of a write record before its value: kind (u8) and start timestamp (u64).
pub const RECORD_HEADER: usize = 9;

/// The kind of an encoded write record, without copying its value.
pub fn record_kind(raw: &[u8]) -> Result<WriteKind> {
    match raw.first().and_then(|&b| WriteKind::from_byte(b)) {
        Some(kind) if raw.len() >= RECORD_HEADER => Ok(kind),
        _ => Err(StorageError::Integrity(
            "malformed MVCC write record".into(),
        )),
    }
}

/// A decoded write record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    pub kind: WriteKind,
    pub start_ts: u64,
    pub value: Vec<u8>,
}

impl WriteRecord {
    pub fn encode(kind: WriteKind, start_ts: u64, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + value.len());
        out.push(kind as u8);
        out.extend_from_slice(&start_ts.to_le_bytes());
        out.extend_from_slice(value);
        out
    }

    pub fn decode(raw: &[u8]) -> Result<WriteRecord> {
        let kind = raw.first().and_then(|&b| WriteKind::from_byte(b));
        match kind {
            Some(kind) if raw.len() >= 9 => Ok(WriteRecord {
                kind,
                start_ts: u64::from_le_bytes(raw[1..9].try_into().expect("8 bytes")),
                value: raw[9..].to_vec(),
            }),
            _ => Err(StorageError::Integrity(
                "malformed MVCC write record".into(),
            )),
        }
    }
}

/// A prewrite lock of a two-phase transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    pub kind: WriteKind,
    pub start_ts: u64,
    pub ttl_ms: u64,
    pub created_ms: u64,
    pub primary: Vec<u8>,
    pub value: Vec<u8>,
}

impl LockRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(29 + self.primary.len() + self.value.len());
        out.push(self.kind as u8);
        out.extend_from_slice(&self.start_ts.to_le_bytes());
        out.extend_from_slice(&self.ttl_ms.to_le_bytes());
        out.extend_from_slice(&self.created_ms.to_le_bytes());
        out.extend_from_slice(&(self.primary.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.primary);
        out.extend_from_slice(&self.value);
        out
    }

    pub fn decode(raw: &[u8]) -> Result<LockRecord> {
        let bad = || StorageError::Integrity("malformed MVCC lock record".into());
        if raw.len() < 29 {
            return Err(bad());
        }
        let kind = WriteKind::from_byte(raw[0])
            .filter(|k| *k != WriteKind::Rollback)
            .ok_or_else(bad)?;
        let u64_at = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
        let plen = u32::from_le_bytes(raw[25..29].try_into().expect("4 bytes")) as usize;
        if raw.len() < 29 + plen {
            return Err(bad());
        }
        Ok(LockRecord {
            kind,
            start_ts: u64_at(1),
            ttl_ms: u64_at(9),
            created_ms: u64_at(17),
            primary: raw[29..29 + plen].to_vec(),
            value: raw[29 + plen..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn test_version_keys_order_by_user_key_then_newest_first(
            a in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()], 0..6),
            b in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()], 0..6),
            ta in any::<u64>(),
            tb in any::<u64>(),
        ) {
            let (ka, kb) = (version_key(&a, ta), version_key(&b, tb));
            let expected = a.cmp(&b).then(tb.cmp(&ta));
            prop_assert_eq!(ka.cmp(&kb), expected);
            prop_assert_eq!(decode_version_key(&ka).unwrap(), (a.clone(), ta));
            prop_assert!(ka.starts_with(&versions_prefix(&a)));
            if a != b {
                prop_assert!(!ka.starts_with(&versions_prefix(&b)));
            }
        }
    }

    #[test]
    fn test_malformed_key_bodies_are_errors() {
        assert_eq!(decode_user_key(&[7, 0, 0xFF, 0, 1]).unwrap(), vec![7, 0]);
        for bad in [&[][..], &[7], &[7, 0], &[0, 2], &[0, 1, 5], &[0, 0xFF]] {
            assert!(decode_user_key(bad).is_err(), "{bad:?}");
        }
        assert!(decode_version_key(&[0, 1, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn test_records_round_trip_and_reject_garbage() {
        let w = WriteRecord::encode(WriteKind::Put, 42, b"v");
        assert_eq!(
            WriteRecord::decode(&w).unwrap(),
            WriteRecord {
                kind: WriteKind::Put,
                start_ts: 42,
                value: b"v".to_vec()
            }
        );
        assert!(WriteRecord::decode(&[9, 0, 0]).is_err());
        let lock = LockRecord {
            kind: WriteKind::Delete,
            start_ts: 7,
            ttl_ms: 3000,
            created_ms: 99,
            primary: b"p".to_vec(),
            value: vec![],
        };
        assert_eq!(LockRecord::decode(&lock.encode()).unwrap(), lock);
        assert!(LockRecord::decode(&lock.encode()[..20]).is_err());
        assert!(decode_version_key(b"abc").is_err());
    }
}
