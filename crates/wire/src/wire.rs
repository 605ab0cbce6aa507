//! Protobuf wire format primitives: a bounds-checked reader and an append-only writer.

use crate::WireError;

/// The wire type of a protobuf field key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

/// One decoded field value, borrowing length-delimited payloads from the input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

impl Value<'_> {
    pub(crate) fn wire_type(&self) -> WireType {
        match self {
            Value::Varint(_) => WireType::Varint,
            Value::Fixed64(_) => WireType::Fixed64,
            Value::Len(_) => WireType::Len,
            Value::Fixed32(_) => WireType::Fixed32,
        }
    }
}

/// Reads (tag, value) pairs from a message's bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn malformed(msg: impl Into<String>) -> WireError {
    WireError::Malformed(msg.into())
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let mut out = 0u64;
        for i in 0..10 {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| malformed("truncated varint"))?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(malformed("varint longer than 10 bytes"))
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn fixed64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| malformed("fixed64"))?,
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| malformed("truncated field"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next field, or None at the end of the message.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| malformed("field number out of range"))?;
        if tag == 0 {
            return Err(malformed("field number 0"));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(self.fixed64()?),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| malformed("length out of range"))?;
                Value::Len(self.take(len)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().map_err(|_| malformed("fixed32"))?,
            )),
            w => {
                return Err(malformed(format!(
                    "unsupported wire type {w} for field {tag}"
                )))
            }
        };
        Ok(Some((tag, value)))
    }
}

/// Appends protobuf encodings to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub(crate) fn key(&mut self, tag: u32, wt: WireType) {
        let w = match wt {
            WireType::Varint => 0,
            WireType::Fixed64 => 1,
            WireType::Len => 2,
            WireType::Fixed32 => 5,
        };
        self.varint((u64::from(tag) << 3) | w);
    }

    pub(crate) fn varint_field(&mut self, tag: u32, v: u64) {
        self.key(tag, WireType::Varint);
        self.varint(v);
    }

    pub(crate) fn bytes_field(&mut self, tag: u32, b: &[u8]) {
        self.key(tag, WireType::Len);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn double_field(&mut self, tag: u32, v: f64) {
        self.key(tag, WireType::Fixed64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            u32::MAX as u64,
            u64::MAX,
            (-1i64) as u64,
        ] {
            let mut w = Writer::default();
            w.varint(v);
            assert_eq!(Reader::new(&w.buf).varint().unwrap(), v);
        }
    }

    #[test]
    fn reader_rejects_bad_input() {
        let cases: &[&[u8]] = &[
            &[0x08],             // truncated varint value
            &[0x0a, 0x05, 1, 2], // length past the end
            &[0x0b],             // group start
            &[0x00, 0x01],       // field 0
            &[0x09, 1, 2, 3],    // truncated fixed64
            &[
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ], // huge length
            &[
                0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
            ], // overlong varint
        ];
        for c in cases {
            let mut r = Reader::new(c);
            assert!(r.next_field().is_err(), "{c:?}");
        }
    }

    #[test]
    fn reader_reads_each_wire_type() {
        let mut w = Writer::default();
        w.varint_field(1, 150);
        w.double_field(2, 1.5);
        w.bytes_field(3, b"hi");
        w.key(4, WireType::Fixed32);
        w.buf.extend_from_slice(&7u32.to_le_bytes());
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.next_field().unwrap(), Some((1, Value::Varint(150))));
        assert_eq!(
            r.next_field().unwrap(),
            Some((2, Value::Fixed64(1.5f64.to_bits())))
        );
        assert_eq!(r.next_field().unwrap(), Some((3, Value::Len(b"hi"))));
        assert_eq!(r.next_field().unwrap(), Some((4, Value::Fixed32(7))));
        assert_eq!(r.next_field().unwrap(), None);
    }
}
