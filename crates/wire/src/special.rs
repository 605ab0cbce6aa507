//! JSON forms of the Kubernetes messages that are not plain objects: times, Go durations.

use chrono::{DateTime, SecondsFormat, Utc};

/// Seconds of Go's zero time (0001-01-01T00:00:00Z), which marshals to JSON null.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// meta.v1.Time / MicroTime → RFC 3339 ("2024-01-02T03:04:05Z", with 6 fractional digits when `micro`).
/// None for Go's zero time or an out-of-range value (JSON null: the field is left out).
pub(crate) fn format_time(seconds: i64, nanos: i32, micro: bool) -> Option<String> {
    if seconds == GO_ZERO_TIME && nanos == 0 {
        return None;
    }
    let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
    let t = DateTime::<Utc>::from_timestamp(seconds, if micro { nanos / 1000 * 1000 } else { 0 })?;
    Some(t.to_rfc3339_opts(
        if micro {
            SecondsFormat::Micros
        } else {
            SecondsFormat::Secs
        },
        true,
    ))
}

/// RFC 3339 → (seconds, nanos).
pub(crate) fn parse_time(s: &str) -> Option<(i64, i32)> {
    let t = DateTime::parse_from_rfc3339(s).ok()?;
    Some((
        t.timestamp(),
        i32::try_from(t.timestamp_subsec_nanos()).ok()?,
    ))
}

/// The fraction of `v / 10^prec` as ".ddd" without trailing zeros (empty when zero), and the integer part.
fn frac(v: u64, prec: u32) -> (String, u64) {
    let p = 10u64.pow(prec);
    let digits = v % p;
    if digits == 0 {
        return (String::new(), v / p);
    }
    let s = format!("{:0width$}", digits, width = prec as usize);
    (format!(".{}", s.trim_end_matches('0')), v / p)
}

/// Nanoseconds → Go's `time.Duration.String()` ("1h2m3.5s", "1.5ms", "0s").
pub(crate) fn format_duration(ns: i64) -> String {
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let body = if u == 0 {
        "0s".to_string()
    } else if u < 1_000_000_000 {
        let (prec, unit) = match u {
            u if u < 1_000 => (0, "ns"),
            u if u < 1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (f, int) = frac(u, prec);
        format!("{int}{f}{unit}")
    } else {
        let (f, secs) = frac(u, 9);
        let (s, mins) = (secs % 60, secs / 60);
        let (m, hours) = (mins % 60, mins / 60);
        if hours > 0 {
            format!("{hours}h{m}m{s}{f}s")
        } else if mins > 0 {
            format!("{m}m{s}{f}s")
        } else {
            format!("{s}{f}s")
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// Go duration string ("1h30m", "1.5s", "300ms", "-2m") → nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += num * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let cases = [
            (1_704_164_645, 0, false, Some("2024-01-02T03:04:05Z")),
            (
                1_704_164_645,
                123_456_789,
                false,
                Some("2024-01-02T03:04:05Z"),
            ),
            (
                1_704_164_645,
                123_456_789,
                true,
                Some("2024-01-02T03:04:05.123456Z"),
            ),
            (1_704_164_645, 0, true, Some("2024-01-02T03:04:05.000000Z")),
            (0, 0, false, Some("1970-01-01T00:00:00Z")),
            (GO_ZERO_TIME, 0, false, None),
            (1, -1, false, None),
            (i64::MAX, 0, false, None),
        ];
        for (s, n, micro, want) in cases {
            assert_eq!(format_time(s, n, micro).as_deref(), want, "{s} {n} {micro}");
        }
        assert_eq!(parse_time("2024-01-02T03:04:05Z"), Some((1_704_164_645, 0)));
        assert_eq!(
            parse_time("2024-01-02T03:04:05.123456Z"),
            Some((1_704_164_645, 123_456_000))
        );
        assert_eq!(
            parse_time("2024-01-02T04:04:05+01:00"),
            Some((1_704_164_645, 0))
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn durations() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-2_000_000_000, "-2s"),
        ];
        for (ns, s) in cases {
            assert_eq!(format_duration(ns), s);
            assert_eq!(parse_duration(s), Some(ns), "{s}");
        }
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("1x"), None);
    }
}
