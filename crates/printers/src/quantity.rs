//! `resource.Quantity` canonical formatting (`Quantity.String()`), as printers show capacities,
//! quota usage and HPA metric values: "1024Mi" prints as "1Gi", "1500m" stays "1500m", "0.5" is "500m".

/// How the quantity was written, which decides how it is printed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// "Ki", "Mi", ...
    BinarySI,
    /// "", "m", "k", "M", ...
    DecimalSI,
    /// "e3", "E-2"
    DecimalExponent,
}

/// An exact value `mantissa * 10^exp`.
#[derive(Debug, Clone, Copy)]
struct Parsed {
    mantissa: i128,
    exp: i32,
    format: Format,
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

fn parse(s: &str) -> Option<Parsed> {
    let s = s.trim();
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut negative = false;
    if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
        negative = bytes[i] == b'-';
        i += 1;
    }
    let mut mantissa: i128 = 0;
    let mut exp: i32 = 0;
    let mut digits = 0;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(bytes[i] - b'0'))?;
        digits += 1;
        i += 1;
    }
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(bytes[i] - b'0'))?;
            exp -= 1;
            digits += 1;
            i += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    let suffix = &s[i..];
    let format = match suffix {
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => {
            exp += match suffix {
                "n" => -9,
                "u" => -6,
                "m" => -3,
                "k" => 3,
                "M" => 6,
                "G" => 9,
                "T" => 12,
                "P" => 15,
                "E" => 18,
                _ => 0,
            };
            Format::DecimalSI
        }
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = match suffix {
                "Ki" => 10,
                "Mi" => 20,
                "Gi" => 30,
                "Ti" => 40,
                "Pi" => 50,
                _ => 60,
            };
            mantissa = mantissa.checked_mul(1i128 << power)?;
            Format::BinarySI
        }
        _ if suffix.starts_with('e') || suffix.starts_with('E') => {
            let n: i32 = suffix[1..].parse().ok()?;
            exp = exp.checked_add(n)?;
            Format::DecimalExponent
        }
        _ => return None,
    };
    // Quantities keep at most nano precision, rounding away from zero.
    if exp < -9 {
        let div = pow10(u32::try_from(-9 - exp).ok()?)?;
        let q = mantissa / div;
        mantissa = if mantissa % div != 0 { q + 1 } else { q };
        exp = -9;
    }
    if negative {
        mantissa = -mantissa;
    }
    Some(Parsed {
        mantissa,
        exp,
        format,
    })
}

/// The integer value, when the quantity is a whole number that fits.
fn as_integer(p: &Parsed) -> Option<i128> {
    if p.exp >= 0 {
        p.mantissa.checked_mul(pow10(u32::try_from(p.exp).ok()?)?)
    } else {
        let div = pow10(u32::try_from(-p.exp).ok()?)?;
        (p.mantissa % div == 0).then(|| p.mantissa / div)
    }
}

fn decimal(p: &Parsed, format: Format) -> String {
    let mut m = p.mantissa;
    let mut e = p.exp;
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    let r = e.rem_euclid(3);
    m *= 10i128.pow(r.unsigned_abs());
    e -= r;
    let suffix = match (format, e) {
        (Format::DecimalSI, -9) => "n".to_string(),
        (Format::DecimalSI, -6) => "u".to_string(),
        (Format::DecimalSI, -3) => "m".to_string(),
        (_, 0) => String::new(),
        (Format::DecimalSI, 3) => "k".to_string(),
        (Format::DecimalSI, 6) => "M".to_string(),
        (Format::DecimalSI, 9) => "G".to_string(),
        (Format::DecimalSI, 12) => "T".to_string(),
        (Format::DecimalSI, 15) => "P".to_string(),
        (Format::DecimalSI, 18) => "E".to_string(),
        (_, e) => format!("e{e}"),
    };
    format!("{m}{suffix}")
}

/// Canonical form of a quantity string, as Go's `Quantity.String()` prints it.
/// Strings that are not quantities come back unchanged.
pub fn canonical(s: &str) -> String {
    let Some(p) = parse(s) else {
        return s.to_string();
    };
    if p.mantissa == 0 {
        return "0".to_string();
    }
    match p.format {
        Format::BinarySI => match as_integer(&p) {
            Some(v) if v.abs() >= 1024 => {
                let mut v = v;
                let mut power = 0;
                while v % 1024 == 0 && power < 6 {
                    v /= 1024;
                    power += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
                format!("{v}{suffix}")
            }
            _ => decimal(&p, Format::DecimalSI),
        },
        f => decimal(&p, f),
    }
}

/// Canonical form of a JSON quantity (string or number); `None` when absent.
pub fn canonical_value(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(canonical(s)),
        serde_json::Value::Number(n) => Some(canonical(&n.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn canonical_forms() {
        let cases = [
            ("0", "0"),
            ("0Gi", "0"),
            ("1", "1"),
            ("100", "100"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("2000", "2k"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("100m", "100m"),
            ("1000m", "1"),
            ("250m", "250m"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Ki", "512"),
            ("1Ki", "1Ki"),
            ("1500Ki", "1500Ki"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("12e2", "1200"),
            ("5G", "5G"),
            ("1000M", "1G"),
            ("0.1n", "1n"),
            ("-1", "-1"),
            ("-1500m", "-1500m"),
            ("nonsense", "nonsense"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input), want, "{input}");
        }
    }
}
