//! Go's `time.ParseDuration` (for `@every <duration>`), with its error texts.

fn quote(s: &str) -> String {
    format!("\"{s}\"")
}

/// Nanoseconds of a Go duration string such as `1h30m`, `1.5s`, `-2m`, `300ms`.
pub fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.chars().next() {
        if c == '-' || c == '+' {
            neg = c == '-';
            s = &s[1..];
        }
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    let mut whole: u128 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let int_part: u128 = if int_len > 0 {
            s[..int_len].parse().map_err(|_| invalid())?
        } else {
            0
        };
        s = &s[int_len..];
        let mut frac = 0.0;
        let mut frac_len = 0;
        if let Some(rest) = s.strip_prefix('.') {
            frac_len = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
            if frac_len > 0 {
                frac = format!("0.{}", &rest[..frac_len]).parse().unwrap_or(0.0);
            }
            s = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .bytes()
            .take_while(|c| !(*c == b'.' || c.is_ascii_digit()))
            .count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(orig)));
        }
        let u = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u128 = match u {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(u),
                    quote(orig)
                ))
            }
        };
        whole = int_part
            .checked_mul(unit)
            .and_then(|v| whole.checked_add(v))
            .filter(|v| *v <= 1 << 63)
            .ok_or_else(invalid)?;
        total += frac * unit as f64;
    }
    let nanos = whole + total as u128;
    if nanos > (1u128 << 63) || (!neg && nanos > i64::MAX as u128) {
        return Err(invalid());
    }
    Ok(if neg {
        (nanos as i128).wrapping_neg() as i64
    } else {
        nanos as i64
    })
}
