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
//! A write record (the value under a version key) has two forms:
//!
//! - compact, written since file format version 4:
//!   `kind | 0x80 (u8) | commit_ts - start_ts (LEB128 varint) | value`.
//!   The start timestamp is stored as its distance below the commit timestamp already in the
//!   version key: a transaction commits microseconds to seconds after it started, so the
//!   distance takes one to four bytes where the absolute timestamp took eight, and every row and
//!   index entry of the SQL layer pays the header. A rollback marker (stored at
//!   `commit_ts = start_ts`) has distance 0, so its header is two bytes.
//! - legacy, written by earlier builds: `kind (u8) | start_ts (u64 LE) | value`. Its kind byte
//!   is 1..=4, without the flag bit, so the two forms tell themselves apart by the first byte
//!   and records already on disk keep reading. They are never rewritten in place: they go when
//!   their key is written again and vacuum removes the older versions.
//!
//! The LEB128 varint is self-delimiting, so the kind and value of a record are found without
//! the commit timestamp ([`split_record`]); only the start timestamp needs it
//! ([`record_start`]).
//!
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
    push_version_key(key, ts, &mut out);
    out
}

/// Appends the version key of `key` at `ts` to `out` (several keys can share one buffer).
pub fn push_version_key(key: &[u8], ts: u64, out: &mut Vec<u8>) {
    encode_user_key(key, out);
    out.extend_from_slice(&(u64::MAX - ts).to_be_bytes());
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
    decode_user_key_into(body, &mut key)?;
    Ok(key)
}

/// [`decode_user_key`] into `key` (cleared first), so a scan can reuse one buffer.
pub fn decode_user_key_into(body: &[u8], key: &mut Vec<u8>) -> Result<()> {
    key.clear();
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
            Some(0x01) if zero + 2 == rest.len() => return Ok(()),
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

/// Flag bit on the kind byte of a compact write record.
const COMPACT: u8 = 0x80;
/// Bytes of a legacy write record before its value: kind (u8) and start timestamp (u64 LE).
const LEGACY_HEADER: usize = 9;
/// The most bytes a LEB128 varint of a u64 takes (ten groups of seven bits cover 64).
const MAX_VARINT: usize = 10;

/// The start timestamp as a write record stores it.
#[derive(Debug, Clone, Copy)]
enum StoredStart {
    /// Legacy form: the timestamp itself.
    Absolute(u64),
    /// Compact form: how far it lies below the commit timestamp of the version key.
    BeforeCommit(u64),
}

/// What the bytes before a write record's value say.
#[derive(Debug, Clone, Copy)]
struct Header {
    kind: WriteKind,
    start: StoredStart,
    /// Where the value begins.
    len: usize,
}

impl Header {
    /// The start timestamp, for a record stored at `commit_ts`. A compact record whose distance
    /// exceeds `commit_ts` is damaged: it names no timestamp.
    fn start_ts(&self, commit_ts: u64) -> Result<u64> {
        match self.start {
            StoredStart::Absolute(start_ts) => Ok(start_ts),
            StoredStart::BeforeCommit(delta) => commit_ts.checked_sub(delta).ok_or_else(|| {
                malformed_record(&format!(
                    "start {delta} before commit timestamp {commit_ts} would be negative"
                ))
            }),
        }
    }
}

fn malformed_record(what: &str) -> StorageError {
    StorageError::Integrity(format!("malformed MVCC write record: {what}"))
}

/// Parses the header of a write record of either form. Checks everything that can be checked
/// without the commit timestamp: the kind, the length of a legacy header, and the varint of a
/// compact one (terminated within [`MAX_VARINT`] bytes, no bits beyond 64, no trailing zero
/// group, so every start timestamp has exactly one encoding).
fn parse_header(raw: &[u8]) -> Result<Header> {
    let Some(&first) = raw.first() else {
        return Err(malformed_record("empty"));
    };
    let kind = WriteKind::from_byte(first & !COMPACT)
        .ok_or_else(|| malformed_record(&format!("unknown kind byte {first:#04x}")))?;
    if first & COMPACT == 0 {
        if raw.len() < LEGACY_HEADER {
            return Err(malformed_record(&format!(
                "legacy record of {} bytes is shorter than its header",
                raw.len()
            )));
        }
        let start = u64::from_le_bytes(raw[1..LEGACY_HEADER].try_into().expect("8 bytes"));
        return Ok(Header {
            kind,
            start: StoredStart::Absolute(start),
            len: LEGACY_HEADER,
        });
    }
    let (delta, used) = read_varint(&raw[1..])?;
    Ok(Header {
        kind,
        start: StoredStart::BeforeCommit(delta),
        len: 1 + used,
    })
}

/// Decodes the LEB128 varint at the start of `bytes`: its value and length.
fn read_varint(bytes: &[u8]) -> Result<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().take(MAX_VARINT).enumerate() {
        let group = u64::from(b & 0x7F);
        // The tenth group holds only bit 63.
        if i == MAX_VARINT - 1 && group > 1 {
            return Err(malformed_record("timestamp delta overflows 64 bits"));
        }
        value |= group << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(malformed_record(
                    "timestamp delta has a trailing zero group",
                ));
            }
            return Ok((value, i + 1));
        }
    }
    Err(malformed_record(if bytes.len() >= MAX_VARINT {
        "timestamp delta is longer than 10 bytes"
    } else {
        "timestamp delta is truncated"
    }))
}

/// Appends `value` as a LEB128 varint: seven bits per byte, least significant first, the high
/// bit set on every byte but the last.
fn push_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Bytes the LEB128 varint of `value` takes.
fn varint_len(value: u64) -> usize {
    (64 - value.leading_zeros() as usize).div_ceil(7).max(1)
}

/// The kind of an encoded write record (either form), without copying its value.
pub fn record_kind(raw: &[u8]) -> Result<WriteKind> {
    parse_header(raw).map(|h| h.kind)
}

/// The kind and the value of an encoded write record (either form), the value borrowed from
/// `raw`: what the read paths need, found without the commit timestamp and without copying.
pub fn split_record(raw: &[u8]) -> Result<(WriteKind, &[u8])> {
    let header = parse_header(raw)?;
    Ok((header.kind, &raw[header.len..]))
}

/// The kind and the start timestamp of an encoded write record stored under a version key
/// with commit timestamp `commit_ts` (see [`version_ts`]), without copying its value.
pub fn record_start(raw: &[u8], commit_ts: u64) -> Result<(WriteKind, u64)> {
    let header = parse_header(raw)?;
    Ok((header.kind, header.start_ts(commit_ts)?))
}

/// A decoded write record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    pub kind: WriteKind,
    pub start_ts: u64,
    pub value: Vec<u8>,
}

impl WriteRecord {
    /// Encodes a record of the transaction that started at `start_ts`, to be stored under the
    /// version key of `commit_ts`, in the compact form. A start after the commit is refused
    /// (`TxnState`) rather than written: no caller does that (a commit timestamp is taken after
    /// the start, a rollback marker sits at the start), and such a record would contradict its
    /// version key.
    pub fn encode(kind: WriteKind, start_ts: u64, commit_ts: u64, value: &[u8]) -> Result<Vec<u8>> {
        let Some(delta) = commit_ts.checked_sub(start_ts) else {
            return Err(StorageError::TxnState {
                start_ts,
                reason: format!("write record at commit timestamp {commit_ts} precedes its start"),
            });
        };
        let mut out = Vec::with_capacity(1 + varint_len(delta) + value.len());
        out.push(kind as u8 | COMPACT);
        push_varint(delta, &mut out);
        out.extend_from_slice(value);
        Ok(out)
    }

    /// Decodes a record of either form stored under the version key of `commit_ts`.
    pub fn decode(raw: &[u8], commit_ts: u64) -> Result<WriteRecord> {
        let header = parse_header(raw)?;
        Ok(WriteRecord {
            kind: header.kind,
            start_ts: header.start_ts(commit_ts)?,
            value: raw[header.len..].to_vec(),
        })
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

    /// A legacy (9-byte header) record as earlier builds wrote it.
    fn legacy(kind: WriteKind, start_ts: u64, value: &[u8]) -> Vec<u8> {
        let mut out = vec![kind as u8];
        out.extend_from_slice(&start_ts.to_le_bytes());
        out.extend_from_slice(value);
        out
    }

    fn is_integrity<T>(result: Result<T>) -> bool {
        result.is_err_and(|e| matches!(e, StorageError::Integrity(_)))
    }

    const KINDS: [WriteKind; 4] = [
        WriteKind::Put,
        WriteKind::Delete,
        WriteKind::Rollback,
        WriteKind::Lock,
    ];

    #[test]
    fn test_compact_records_have_the_documented_bytes() {
        let put = WriteRecord::encode(WriteKind::Put, 100, 105, b"v").unwrap();
        assert_eq!(put, [0x81, 5, b'v']);
        assert_eq!(
            WriteRecord::decode(&put, 105).unwrap(),
            WriteRecord {
                kind: WriteKind::Put,
                start_ts: 100,
                value: b"v".to_vec()
            }
        );
        assert_eq!(split_record(&put).unwrap(), (WriteKind::Put, &b"v"[..]));
        assert_eq!(record_kind(&put).unwrap(), WriteKind::Put);
        assert_eq!(record_start(&put, 105).unwrap(), (WriteKind::Put, 100));
        // A rollback marker sits at its start: a two-byte record.
        let marker = WriteRecord::encode(WriteKind::Rollback, 77, 77, &[]).unwrap();
        assert_eq!(marker, [0x83, 0]);
        assert_eq!(
            record_start(&marker, 77).unwrap(),
            (WriteKind::Rollback, 77)
        );
        // LEB128: seven bits a byte, low group first (300 = 0b10_0101100).
        let lock = WriteRecord::encode(WriteKind::Lock, 1000, 1300, &[]).unwrap();
        assert_eq!(lock, [0x84, 0xAC, 0x02]);
        let delete = WriteRecord::encode(WriteKind::Delete, 0, 127, b"").unwrap();
        assert_eq!(delete, [0x82, 0x7F]);
        assert_eq!(
            WriteRecord::encode(WriteKind::Delete, 0, 128, b"").unwrap(),
            [0x82, 0x80, 0x01]
        );
        // The widest distance: ten bytes, the last holding bit 63 alone.
        let widest = WriteRecord::encode(WriteKind::Put, 0, u64::MAX, b"x").unwrap();
        let mut expected = vec![0x81];
        expected.extend_from_slice(&[0xFF; 9]);
        expected.extend_from_slice(&[0x01, b'x']);
        assert_eq!(widest, expected);
        assert_eq!(
            record_start(&widest, u64::MAX).unwrap(),
            (WriteKind::Put, 0)
        );
        assert_eq!(split_record(&widest).unwrap().1, b"x");
    }

    #[test]
    fn test_encode_refuses_a_start_after_the_commit() {
        let err = WriteRecord::encode(WriteKind::Put, 10, 9, b"v").unwrap_err();
        assert!(
            matches!(err, StorageError::TxnState { start_ts: 10, .. }),
            "{err}"
        );
    }

    #[test]
    fn test_legacy_records_decode_unchanged() {
        for kind in KINDS {
            let raw = legacy(kind, 42, b"old value");
            // The stored start timestamp is taken as it is, whatever the commit timestamp.
            for commit_ts in [0, 42, 43, u64::MAX] {
                assert_eq!(
                    WriteRecord::decode(&raw, commit_ts).unwrap(),
                    WriteRecord {
                        kind,
                        start_ts: 42,
                        value: b"old value".to_vec()
                    }
                );
                assert_eq!(record_start(&raw, commit_ts).unwrap(), (kind, 42));
            }
            assert_eq!(split_record(&raw).unwrap(), (kind, &b"old value"[..]));
            assert_eq!(record_kind(&raw).unwrap(), kind);
            // A legacy start timestamp whose low byte looks like a varint is still eight bytes.
            let raw = legacy(kind, 0x80, &[]);
            assert_eq!(split_record(&raw).unwrap(), (kind, &[][..]));
            assert_eq!(record_start(&raw, 0x90).unwrap(), (kind, 0x80));
        }
    }

    #[test]
    fn test_malformed_records_are_integrity_errors() {
        let mut too_long = vec![0x81];
        too_long.extend_from_slice(&[0x80; 9]);
        too_long.extend_from_slice(&[0x81, 0x00]);
        let mut overflow = vec![0x81];
        overflow.extend_from_slice(&[0xFF; 9]);
        overflow.push(0x02);
        let bad: [&[u8]; 12] = [
            &[],
            &[0x00, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0x05, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0x80, 0x00],
            &[0x85, 0x00],
            &[0xFF, 0x00],
            &[0x01, 0, 0, 0, 0, 0, 0, 0],
            &[0x81],
            &[0x81, 0x80],
            &[0x81, 0x80, 0x00, b'v'],
            &too_long,
            &overflow,
        ];
        for raw in bad {
            assert!(is_integrity(record_kind(raw)), "{raw:?}");
            assert!(is_integrity(split_record(raw)), "{raw:?}");
            assert!(is_integrity(record_start(raw, u64::MAX)), "{raw:?}");
            assert!(is_integrity(WriteRecord::decode(raw, u64::MAX)), "{raw:?}");
        }
        // A distance beyond the commit timestamp names no start: the header alone is well
        // formed (kind and value are readable), the start timestamp is not.
        let raw = WriteRecord::encode(WriteKind::Put, 0, 200, b"v").unwrap();
        assert_eq!(split_record(&raw).unwrap(), (WriteKind::Put, &b"v"[..]));
        assert_eq!(record_start(&raw, 200).unwrap(), (WriteKind::Put, 0));
        assert!(is_integrity(record_start(&raw, 199)));
        assert!(is_integrity(WriteRecord::decode(&raw, 199)));
    }

    proptest! {
        #[test]
        fn test_compact_records_round_trip_and_truncation_fails(
            kind in prop::sample::select(KINDS.to_vec()),
            start_ts in prop_oneof![0u64..1000, any::<u64>()],
            gap in prop_oneof![0u64..128, 128u64..1 << 21, any::<u64>()],
            value in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let commit_ts = start_ts.saturating_add(gap);
            let delta = commit_ts - start_ts;
            let raw = WriteRecord::encode(kind, start_ts, commit_ts, &value).unwrap();
            let expected = WriteRecord { kind, start_ts, value: value.clone() };
            prop_assert_eq!(WriteRecord::decode(&raw, commit_ts).unwrap(), expected.clone());
            prop_assert_eq!(split_record(&raw).unwrap(), (kind, value.as_slice()));
            prop_assert_eq!(record_start(&raw, commit_ts).unwrap(), (kind, start_ts));
            let header = raw.len() - value.len();
            prop_assert_eq!(header, 1 + varint_len(delta));
            prop_assert!(header <= 11);
            if delta < 128 {
                prop_assert_eq!(header, 2);
            }
            // Every cut inside the header is an error, never a panic or a wrong record.
            for cut in 0..header {
                prop_assert!(is_integrity(split_record(&raw[..cut])), "cut {}", cut);
            }
            // The same record in the legacy form reads the same.
            let old = legacy(kind, start_ts, &value);
            prop_assert_eq!(WriteRecord::decode(&old, commit_ts).unwrap(), expected);
            prop_assert_eq!(split_record(&old).unwrap(), (kind, value.as_slice()));
        }

        #[test]
        fn test_arbitrary_record_bytes_never_panic(
            raw in proptest::collection::vec(any::<u8>(), 0..24),
            commit_ts in any::<u64>(),
        ) {
            // Whatever the bytes, the readers agree with each other.
            let parts = split_record(&raw);
            prop_assert_eq!(record_kind(&raw).ok(), parts.as_ref().ok().map(|p| p.0));
            if let Ok(rec) = WriteRecord::decode(&raw, commit_ts) {
                prop_assert_eq!(Some((rec.kind, rec.value.as_slice())), parts.ok());
            }
        }
    }

    #[test]
    fn test_lock_records_round_trip_and_reject_garbage() {
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
