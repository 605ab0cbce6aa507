//! Latency percentiles (nearest-rank) over the samples of one measurement.

use std::time::Duration;

/// Up to this many samples, the JSON output lists them all.
pub const RAW_SAMPLES: usize = 50;

#[derive(Default, Clone, Debug)]
pub struct Summary {
    sorted: Vec<Duration>,
}

impl Summary {
    pub fn of(mut samples: Vec<Duration>) -> Summary {
        samples.sort();
        Summary { sorted: samples }
    }

    /// Nearest-rank percentile, `p` in (0, 1]; zero without samples.
    fn pct(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.sorted.len() as f64 * p).ceil() as usize).clamp(1, self.sorted.len()) - 1;
        self.sorted[i]
    }

    pub fn n(&self) -> usize {
        self.sorted.len()
    }

    pub fn p50_ms(&self) -> f64 {
        self.pct(0.50).as_secs_f64() * 1e3
    }

    pub fn p99_ms(&self) -> f64 {
        self.pct(0.99).as_secs_f64() * 1e3
    }

    /// "p50 / p99" in ms, for a table cell.
    pub fn cell(&self) -> String {
        format!("{:.2} / {:.2}", self.p50_ms(), self.p99_ms())
    }

    pub fn short(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms (n={})",
            self.p50_ms(),
            self.p99_ms(),
            self.n()
        )
    }

    /// n, p50, p99, and with few samples (at most [`RAW_SAMPLES`]) every sample, sorted.
    pub fn json(&self) -> serde_json::Value {
        let mut v =
            serde_json::json!({"n": self.n(), "p50_ms": self.p50_ms(), "p99_ms": self.p99_ms()});
        if self.n() <= RAW_SAMPLES {
            let ms: Vec<f64> = self.sorted.iter().map(|d| d.as_secs_f64() * 1e3).collect();
            v["samples_ms"] = ms.into();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let ms = |v: &[u64]| v.iter().copied().map(Duration::from_millis).collect();
        // (samples, p50, p99)
        let cases: [(Vec<Duration>, f64, f64); 5] = [
            (
                (1..=100).rev().map(Duration::from_millis).collect(),
                50.0,
                99.0,
            ),
            (ms(&[7]), 7.0, 7.0),
            (ms(&[3, 1, 2]), 2.0, 3.0),
            (ms(&[1, 1, 1, 1000]), 1.0, 1000.0),
            (Vec::new(), 0.0, 0.0),
        ];
        for (samples, p50, p99) in cases {
            let s = Summary::of(samples.clone());
            assert_eq!((s.p50_ms(), s.p99_ms()), (p50, p99), "{samples:?}");
            assert_eq!(s.n(), samples.len());
        }
    }
}
