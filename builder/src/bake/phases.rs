//! The long phases of a build (downloads, mmdebstrap, filesystems, conversions): shown while
//! they run (an indicatif spinner with the elapsed time on a terminal, a start and an end line
//! with the elapsed time otherwise, as in CI logs) and timed for the build report.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

/// One finished phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Its name (`download`, `disk: Debian root (mmdebstrap)`, `convert vhd`, ...).
    pub name: String,
    /// How long it took, in seconds.
    pub seconds: f64,
}

/// The phases of one build, in the order they finished; shared by parallel phases.
pub struct Phases {
    done: Mutex<Vec<Phase>>,
    /// Spinners on a terminal; `None` writes plain lines.
    bars: Option<MultiProgress>,
    /// Neither spinners nor lines (tests).
    quiet: bool,
}

impl Default for Phases {
    fn default() -> Self {
        Self::new()
    }
}

impl Phases {
    /// Spinners when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Phases {
            done: Mutex::new(Vec::new()),
            bars,
            quiet: false,
        }
    }

    /// Records timings only.
    pub fn quiet() -> Self {
        Phases {
            done: Mutex::new(Vec::new()),
            bars: None,
            quiet: true,
        }
    }

    /// Runs `f` as the phase `name`: shown, timed, its error given `name` as context.
    pub fn run<T>(&self, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        let start = Instant::now();
        let bar = self.start(name);
        let value = f();
        let elapsed = start.elapsed();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let value = value.with_context(|| name.to_owned())?;
        self.record(name, elapsed);
        if !self.quiet {
            let line = || tracing::info!("{name}: done in {:.1}s", elapsed.as_secs_f64());
            match &self.bars {
                // Printed with the other spinners (parallel phases) out of the way.
                Some(bars) => bars.suspend(line),
                None => line(),
            }
        }
        Ok(value)
    }

    /// Records a phase timed elsewhere.
    pub fn record(&self, name: &str, elapsed: Duration) {
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Phase {
                name: name.to_owned(),
                seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            });
    }

    /// The phases so far (and forgets them).
    pub fn take(&self) -> Vec<Phase> {
        std::mem::take(&mut *self.done.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn start(&self, name: &str) -> Option<ProgressBar> {
        if self.quiet {
            return None;
        }
        let Some(bars) = &self.bars else {
            tracing::info!("{name}: starting");
            return None;
        };
        let bar = bars.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(bar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_timed_in_order_and_errors_name_the_phase() {
        let phases = Phases::quiet();
        phases.run("one", || Ok(())).unwrap();
        let e = phases
            .run("two", || -> anyhow::Result<()> { anyhow::bail!("broken") })
            .unwrap_err();
        assert_eq!(format!("{e:#}"), "two: broken");
        phases.record("three", Duration::from_millis(1500));
        let done = phases.take();
        let names: Vec<&str> = done.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["one", "three"]);
        assert_eq!(done[1].seconds, 1.5);
        assert!(phases.take().is_empty());
    }
}
