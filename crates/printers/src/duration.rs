//! `k8s.io/apimachinery/pkg/util/duration.HumanDuration`: the AGE-column format ("5s", "2m3s", "3h5m", "2d3h", "4y10d").

use chrono::Duration;

/// Formats a duration exactly like apimachinery's `duration.HumanDuration`.
///
/// Up to 1s in the future counts as "0s"; further in the future is `<invalid>`.
pub fn human_duration(d: Duration) -> String {
    // Go: int(d.Seconds()) truncates towards zero.
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(i64, &str)] = &[
            (-5_000, "<invalid>"),
            (-2_000, "<invalid>"),
            (-1_999, "0s"),
            (-1_000, "0s"),
            (-500, "0s"),
            (0, "0s"),
            (5_000, "5s"),
            (119_999, "119s"),
            (120_000, "2m"),
            (123_000, "2m3s"),
            (599_000, "9m59s"),
            (600_000, "10m"),
            (179 * 60_000 + 59_000, "179m"),
            (180 * 60_000, "3h"),
            (185 * 60_000, "3h5m"),
            (7 * 3_600_000 + 59 * 60_000, "7h59m"),
            (8 * 3_600_000, "8h"),
            (47 * 3_600_000, "47h"),
            (48 * 3_600_000, "2d"),
            (51 * 3_600_000, "2d3h"),
            (7 * 86_400_000 + 23 * 3_600_000, "7d23h"),
            (8 * 86_400_000, "8d"),
            (729 * 86_400_000, "729d"),
            (730 * 86_400_000, "2y"),
            ((4 * 365 + 10) * 86_400_000, "4y10d"),
            ((8 * 365) * 86_400_000, "8y"),
            ((20 * 365 + 100) * 86_400_000, "20y"),
        ];
        for (ms, want) in cases {
            assert_eq!(human_duration(Duration::milliseconds(*ms)), *want, "{ms}ms");
        }
    }
}
