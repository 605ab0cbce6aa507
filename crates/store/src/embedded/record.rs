//! The log's record format and its decoder.
//!
//! A log file is the 8-byte [`MAGIC`] followed by records. A record is
//! `len: u32 LE | crc32(body): u32 LE | body`, where body is
//! `op: u8 | revision: i64 LE | create_revision: i64 LE | key_len: u32 LE | key | value`.
//! Decoding stops at the first record that is incomplete or fails its checksum: that is
//! a torn tail from a crash mid-write, and everything from there on is discarded.

use bytes::Bytes;

use crate::crc::crc32;

/// File header identifying a capstan store log (format version 1).
pub(crate) const MAGIC: &[u8; 8] = b"CAPSTLG1";
const HEADER: usize = 8;
const FIXED_BODY: usize = 1 + 8 + 8 + 4;
/// Upper bound on one record's body, to reject garbage lengths quickly.
const MAX_BODY: usize = 1 << 30;

/// What a record means when replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// A create or update at `revision`.
    Put = 0,
    /// A delete at `revision`.
    Delete = 1,
    /// A snapshot entry: live key state, not an event (only in rewritten logs).
    Snapshot = 2,
    /// Snapshot metadata: `revision` is the store revision of the snapshot and
    /// `create_revision` the compaction point.
    Meta = 3,
    /// History before `revision` was compacted.
    Compact = 4,
}

impl Op {
    fn from_u8(b: u8) -> Option<Op> {
        Some(match b {
            0 => Op::Put,
            1 => Op::Delete,
            2 => Op::Snapshot,
            3 => Op::Meta,
            4 => Op::Compact,
            _ => return None,
        })
    }
}

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub op: Op,
    pub revision: i64,
    pub create_revision: i64,
    pub key: String,
    pub value: Bytes,
}

impl Record {
    /// Appends this record's encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode(
            out,
            self.op,
            self.revision,
            self.create_revision,
            &self.key,
            &self.value,
        );
    }
}

/// Appends one record to `out` without building a [`Record`].
pub(crate) fn encode(
    out: &mut Vec<u8>,
    op: Op,
    revision: i64,
    create_revision: i64,
    key: &str,
    value: &[u8],
) {
    let body_len = FIXED_BODY + key.len() + value.len();
    let start = out.len();
    out.reserve(HEADER + body_len);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(op as u8);
    out.extend_from_slice(&revision.to_le_bytes());
    out.extend_from_slice(&create_revision.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    let crc = crc32(&[&out[start + HEADER..]]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The records of a log image and the length of its valid prefix.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub records: Vec<Record>,
    /// Bytes of `buf` (including the magic) that decoded cleanly; the rest is a torn tail.
    pub valid_len: usize,
}

/// Why a log image could not be read at all.
#[derive(thiserror::Error, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The file does not start with [`MAGIC`].
    #[error("not a capstan store log (bad magic)")]
    BadMagic,
}

/// Decodes a whole log image. A buffer shorter than the magic decodes as empty with
/// `valid_len` 0 (a crash while creating the file).
pub(crate) fn decode(buf: &[u8]) -> Result<Decoded, DecodeError> {
    if buf.len() < MAGIC.len() {
        if MAGIC.starts_with(buf) {
            return Ok(Decoded {
                records: Vec::new(),
                valid_len: 0,
            });
        }
        return Err(DecodeError::BadMagic);
    }
    if &buf[..MAGIC.len()] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let mut pos = MAGIC.len();
    let mut records = Vec::new();
    while let Some((record, next)) = decode_one(buf, pos) {
        records.push(record);
        pos = next;
    }
    Ok(Decoded {
        records,
        valid_len: pos,
    })
}

fn decode_one(data: &[u8], pos: usize) -> Option<(Record, usize)> {
    let header = data.get(pos..pos + HEADER)?;
    let body_len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    if !(FIXED_BODY..=MAX_BODY).contains(&body_len) {
        return None;
    }
    let body_start = pos + HEADER;
    let body = data.get(body_start..body_start + body_len)?;
    if crc32(&[body]) != crc {
        return None;
    }
    let op = Op::from_u8(body[0])?;
    let revision = i64::from_le_bytes(body[1..9].try_into().ok()?);
    let create_revision = i64::from_le_bytes(body[9..17].try_into().ok()?);
    let key_len = u32::from_le_bytes(body[17..21].try_into().ok()?) as usize;
    let key_bytes = body.get(FIXED_BODY..FIXED_BODY + key_len)?;
    let key = std::str::from_utf8(key_bytes).ok()?.to_string();
    let value_start = body_start + FIXED_BODY + key_len;
    // Copied out so that superseded values do not pin the whole log image in memory.
    let value = Bytes::copy_from_slice(&data[value_start..body_start + body_len]);
    Some((
        Record {
            op,
            revision,
            create_revision,
            key,
            value,
        },
        body_start + body_len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(op: Op, rev: i64, key: &str, value: &str) -> Record {
        Record {
            op,
            revision: rev,
            create_revision: rev - 1,
            key: key.to_string(),
            value: Bytes::from(value.to_string()),
        }
    }

    fn image(records: &[Record]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for r in records {
            r.encode(&mut out);
        }
        out
    }

    #[test]
    fn roundtrip() {
        let records = vec![
            rec(Op::Put, 2, "/a", "hello"),
            rec(Op::Delete, 3, "/a", ""),
            rec(Op::Snapshot, 4, "/ünïcode", "\u{0}binary\u{ff}"),
            rec(Op::Meta, 5, "", ""),
            rec(Op::Compact, 6, "", ""),
            rec(Op::Put, i64::MAX, "", ""),
        ];
        let buf = image(&records);
        let decoded = decode(&buf).unwrap();
        assert_eq!(decoded.records, records);
        assert_eq!(decoded.valid_len, buf.len());
    }

    #[test]
    fn torn_tail_is_discarded_at_every_cut() {
        let records = vec![rec(Op::Put, 2, "/a", "one"), rec(Op::Put, 3, "/b", "two")];
        let buf = image(&records);
        let first_end = image(&records[..1]).len();
        for cut in MAGIC.len()..buf.len() {
            let decoded = decode(&buf[..cut]).unwrap();
            let want = if cut >= first_end { 1 } else { 0 };
            assert_eq!(decoded.records.len(), want, "cut at {cut}");
            let want_len = if want == 1 { first_end } else { MAGIC.len() };
            assert_eq!(decoded.valid_len, want_len, "cut at {cut}");
        }
    }

    #[test]
    fn corruption_stops_decoding() {
        let records = vec![rec(Op::Put, 2, "/a", "one"), rec(Op::Put, 3, "/b", "two")];
        let buf = image(&records);
        let first_end = image(&records[..1]).len();
        // Flip one byte in each position of the second record: header or body.
        for i in first_end..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            let decoded = decode(&bad).unwrap();
            assert_eq!(decoded.records.len(), 1, "flip at {i}");
            assert_eq!(decoded.valid_len, first_end, "flip at {i}");
        }
    }

    #[test]
    fn magic_handling() {
        let cases: &[(&[u8], Result<usize, DecodeError>)] = &[
            (b"", Ok(0)),
            (b"CAPS", Ok(0)),
            (b"CAPSTLG1", Ok(8)),
            (b"XAPS", Err(DecodeError::BadMagic)),
            (b"NOTALOG!andmore", Err(DecodeError::BadMagic)),
        ];
        for (input, want) in cases {
            let got = decode(input).map(|d| d.valid_len);
            assert_eq!(&got, want, "input {input:?}");
        }
    }
}
