//! Benchmark figures as Tessera reports them: a measured value, the
//! baseline it is compared with (measured in the same run, on the same
//! machine, under the same load), their ratio, the target and a verdict.
//!
//! Each crate measures its own figures in a `bench` module
//! ([`wallet_open`] here, `tessera_gate::bench`, `tessera_p2p::bench`,
//! `tessera_registry::bench`); `tessera bench` runs them all and prints one
//! table, and each crate's `cargo bench` entry point calls the same
//! functions, so there is one implementation of each measurement
//! (docs/benchmarks.md).
//!
//! A target is judged on the value (`≤ 30 ms`) or on the ratio
//! (`≤ 1.2×`), as [`Target::on`] says. The verdict is only worth something
//! on a release build at full [`Scale`]; the printer marks the rest.

pub mod wallet_open;

use std::fmt;
use std::time::Duration;

/// How much to measure: [`Scale::Quick`] is the seconds-long version CI
/// runs (smaller samples, fewer rounds); [`Scale::Full`] is the one whose
/// figures are the targets' figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// A short run that still measures every figure.
    Quick,
    /// The documented run.
    Full,
}

/// The unit of a measured quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds.
    Millis,
    /// Items per second.
    PerSecond,
    /// Megabytes (10⁶ bytes).
    Megabytes,
    /// Bytes.
    Bytes,
}

impl Unit {
    /// The unit's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::PerSecond => "/s",
            Unit::Megabytes => "MB",
            Unit::Bytes => "B",
        }
    }
}

/// A number with its unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    /// The number.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
}

impl Quantity {
    /// A duration in milliseconds.
    pub fn millis(d: Duration) -> Self {
        Self { value: d.as_secs_f64() * 1e3, unit: Unit::Millis }
    }
    /// A rate in items per second.
    pub fn per_second(items: usize, d: Duration) -> Self {
        Self { value: items as f64 / d.as_secs_f64().max(f64::MIN_POSITIVE), unit: Unit::PerSecond }
    }
    /// A size in bytes.
    pub fn bytes(n: usize) -> Self {
        Self { value: n as f64, unit: Unit::Bytes }
    }
    /// A size in megabytes.
    pub fn megabytes(bytes: f64) -> Self {
        Self { value: bytes / 1e6, unit: Unit::Megabytes }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit {
            Unit::Millis if self.value < 1.0 => write!(f, "{:.3} ms", self.value),
            Unit::Millis => write!(f, "{:.2} ms", self.value),
            Unit::PerSecond => write!(f, "{:.0} /s", self.value),
            Unit::Megabytes => write!(f, "{:.2} MB", self.value),
            Unit::Bytes => write!(f, "{:.0} B", self.value),
        }
    }
}

/// Whether a target is an upper or a lower bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The figure must not exceed the limit.
    AtMost,
    /// The figure must reach the limit.
    AtLeast,
}

/// What a target is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The measured value, in the target's unit.
    Value,
    /// The ratio of the value to its baseline.
    Ratio,
}

/// A figure's target (issue 7, docs/benchmarks.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Upper or lower bound.
    pub bound: Bound,
    /// The limit, in `unit` when judged on the value, plain when on the ratio.
    pub limit: f64,
    /// The value's unit (ignored for a ratio).
    pub unit: Unit,
    /// Value or ratio.
    pub on: Subject,
}

impl Target {
    /// At most `limit` of `unit`.
    pub fn at_most(limit: f64, unit: Unit) -> Self {
        Self { bound: Bound::AtMost, limit, unit, on: Subject::Value }
    }
    /// At least `limit` of `unit`.
    pub fn at_least(limit: f64, unit: Unit) -> Self {
        Self { bound: Bound::AtLeast, limit, unit, on: Subject::Value }
    }
    /// A ratio to the baseline of at most `limit`.
    pub fn ratio_at_most(limit: f64) -> Self {
        Self { bound: Bound::AtMost, limit, unit: Unit::Millis, on: Subject::Ratio }
    }

    fn met_by(&self, x: f64) -> bool {
        match self.bound {
            Bound::AtMost => x <= self.limit,
            Bound::AtLeast => x >= self.limit,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.bound {
            Bound::AtMost => "≤",
            Bound::AtLeast => "≥",
        };
        match self.on {
            Subject::Ratio => write!(f, "{op} {}×", self.limit),
            Subject::Value => write!(f, "{op} {} {}", self.limit, self.unit.symbol()),
        }
    }
}

/// What a figure is compared with: measured in the same run.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// What the baseline is ("raw Ed25519 checks").
    pub label: String,
    /// Its measured value.
    pub value: Quantity,
}

/// The verdict on a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The target is met.
    Met,
    /// The target is missed.
    Missed,
    /// The figure has no target; it is reported for context.
    Reported,
    /// The figure could not be measured in this run.
    NotMeasured,
}

impl Verdict {
    /// `met`, `missed`, `reported` or `not measured`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "missed",
            Verdict::Reported => "reported",
            Verdict::NotMeasured => "not measured",
        }
    }
}

/// One row of a benchmark table.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The measured value; `None` when it was not measured (see `note`).
    pub value: Option<Quantity>,
    /// The baseline measured in the same run.
    pub baseline: Option<Baseline>,
    /// Value over baseline, or a ratio measured more robustly (paired
    /// rounds) when the figure says so.
    pub ratio: Option<f64>,
    /// The target, when the figure has one.
    pub target: Option<Target>,
    /// Sample size, conditions, or why the figure was not measured.
    pub note: Option<String>,
}

impl Figure {
    /// A measured figure without baseline or target yet.
    pub fn new(name: impl Into<String>, value: Quantity) -> Self {
        Self { name: name.into(), value: Some(value), baseline: None, ratio: None, target: None, note: None }
    }

    /// A figure this run could not measure, and why.
    pub fn not_measured(name: impl Into<String>, target: Option<Target>, why: impl Into<String>) -> Self {
        Self { name: name.into(), value: None, baseline: None, ratio: None, target, note: Some(why.into()) }
    }

    /// Sets the baseline; the ratio becomes value / baseline unless one was
    /// set with [`Figure::with_ratio`].
    pub fn against(mut self, label: impl Into<String>, baseline: Quantity) -> Self {
        if self.ratio.is_none()
            && let Some(v) = self.value
            && v.unit == baseline.unit
            && baseline.value > 0.0
        {
            self.ratio = Some(v.value / baseline.value);
        }
        self.baseline = Some(Baseline { label: label.into(), value: baseline });
        self
    }

    /// Sets the ratio explicitly (a paired median, not value / baseline).
    pub fn with_ratio(mut self, ratio: f64) -> Self {
        self.ratio = Some(ratio);
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// Adds a note (sample size, conditions).
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Met, missed, reported or not measured.
    pub fn verdict(&self) -> Verdict {
        let Some(value) = self.value else { return Verdict::NotMeasured };
        let Some(target) = self.target else { return Verdict::Reported };
        let judged = match target.on {
            Subject::Value => Some(value.value),
            Subject::Ratio => self.ratio,
        };
        match judged {
            Some(x) if target.met_by(x) => Verdict::Met,
            Some(_) => Verdict::Missed,
            None => Verdict::NotMeasured,
        }
    }
}

/// The figures as a Markdown table: figure, value, baseline, ratio, target,
/// verdict. When `judged` is false (a debug build or a quick run) the
/// verdicts are printed in parentheses: indicative, not the targets' figures.
pub fn markdown(figures: &[Figure], judged: bool) -> String {
    let mut out = String::from(
        "| figure | value | limit / baseline (same run) | ratio | target | verdict |\n|---|---|---|---|---|---|\n",
    );
    for f in figures {
        let value = match (&f.value, &f.note) {
            (Some(v), _) => v.to_string(),
            (None, Some(why)) => format!("not measured: {why}"),
            (None, None) => "not measured".to_owned(),
        };
        let baseline = f.baseline.as_ref().map_or(String::new(), |b| format!("{}: {}", b.label, b.value));
        let ratio = f.ratio.map_or(String::new(), |r| format!("{r:.2}×"));
        let target = f.target.map_or(String::new(), |t| t.to_string());
        let verdict = match f.verdict() {
            v @ (Verdict::Met | Verdict::Missed) if !judged => format!("({})", v.as_str()),
            Verdict::Missed => "**missed**".to_owned(),
            v => v.as_str().to_owned(),
        };
        let name = match (&f.note, &f.value) {
            (Some(note), Some(_)) => format!("{} ({note})", f.name),
            _ => f.name.clone(),
        };
        out.push_str(&format!("| {name} | {value} | {baseline} | {ratio} | {target} | {verdict} |\n"));
    }
    out
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), or "unknown".
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The `p`-quantile (0.0–1.0) of sorted samples, nearest rank; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The median of a list of ratios; NaN when empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A directory of its own under the system's temporary directory, removed
/// (with everything in it) when dropped.
#[derive(Debug)]
pub struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    /// Creates a fresh, empty directory named after `purpose`.
    pub fn new(purpose: &str) -> Result<Self, BenchError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name =
            format!("tessera-bench-{purpose}-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).bench("creating a scratch directory")?;
        Ok(Self(path))
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A benchmark that could not run to the end: what failed, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

/// Turns any displayable error into a [`BenchError`] with a context.
pub trait BenchContext<T> {
    /// `Err(e)` becomes `BenchError("{what}: {e}")`.
    fn bench(self, what: &str) -> Result<T, BenchError>;
}

impl<T, E: fmt::Display> BenchContext<T> for Result<T, E> {
    fn bench(self, what: &str) -> Result<T, BenchError> {
        self.map_err(|e| BenchError(format!("{what}: {e}")))
    }
}

impl<T> BenchContext<T> for Option<T> {
    fn bench(self, what: &str) -> Result<T, BenchError> {
        self.ok_or_else(|| BenchError(what.to_owned()))
    }
}

/// Fails the benchmark with `what` unless `ok`.
pub fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), BenchError> {
    if ok { Ok(()) } else { Err(BenchError(what())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_target_and_its_subject() {
        let ms = |v| Quantity { value: v, unit: Unit::Millis };
        let f = Figure::new("t", ms(90.0)).against("b", ms(60.0)).target(Target::at_most(120.0, Unit::Millis));
        assert_eq!(f.verdict(), Verdict::Met);
        assert_eq!(f.ratio, Some(1.5));
        let f = f.target(Target::ratio_at_most(1.2));
        assert_eq!(f.verdict(), Verdict::Missed);
        let rate = Quantity { value: 5_000.0, unit: Unit::PerSecond };
        assert_eq!(
            Figure::new("r", rate).target(Target::at_least(20_000.0, Unit::PerSecond)).verdict(),
            Verdict::Missed
        );
        assert_eq!(Figure::new("r", rate).verdict(), Verdict::Reported);
        assert_eq!(Figure::not_measured("pg", None, "no URL").verdict(), Verdict::NotMeasured);
        let paired = Figure::new("p", ms(1.0)).with_ratio(0.9).against("raw", ms(2.0));
        assert_eq!(paired.ratio, Some(0.9), "an explicit ratio is kept");
    }

    #[test]
    fn markdown_marks_unjudged_verdicts_and_unmeasured_rows() {
        let ms = |v| Quantity { value: v, unit: Unit::Millis };
        let rows = [
            Figure::new("a", ms(200.0)).target(Target::at_most(120.0, Unit::Millis)),
            Figure::not_measured("pg", None, "no PostgreSQL URL"),
        ];
        let judged = markdown(&rows, true);
        assert!(judged.contains("| **missed** |"), "{judged}");
        assert!(judged.contains("not measured: no PostgreSQL URL"), "{judged}");
        assert!(markdown(&rows, false).contains("| (missed) |"));
    }

    #[test]
    fn percentile_and_median_of_small_samples() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&s, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&s, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
