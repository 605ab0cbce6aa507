//! Protobuf → JSON: walks a message's fields with the generated schema and builds its JSON wire form.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::schema::{msg, Card, Msg, Special, Ty};
use crate::special::{format_duration, format_time};
use crate::wire::{Reader, Value as W};
use crate::{WireError, MAX_DEPTH};

fn malformed(msg: impl Into<String>) -> WireError {
    WireError::Malformed(msg.into())
}

/// Decode the message `index` from `bytes`. None means JSON null (a zero Time, an empty RawExtension).
pub(crate) fn message(bytes: &[u8], index: u16, depth: usize) -> Result<Option<Value>, WireError> {
    if depth > MAX_DEPTH {
        return Err(malformed("message nesting too deep"));
    }
    let m = msg(index);
    match m.special() {
        Special::None => {
            let mut obj = Map::new();
            object(bytes, m, depth, &mut obj)?;
            Ok(Some(Value::Object(obj)))
        }
        Special::Time | Special::MicroTime => {
            let (mut secs, mut nanos) = (None, 0i32);
            each(bytes, |tag, v| {
                match (tag, v) {
                    (1, W::Varint(n)) => secs = Some(n as i64),
                    (2, W::Varint(n)) => nanos = n as i32,
                    _ => {}
                }
                Ok(())
            })?;
            Ok(secs
                .and_then(|s| format_time(s, nanos, m.special() == Special::MicroTime))
                .map(Value::String))
        }
        Special::Duration => {
            let mut ns = 0i64;
            each(bytes, |tag, v| {
                if let (1, W::Varint(n)) = (tag, v) {
                    ns = n as i64;
                }
                Ok(())
            })?;
            Ok(Some(Value::String(format_duration(ns))))
        }
        Special::Quantity => {
            let mut q = None;
            each(bytes, |tag, v| {
                if let (1, W::Len(b)) = (tag, v) {
                    q = Some(String::from_utf8_lossy(b).into_owned());
                }
                Ok(())
            })?;
            Ok(Some(Value::String(q.unwrap_or_else(|| "0".to_string()))))
        }
        Special::IntOrString => {
            let (mut kind, mut int, mut s) = (0u64, 0i64, String::new());
            each(bytes, |tag, v| {
                match (tag, v) {
                    (1, W::Varint(n)) => kind = n,
                    (2, W::Varint(n)) => int = i64::from(n as i32),
                    (3, W::Len(b)) => s = String::from_utf8_lossy(b).into_owned(),
                    _ => {}
                }
                Ok(())
            })?;
            Ok(Some(if kind == 1 {
                Value::String(s)
            } else {
                Value::Number(int.into())
            }))
        }
        Special::StringList => {
            let mut items = Vec::new();
            each(bytes, |tag, v| {
                if let (1, W::Len(b)) = (tag, v) {
                    items.push(Value::String(String::from_utf8_lossy(b).into_owned()));
                }
                Ok(())
            })?;
            Ok(Some(Value::Array(items)))
        }
        Special::RawJson => {
            let mut raw: &[u8] = &[];
            each(bytes, |tag, v| {
                if let (1, W::Len(b)) = (tag, v) {
                    raw = b;
                }
                Ok(())
            })?;
            raw_json(raw, depth)
        }
        Special::OrArray | Special::OrBool => {
            let mut obj = Map::new();
            object(bytes, m, depth, &mut obj)?;
            let name = |tag| m.field(tag).map(|f| f.1).unwrap_or_default();
            Ok(Some(if m.special() == Special::OrArray {
                obj.remove(name(2))
                    .or_else(|| obj.remove(name(1)))
                    .unwrap_or(Value::Null)
            } else {
                obj.remove(name(2))
                    .or_else(|| obj.remove(name(1)))
                    .unwrap_or(Value::Bool(false))
            }))
        }
    }
}

/// Embedded JSON (or a nested protobuf envelope) → its JSON value; empty → null.
fn raw_json(raw: &[u8], depth: usize) -> Result<Option<Value>, WireError> {
    if raw.is_empty() {
        return Ok(None);
    }
    if crate::is_protobuf_envelope(raw) {
        return crate::decode_envelope(raw, depth + 1).map(Some);
    }
    serde_json::from_slice(raw)
        .map(Some)
        .map_err(|e| malformed(format!("embedded JSON: {e}")))
}

fn each<'a>(
    bytes: &'a [u8],
    mut f: impl FnMut(u32, W<'a>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut r = Reader::new(bytes);
    while let Some((tag, v)) = r.next_field()? {
        f(tag, v)?;
    }
    Ok(())
}

/// Decode `bytes` as message `m`, adding its fields to `obj` (inline fields merge into it too).
fn object(
    bytes: &[u8],
    m: &Msg,
    depth: usize,
    obj: &mut Map<String, Value>,
) -> Result<(), WireError> {
    fields(bytes, m, depth, obj).map_err(|e| match e {
        WireError::Malformed(s) => malformed(format!("{}: {s}", m.name())),
        e => e,
    })
}

fn fields(
    bytes: &[u8],
    m: &Msg,
    depth: usize,
    obj: &mut Map<String, Value>,
) -> Result<(), WireError> {
    each(bytes, |tag, v| {
        let Some(f) = m.field(tag) else {
            return Ok(()); // unknown field: skipped, like any protobuf reader
        };
        let (name, ty, card) = (f.1, f.2, f.3);
        match card {
            Card::One | Card::Keep => match single(ty, v, depth, name)? {
                Some(val) if card == Card::Keep || !is_zero(&val, ty) => {
                    obj.insert(name.to_string(), val);
                }
                _ => {
                    obj.remove(name);
                }
            },
            Card::Many => {
                let arr = obj
                    .entry(name.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(arr) = arr else {
                    return Err(malformed(format!("field {name} is both repeated and not")));
                };
                match (ty, v) {
                    (Ty::Bool | Ty::I32 | Ty::I64 | Ty::F64, W::Len(packed)) => {
                        let mut r = Reader::new(packed);
                        while r.position() < packed.len() {
                            let item = if ty == Ty::F64 {
                                W::Fixed64(r.fixed64()?)
                            } else {
                                W::Varint(r.varint()?)
                            };
                            arr.push(single(ty, item, depth, name)?.unwrap_or(Value::Null));
                        }
                    }
                    _ => arr.push(single(ty, v, depth, name)?.unwrap_or(Value::Null)),
                }
            }
            Card::Map => {
                let (Ty::M(_) | Ty::Str | Ty::Bytes) = ty else {
                    return Err(malformed(format!(
                        "map {name} has an unsupported value type"
                    )));
                };
                let W::Len(entry) = v else {
                    return Err(malformed(format!("map {name}: wrong wire type")));
                };
                let (mut key, mut val) = (String::new(), None);
                each(entry, |t, ev| {
                    match (t, ev) {
                        (1, W::Len(b)) => key = String::from_utf8_lossy(b).into_owned(),
                        (2, ev) => val = single(ty, ev, depth, name)?,
                        _ => {}
                    }
                    Ok(())
                })?;
                let val = match (val, ty) {
                    (Some(v), _) => v,
                    (None, Ty::M(i)) => message(&[], i, depth + 1)?.unwrap_or(Value::Null),
                    (None, _) => Value::String(String::new()),
                };
                let map = obj
                    .entry(name.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(key, val);
                }
            }
            Card::Inline => {
                let (Ty::M(i), W::Len(b)) = (ty, v) else {
                    return Err(malformed("inline field is not a message"));
                };
                if depth + 1 > MAX_DEPTH {
                    return Err(malformed("message nesting too deep"));
                }
                object(b, msg(i), depth + 1, obj)?;
            }
        }
        Ok(())
    })
}

/// One value of type `ty`; None for JSON null.
fn single(ty: Ty, v: W<'_>, depth: usize, name: &str) -> Result<Option<Value>, WireError> {
    let wrong = || {
        malformed(format!(
            "field {name}: wire type {:?} does not fit {ty:?}",
            v.wire_type()
        ))
    };
    Ok(Some(match (ty, v) {
        (Ty::Str, W::Len(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (Ty::Bytes, W::Len(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Ty::Bool, W::Varint(n)) => Value::Bool(n != 0),
        (Ty::I32, W::Varint(n)) => Value::Number(i64::from(n as i32).into()),
        (Ty::I64, W::Varint(n)) => Value::Number((n as i64).into()),
        (Ty::F64, W::Fixed64(n)) => match Number::from_f64(f64::from_bits(n)) {
            Some(n) => Value::Number(n),
            None => return Err(malformed(format!("field {name}: not a finite number"))),
        },
        (Ty::M(i), W::Len(b)) => return message(b, i, depth + 1),
        _ => return Err(wrong()),
    }))
}

fn is_zero(v: &Value, ty: Ty) -> bool {
    match (v, ty) {
        (_, Ty::M(_)) => false,
        (Value::String(s), _) => s.is_empty(),
        (Value::Bool(b), _) => !b,
        (Value::Number(n), _) => n.as_f64() == Some(0.0),
        _ => false,
    }
}
