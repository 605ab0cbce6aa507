//! JSON → protobuf: writes a JSON object as the Kubernetes protobuf message of its kind.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::schema::{msg, Card, Msg, Special, Ty};
use crate::special::{parse_duration, parse_time};
use crate::wire::{WireType, Writer};
use crate::{WireError, MAX_DEPTH};

fn invalid(field: &str, what: &str) -> WireError {
    WireError::Malformed(format!("field {field}: {what}"))
}

/// Encode `v` as message `index`.
pub(crate) fn message(
    v: &Value,
    index: u16,
    depth: usize,
    name: &str,
) -> Result<Vec<u8>, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::Malformed("object nesting too deep".into()));
    }
    let m = msg(index);
    let mut w = Writer::default();
    match m.special() {
        Special::None => {
            let obj = v
                .as_object()
                .ok_or_else(|| invalid(name, "expected an object"))?;
            object(obj, m, depth, &mut w)?;
        }
        Special::Time | Special::MicroTime => {
            let (secs, nanos) = v
                .as_str()
                .and_then(parse_time)
                .ok_or_else(|| invalid(name, "expected an RFC 3339 time"))?;
            w.varint_field(1, secs as u64);
            w.varint_field(2, i64::from(nanos) as u64);
        }
        Special::Duration => {
            let ns = v
                .as_str()
                .and_then(parse_duration)
                .ok_or_else(|| invalid(name, "expected a duration"))?;
            w.varint_field(1, ns as u64);
        }
        Special::Quantity => {
            let q = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(invalid(name, "expected a quantity")),
            };
            w.bytes_field(1, q.as_bytes());
        }
        Special::IntOrString => match v {
            Value::String(s) => {
                w.varint_field(1, 1);
                w.varint_field(2, 0);
                w.bytes_field(3, s.as_bytes());
            }
            Value::Number(n) => {
                let i = n
                    .as_i64()
                    .and_then(|i| i32::try_from(i).ok())
                    .ok_or_else(|| invalid(name, "int out of range"))?;
                w.varint_field(1, 0);
                w.varint_field(2, i64::from(i) as u64);
                w.bytes_field(3, b"");
            }
            _ => return Err(invalid(name, "expected an integer or a string")),
        },
        Special::StringList => {
            for item in v
                .as_array()
                .ok_or_else(|| invalid(name, "expected an array"))?
            {
                w.bytes_field(
                    1,
                    item.as_str()
                        .ok_or_else(|| invalid(name, "expected strings"))?
                        .as_bytes(),
                );
            }
        }
        Special::RawJson => {
            if !v.is_null() {
                let raw = serde_json::to_vec(v).map_err(|e| invalid(name, &e.to_string()))?;
                w.bytes_field(1, &raw);
            }
        }
        Special::OrArray | Special::OrBool => {
            let (tag, inner) = match v {
                Value::Bool(b) if m.special() == Special::OrBool => {
                    w.varint_field(1, u64::from(*b));
                    return Ok(w.buf);
                }
                Value::Array(_) if m.special() == Special::OrArray => (2, v),
                Value::Object(_) => (if m.special() == Special::OrBool { 2 } else { 1 }, v),
                _ => return Err(invalid(name, "unexpected JSON type")),
            };
            if m.special() == Special::OrBool {
                w.varint_field(1, 1);
            }
            let f = m
                .field(tag)
                .ok_or_else(|| invalid(name, "schema field missing"))?;
            field(f.0, f.2, f.3, inner, depth, name, &mut w)?;
        }
    }
    Ok(w.buf)
}

fn object(
    obj: &Map<String, Value>,
    m: &Msg,
    depth: usize,
    w: &mut Writer,
) -> Result<(), WireError> {
    for f in m.fields() {
        if f.3 == Card::Inline {
            let Ty::M(i) = f.2 else { continue };
            let mut inner = Writer::default();
            object(obj, msg(i), depth + 1, &mut inner)?;
            w.bytes_field(f.0, &inner.buf);
            continue;
        }
        match obj.get(f.1) {
            None | Some(Value::Null) => {}
            Some(v) => field(f.0, f.2, f.3, v, depth, f.1, w)?,
        }
    }
    Ok(())
}

fn field(
    tag: u32,
    ty: Ty,
    card: Card,
    v: &Value,
    depth: usize,
    name: &str,
    w: &mut Writer,
) -> Result<(), WireError> {
    match card {
        Card::One | Card::Keep | Card::Inline => single(tag, ty, v, depth, name, w),
        Card::Many => {
            for item in v
                .as_array()
                .ok_or_else(|| invalid(name, "expected an array"))?
            {
                single(tag, ty, item, depth, name, w)?;
            }
            Ok(())
        }
        Card::Map => {
            let obj = v
                .as_object()
                .ok_or_else(|| invalid(name, "expected an object"))?;
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            for k in keys {
                let mut entry = Writer::default();
                entry.bytes_field(1, k.as_bytes());
                if !obj[k].is_null() {
                    single(2, ty, &obj[k], depth, name, &mut entry)?;
                }
                w.bytes_field(tag, &entry.buf);
            }
            Ok(())
        }
    }
}

fn single(
    tag: u32,
    ty: Ty,
    v: &Value,
    depth: usize,
    name: &str,
    w: &mut Writer,
) -> Result<(), WireError> {
    match ty {
        Ty::Str => w.bytes_field(
            tag,
            v.as_str()
                .ok_or_else(|| invalid(name, "expected a string"))?
                .as_bytes(),
        ),
        Ty::Bytes => {
            let s = v
                .as_str()
                .ok_or_else(|| invalid(name, "expected a base64 string"))?;
            let b = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| invalid(name, "invalid base64"))?;
            w.bytes_field(tag, &b);
        }
        Ty::Bool => w.varint_field(
            tag,
            u64::from(
                v.as_bool()
                    .ok_or_else(|| invalid(name, "expected a boolean"))?,
            ),
        ),
        Ty::I32 => {
            let i = integer(v)
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| invalid(name, "expected an int32"))?;
            w.varint_field(tag, i64::from(i) as u64);
        }
        Ty::I64 => w.varint_field(
            tag,
            integer(v).ok_or_else(|| invalid(name, "expected an integer"))? as u64,
        ),
        Ty::F64 => w.double_field(
            tag,
            v.as_f64()
                .ok_or_else(|| invalid(name, "expected a number"))?,
        ),
        Ty::M(i) => {
            let b = message(v, i, depth + 1, name)?;
            w.key(tag, WireType::Len);
            w.varint(b.len() as u64);
            w.buf.extend_from_slice(&b);
        }
    }
    Ok(())
}

/// An integer, also from an integral float (`2.0`) as YAML-to-JSON conversions produce.
fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
            .map(|f| f as i64)
    })
}
