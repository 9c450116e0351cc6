//! Recurring maintenance windows (`maintenance:` in a monitor): weekdays
//! and a time-of-day range in a time zone, during which the monitor's
//! triggers keep their state but mail nobody (`docs/alerts.md`). A range
//! whose end is not after its start crosses midnight (`22:00`–`02:00`); it
//! belongs to the day it starts on. Zones come from jiff's bundled IANA
//! database, so daylight saving time is followed.

use std::fmt;
use std::str::FromStr;

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    fn from_jiff(d: jiff::civil::Weekday) -> Weekday {
        Weekday::ALL[d.to_monday_zero_offset() as usize]
    }

    fn previous(self) -> Weekday {
        Weekday::ALL[(self as usize + 6) % 7]
    }
}

impl FromStr for Weekday {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let names = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        names
            .iter()
            .position(|n| lower.len() >= 3 && n.starts_with(&lower))
            .map(|i| Weekday::ALL[i])
            .ok_or_else(|| {
                format!("unknown day {s:?} (expected mon, tue, wed, thu, fri, sat or sun)")
            })
    }
}

/// Minutes since midnight, written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(pub u16);

impl FromStr for TimeOfDay {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid time {s:?} (expected HH:MM, 00:00 to 24:00)");
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if m >= 60 || h > 24 || (h == 24 && m > 0) {
            return Err(bad());
        }
        Ok(TimeOfDay(h * 60 + m))
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceWindow {
    /// Days it starts on; empty: every day.
    pub days: Vec<Weekday>,
    pub from: TimeOfDay,
    pub to: TimeOfDay,
    /// IANA name (`Europe/Paris`), `UTC` by default.
    pub time_zone: String,
    zone: TimeZone,
}

impl MaintenanceWindow {
    pub fn new(
        days: Vec<Weekday>,
        from: TimeOfDay,
        to: TimeOfDay,
        time_zone: &str,
    ) -> Result<MaintenanceWindow, String> {
        let zone = TimeZone::get(time_zone).map_err(|_| {
            format!(
                "unknown time zone {time_zone:?} (use an IANA name such as Europe/Paris, or UTC)"
            )
        })?;
        Ok(MaintenanceWindow {
            days,
            from,
            to,
            time_zone: time_zone.to_string(),
            zone,
        })
    }

    /// Whether `now_ms` (unix milliseconds) falls inside the window.
    pub fn contains(&self, now_ms: u64) -> bool {
        let Ok(ts) = Timestamp::from_millisecond(now_ms.min(i64::MAX as u64) as i64) else {
            return false;
        };
        let local = ts.to_zoned(self.zone.clone());
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        let today = Weekday::from_jiff(local.weekday());
        let starts_on = |day: Weekday| self.days.is_empty() || self.days.contains(&day);
        if self.from < self.to {
            starts_on(today) && minute >= self.from.0 && minute < self.to.0
        } else {
            // Crosses midnight: the evening part belongs to today, the
            // morning part to the day before.
            (starts_on(today) && minute >= self.from.0)
                || (starts_on(today.previous()) && minute < self.to.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a civil time in a zone.
    fn at(zone: &str, civil: &str) -> u64 {
        let dt: jiff::civil::DateTime = civil.parse().unwrap();
        dt.to_zoned(TimeZone::get(zone).unwrap())
            .unwrap()
            .timestamp()
            .as_millisecond() as u64
    }

    #[test]
    fn weekday_and_time_of_day_in_a_zone() {
        let w = MaintenanceWindow::new(
            vec![Weekday::Sat, Weekday::Sun],
            "02:00".parse().unwrap(),
            "04:00".parse().unwrap(),
            "Europe/Paris",
        )
        .unwrap();
        // 2024-06-01 is a Saturday; Paris is UTC+2 in summer.
        assert!(w.contains(at("Europe/Paris", "2024-06-01T02:30")));
        assert!(w.contains(at("UTC", "2024-06-01T00:30")));
        assert!(!w.contains(at("UTC", "2024-06-01T02:30")), "04:30 in Paris");
        assert!(
            !w.contains(at("Europe/Paris", "2024-06-03T02:30")),
            "Monday"
        );
        assert!(
            !w.contains(at("Europe/Paris", "2024-06-01T04:00")),
            "end excluded"
        );
    }

    #[test]
    fn a_window_across_midnight_belongs_to_its_first_day() {
        let w = MaintenanceWindow::new(
            vec![Weekday::Fri],
            "22:00".parse().unwrap(),
            "02:00".parse().unwrap(),
            "UTC",
        )
        .unwrap();
        // 2024-06-07 is a Friday.
        assert!(w.contains(at("UTC", "2024-06-07T23:00")));
        assert!(
            w.contains(at("UTC", "2024-06-08T01:59")),
            "Saturday morning"
        );
        assert!(!w.contains(at("UTC", "2024-06-07T01:00")), "Friday morning");
        assert!(
            !w.contains(at("UTC", "2024-06-08T22:30")),
            "Saturday evening"
        );
    }

    #[test]
    fn bad_values_are_explained() {
        assert!("25:00".parse::<TimeOfDay>().is_err());
        assert!("12:60".parse::<TimeOfDay>().is_err());
        assert_eq!("24:00".parse::<TimeOfDay>().unwrap().0, 1440);
        assert_eq!("sat".parse::<Weekday>().unwrap(), Weekday::Sat);
        assert_eq!("Sunday".parse::<Weekday>().unwrap(), Weekday::Sun);
        assert!("someday".parse::<Weekday>().is_err());
        let e = MaintenanceWindow::new(vec![], TimeOfDay(0), TimeOfDay(60), "Mars/Olympus")
            .unwrap_err();
        assert!(e.contains("unknown time zone"), "{e}");
    }
}
