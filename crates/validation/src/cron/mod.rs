//! Cron schedules as Kubernetes reads them (robfig/cron v3 `ParseStandard`, which both
//! CronJob validation and the CronJob controller use): five fields (minute hour dom month
//! dow) with ranges, steps, lists, `?`, month and day names, the `@yearly`-style descriptors
//! and `@every <duration>`, an optional `TZ=`/`CRON_TZ=` prefix; and [`Schedule::next`], the
//! first activation after an instant, computed in the schedule's time zone as robfig does
//! (so DST gaps skip a run and DST overlaps run twice, as in Kubernetes).

mod duration;
mod next;
#[cfg(test)]
mod tests;

pub use duration::parse_go_duration;

/// Why a schedule does not parse; the text mirrors robfig/cron's errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(pub String);

fn err<T>(msg: String) -> Result<T, CronError> {
    Err(CronError(msg))
}

/// A location as Go's `time.LoadLocation` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Utc,
    /// The process's own zone (`Local`, or a schedule without TZ/timeZone).
    Local,
    Named(chrono_tz::Tz),
}

/// Go's `time.LoadLocation(name)`: "" and "UTC" are UTC, "Local" the process's zone, else an
/// IANA name (case-sensitive, as zoneinfo file names are).
pub fn load_location(name: &str) -> Result<Zone, String> {
    match name {
        "" | "UTC" => return Ok(Zone::Utc),
        "Local" => return Ok(Zone::Local),
        _ => {}
    }
    if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
        return Err("time: invalid location name".into());
    }
    name.parse::<chrono_tz::Tz>()
        .map(Zone::Named)
        .map_err(|_| format!("unknown time zone {name}"))
}

/// Bit set for `*` and `?` (robfig's starBit): a star dom or dow field makes the day rule AND.
pub(crate) const STAR: u64 = 1 << 63;

/// A parsed five-field spec (plus seconds, always 0), one bit per allowed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub second: u64,
    pub minute: u64,
    pub hour: u64,
    pub dom: u64,
    pub month: u64,
    pub dow: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Spec(Spec),
    /// `@every <duration>`: a constant delay in whole seconds (at least 1).
    Every(i64),
}

/// A parsed schedule and the zone it is evaluated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub kind: Kind,
    pub zone: Zone,
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

/// minute, hour, day of month, month, day of week.
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

/// Go's strconv.Atoi with robfig's negative check.
fn must_parse_int(s: &str) -> Result<u32, CronError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return err(format!(
            "failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax"
        ));
    }
    let n: i64 = match s.parse() {
        Ok(n) => n,
        Err(_) => {
            return err(format!(
                "failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": value out of range"
            ))
        }
    };
    if n < 0 {
        return err(format!("negative number ({n}) not allowed: {s}"));
    }
    // Larger than any bound: reported as above the maximum by the range check.
    Ok(n.min(u32::MAX as i64) as u32)
}

fn parse_int_or_name(s: &str, b: &Bounds) -> Result<u32, CronError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + if b.names == MONTHS { 1 } else { 0 });
    }
    must_parse_int(s)
}

fn bits(lo: u32, hi: u32, step: u32) -> u64 {
    (lo..=hi)
        .step_by(step as usize)
        .fold(0, |acc, v| acc | 1 << v)
}

/// One comma-separated part: `*`, `?`, `N`, `N-M`, any of them `/step`.
fn get_range(expr: &str, b: &Bounds) -> Result<u64, CronError> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let mut extra = 0;
    let (start, mut end);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        start = b.min;
        end = b.max;
        extra = STAR;
    } else {
        start = parse_int_or_name(low_and_high[0], b)?;
        end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], b)?,
            _ => return err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            // "N/step" means "N-max/step".
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn get_field(field: &str, b: &Bounds) -> Result<u64, CronError> {
    field
        .split(',')
        .filter(|p| !p.is_empty())
        .try_fold(0, |acc, part| Ok(acc | get_range(part, b)?))
}

fn all(b: &Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR
}

fn descriptor(d: &str) -> Result<Kind, CronError> {
    let [_, hours, dom, months, dow] = &FIELDS;
    let first = |b: &Bounds| 1u64 << b.min;
    let spec = |hour, dom, month, dow| {
        Kind::Spec(Spec {
            second: 1,
            minute: 1,
            hour,
            dom,
            month,
            dow,
        })
    };
    Ok(match d {
        "@yearly" | "@annually" => spec(first(hours), first(dom), first(months), all(dow)),
        "@monthly" => spec(first(hours), first(dom), all(months), all(dow)),
        "@weekly" => spec(first(hours), all(dom), all(months), first(dow)),
        "@daily" | "@midnight" => spec(first(hours), all(dom), all(months), all(dow)),
        "@hourly" => spec(all(hours), all(dom), all(months), all(dow)),
        _ => match d.strip_prefix("@every ") {
            Some(rest) => {
                let nanos = parse_go_duration(rest)
                    .map_err(|e| CronError(format!("failed to parse duration {d}: {e}")))?;
                Kind::Every((nanos / 1_000_000_000).max(1))
            }
            None => return err(format!("unrecognized descriptor: {d}")),
        },
    })
}

/// robfig/cron's `ParseStandard`; a schedule without a `TZ=` prefix is in `Local`.
pub fn parse_standard(spec: &str) -> Result<Schedule, CronError> {
    if spec.is_empty() {
        return err("empty spec string".into());
    }
    let mut zone = Zone::Local;
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let Some(i) = spec.find(' ') else {
            return err(format!(
                "expected exactly 5 fields, found 0: [] (in {spec})"
            ));
        };
        let name = &spec[eq + 1..i];
        zone = load_location(name)
            .map_err(|e| CronError(format!("provided bad location {name}: {e}")))?;
        spec = spec[i..].trim();
    }
    if spec.starts_with('@') {
        return Ok(Schedule {
            kind: descriptor(spec)?,
            zone,
        });
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let mut v = [0u64; 5];
    for (i, (f, b)) in fields.iter().zip(FIELDS.iter()).enumerate() {
        v[i] = get_field(f, b)?;
    }
    Ok(Schedule {
        kind: Kind::Spec(Spec {
            second: 1,
            minute: v[0],
            hour: v[1],
            dom: v[2],
            month: v[3],
            dow: v[4],
        }),
        zone,
    })
}

/// Whether `spec` parses (CronJob validation).
pub fn parse_schedule(spec: &str) -> Result<(), CronError> {
    parse_standard(spec).map(|_| ())
}

/// The schedule the CronJob controller evaluates (kube's `formatSchedule`): a schedule with
/// TZ in it is used as written, else `timeZone` (when it loads) becomes a `TZ=` prefix.
pub fn format_schedule(schedule: &str, time_zone: Option<&str>) -> String {
    match time_zone {
        Some(tz) if !schedule.contains("TZ") && load_location(tz).is_ok() => {
            format!("TZ={tz} {schedule}")
        }
        _ => schedule.to_string(),
    }
}
