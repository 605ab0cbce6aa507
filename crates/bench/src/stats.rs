//! Latency percentiles.

use std::time::Duration;

#[derive(Default, Clone, Debug)]
pub struct Summary {
    sorted: Vec<Duration>,
}

impl Summary {
    pub fn of(samples: &mut [Duration]) -> Summary {
        samples.sort();
        Summary {
            sorted: samples.to_vec(),
        }
    }

    fn pct(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.sorted.len() as f64 * p).ceil() as usize).clamp(1, self.sorted.len()) - 1;
        self.sorted[i]
    }

    pub fn p50_ms(&self) -> f64 {
        self.pct(0.50).as_secs_f64() * 1e3
    }

    pub fn p99_ms(&self) -> f64 {
        self.pct(0.99).as_secs_f64() * 1e3
    }

    pub fn p50_p99(&self) -> String {
        format!("{:.2} / {:.2}", self.p50_ms(), self.p99_ms())
    }

    pub fn short(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms (n={})",
            self.p50_ms(),
            self.p99_ms(),
            self.sorted.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let sum = Summary::of(&mut s);
        assert_eq!(sum.p50_ms(), 50.0);
        assert_eq!(sum.p99_ms(), 99.0);
        assert_eq!(Summary::default().p99_ms(), 0.0);
    }
}
