//! One log record on disk.
//!
//! | bytes | field |
//! |-------|-------|
//! | 0..4  | CRC32C of bytes 4..17+len |
//! | 4..8  | payload length `len` |
//! | 8..16 | LSN: the record's position in the log stream |
//! | 16    | record kind (chosen by the layer that writes it) |
//! | 17..  | payload |
//!
//! The LSN inside the record lets recovery tell a record from stale bytes of an older log that
//! happen to carry a valid checksum.

/// Position in the log stream, in bytes since the log began.
pub type Lsn = u64;

/// Bytes before the payload.
pub const HEADER_LEN: usize = 17;

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where the record starts in the log stream.
    pub lsn: Lsn,
    /// What the record is, as defined by the writer.
    pub kind: u8,
    /// The record's bytes.
    pub payload: Vec<u8>,
}

impl Record {
    /// Where the next record starts.
    pub fn end(&self) -> Lsn {
        self.lsn + (HEADER_LEN + self.payload.len()) as Lsn
    }
}

/// Appends the encoded record to `out`.
pub fn encode(out: &mut Vec<u8>, lsn: Lsn, kind: u8, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// The bytes end before the record does (a torn write at the end of the log).
    Truncated,
    /// The checksum does not match.
    Checksum,
    /// The record names another position than where it was found.
    WrongLsn(Lsn),
}

/// Decodes the record expected at `lsn` from the start of `bytes`.
pub fn decode(bytes: &[u8], lsn: Lsn) -> Result<Record, Invalid> {
    let header = bytes.get(..HEADER_LEN).ok_or(Invalid::Truncated)?;
    let len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
    let whole = bytes.get(..HEADER_LEN + len).ok_or(Invalid::Truncated)?;
    let stored = u32::from_le_bytes(whole[0..4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&whole[4..]) != stored {
        return Err(Invalid::Checksum);
    }
    let found = u64::from_le_bytes(whole[8..16].try_into().expect("8 bytes"));
    if found != lsn {
        return Err(Invalid::WrongLsn(found));
    }
    Ok(Record {
        lsn,
        kind: whole[16],
        payload: whole[HEADER_LEN..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_round_trip_and_damage() {
        let mut buf = Vec::new();
        encode(&mut buf, 100, 7, b"hello");
        let rec = decode(&buf, 100).unwrap();
        assert_eq!(
            (rec.kind, rec.payload.as_slice(), rec.end()),
            (7, &b"hello"[..], 122)
        );
        assert_eq!(decode(&buf[..buf.len() - 1], 100), Err(Invalid::Truncated));
        assert_eq!(decode(&buf[..5], 100), Err(Invalid::Truncated));
        assert_eq!(decode(&buf, 101), Err(Invalid::WrongLsn(100)));
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad, 100).is_err(), "flip at {i} undetected");
        }
    }
}
