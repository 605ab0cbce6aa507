//! Cron schedule parsing as CronJob validation needs it (robfig/cron `ParseStandard`):
//! five fields, ranges, steps, lists, month/day names and the `@hourly`-style descriptors.

/// Why a schedule does not parse; the text mirrors robfig/cron's errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not five space-separated fields.
    #[error("expected exactly 5 fields, found {found}: [{fields}]")]
    FieldCount { found: usize, fields: String },
    /// A descriptor such as `@fortnightly` that cron does not know.
    #[error("unrecognized descriptor: {0}")]
    Descriptor(String),
    /// A field that does not parse or is out of range.
    #[error("{0}")]
    Field(String),
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const FIELDS: [Bounds; 5] = [
    Bounds {
        min: 0,
        max: 59,
        names: &[],
    },
    Bounds {
        min: 0,
        max: 23,
        names: &[],
    },
    Bounds {
        min: 1,
        max: 31,
        names: &[],
    },
    Bounds {
        min: 1,
        max: 12,
        names: MONTHS,
    },
    Bounds {
        min: 0,
        max: 6,
        names: DAYS,
    },
];

fn parse_value(s: &str, b: &Bounds) -> Result<u32, CronError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + b.min);
    }
    s.parse::<u32>().map_err(|_| {
        CronError::Field(format!(
            "failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax"
        ))
    })
}

fn parse_field(field: &str, b: &Bounds) -> Result<(), CronError> {
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (r, Some(st)),
            None => (part, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (b.min, b.max)
        } else if let Some((a, z)) = range.split_once('-') {
            (parse_value(a, b)?, parse_value(z, b)?)
        } else {
            let v = parse_value(range, b)?;
            (v, if step.is_some() { b.max } else { v })
        };
        if lo < b.min {
            return Err(CronError::Field(format!(
                "beginning of range ({lo}) below minimum ({}): {part}",
                b.min
            )));
        }
        if hi > b.max {
            return Err(CronError::Field(format!(
                "end of range ({hi}) above maximum ({}): {part}",
                b.max
            )));
        }
        if lo > hi {
            return Err(CronError::Field(format!(
                "beginning of range ({lo}) beyond end of range ({hi}): {part}"
            )));
        }
        if let Some(st) = step {
            let n: u32 = st.parse().map_err(|_| {
                CronError::Field(format!(
                    "failed to parse int from {st}: strconv.Atoi: parsing \"{st}\": invalid syntax"
                ))
            })?;
            if n == 0 {
                return Err(CronError::Field(format!(
                    "step of range should be a positive number: {part}"
                )));
            }
        }
    }
    Ok(())
}

/// Parses a standard five-field cron spec or descriptor.
pub fn parse_schedule(spec: &str) -> Result<(), CronError> {
    let spec = spec.trim();
    if let Some(d) = spec.strip_prefix('@') {
        return match d {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ if d.starts_with("every ") && !d[6..].trim().is_empty() => Ok(()),
            _ => Err(CronError::Descriptor(spec.to_string())),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(CronError::FieldCount {
            found: fields.len(),
            fields: fields.join(" "),
        });
    }
    for (f, b) in fields.iter().zip(FIELDS.iter()) {
        parse_field(f, b)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        for ok in [
            "*/5 * * * *",
            "0 0 * * *",
            "@hourly",
            "@every 1h",
            "0 9-17 * jan-mar mon-fri",
            "5,10 1 1 1 0",
            "0 0 ? * *",
        ] {
            assert!(parse_schedule(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "@fortnightly",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
        ] {
            assert!(parse_schedule(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_schedule("foo").unwrap_err().to_string(),
            "expected exactly 5 fields, found 1: [foo]"
        );
    }
}
