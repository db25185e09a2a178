//! Values to bytes: order-preserving keys for rows and index entries, and compact row values.
//!
//! # Keys
//!
//! Every key starts with `t`, the table id (u32, big endian) and one byte saying what follows:
//! `r` for a row (then the primary key), `i` for an index entry (then the index id and the
//! indexed values). Values are encoded so that byte order is value order ([`encode_key_value`]),
//! which makes a range of values a range of keys, and shards can later be key ranges.
//!
//! Integers have two key forms; a table uses one of them for all its keys ([`KeyFormat`], kept
//! in its catalog entry). [`KeyFormat::Fixed`], the first one, spends a tag and eight bytes on
//! every integer. [`KeyFormat::Compact`] spends a tag and only the magnitude's significant
//! bytes: a primary key below 2^24 takes 4 bytes instead of 9, and fewer zero bytes, which the
//! MVCC layer doubles when it escapes a key. Both decode everywhere; they only may not be mixed
//! in one table, since they do not order against each other.
//!
//! # Rows
//!
//! A row value is each column in slot order: a tag byte, then the payload. Slots are never
//! reused: a dropped column keeps its slot, an added column gets a new one at the end, and a row
//! written before the column was added simply has fewer slots. How many slots a row has is the
//! number its value holds ([`RowFormat::Bare`]); tables created before that put the count (u16)
//! in front ([`RowFormat::Counted`], kept in the catalog entry like the key format).
//!
//! A primary-key column is not repeated in the row: its slot holds only the tag
//! `KEY_TAG_BASE + k` (one byte), saying the value is the `k`-th value of the primary key,
//! which the row's key holds (see [`stored_in_key`]); decoding such a slot needs the key
//! ([`decode_row_into`]). Only types whose key form decodes back to the same value
//! ([`key_round_trips`]) and the first [`MAX_KEY_REFS`] key columns are left out this way;
//! rows written before (with every value inline) decode unchanged.
//!
//! Integers are stored in the narrowest of 1, 2, 4 or 8 bytes (little endian, signed) that
//! holds them, and text, JSON and blobs shorter than 256 bytes get a one-byte length instead of
//! four: each width has its own tag. In bare rows, text shorter than 128 bytes keeps its length
//! in the tag itself (`0x80 + length`). Rows written before the narrow tags existed (every integer
//! in 8 bytes, every length in 4) decode unchanged. Smaller rows mean more rows per page and so
//! fewer buffer-pool misses on scans.

use rust_decimal::Decimal;

use crate::error::{Result, SqlError};
use crate::types::Value;

const NULL_TAG: u8 = 0x00;
const FALSE_TAG: u8 = 0x10;
const TRUE_TAG: u8 = 0x11;
const INT_TAG: u8 = 0x20;
const FLOAT_TAG: u8 = 0x21;
const DEC_NEG: u8 = 0x22;
const DEC_ZERO: u8 = 0x23;
const DEC_POS: u8 = 0x24;
const TEXT_TAG: u8 = 0x30;
const BLOB_TAG: u8 = 0x31;
const DATE_TAG: u8 = 0x40;
const TS_TAG: u8 = 0x41;
const JSON_TAG: u8 = 0x50;
// Row values only (keys keep their fixed-width, order-preserving forms).
const INT1_TAG: u8 = 0x25;
const INT2_TAG: u8 = 0x26;
const INT4_TAG: u8 = 0x27;
const TEXT_SHORT_TAG: u8 = 0x32;
const BLOB_SHORT_TAG: u8 = 0x33;
const JSON_SHORT_TAG: u8 = 0x51;
/// Bare rows only: `TEXT_TINY_TAG + n` is text of `n < 128` bytes, the length in the tag.
const TEXT_TINY_TAG: u8 = 0x80;
// Row values only: `KEY_TAG_BASE + k` stands for the k-th primary-key value, kept in the key.
const KEY_TAG_BASE: u8 = 0x01;
/// Primary-key columns a row value can refer to by tag; later ones are stored inline.
pub const MAX_KEY_REFS: usize = 15;
const KEY_TAG_LAST: u8 = KEY_TAG_BASE + MAX_KEY_REFS as u8 - 1;
// Compact integer keys: the tag is `INT_ZERO_TAG ± n` for an n-byte magnitude (n = 0..=8).
const INT_ZERO_TAG: u8 = 0x68;
const INT_COMPACT_MIN: u8 = INT_ZERO_TAG - 8;
const INT_COMPACT_MAX: u8 = INT_ZERO_TAG + 8;

/// How a table encodes integer values in its row and index keys. Every key of one table uses
/// one format: the two forms order correctly among themselves but not against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeyFormat {
    /// A tag and the value in eight bytes, sign bit flipped, big endian. Tables created before
    /// the compact form existed keep it.
    Fixed,
    /// A tag saying the sign and how many magnitude bytes follow, then those bytes big endian
    /// (one's complement for negative numbers, so that larger magnitudes sort first).
    Compact,
}

impl KeyFormat {
    /// The format of a catalog entry that names none: it was written before formats existed.
    pub fn legacy() -> KeyFormat {
        KeyFormat::Fixed
    }
}

/// How a table's row values begin. Rows of one table all use the table's format (kept in its
/// catalog entry), since the two cannot be told apart by their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RowFormat {
    /// A slot count (u16, little endian) before the slots. Tables created before the bare form
    /// existed keep it.
    Counted,
    /// The slots alone: a row has as many as its value holds, and short text keeps its length
    /// in the tag. Two to three bytes smaller per row, which means more rows per page.
    Bare,
}

impl RowFormat {
    /// The format of a catalog entry that names none: it was written before formats existed.
    pub fn legacy() -> RowFormat {
        RowFormat::Counted
    }
}

/// The prefix of every key of table `table`.
pub fn table_prefix(table: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(6);
    k.push(b't');
    k.extend_from_slice(&table.to_be_bytes());
    k
}

/// The prefix of the row keys of `table`.
pub fn row_prefix(table: u32) -> Vec<u8> {
    let mut k = table_prefix(table);
    k.push(b'r');
    k
}

/// The primary-key part of row key `key` (after [`row_prefix`]).
pub fn row_key_pk(key: &[u8]) -> Result<&[u8]> {
    match key.get(..ROW_PREFIX_LEN) {
        Some([b't', _, _, _, _, b'r']) => Ok(&key[ROW_PREFIX_LEN..]),
        _ => Err(corrupt_key("not a row key")),
    }
}

/// Bytes of [`row_prefix`]: `t`, the table id, `r`.
const ROW_PREFIX_LEN: usize = 6;

/// The prefix of the entries of index `index` of `table`.
pub fn index_prefix(table: u32, index: u32) -> Vec<u8> {
    let mut k = table_prefix(table);
    k.push(b'i');
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The smallest key greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn escape_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Appends the order-preserving encoding of `value` to `out`, integers in `format`. NULL sorts
/// first. Values of one column have one type, so cross-type order only has to be consistent,
/// not meaningful.
pub fn encode_key_value(value: &Value, format: KeyFormat, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(NULL_TAG),
        Value::Bool(b) => out.push(if *b { TRUE_TAG } else { FALSE_TAG }),
        Value::Int(i) if format == KeyFormat::Compact => encode_compact_int(*i, out),
        Value::Int(i) => {
            out.push(INT_TAG);
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Float(f) => {
            out.push(FLOAT_TAG);
            let f = if *f == 0.0 { 0.0 } else { *f }; // -0.0 == 0.0
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Value::Decimal(d) => encode_decimal(d, out),
        Value::Text(s) => {
            out.push(TEXT_TAG);
            escape_bytes(s.as_bytes(), out);
        }
        Value::Blob(b) => {
            out.push(BLOB_TAG);
            escape_bytes(b, out);
        }
        Value::Date(d) => {
            out.push(DATE_TAG);
            out.extend_from_slice(&((*d as u32) ^ (1 << 31)).to_be_bytes());
        }
        Value::Timestamp(t) => {
            out.push(TS_TAG);
            out.extend_from_slice(&((*t as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Json(s) => {
            out.push(JSON_TAG);
            escape_bytes(s.as_bytes(), out);
        }
    }
}

/// [`KeyFormat::Compact`]: negative numbers get tags below [`INT_ZERO_TAG`], more bytes lower
/// (so larger magnitudes sort first), positive ones tags above it, more bytes higher.
fn encode_compact_int(i: i64, out: &mut Vec<u8>) {
    let magnitude = i.unsigned_abs();
    let n = 8 - (magnitude.leading_zeros() / 8) as usize;
    let bytes = &magnitude.to_be_bytes()[8 - n..];
    if i >= 0 {
        out.push(INT_ZERO_TAG + n as u8);
        out.extend_from_slice(bytes);
    } else {
        out.push(INT_ZERO_TAG - n as u8);
        out.extend(bytes.iter().map(|b| !b));
    }
}

/// Decimal as sign, then a biased decimal exponent and the significant digits, so that byte
/// order is numeric order: `0.d1d2d3… × 10^e`. Negative numbers invert the exponent and digits.
fn encode_decimal(d: &Decimal, out: &mut Vec<u8>) {
    if d.is_zero() {
        out.push(DEC_ZERO);
        return;
    }
    let text = d.abs().normalize().to_string();
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    // value = 0.digits × 10^exp
    let (exp, digits): (i32, String) = if int_part != "0" {
        (
            int_part.len() as i32,
            format!("{int_part}{frac_part}")
                .trim_end_matches('0')
                .to_string(),
        )
    } else {
        let zeros = frac_part.bytes().take_while(|&c| c == b'0').count();
        (
            -(zeros as i32),
            frac_part[zeros..].trim_end_matches('0').to_string(),
        )
    };
    let biased = (exp + 128).clamp(0, 255) as u8;
    if d.is_sign_negative() {
        out.push(DEC_NEG);
        out.push(!biased);
        for c in digits.bytes() {
            out.push(!(c - b'0' + 1));
        }
        out.push(!0);
    } else {
        out.push(DEC_POS);
        out.push(biased);
        for c in digits.bytes() {
            out.push(c - b'0' + 1);
        }
        out.push(0);
    }
}

/// Encodes a composite key of several values.
pub fn encode_key(values: &[Value], format: KeyFormat, out: &mut Vec<u8>) {
    for v in values {
        encode_key_value(v, format, out);
    }
}

fn corrupt(what: &str) -> SqlError {
    SqlError::Storage(nq_storage::StorageError::Integrity(format!(
        "malformed stored row: {what}"
    )))
}

fn read<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if buf.len() < n {
        return Err(corrupt("value cut short"));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

/// Encodes a row's values (slot order), every value inline.
pub fn encode_row(values: &[Value], format: RowFormat) -> Vec<u8> {
    encode_row_with_key(values, &[], format)
}

/// Which slots of a table's rows [`encode_row_with_key`] leaves to the key: `in_key[slot] =
/// Some(k)` for the `k`-th primary-key column, if its type round-trips through the key form.
/// `pk` lists `(slot, type)` of the primary-key columns in key order.
pub fn stored_in_key(pk: &[(usize, &crate::types::DataType)], slots: usize) -> Vec<Option<u8>> {
    let mut in_key = vec![None; slots];
    for (k, &(slot, data_type)) in pk.iter().enumerate().take(MAX_KEY_REFS) {
        if key_round_trips(data_type)
            && let Some(entry) = in_key.get_mut(slot)
        {
            *entry = Some(k as u8);
        }
    }
    in_key
}

/// Encodes a row's values (slot order); a slot with `in_key[slot] = Some(k)` stores only a tag
/// that refers to the `k`-th value of the row's primary key (see [`stored_in_key`]).
pub fn encode_row_with_key(values: &[Value], in_key: &[Option<u8>], format: RowFormat) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + values.len() * 9);
    if format == RowFormat::Counted {
        out.extend_from_slice(&(values.len() as u16).to_le_bytes());
    }
    for (slot, v) in values.iter().enumerate() {
        if let Some(Some(k)) = in_key.get(slot)
            && !v.is_null()
        {
            out.push(KEY_TAG_BASE + k);
            continue;
        }
        match v {
            Value::Null => out.push(NULL_TAG),
            Value::Bool(b) => out.push(if *b { TRUE_TAG } else { FALSE_TAG }),
            Value::Int(i) => put_int(&mut out, *i),
            Value::Float(f) => {
                out.push(FLOAT_TAG);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Value::Decimal(d) => {
                out.push(DEC_POS);
                out.extend_from_slice(&d.serialize());
            }
            Value::Text(s) if format == RowFormat::Bare && s.len() < 128 => {
                out.push(TEXT_TINY_TAG + s.len() as u8);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Text(s) => put_bytes(&mut out, TEXT_TAG, TEXT_SHORT_TAG, s.as_bytes()),
            Value::Blob(b) => put_bytes(&mut out, BLOB_TAG, BLOB_SHORT_TAG, b),
            Value::Date(d) => {
                out.push(DATE_TAG);
                out.extend_from_slice(&d.to_le_bytes());
            }
            Value::Timestamp(t) => {
                out.push(TS_TAG);
                out.extend_from_slice(&t.to_le_bytes());
            }
            Value::Json(s) => put_bytes(&mut out, JSON_TAG, JSON_SHORT_TAG, s.as_bytes()),
        }
    }
    out
}

/// An integer in the narrowest width that holds it.
fn put_int(out: &mut Vec<u8>, i: i64) {
    if let Ok(b) = i8::try_from(i) {
        out.push(INT1_TAG);
        out.extend_from_slice(&b.to_le_bytes());
    } else if let Ok(h) = i16::try_from(i) {
        out.push(INT2_TAG);
        out.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(i) {
        out.push(INT4_TAG);
        out.extend_from_slice(&w.to_le_bytes());
    } else {
        out.push(INT_TAG);
        out.extend_from_slice(&i.to_le_bytes());
    }
}

/// Bytes with a one-byte length (`short_tag`) when shorter than 256, else a four-byte one.
fn put_bytes(out: &mut Vec<u8>, tag: u8, short_tag: u8, bytes: &[u8]) {
    match u8::try_from(bytes.len()) {
        Ok(len) => {
            out.push(short_tag);
            out.push(len);
        }
        Err(_) => {
            out.push(tag);
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        }
    }
    out.extend_from_slice(bytes);
}

/// The payload length of a row value with `tag`, reading its length prefix (if it has one)
/// from `buf`.
fn payload_len(tag: u8, buf: &mut &[u8]) -> Result<usize> {
    Ok(match tag {
        NULL_TAG | FALSE_TAG | TRUE_TAG => 0,
        KEY_TAG_BASE..=KEY_TAG_LAST => 0,
        INT1_TAG => 1,
        INT2_TAG => 2,
        INT4_TAG | DATE_TAG => 4,
        INT_TAG | FLOAT_TAG | TS_TAG => 8,
        DEC_POS => 16,
        TEXT_SHORT_TAG | JSON_SHORT_TAG | BLOB_SHORT_TAG => read(buf, 1)?[0] as usize,
        TEXT_TAG | JSON_TAG | BLOB_TAG => {
            u32::from_le_bytes(read(buf, 4)?.try_into().expect("4")) as usize
        }
        TEXT_TINY_TAG.. => usize::from(tag - TEXT_TINY_TAG),
        other => return Err(corrupt(&format!("unknown value tag {other:#x}"))),
    })
}

/// The value of a row payload (its length already checked by [`payload_len`]).
fn row_value(tag: u8, payload: &[u8]) -> Result<Value> {
    let text = || {
        std::str::from_utf8(payload)
            .map(str::to_owned)
            .map_err(|_| corrupt("text is not UTF-8"))
    };
    Ok(match tag {
        NULL_TAG => Value::Null,
        FALSE_TAG => Value::Bool(false),
        TRUE_TAG => Value::Bool(true),
        INT1_TAG => Value::Int(i8::from_le_bytes(payload.try_into().expect("1")).into()),
        INT2_TAG => Value::Int(i16::from_le_bytes(payload.try_into().expect("2")).into()),
        INT4_TAG => Value::Int(i32::from_le_bytes(payload.try_into().expect("4")).into()),
        INT_TAG => Value::Int(i64::from_le_bytes(payload.try_into().expect("8"))),
        FLOAT_TAG => Value::Float(f64::from_le_bytes(payload.try_into().expect("8"))),
        TS_TAG => Value::Timestamp(i64::from_le_bytes(payload.try_into().expect("8"))),
        DEC_POS => Value::Decimal(Decimal::deserialize(payload.try_into().expect("16"))),
        DATE_TAG => Value::Date(i32::from_le_bytes(payload.try_into().expect("4"))),
        BLOB_TAG | BLOB_SHORT_TAG => Value::Blob(payload.to_vec()),
        TEXT_TAG | TEXT_SHORT_TAG | TEXT_TINY_TAG.. => Value::Text(text()?),
        _ => Value::Json(text()?),
    })
}

fn is_key_ref(tag: u8) -> bool {
    (KEY_TAG_BASE..=KEY_TAG_LAST).contains(&tag)
}

/// The `k`-th value of a primary key in its key form (`pk`: the row key after its prefix).
fn key_part(mut pk: &[u8], k: usize) -> Result<Value> {
    for _ in 0..k {
        decode_key_value(&mut pk)?;
    }
    decode_key_value(&mut pk)
}

/// Decodes the slots of a stored row that `slot_columns` maps to an output position
/// (`slot_columns[slot] = Some(position)`) into `out`, skipping the others without allocating.
/// Positions of slots the row does not have (columns added later) are left as they are.
/// `pk` is the row's key after its prefix ([`row_key_pk`]), for the slots the row keeps in it;
/// without it such a slot, if wanted, is an error. Returns how many slots the row holds.
pub fn decode_row_into(
    mut buf: &[u8],
    format: RowFormat,
    slot_columns: &[Option<usize>],
    out: &mut [Value],
    pk: Option<&[u8]>,
) -> Result<usize> {
    let n = match format {
        RowFormat::Counted => {
            u16::from_le_bytes(read(&mut buf, 2)?.try_into().expect("2 bytes")) as usize
        }
        RowFormat::Bare => usize::MAX,
    };
    let mut held = 0;
    // A counted row ends after its count (reading past its end is an error); a bare one where
    // its bytes do.
    while held < n && (format == RowFormat::Counted || !buf.is_empty()) {
        let slot = held;
        held += 1;
        let tag = read(&mut buf, 1)?[0];
        let width = payload_len(tag, &mut buf)?;
        let payload = read(&mut buf, width)?;
        if let Some(position) = slot_columns.get(slot).copied().flatten() {
            out[position] = if is_key_ref(tag) {
                let pk = pk.ok_or_else(|| {
                    corrupt("a column kept in the row key was read without the key")
                })?;
                key_part(pk, usize::from(tag - KEY_TAG_BASE))?
            } else {
                row_value(tag, payload)?
            };
        }
    }
    if !buf.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(held)
}

fn corrupt_key(what: &str) -> SqlError {
    SqlError::Storage(nq_storage::StorageError::Integrity(format!(
        "malformed index key: {what}"
    )))
}

fn unescape_bytes(buf: &mut &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let Some((&b, rest)) = buf.split_first() else {
            return Err(corrupt_key("unterminated string"));
        };
        *buf = rest;
        if b != 0 {
            out.push(b);
            continue;
        }
        let Some((&next, rest)) = buf.split_first() else {
            return Err(corrupt_key("unterminated string"));
        };
        *buf = rest;
        match next {
            0xFF => out.push(0),
            0x01 => return Ok(out),
            _ => return Err(corrupt_key("bad escape")),
        }
    }
}

/// True if [`decode_key_value`] gives back exactly the value that was encoded for a column of
/// this type (DECIMAL keys are normalised, so `1.50` would come back as `1.5`; floats lose the
/// sign of zero).
pub fn key_round_trips(t: &crate::types::DataType) -> bool {
    use crate::types::DataType as T;
    matches!(
        t,
        T::Boolean
            | T::SmallInt
            | T::Integer
            | T::BigInt
            | T::Text(_)
            | T::Blob
            | T::Date
            | T::Timestamp
            | T::Json
    )
}

/// Decodes one value written by [`encode_key_value`] from the front of `buf`, advancing it.
/// DECIMAL and float keys are not decoded (see [`key_round_trips`]); they are skipped and come
/// back as NULL, so callers only ask for columns whose type round-trips.
pub fn decode_key_value(buf: &mut &[u8]) -> Result<Value> {
    let Some((&tag, rest)) = buf.split_first() else {
        return Err(corrupt_key("value missing"));
    };
    *buf = rest;
    let mut fixed = |n: usize| -> Result<&[u8]> {
        if buf.len() < n {
            return Err(corrupt_key("value cut short"));
        }
        let (head, tail) = buf.split_at(n);
        *buf = tail;
        Ok(head)
    };
    Ok(match tag {
        NULL_TAG => Value::Null,
        FALSE_TAG => Value::Bool(false),
        TRUE_TAG => Value::Bool(true),
        INT_TAG => {
            Value::Int((u64::from_be_bytes(fixed(8)?.try_into().expect("8")) ^ (1 << 63)) as i64)
        }
        INT_COMPACT_MIN..=INT_COMPACT_MAX => {
            let negative = tag < INT_ZERO_TAG;
            let bytes = fixed(usize::from(tag.abs_diff(INT_ZERO_TAG)))?;
            let magnitude = bytes.iter().fold(0u64, |m, &b| {
                (m << 8) | u64::from(if negative { !b } else { b })
            });
            let value = if negative {
                0i64.checked_sub_unsigned(magnitude)
            } else {
                i64::try_from(magnitude).ok()
            };
            Value::Int(value.ok_or_else(|| corrupt_key("integer out of range"))?)
        }
        FLOAT_TAG => {
            fixed(8)?;
            Value::Null
        }
        DATE_TAG => {
            Value::Date((u32::from_be_bytes(fixed(4)?.try_into().expect("4")) ^ (1 << 31)) as i32)
        }
        TS_TAG => Value::Timestamp(
            (u64::from_be_bytes(fixed(8)?.try_into().expect("8")) ^ (1 << 63)) as i64,
        ),
        DEC_ZERO => Value::Null,
        DEC_POS | DEC_NEG => {
            // Exponent byte, digits, terminator (0 for positive, !0 for negative).
            let end = if tag == DEC_POS { 0 } else { !0 };
            fixed(1)?;
            loop {
                let b = fixed(1)?[0];
                if b == end {
                    break;
                }
            }
            Value::Null
        }
        TEXT_TAG | JSON_TAG => {
            let s = String::from_utf8(unescape_bytes(buf)?)
                .map_err(|_| corrupt_key("text is not UTF-8"))?;
            if tag == TEXT_TAG {
                Value::Text(s)
            } else {
                Value::Json(s)
            }
        }
        BLOB_TAG => Value::Blob(unescape_bytes(buf)?),
        other => return Err(corrupt_key(&format!("unknown key tag {other:#x}"))),
    })
}

/// Decodes a row's values (as many slots as were stored) written with every value inline.
pub fn decode_row(buf: &[u8], format: RowFormat) -> Result<Vec<Value>> {
    let n = match format {
        RowFormat::Counted => u16::from_le_bytes(
            buf.get(..2)
                .ok_or_else(|| corrupt("truncated"))?
                .try_into()
                .expect("2 bytes"),
        ) as usize,
        RowFormat::Bare => bare_slots(buf)?,
    };
    let slots: Vec<Option<usize>> = (0..n).map(Some).collect();
    let mut values = Value::nulls(n);
    decode_row_into(buf, format, &slots, &mut values, None)?;
    Ok(values)
}

/// How many slots a bare row holds (each is a tag and its payload).
fn bare_slots(mut buf: &[u8]) -> Result<usize> {
    let mut n = 0;
    while !buf.is_empty() {
        let tag = read(&mut buf, 1)?[0];
        let width = payload_len(tag, &mut buf)?;
        read(&mut buf, width)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    const FORMATS: [KeyFormat; 2] = [KeyFormat::Fixed, KeyFormat::Compact];
    const ROW_FORMATS: [RowFormat; 2] = [RowFormat::Counted, RowFormat::Bare];

    fn key_in(v: &Value, format: KeyFormat) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key_value(v, format, &mut out);
        out
    }

    fn same_type_pair() -> impl Strategy<Value = (Value, Value)> {
        prop_oneof![
            (any::<i64>(), any::<i64>()).prop_map(|(a, b)| (Value::Int(a), Value::Int(b))),
            (
                any::<f64>().prop_filter("not nan", |f| !f.is_nan()),
                any::<f64>().prop_filter("not nan", |f| !f.is_nan())
            )
                .prop_map(|(a, b)| (Value::Float(a), Value::Float(b))),
            (any::<i64>(), 0u32..12, any::<i64>(), 0u32..12).prop_map(|(a, sa, b, sb)| (
                Value::Decimal(Decimal::new(a, sa)),
                Value::Decimal(Decimal::new(b, sb))
            )),
            (".{0,6}", ".{0,6}").prop_map(|(a, b)| (Value::Text(a), Value::Text(b))),
            (
                proptest::collection::vec(
                    prop_oneof![Just(0u8), Just(1u8), Just(255u8), any::<u8>()],
                    0..5
                ),
                proptest::collection::vec(
                    prop_oneof![Just(0u8), Just(1u8), Just(255u8), any::<u8>()],
                    0..5
                )
            )
                .prop_map(|(a, b)| (Value::Blob(a), Value::Blob(b))),
            (any::<i32>(), any::<i32>()).prop_map(|(a, b)| (Value::Date(a), Value::Date(b))),
            (any::<i64>(), any::<i64>())
                .prop_map(|(a, b)| (Value::Timestamp(a), Value::Timestamp(b))),
            (any::<bool>(), any::<bool>()).prop_map(|(a, b)| (Value::Bool(a), Value::Bool(b))),
        ]
    }

    proptest! {
        #[test]
        fn test_key_order_is_value_order((a, b) in same_type_pair()) {
            let expected = a.sql_cmp(&b).unwrap();
            for f in FORMATS {
                prop_assert_eq!(key_in(&a, f).cmp(&key_in(&b, f)), expected, "{:?} vs {:?}", a, b);
                // NULL sorts before everything.
                prop_assert_eq!(key_in(&Value::Null, f).cmp(&key_in(&a, f)), Ordering::Less);
            }
        }

        #[test]
        fn test_compact_integer_keys_order_and_round_trip(
            a in prop_oneof![any::<i64>(), -70_000i64..70_000, Just(i64::MIN), Just(i64::MAX)],
            b in prop_oneof![any::<i64>(), -70_000i64..70_000, Just(i64::MIN), Just(i64::MAX)],
        ) {
            let (ka, kb) = (key_in(&Value::Int(a), KeyFormat::Compact), key_in(&Value::Int(b), KeyFormat::Compact));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(decode_key_value(&mut ka.as_slice()).unwrap(), Value::Int(a));
            // The tag and the magnitude's significant bytes, never more.
            let significant = 8 - (a.unsigned_abs().leading_zeros() / 8) as usize;
            prop_assert_eq!(ka.len(), 1 + significant);
        }

        #[test]
        fn test_composite_keys_order_lexicographically(
            (a1, b1) in same_type_pair(), (a2, b2) in same_type_pair()
        ) {
            for f in FORMATS {
                let (mut ka, mut kb) = (Vec::new(), Vec::new());
                encode_key(&[a1.clone(), a2.clone()], f, &mut ka);
                encode_key(&[b1.clone(), a2.clone()], f, &mut kb);
                if a1.sql_cmp(&b1) != Some(Ordering::Equal) {
                    prop_assert_eq!(ka.cmp(&kb), a1.sql_cmp(&b1).unwrap());
                }
            }
            let _ = b2;
        }

        #[test]
        fn test_rows_round_trip((a, b) in same_type_pair(), text in ".{0,140}") {
            let row = vec![a, Value::Null, b, Value::Json("{\"k\":1}".into()), Value::Text(text)];
            for f in ROW_FORMATS {
                prop_assert_eq!(&decode_row(&encode_row(&row, f), f).unwrap(), &row);
            }
        }
    }

    proptest! {
        #[test]
        fn test_key_values_decode_back((a, b) in same_type_pair()) {
            for (v, f) in [a, b, Value::Null].into_iter().flat_map(|v| FORMATS.map(|f| (v.clone(), f))) {
                let lossless = !matches!(v, Value::Float(_) | Value::Decimal(_));
                let mut k = key_in(&v, f);
                k.push(0x77);
                let mut buf = k.as_slice();
                let back = decode_key_value(&mut buf).unwrap();
                prop_assert_eq!(buf, &[0x77u8][..], "{:?} left bytes behind", v);
                if lossless {
                    prop_assert_eq!(back, v);
                }
            }
        }

        #[test]
        fn test_partial_decode_matches_full_decode((a, b) in same_type_pair(), mask in 0u8..16) {
            let row = vec![a, Value::Null, b, Value::Text("x\0y".into())];
            for f in ROW_FORMATS {
                let raw = encode_row(&row, f);
                let slots: Vec<Option<usize>> =
                    (0..4).map(|i| (mask & (1 << i) != 0).then_some(3 - i)).collect();
                let mut out = vec![Value::Null; 4];
                prop_assert_eq!(decode_row_into(&raw, f, &slots, &mut out, None).unwrap(), 4);
                for (slot, target) in slots.iter().enumerate() {
                    match target {
                        Some(p) => prop_assert_eq!(&out[*p], &row[slot]),
                        None => prop_assert_eq!(&out[3 - slot], &Value::Null),
                    }
                }
            }
        }
    }

    #[test]
    fn test_malformed_compact_integer_keys_are_errors() {
        let tagged = |tag: u8, bytes: &[u8]| [&[tag][..], bytes].concat();
        // i64::MIN is the largest negative magnitude: 2^63, complemented.
        let min = tagged(
            INT_ZERO_TAG - 8,
            &[0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        );
        assert_eq!(key_in(&Value::Int(i64::MIN), KeyFormat::Compact), min);
        // A positive eight-byte magnitude beyond i64::MAX, a negative one beyond -2^63, and
        // magnitudes cut short.
        let mut beyond_min = min.clone();
        beyond_min[8] = 0xFE;
        for bad in [
            tagged(INT_ZERO_TAG + 8, &[0x80, 0, 0, 0, 0, 0, 0, 0]),
            beyond_min,
            tagged(INT_ZERO_TAG + 2, &[0x01]),
            tagged(INT_ZERO_TAG - 1, &[]),
        ] {
            assert!(decode_key_value(&mut &bad[..]).is_err(), "{bad:x?}");
        }
        assert_eq!(key_in(&Value::Int(0), KeyFormat::Compact), [INT_ZERO_TAG]);
        assert_eq!(
            key_in(&Value::Int(-1), KeyFormat::Compact),
            [INT_ZERO_TAG - 1, 0xFE]
        );
    }

    #[test]
    fn test_truncated_row_is_an_error_not_a_panic() {
        let values = [Value::Text("hello".into()), Value::Int(5)];
        let row = encode_row(&values, RowFormat::Counted);
        for cut in 0..row.len() {
            assert!(
                decode_row(&row[..cut], RowFormat::Counted).is_err(),
                "cut {cut}"
            );
            let mut out = vec![Value::Null; 2];
            assert!(
                decode_row_into(
                    &row[..cut],
                    RowFormat::Counted,
                    &[Some(0), Some(1)],
                    &mut out,
                    None
                )
                .is_err(),
                "cut {cut}"
            );
        }
        // A bare row has no count: cut between slots it is a shorter row (the storage layer's
        // checksums catch lost bytes), cut inside a slot an error.
        let row = encode_row(&values, RowFormat::Bare);
        assert_eq!(
            row.len(),
            6 + 2,
            "a tiny text tag and 5 bytes, an INT1 tag and 1 byte"
        );
        for cut in 0..row.len() {
            let decoded = decode_row(&row[..cut], RowFormat::Bare);
            match cut {
                0 => assert_eq!(decoded.unwrap(), []),
                6 => assert_eq!(decoded.unwrap(), values[..1]),
                _ => assert!(decoded.is_err(), "cut {cut}"),
            }
        }
    }

    /// Short text in a bare row keeps its length in the tag; from 128 bytes it takes the
    /// one-byte length again. The count is gone.
    #[test]
    fn test_bare_rows_save_the_count_and_short_text_lengths() {
        for (len, size) in [(0usize, 1), (127, 1 + 127), (128, 2 + 128), (300, 5 + 300)] {
            let row = [Value::Text("y".repeat(len))];
            let bare = encode_row(&row, RowFormat::Bare);
            assert_eq!(bare.len(), size, "len {len}");
            assert_eq!(decode_row(&bare, RowFormat::Bare).unwrap(), row);
            let counted = encode_row(&row, RowFormat::Counted);
            assert_eq!(
                counted.len(),
                2 + size + usize::from(len < 128),
                "len {len}"
            );
        }
        // A bare row read as counted (or the other way round) is an error or a different row,
        // which is why the format lives in the catalog.
        let bare = encode_row(&[Value::Int(1), Value::Int(2)], RowFormat::Bare);
        assert_ne!(
            decode_row(&bare, RowFormat::Counted).ok(),
            Some(vec![Value::Int(1), Value::Int(2)])
        );
    }

    #[test]
    fn test_narrow_widths_round_trip_at_their_bounds_and_save_bytes() {
        let ints = [
            0,
            -1,
            i64::from(i8::MIN),
            i64::from(i8::MAX),
            i64::from(i8::MAX) + 1,
            i64::from(i8::MIN) - 1,
            i64::from(i16::MIN),
            i64::from(i16::MAX),
            i64::from(i16::MAX) + 1,
            i64::from(i32::MIN),
            i64::from(i32::MAX),
            i64::from(i32::MAX) + 1,
            i64::from(i32::MIN) - 1,
            i64::MIN,
            i64::MAX,
        ];
        let row: Vec<Value> = ints.iter().map(|&i| Value::Int(i)).collect();
        for f in ROW_FORMATS {
            assert_eq!(decode_row(&encode_row(&row, f), f).unwrap(), row);
        }
        for (len, short) in [(0usize, true), (255, true), (256, false), (70_000, false)] {
            let text = "x".repeat(len);
            let row = vec![
                Value::Text(text.clone()),
                Value::Json(text.clone()),
                Value::Blob(text.clone().into_bytes()),
            ];
            let bytes = encode_row(&row, RowFormat::Counted);
            assert_eq!(decode_row(&bytes, RowFormat::Counted).unwrap(), row);
            let header = if short { 2 } else { 5 };
            assert_eq!(bytes.len(), 2 + 3 * (header + len), "len {len}");
        }
        // A small integer takes two bytes, not nine.
        for (f, count) in [(RowFormat::Counted, 2), (RowFormat::Bare, 0)] {
            assert_eq!(encode_row(&[Value::Int(7)], f).len(), count + 2);
            assert_eq!(encode_row(&[Value::Int(1_000_000)], f).len(), count + 5);
        }
    }

    /// Rows written before the narrow tags (8-byte integers, 4-byte lengths) still decode.
    #[test]
    fn test_rows_in_the_wide_format_still_decode() {
        let mut old = 3u16.to_le_bytes().to_vec();
        old.push(INT_TAG);
        old.extend_from_slice(&42i64.to_le_bytes());
        old.push(TEXT_TAG);
        old.extend_from_slice(&2u32.to_le_bytes());
        old.extend_from_slice(b"hi");
        old.push(BLOB_TAG);
        old.extend_from_slice(&1u32.to_le_bytes());
        old.push(9);
        assert_eq!(
            decode_row(&old, RowFormat::Counted).unwrap(),
            vec![
                Value::Int(42),
                Value::Text("hi".into()),
                Value::Blob(vec![9])
            ]
        );
        let mut out = vec![Value::Null; 3];
        decode_row_into(
            &old,
            RowFormat::Counted,
            &[None, Some(0), Some(2)],
            &mut out,
            None,
        )
        .unwrap();
        assert_eq!(
            out,
            vec![Value::Text("hi".into()), Value::Null, Value::Blob(vec![9])]
        );
    }

    #[test]
    fn test_key_columns_are_one_byte_references_into_the_key() {
        let row = vec![
            Value::Int(1_000_000),
            Value::Text("name".into()),
            Value::Text("k2".into()),
        ];
        // Slot 0 is the first key column, slot 2 the second.
        let in_key = vec![Some(0), None, Some(1)];
        let bare = RowFormat::Bare;
        let raw = encode_row_with_key(&row, &in_key, bare);
        assert_eq!(raw.len(), 1 + (1 + 4) + 1);
        assert!(raw.len() < encode_row(&row, bare).len());
        let mut pk = Vec::new();
        encode_key(
            &[Value::Int(1_000_000), Value::Text("k2".into())],
            KeyFormat::Compact,
            &mut pk,
        );
        let mut key = row_prefix(7);
        key.extend_from_slice(&pk);
        let all = [Some(0), Some(1), Some(2)];
        let mut out = Value::nulls(3);
        let pk = row_key_pk(&key).unwrap();
        decode_row_into(&raw, bare, &all, &mut out, Some(pk)).unwrap();
        assert_eq!(out, row);
        // Without the key, a wanted key column is an error; an unwanted one is skipped.
        let mut out = Value::nulls(3);
        assert!(decode_row_into(&raw, bare, &all, &mut out, None).is_err());
        let mut out = Value::nulls(3);
        decode_row_into(&raw, bare, &[None, Some(1), None], &mut out, None).unwrap();
        assert_eq!(out[1], Value::Text("name".into()));
        // A reference beyond the key's values, or a key that is not a row key, is an error.
        let mut short = row_prefix(7);
        encode_key(&[Value::Int(1_000_000)], KeyFormat::Compact, &mut short);
        let mut out = Value::nulls(3);
        let short = row_key_pk(&short).unwrap();
        assert!(decode_row_into(&raw, bare, &all, &mut out, Some(short)).is_err());
        assert!(row_key_pk(&index_prefix(7, 1)).is_err());
        assert!(row_key_pk(b"t").is_err());
    }

    #[test]
    fn test_only_round_tripping_key_columns_are_left_to_the_key() {
        use crate::types::DataType as T;
        let pk = [
            (2, &T::Integer),
            (0, &T::Decimal(Some((10, 2)))),
            (1, &T::Text(None)),
        ];
        assert_eq!(stored_in_key(&pk, 4), vec![None, Some(2), Some(0), None]);
        // NULL (never a key value) stays inline even in a key slot.
        for f in ROW_FORMATS {
            let raw = encode_row_with_key(&[Value::Null], &[Some(0)], f);
            assert_eq!(decode_row(&raw, f).unwrap(), vec![Value::Null]);
        }
        // Only the first MAX_KEY_REFS key columns can be referred to.
        let many: Vec<(usize, &T)> = (0..20).map(|s| (s, &T::Integer)).collect();
        let refs = stored_in_key(&many, 20);
        assert_eq!(refs.iter().flatten().count(), MAX_KEY_REFS);
        assert_eq!(refs[MAX_KEY_REFS], None);
    }
}
