use super::*;
use chrono::{DateTime, Utc};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn utc(spec: &str) -> Schedule {
    let mut s = parse_standard(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    if s.zone == Zone::Local {
        s.zone = Zone::Utc;
    }
    s
}

/// The next `n` activations after `from`, as RFC 3339 UTC.
fn nexts(spec: &str, from: &str, n: usize) -> Vec<String> {
    let s = utc(spec);
    let mut t = at(from);
    let mut out = Vec::new();
    for _ in 0..n {
        match s.next(t) {
            Some(x) => {
                out.push(x.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                t = x;
            }
            None => {
                out.push("none".into());
                break;
            }
        }
    }
    out
}

#[test]
fn parse_errors_match_robfig() {
    let cases: &[(&str, &str)] = &[
        ("", "empty spec string"),
        ("foo", "expected exactly 5 fields, found 1: [foo]"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        (
            "* * * * * *",
            "expected exactly 5 fields, found 6: [* * * * * *]",
        ),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* 24 * * *", "end of range (24) above maximum (23): 24"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * 13 *", "end of range (13) above maximum (12): 13"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        (
            "5-1 * * * *",
            "beginning of range (5) beyond end of range (1): 5-1",
        ),
        (
            "*/0 * * * *",
            "step of range should be a positive number: */0",
        ),
        (
            "a * * * *",
            "failed to parse int from a: strconv.Atoi: parsing \"a\": invalid syntax",
        ),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("1/2/3 * * * *", "too many slashes: 1/2/3"),
        (
            "* * * foo *",
            "failed to parse int from foo: strconv.Atoi: parsing \"foo\": invalid syntax",
        ),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        ("@Hourly", "unrecognized descriptor: @Hourly"),
        (
            "@every 1x",
            "failed to parse duration @every 1x: time: unknown unit \"x\" in duration \"1x\"",
        ),
        (
            "@every 5",
            "failed to parse duration @every 5: time: missing unit in duration \"5\"",
        ),
        (
            "TZ=Mars/Olympus 0 * * * *",
            "provided bad location Mars/Olympus: unknown time zone Mars/Olympus",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(
            parse_standard(spec).map(|_| ()).unwrap_err().to_string(),
            *want,
            "{spec}"
        );
    }
}

#[test]
fn next_activations() {
    // (spec, from, the next few activations)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "* * * * *",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z"],
        ),
        // A fraction of a second past a match still moves to the next minute.
        (
            "* * * * *",
            "2024-01-01T00:00:59.5Z",
            &["2024-01-01T00:01:00Z"],
        ),
        (
            "*/15 * * * *",
            "2024-01-01T00:07:00Z",
            &[
                "2024-01-01T00:15:00Z",
                "2024-01-01T00:30:00Z",
                "2024-01-01T00:45:00Z",
                "2024-01-01T01:00:00Z",
            ],
        ),
        // N/step is N-max/step.
        (
            "50/5 * * * *",
            "2024-01-01T00:00:00Z",
            &[
                "2024-01-01T00:50:00Z",
                "2024-01-01T00:55:00Z",
                "2024-01-01T01:50:00Z",
            ],
        ),
        (
            "5,10-12 3 * * *",
            "2024-01-01T03:06:00Z",
            &[
                "2024-01-01T03:10:00Z",
                "2024-01-01T03:11:00Z",
                "2024-01-01T03:12:00Z",
                "2024-01-02T03:05:00Z",
            ],
        ),
        (
            "0 9 * JAN-Mar MON-FRI",
            "2024-03-28T10:00:00Z",
            &["2024-03-29T09:00:00Z", "2025-01-01T09:00:00Z"],
        ),
        (
            "0 9 * jan-mar mon-fri",
            "2024-03-28T10:00:00Z",
            &["2024-03-29T09:00:00Z", "2025-01-01T09:00:00Z"],
        ),
        (
            "0 0 ? * *",
            "2024-01-01T00:00:00Z",
            &["2024-01-02T00:00:00Z"],
        ),
        // Day of month and day of week both restricted: either matches (the 13th or a Friday).
        (
            "0 0 13 * 5",
            "2024-09-01T00:00:00Z",
            &[
                "2024-09-06T00:00:00Z",
                "2024-09-13T00:00:00Z",
                "2024-09-20T00:00:00Z",
                "2024-09-27T00:00:00Z",
                "2024-10-04T00:00:00Z",
                "2024-10-11T00:00:00Z",
                "2024-10-13T00:00:00Z",
            ],
        ),
        // A star day of month: only the weekday counts (Mondays).
        (
            "0 0 * * 1",
            "2024-09-01T00:00:00Z",
            &["2024-09-02T00:00:00Z", "2024-09-09T00:00:00Z"],
        ),
        // 1-31 is not a star: OR with Monday gives every day.
        (
            "0 0 1-31 * 1",
            "2024-09-01T00:00:00Z",
            &["2024-09-02T00:00:00Z", "2024-09-03T00:00:00Z"],
        ),
        // */2 is not a star either (robfig drops the star bit for steps > 1).
        (
            "0 0 */2 * 1",
            "2024-09-01T00:00:00Z",
            &[
                "2024-09-02T00:00:00Z",
                "2024-09-03T00:00:00Z",
                "2024-09-05T00:00:00Z",
            ],
        ),
        (
            "0 0 29 2 *",
            "2024-03-01T00:00:00Z",
            &["2028-02-29T00:00:00Z"],
        ),
        // Never: February 30th.
        ("0 0 30 2 *", "2024-01-01T00:00:00Z", &["none"]),
        ("@yearly", "2024-06-01T00:00:00Z", &["2025-01-01T00:00:00Z"]),
        (
            "@annually",
            "2024-06-01T00:00:00Z",
            &["2025-01-01T00:00:00Z"],
        ),
        (
            "@monthly",
            "2024-06-15T00:00:00Z",
            &["2024-07-01T00:00:00Z"],
        ),
        // Sundays at midnight.
        ("@weekly", "2024-09-02T00:00:00Z", &["2024-09-08T00:00:00Z"]),
        ("@daily", "2024-09-02T10:00:00Z", &["2024-09-03T00:00:00Z"]),
        (
            "@midnight",
            "2024-09-02T10:00:00Z",
            &["2024-09-03T00:00:00Z"],
        ),
        (
            "@hourly",
            "2024-09-02T10:00:00Z",
            &["2024-09-02T11:00:00Z", "2024-09-02T12:00:00Z"],
        ),
        (
            "@every 90s",
            "2024-09-02T10:00:00.5Z",
            &["2024-09-02T10:01:30Z", "2024-09-02T10:03:00Z"],
        ),
        (
            "@every 1.5h",
            "2024-09-02T10:00:00Z",
            &["2024-09-02T11:30:00Z"],
        ),
        // Below a second: one second.
        (
            "@every 10ms",
            "2024-09-02T10:00:00Z",
            &["2024-09-02T10:00:01Z"],
        ),
    ];
    for (spec, from, want) in cases {
        let got = nexts(spec, from, want.len());
        assert_eq!(got, *want, "{spec} from {from}");
    }
}

#[test]
fn time_zones_and_dst() {
    // (spec, from, next activations)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "TZ=Asia/Tokyo 0 9 * * *",
            "2024-01-01T00:00:00Z",
            &["2024-01-02T00:00:00Z"],
        ),
        (
            "CRON_TZ=Asia/Kolkata 0 9 * * *",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T03:30:00Z"],
        ),
        (
            "TZ=UTC 0 9 * * *",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T09:00:00Z"],
        ),
        // New York springs forward at 02:00 on 2021-03-14: 02:30 does not exist that day
        // and robfig skips it.
        (
            "TZ=America/New_York 30 2 * * *",
            "2021-03-13T08:00:00Z",
            &["2021-03-15T06:30:00Z"],
        ),
        // And falls back at 02:00 EDT on 2021-11-07: 01:30 happens twice, both run.
        (
            "TZ=America/New_York 30 1 * * *",
            "2021-11-07T04:00:00Z",
            &[
                "2021-11-07T05:30:00Z",
                "2021-11-07T06:30:00Z",
                "2021-11-08T06:30:00Z",
            ],
        ),
        // Hourly across the spring gap: 01:00 EST, then 03:00 EDT.
        (
            "TZ=America/New_York 0 * * * *",
            "2021-03-14T05:30:00Z",
            &[
                "2021-03-14T06:00:00Z",
                "2021-03-14T07:00:00Z",
                "2021-03-14T08:00:00Z",
            ],
        ),
        // Europe/Berlin springs forward at 02:00 CET on 2024-03-31.
        (
            "TZ=Europe/Berlin 30 2 * * *",
            "2024-03-30T12:00:00Z",
            &["2024-04-01T00:30:00Z"],
        ),
        // Daily at midnight in a zone whose DST starts at midnight (Santiago, 2024-09-08:
        // 00:00 → 01:00): the day's first hour is 01:00, no 00:00 run that day.
        (
            "TZ=America/Santiago 0 0 * * *",
            "2024-09-06T12:00:00Z",
            &["2024-09-07T04:00:00Z", "2024-09-09T03:00:00Z"],
        ),
        // Only on that missing midnight: the day loop lands on 23:00 the day before, snaps
        // to 01:00 -03, and no hour of the day matches; the next Sep 8 (2025) has a midnight.
        (
            "TZ=America/Santiago 0 0 8 9 *",
            "2024-09-01T12:00:00Z",
            &["2025-09-08T03:00:00Z"],
        ),
    ];
    for (spec, from, want) in cases {
        let got = nexts(spec, from, want.len());
        assert_eq!(got, *want, "{spec} from {from}");
    }
}

#[test]
fn locations_and_format() {
    assert_eq!(load_location(""), Ok(Zone::Utc));
    assert_eq!(load_location("UTC"), Ok(Zone::Utc));
    assert_eq!(load_location("Local"), Ok(Zone::Local));
    assert_eq!(
        load_location("Europe/Berlin"),
        Ok(Zone::Named(chrono_tz::Tz::Europe__Berlin))
    );
    assert_eq!(
        load_location("europe/berlin").unwrap_err(),
        "unknown time zone europe/berlin"
    );
    assert_eq!(
        load_location("../etc/passwd").unwrap_err(),
        "time: invalid location name"
    );
    assert_eq!(parse_standard("* * * * *").unwrap().zone, Zone::Local);
    assert_eq!(
        format_schedule("0 * * * *", Some("Asia/Tokyo")),
        "TZ=Asia/Tokyo 0 * * * *"
    );
    assert_eq!(format_schedule("0 * * * *", None), "0 * * * *");
    assert_eq!(
        format_schedule("TZ=UTC 0 * * * *", Some("Asia/Tokyo")),
        "TZ=UTC 0 * * * *"
    );
    assert_eq!(format_schedule("0 * * * *", Some("Nope/No")), "0 * * * *");
}

#[test]
fn go_durations() {
    let cases: &[(&str, Result<i64, &str>)] = &[
        ("0", Ok(0)),
        ("1s", Ok(1_000_000_000)),
        ("1h30m", Ok(5_400_000_000_000)),
        ("1.5s", Ok(1_500_000_000)),
        (".5m", Ok(30_000_000_000)),
        ("-2m", Ok(-120_000_000_000)),
        ("300ms", Ok(300_000_000)),
        ("2µs", Ok(2_000)),
        ("", Err("time: invalid duration \"\"")),
        ("s", Err("time: invalid duration \"s\"")),
        ("1", Err("time: missing unit in duration \"1\"")),
        ("1d", Err("time: unknown unit \"d\" in duration \"1d\"")),
        ("9999999999h", Err("time: invalid duration \"9999999999h\"")),
    ];
    for (s, want) in cases {
        assert_eq!(parse_go_duration(s), want.map_err(|e| e.to_string()), "{s}");
    }
}
