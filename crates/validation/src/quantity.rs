//! A small Kubernetes `resource.Quantity` parser and comparator: enough to check that
//! quantities parse, are non-negative, and that requests do not exceed limits.

use std::cmp::Ordering;

/// The regular expression kube-apiserver names when a quantity does not parse.
pub const QUANTITY_FORMAT_MSG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Why a quantity string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string is not `<signed number><suffix>`.
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Format,
    /// The number does not fit (over 2^63-1 in magnitude).
    #[error("quantity is too large")]
    TooLarge,
}

/// A parsed quantity, held as nano-units (rounded up), which covers the full range
/// Kubernetes allows (|q| ≤ 2^63-1, three decimal places kept; nano keeps more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    nanos: i128,
}

const NANO: i128 = 1_000_000_000;

impl Quantity {
    /// Parses "500m", "1.5Gi", "2e3", "+1", "-0.5".
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        let s = s.trim();
        let (neg, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, suffix) = rest.split_at(num_end);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(QuantityError::Format);
        }
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        // value = digits * 10^(-frac_len) * multiplier
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Err(QuantityError::TooLarge);
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| QuantityError::Format)?
        };
        let (mul_num, exp10): (i128, i32) = match suffix {
            "" => (1, 0),
            "n" => (1, -9),
            "u" => (1, -6),
            "m" => (1, -3),
            "k" => (1, 3),
            "M" => (1, 6),
            "G" => (1, 9),
            "T" => (1, 12),
            "P" => (1, 15),
            "E" => (1, 18),
            "Ki" => (1 << 10, 0),
            "Mi" => (1 << 20, 0),
            "Gi" => (1 << 30, 0),
            "Ti" => (1 << 40, 0),
            "Pi" => (1 << 50, 0),
            "Ei" => (1 << 60, 0),
            _ => {
                let exp = suffix
                    .strip_prefix('e')
                    .or_else(|| suffix.strip_prefix('E'))
                    .ok_or(QuantityError::Format)?;
                let body = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if body.is_empty() || !body.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(QuantityError::Format);
                }
                let e: i32 = exp.parse().map_err(|_| QuantityError::TooLarge)?;
                (1, e)
            }
        };
        // nanos = mantissa * mul * 10^(exp10 + 9 - frac_len), rounded up.
        let scale = exp10 + 9 - frac_part.len() as i32;
        let base = mantissa
            .checked_mul(mul_num)
            .ok_or(QuantityError::TooLarge)?;
        let nanos = if scale >= 0 {
            if scale > 30 && base != 0 {
                return Err(QuantityError::TooLarge);
            }
            base.checked_mul(
                10i128
                    .checked_pow(scale as u32)
                    .ok_or(QuantityError::TooLarge)?,
            )
            .ok_or(QuantityError::TooLarge)?
        } else {
            let d = 10i128.checked_pow((-scale) as u32).unwrap_or(i128::MAX);
            (base + d - 1) / d
        };
        if nanos > (i64::MAX as i128) * NANO {
            return Err(QuantityError::TooLarge);
        }
        Ok(Quantity {
            nanos: if neg { -nanos } else { nanos },
        })
    }

    /// Whether the quantity is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// Compares two quantities.
    pub fn cmp_to(&self, other: &Quantity) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }

    /// The value in milli-units (rounded up), as Kubernetes' `MilliValue`.
    pub fn milli_value(&self) -> i128 {
        let d = NANO / 1000;
        if self.nanos >= 0 {
            (self.nanos + d - 1) / d
        } else {
            self.nanos / d
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases = [
            ("1", 1_000),
            ("500m", 500),
            ("0.5", 500),
            ("1.5", 1_500),
            ("1k", 1_000_000),
            ("1Ki", 1_024_000),
            ("128Mi", 134_217_728_000),
            ("1e3", 1_000_000),
            ("1E3", 1_000_000),
            ("-1", -1_000),
            ("+2", 2_000),
            ("0.1m", 1),
            ("1Gi", 1_073_741_824_000),
        ];
        for (s, milli) in cases {
            assert_eq!(Quantity::parse(s).unwrap().milli_value(), milli, "{s}");
        }
        for bad in ["", "abc", "1.2.3", "1X", "Mi", "1e", ".", "1 Mi"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
        assert!(Quantity::parse("1Ki").unwrap() > Quantity::parse("1k").unwrap());
        assert_eq!(
            Quantity::parse("1000m")
                .unwrap()
                .cmp_to(&Quantity::parse("1").unwrap()),
            Ordering::Equal
        );
        assert!(Quantity::parse("-1").unwrap().is_negative());
    }
}
