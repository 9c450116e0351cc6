//! The arithmetic of SLOs, without I/O: burn rates, the error budget spent
//! over the period, and when it runs out (docs/alerts.md, "SLO burn-rate
//! alerts"). Shared by the agent's checks, its mail and `hawkeye slo`.
//!
//! - The error budget is the share of events that may be bad: `1 -
//!   objective/100` (0.001 for 99.9 %).
//! - A window's burn rate is its error ratio (bad / all) over the budget:
//!   1 spends the budget exactly over the period, 14.4 spends a 30-day
//!   budget in 50 hours. A window without events burns nothing (0).
//! - Budget consumed: the period's error ratio over the budget, in percent
//!   (it passes 100 when the SLO is missed); remaining is 100 - consumed.
//! - Exhausted in: the budget remaining, spent at the long window's burn
//!   rate (`remaining × period / burn`).

use std::time::Duration;

use hawkeye_protocol::duration::format_duration_short;

use crate::monitors::{Slo, Trigger};

/// Events counted over one window: bad ones (`metric`) and all (`ratio_of`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counts {
    pub bad: f64,
    pub all: f64,
}

impl Counts {
    /// The counts of two counter windows as read (no data is 0 events).
    pub fn read(bad: Option<f64>, all: Option<f64>) -> Counts {
        Counts {
            bad: bad.unwrap_or(0.0),
            all: all.unwrap_or(0.0),
        }
    }

    /// bad / all; `None` without events.
    pub fn error_ratio(&self) -> Option<f64> {
        (self.all > 0.0).then(|| self.bad / self.all)
    }

    /// The burn rate of these counts against `slo`: 0 without events.
    /// Rounded to 9 decimals, so that a rate written in decimal (14.4) is
    /// reached by the counts that make it exactly (1.44 % of 99.9 %), not
    /// missed by a binary rounding error.
    pub fn burn_rate(&self, slo: &Slo) -> f64 {
        let rate = self.error_ratio().map_or(0.0, |r| r / slo.budget());
        (rate * 1e9).round() / 1e9
    }
}

/// The error budget over the period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Good events over the period, in percent; `None` without events.
    pub sli: Option<f64>,
    /// The share of the budget spent, in percent (past 100: the SLO is missed).
    pub consumed: f64,
    /// 100 - consumed (negative once overspent).
    pub remaining: f64,
}

impl Budget {
    pub fn of(period: Counts, slo: &Slo) -> Budget {
        let consumed = period.burn_rate(slo) * 100.0;
        Budget {
            sli: period.error_ratio().map(|r| (1.0 - r) * 100.0),
            consumed,
            remaining: 100.0 - consumed,
        }
    }

    /// When the budget runs out at `burn` (a burn rate).
    pub fn exhaustion(&self, burn: f64, period: Duration) -> Exhaustion {
        if self.remaining <= 0.0 {
            Exhaustion::Exhausted
        } else if burn.is_nan() || burn <= 0.0 {
            Exhaustion::Never
        } else {
            let secs = self.remaining / 100.0 * period.as_secs_f64() / burn;
            Exhaustion::In(Duration::from_secs_f64(secs.min(u32::MAX as f64)))
        }
    }
}

/// When the error budget runs out at a burn rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhaustion {
    /// Nothing is left.
    Exhausted,
    /// At this rate, after this long.
    In(Duration),
    /// Nothing burns.
    Never,
}

impl std::fmt::Display for Exhaustion {
    /// `exhausted`, `in 2d 3h`, `never at this rate`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exhaustion::Exhausted => f.write_str("exhausted"),
            Exhaustion::In(d) => write!(f, "in {}", format_duration_short(*d)),
            Exhaustion::Never => f.write_str("never at this rate"),
        }
    }
}

/// What one burn-rate trigger's check found: the SLO, the trigger's two
/// windows' counts and the period's. What its mail states.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnCheck {
    pub slo: Slo,
    pub long_window: Duration,
    pub short_window: Duration,
    pub long: Counts,
    pub short: Counts,
    pub period: Counts,
}

impl BurnCheck {
    pub fn long_burn(&self) -> f64 {
        self.long.burn_rate(&self.slo)
    }

    pub fn short_burn(&self) -> f64 {
        self.short.burn_rate(&self.slo)
    }

    pub fn budget(&self) -> Budget {
        Budget::of(self.period, &self.slo)
    }

    /// When the budget runs out at the long window's burn rate.
    pub fn exhaustion(&self) -> Exhaustion {
        self.budget().exhaustion(self.long_burn(), self.slo.period)
    }

    /// Whether both windows burn at `rate` or more (the trigger's rate, or
    /// its recovery threshold while it fires).
    pub fn breaches(&self, rate: f64) -> bool {
        self.long_burn() >= rate && self.short_burn() >= rate
    }

    /// The check of `trigger` (a burn-rate trigger) given the counts of
    /// each window read, `None` when it is not one.
    pub fn of(
        slo: &Slo,
        trigger: &Trigger,
        window: impl Fn(Duration) -> Counts,
        period: Counts,
    ) -> Option<BurnCheck> {
        let burn = trigger.burn?;
        Some(BurnCheck {
            slo: *slo,
            long_window: burn.long,
            short_window: burn.short,
            long: window(burn.long),
            short: window(burn.short),
            period,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn slo(objective: f64) -> Slo {
        Slo {
            objective,
            period: 30 * DAY,
        }
    }

    fn c(bad: f64, all: f64) -> Counts {
        Counts { bad, all }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn burn_rate_is_the_error_ratio_over_the_budget() {
        let s = slo(99.9);
        assert!(close(s.budget(), 0.001));
        // 3 % errors against a 0.1 % budget: 30×.
        assert!(close(c(30.0, 1000.0).burn_rate(&s), 30.0));
        // 0.05 %: half the budget's pace.
        assert!(close(c(5.0, 10_000.0).burn_rate(&s), 0.5));
        assert_eq!(
            Counts::default().burn_rate(&s),
            0.0,
            "no events burn nothing"
        );
        assert_eq!(Counts::read(None, Some(10.0)), c(0.0, 10.0));
        assert!(close(c(1.0, 100.0).burn_rate(&slo(99.0)), 1.0));
    }

    #[test]
    fn budget_consumed_and_remaining_over_the_period() {
        let s = slo(99.9);
        let b = Budget::of(c(25.0, 100_000.0), &s);
        assert!(close(b.consumed, 25.0), "{b:?}");
        assert!(close(b.remaining, 75.0), "{b:?}");
        assert!(close(b.sli.unwrap(), 99.975), "{b:?}");
        let over = Budget::of(c(30.0, 1000.0), &s);
        assert!(close(over.consumed, 3000.0) && close(over.remaining, -2900.0));
        let none = Budget::of(Counts::default(), &s);
        assert_eq!(
            (none.sli, none.consumed, none.remaining),
            (None, 0.0, 100.0)
        );
    }

    #[test]
    fn exhaustion_at_the_current_burn_rate() {
        let s = slo(99.9);
        let full = Budget::of(Counts::default(), &s);
        // A whole 30-day budget at 14.4× lasts 50 hours.
        assert_eq!(
            full.exhaustion(14.4, s.period),
            Exhaustion::In(Duration::from_secs(50 * 3600))
        );
        assert_eq!(full.exhaustion(14.4, s.period).to_string(), "in 2d 2h");
        // Three quarters left at 1×: 22.5 days.
        let b = Budget::of(c(25.0, 100_000.0), &s);
        assert_eq!(b.exhaustion(1.0, s.period).to_string(), "in 22d 12h");
        assert_eq!(b.exhaustion(0.0, s.period), Exhaustion::Never);
        let spent = Budget::of(c(30.0, 1000.0), &s);
        assert_eq!(spent.exhaustion(30.0, s.period).to_string(), "exhausted");
    }

    #[test]
    fn a_burn_check_breaches_only_when_both_windows_burn() {
        let s = slo(99.9);
        let check = |long: f64, short: f64| BurnCheck {
            slo: s,
            long_window: Duration::from_secs(3600),
            short_window: Duration::from_secs(300),
            long: c(long, 1000.0),
            short: c(short, 1000.0),
            period: Counts::default(),
        };
        // 14.4× is 1.44 % errors.
        assert!(check(14.4, 14.4).breaches(14.4), "at the rate");
        assert!(check(30.0, 20.0).breaches(14.4));
        assert!(
            !check(30.0, 1.0).breaches(14.4),
            "recovered: the short window"
        );
        assert!(!check(1.0, 30.0).breaches(14.4), "a blip: the long window");
    }
}
