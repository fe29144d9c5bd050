//! The one retry policy of both kiln programs: attempts bounded by a total deadline and/or a
//! count, exponential backoff from a first pause up to a cap, every pause jittered so that many
//! nodes (or downloads) failing together spread out. The caller says per failure whether it is
//! worth another try ([`Attempt::Retry`]) or final ([`Attempt::Fail`]); "wait until ready" loops
//! use [`Policy::poll`], where every failure is worth another try.
//!
//! Blocking callers use [`Policy::run`]; async callers step a [`Schedule`] and sleep with their
//! runtime. The clock is injectable ([`Clock`]) so tests need no real sleeps.

use std::convert::Infallible;
use std::time::{Duration, Instant};

/// When to try again and when to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// No attempt starts at or after this instant; a pause that would end there (less
    /// [`Policy::min_attempt`]) gives up instead (`None`: no deadline).
    pub deadline: Option<Instant>,
    /// Attempts in all, the first included (`None`: as many as the deadline allows).
    pub attempts: Option<u32>,
    /// The pause after the first failure (before jitter).
    pub first: Duration,
    /// The longest pause (before jitter).
    pub cap: Duration,
    /// Each pause is the one before times this (1: a fixed interval).
    pub factor: u32,
    /// No attempt starts with less time than this left before the deadline: it could only time
    /// out, and its "timeout" would hide the real error of the attempts before.
    pub min_attempt: Duration,
}

impl Policy {
    /// At most `attempts` attempts (at least 1), pauses doubling from `first` without a cap.
    pub fn attempts(attempts: u32, first: Duration) -> Self {
        Policy {
            deadline: None,
            attempts: Some(attempts.max(1)),
            first,
            cap: Duration::MAX,
            factor: 2,
            min_attempt: Duration::ZERO,
        }
    }

    /// Attempts until `deadline`, pauses doubling from `first` up to `cap`.
    pub fn until(deadline: Instant, first: Duration, cap: Duration) -> Self {
        Policy {
            deadline: Some(deadline),
            attempts: None,
            first,
            cap,
            factor: 2,
            min_attempt: Duration::ZERO,
        }
    }

    /// A poll every `interval` (jittered) until `deadline`.
    pub fn every(interval: Duration, deadline: Instant) -> Self {
        Policy {
            factor: 1,
            ..Policy::until(deadline, interval, interval)
        }
    }

    /// The same policy with pauses multiplied by `factor` each time.
    pub fn factor(self, factor: u32) -> Self {
        Policy { factor, ..self }
    }

    /// The same policy, giving up when less than `min_attempt` would be left for an attempt.
    pub fn min_attempt(self, min_attempt: Duration) -> Self {
        Policy {
            min_attempt,
            ..self
        }
    }

    /// The pauses of one run of this policy, its first attempt counted as made: for callers that
    /// sleep themselves (async runtimes).
    pub fn schedule(&self) -> Schedule {
        Schedule {
            policy: *self,
            attempts: 1,
            backoff: self.first,
        }
    }

    /// Runs `op(attempt)` (attempt counts from 1) until it succeeds, fails finally, or the policy
    /// gives up; `on_retry(failure, pause)` is told before each pause (for logging).
    pub fn run<T, R, F>(
        &self,
        op: impl FnMut(u32) -> Result<T, Attempt<R, F>>,
        on_retry: impl FnMut(&R, Duration),
    ) -> Result<T, Error<R, F>> {
        self.run_on(&SystemClock, op, on_retry)
    }

    /// [`Policy::run`] on `clock`.
    pub fn run_on<T, R, F>(
        &self,
        clock: &dyn Clock,
        mut op: impl FnMut(u32) -> Result<T, Attempt<R, F>>,
        mut on_retry: impl FnMut(&R, Duration),
    ) -> Result<T, Error<R, F>> {
        let mut schedule = self.schedule();
        loop {
            let attempt = schedule.attempts();
            let last = match op(attempt) {
                Ok(value) => return Ok(value),
                Err(Attempt::Fail(err)) => return Err(Error::Final(err)),
                Err(Attempt::Retry(err)) => err,
            };
            match schedule.next_pause(clock.now()) {
                Some(pause) => {
                    on_retry(&last, pause);
                    clock.sleep(pause);
                }
                None => {
                    return Err(Error::GaveUp {
                        attempts: attempt,
                        last,
                    })
                }
            }
        }
    }

    /// Waits until `probe(attempt)` succeeds: every failure is worth another try, so the run
    /// can only end in [`Error::GaveUp`].
    pub fn poll<T, E>(
        &self,
        mut probe: impl FnMut(u32) -> Result<T, E>,
        on_retry: impl FnMut(&E, Duration),
    ) -> Result<T, Error<E, Infallible>> {
        self.run(|n| probe(n).map_err(Attempt::Retry), on_retry)
    }
}

/// How one attempt failed: `R` says why a transient failure happened, `F` is a final error
/// (often the same type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<R, F = R> {
    /// Transient: worth another try.
    Retry(R),
    /// Final: retrying cannot help.
    Fail(F),
}

/// Why a run stopped without success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error<R, F = R> {
    /// An attempt failed finally.
    Final(F),
    /// The policy ran out of attempts or time; `last` is the last transient failure.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: R,
    },
}

impl<E> Error<E, E> {
    /// The failure inside, whichever way the run stopped.
    pub fn into_inner(self) -> E {
        match self {
            Error::Final(e) | Error::GaveUp { last: e, .. } => e,
        }
    }
}

/// The pauses of one run: ask [`Schedule::next_pause`] after each failed attempt.
#[derive(Debug, Clone)]
pub struct Schedule {
    policy: Policy,
    attempts: u32,
    backoff: Duration,
}

impl Schedule {
    /// After a failed attempt, at `now`: the pause before the next one, or `None` to give up
    /// (attempts used up, or the next attempt would start too close to the deadline).
    pub fn next_pause(&mut self, now: Instant) -> Option<Duration> {
        if self.policy.attempts.is_some_and(|max| self.attempts >= max) {
            return None;
        }
        let pause = jitter(self.backoff);
        if let Some(deadline) = self.policy.deadline {
            let start = now.checked_add(pause.saturating_add(self.policy.min_attempt))?;
            if start >= deadline {
                return None;
            }
        }
        self.backoff = self
            .backoff
            .saturating_mul(self.policy.factor)
            .min(self.policy.cap);
        self.attempts += 1;
        Some(pause)
    }

    /// The number of the current attempt (from 1): the first, plus one per pause handed out.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// A pause between half and all of `backoff`, so that many clients failing together spread out.
pub fn jitter(backoff: Duration) -> Duration {
    let half = backoff / 2;
    let span = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    let random = getrandom::u64().unwrap_or(0) % span.saturating_add(1);
    half + Duration::from_millis(random)
}

/// Time as the retry loop sees it.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
    /// Waits `pause`.
    fn sleep(&self, pause: Duration);
}

/// The real clock: [`Instant::now`] and [`std::thread::sleep`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, pause: Duration) {
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    /// A clock that only moves when slept on.
    struct FakeClock {
        now: Cell<Instant>,
        slept: RefCell<Vec<Duration>>,
    }

    impl FakeClock {
        fn new() -> Self {
            FakeClock {
                now: Cell::new(Instant::now()),
                slept: RefCell::default(),
            }
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.now.get()
        }
        fn sleep(&self, pause: Duration) {
            self.now.set(self.now.get() + pause);
            self.slept.borrow_mut().push(pause);
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn jitter_stays_within_half_and_full_backoff() {
        for _ in 0..100 {
            let j = jitter(400 * MS);
            assert!(j >= 200 * MS && j <= 400 * MS, "{j:?}");
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        assert!(jitter(Duration::MAX) >= Duration::MAX / 2);
    }

    #[test]
    fn attempts_are_bounded_and_pauses_grow_by_the_factor() {
        let clock = FakeClock::new();
        let mut seen = Vec::new();
        let err = Policy::attempts(3, 200 * MS)
            .factor(4)
            .run_on(
                &clock,
                |n| Err::<(), Attempt<u32>>(Attempt::Retry(n)),
                |e, _| seen.push(*e),
            )
            .unwrap_err();
        assert_eq!(
            err,
            Error::GaveUp {
                attempts: 3,
                last: 3
            }
        );
        assert_eq!(seen, [1, 2]);
        let slept = clock.slept.borrow();
        assert!(slept[0] >= 100 * MS && slept[0] <= 200 * MS, "{slept:?}");
        assert!(slept[1] >= 400 * MS && slept[1] <= 800 * MS, "{slept:?}");
    }

    #[test]
    fn final_failures_and_success_stop_at_once() {
        let clock = FakeClock::new();
        let policy = Policy::attempts(5, MS);
        let err = policy
            .run_on(
                &clock,
                |_| Err::<(), Attempt<&str>>(Attempt::Fail("no")),
                |_, _| {},
            )
            .unwrap_err();
        assert_eq!(err, Error::Final("no"));
        let ok = policy.run_on(
            &clock,
            |n| {
                if n < 3 {
                    Err(Attempt::<u32>::Retry(n))
                } else {
                    Ok(n)
                }
            },
            |_, _| {},
        );
        assert_eq!(ok, Ok(3));
        assert_eq!(clock.slept.borrow().len(), 2);
    }

    #[test]
    fn the_deadline_bounds_the_run_and_the_cap_the_pauses() {
        let clock = FakeClock::new();
        let start = clock.now();
        let policy = Policy::until(start + Duration::from_secs(60), 100 * MS, 5 * 1000 * MS)
            .min_attempt(100 * MS);
        let err = policy
            .run_on(
                &clock,
                |_| Err::<(), Attempt<()>>(Attempt::Retry(())),
                |_, _| {},
            )
            .unwrap_err();
        let Error::GaveUp { attempts, .. } = err else {
            panic!("{err:?}")
        };
        let slept = clock.slept.borrow();
        assert_eq!(attempts as usize, slept.len() + 1);
        assert!(slept.iter().all(|p| *p <= 5 * 1000 * MS), "{slept:?}");
        assert!(clock.now() + 100 * MS < start + Duration::from_secs(60));
        assert!(
            clock.now() > start + Duration::from_secs(50),
            "gave up early"
        );
    }

    #[test]
    fn polls_keep_their_interval() {
        let clock = FakeClock::new();
        let policy = Policy::every(200 * MS, clock.now() + Duration::from_secs(2));
        let mut tries = 0;
        let err = policy
            .run_on(
                &clock,
                |_| {
                    tries += 1;
                    Err::<(), Attempt<&str>>(Attempt::Retry("not yet"))
                },
                |_, _| {},
            )
            .unwrap_err();
        assert_eq!(err.into_inner(), "not yet");
        assert!(tries >= 10, "{tries}");
        assert!(clock.slept.borrow().iter().all(|p| *p <= 200 * MS));
    }

    #[test]
    fn an_async_caller_steps_the_schedule() {
        let start = Instant::now();
        let mut schedule = Policy::attempts(2, 10 * MS).schedule();
        assert!(schedule.next_pause(start).is_some());
        assert_eq!(schedule.next_pause(start), None);
        assert_eq!(schedule.attempts(), 2);
        let huge = Policy::until(start + Duration::from_secs(1), Duration::MAX, Duration::MAX)
            .min_attempt(Duration::MAX);
        assert_eq!(huge.schedule().next_pause(start), None);
    }
}
