//! robfig/cron's `Next`: walk month → day → hour → minute → second in the schedule's zone,
//! building wall times with Go's `time.Date` rules (a wall time in a DST gap or overlap gets
//! the offset Go picks), so runs in a spring-forward gap are skipped and runs in a fall-back
//! overlap happen twice, as they do in Kubernetes.

use super::{Kind, Schedule, Spec, Zone, STAR};
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};

impl Schedule {
    /// The first activation strictly after `t`; None when there is none within five years
    /// (robfig's zero time, e.g. `0 0 30 2 *`).
    pub fn next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.kind {
            Kind::Every(secs) => {
                Some(t + Duration::seconds(secs) - Duration::nanoseconds(t.nanosecond() as i64))
            }
            Kind::Spec(s) => match self.zone {
                Zone::Utc => next_in(&s, t, &Utc),
                Zone::Local => next_in(&s, t, &chrono::Local),
                Zone::Named(tz) => next_in(&s, t, &tz),
            },
        }
    }
}

/// Go's `time.Date` in `tz`: out-of-range months, days and clock values normalise, and the
/// offset is the one in force at the wall time read as UTC, corrected once if the instant it
/// gives lies outside that offset's period.
fn date<T: TimeZone>(tz: &T, y: i32, m: i64, d: i64, h: i64, mi: i64, s: i64) -> DateTime<T> {
    let months = y as i64 * 12 + (m - 1);
    let first = NaiveDate::from_ymd_opt(
        months.div_euclid(12) as i32,
        months.rem_euclid(12) as u32 + 1,
        1,
    )
    .unwrap_or(NaiveDate::MAX);
    let local: NaiveDateTime = (first + Duration::days(d - 1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        + Duration::seconds(h * 3600 + mi * 60 + s);
    let off1 = tz.offset_from_utc_datetime(&local).fix().local_minus_utc() as i64;
    let off = if off1 == 0 {
        0
    } else {
        let utc = local - Duration::seconds(off1);
        tz.offset_from_utc_datetime(&utc).fix().local_minus_utc() as i64
    };
    tz.from_utc_datetime(&(local - Duration::seconds(off)))
}

/// Go's `t.AddDate(0, months, days)`.
fn add_date<T: TimeZone>(tz: &T, t: &DateTime<T>, months: i64, days: i64) -> DateTime<T> {
    date(
        tz,
        t.year(),
        t.month() as i64 + months,
        t.day() as i64 + days,
        t.hour() as i64,
        t.minute() as i64,
        t.second() as i64,
    )
}

/// Go's `t.Truncate(d)` for whole seconds (absolute time, not wall time).
fn truncate<T: TimeZone>(tz: &T, t: &DateTime<T>, secs: i64) -> DateTime<T> {
    let ts = t.timestamp();
    tz.timestamp_opt(ts - ts.rem_euclid(secs), 0).unwrap()
}

fn day_matches<T: TimeZone>(s: &Spec, t: &DateTime<T>) -> bool {
    let dom = s.dom & (1 << t.day()) != 0;
    let dow = s.dow & (1 << t.weekday().num_days_from_sunday()) != 0;
    if s.dom & STAR != 0 || s.dow & STAR != 0 {
        dom && dow
    } else {
        dom || dow
    }
}

fn next_in<T: TimeZone>(s: &Spec, t: DateTime<Utc>, tz: &T) -> Option<DateTime<Utc>> {
    let t0 = t.with_timezone(tz);
    // The earliest candidate is the upcoming whole second.
    let mut t = t0.clone() + Duration::seconds(1) - Duration::nanoseconds(t0.nanosecond() as i64);
    let mut added = false;
    let year_limit = t.year() + 5;
    'wrap: loop {
        if t.year() > year_limit {
            return None;
        }
        while s.month & (1 << t.month()) == 0 {
            if !added {
                added = true;
                t = date(tz, t.year(), t.month() as i64, 1, 0, 0, 0);
            }
            t = add_date(tz, &t, 1, 0);
            if t.month() == 1 {
                continue 'wrap;
            }
        }
        while !day_matches(s, &t) {
            if !added {
                added = true;
                t = date(tz, t.year(), t.month() as i64, t.day() as i64, 0, 0, 0);
            }
            t = add_date(tz, &t, 0, 1);
            // Midnight may not exist (DST at 00:00): snap back to the day's start.
            let h = t.hour() as i64;
            if h != 0 {
                t = if h > 12 {
                    t + Duration::hours(24 - h)
                } else {
                    t - Duration::hours(h)
                };
            }
            if t.day() == 1 {
                continue 'wrap;
            }
        }
        while s.hour & (1 << t.hour()) == 0 {
            if !added {
                added = true;
                t = date(
                    tz,
                    t.year(),
                    t.month() as i64,
                    t.day() as i64,
                    t.hour() as i64,
                    0,
                    0,
                );
            }
            t += Duration::hours(1);
            if t.hour() == 0 {
                continue 'wrap;
            }
        }
        while s.minute & (1 << t.minute()) == 0 {
            if !added {
                added = true;
                t = truncate(tz, &t, 60);
            }
            t += Duration::minutes(1);
            if t.minute() == 0 {
                continue 'wrap;
            }
        }
        while s.second & (1 << t.second()) == 0 {
            if !added {
                added = true;
                t = truncate(tz, &t, 1);
            }
            t += Duration::seconds(1);
            if t.second() == 0 {
                continue 'wrap;
            }
        }
        return Some(t.with_timezone(&Utc));
    }
}
