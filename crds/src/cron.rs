//! Cron schedules in the dialect Argo CD's sync windows use: `robfig/cron` v3 with the
//! parser options `Minute | Hour | Dom | Month | Dow` — exactly five fields, no seconds,
//! no `@daily`-style descriptors.
//!
//! Each field is a comma-separated list of `*` (or `?`), `N`, `N-M`, each optionally with
//! `/STEP` (`N/STEP` runs to the field's maximum); months and weekdays also take their
//! three-letter English names, case-insensitively. Weekdays are `0`–`6` (Sunday is `0`; `7`
//! is out of range). When both day-of-month and day-of-week are restricted a day matching
//! either fires; when either is `*`/`?` (without a step above 1) both must match.
//!
//! Why not the `cron` or `croner` crate: the first requires a seconds field, the second
//! accepts `L`, `W`, `#`, `7` for Sunday and optional seconds. A schedule Argo CD refuses
//! blocks every automated sync of the apps its window matches, so a more generous parser
//! would let syncs through that Argo CD holds. One deliberate difference: robfig's
//! `CRON_TZ=`/`TZ=` prefix is refused here (the window's `timeZone` says the same thing,
//! and Argo CD would shift such a schedule twice).
//!
//! Schedules are evaluated on civil (wall-clock) date-times: the time zone is the caller's
//! business ([`crate::sync_window`]).

use jiff::civil::{Date, DateTime, Time};

/// Why a schedule does not parse. Texts follow robfig/cron's where it has one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Nothing but white space.
    #[error("empty spec string")]
    Empty,
    /// `@daily`, `@every 1h` and friends.
    #[error("parser does not accept descriptors: {0}")]
    Descriptor(String),
    /// `CRON_TZ=Zone ...` or `TZ=Zone ...`.
    #[error("a CRON_TZ= or TZ= prefix is not supported: set the window's timeZone instead")]
    TimeZonePrefix,
    /// Not five fields.
    #[error("expected exactly 5 fields, found {found}: {spec}")]
    FieldCount {
        /// How many white-space separated fields there are.
        found: usize,
        /// The schedule.
        spec: String,
    },
    /// One field is malformed or out of range.
    #[error("{field} field {text:?}: {reason}")]
    Field {
        /// `minute`, `hour`, `day of month`, `month` or `day of week`.
        field: &'static str,
        /// The field as written.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One field's allowed values and names.
struct Bounds {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Bounds = Bounds {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
/// Names are listed from the field's minimum value on.
const MONTH: Bounds = Bounds {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: Bounds = Bounds {
    name: "day of week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// A field's values as bits, and whether it was written as `*`/`?` (which decides how
/// the two day fields combine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Field {
    bits: u64,
    star: bool,
}

impl Field {
    fn has(self, value: u32) -> bool {
        value < 64 && self.bits & (1 << value) != 0
    }

    fn parse(text: &str, bounds: &Bounds) -> Result<Field, CronError> {
        let mut field = Field {
            bits: 0,
            star: false,
        };
        for part in text.split(',') {
            let (bits, star) = range(part, bounds).map_err(|reason| CronError::Field {
                field: bounds.name,
                text: text.to_owned(),
                reason,
            })?;
            field.bits |= bits;
            field.star |= star;
        }
        Ok(field)
    }
}

/// One list element: `*`, `N`, `N-M`, with an optional `/STEP`.
fn range(part: &str, bounds: &Bounds) -> Result<(u64, bool), String> {
    let mut slash = part.split('/');
    let span = slash.next().unwrap_or_default();
    let step = slash.next();
    if slash.next().is_some() {
        return Err(format!("too many slashes: {part}"));
    }
    let ends: Vec<&str> = span.split('-').collect();
    let (start, mut end, mut star) = match ends.as_slice() {
        ["*" | "?"] => (bounds.min, bounds.max, true),
        [single] => {
            let v = value(single, bounds)?;
            (v, v, false)
        }
        [low, high] => (value(low, bounds)?, value(high, bounds)?, false),
        _ => return Err(format!("too many hyphens: {span}")),
    };
    let step = match step {
        None => 1,
        Some(text) => {
            let step = number(text)?;
            if ends.len() == 1 && !star {
                // `N/STEP` runs from N to the field's maximum.
                end = bounds.max;
            }
            if step > 1 {
                star = false;
            }
            step
        }
    };
    if start < bounds.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({})",
            bounds.min
        ));
    }
    if end > bounds.max {
        return Err(format!(
            "end of range ({end}) above maximum ({})",
            bounds.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end})"
        ));
    }
    if step == 0 {
        return Err("step of range should be a positive number".to_owned());
    }
    let bits = (start..=end)
        .step_by(usize::try_from(step).unwrap_or(usize::MAX))
        .fold(0u64, |bits, v| bits | (1 << v));
    Ok((bits, star))
}

/// A number or (for months and weekdays) a name.
fn value(text: &str, bounds: &Bounds) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    match bounds.names.iter().position(|n| *n == lower) {
        Some(i) => Ok(bounds.min + u32::try_from(i).unwrap_or(u32::MAX)),
        None => number(text),
    }
}

/// A non-negative decimal number (Go's `strconv.Atoi`: an optional sign, digits).
fn number(text: &str) -> Result<u32, String> {
    let n: i64 = text
        .parse()
        .map_err(|_| format!("failed to parse int from {text}"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {text}"));
    }
    // Anything above 63 is out of every field's range; say so with the number.
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// A parsed five-field schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minute: Field,
    hour: Field,
    day_of_month: Field,
    month: Field,
    day_of_week: Field,
}

/// How many years ahead [`Schedule::first_at_or_after`] looks (robfig's limit: a schedule
/// such as `0 0 30 2 *` never fires).
pub const SEARCH_YEARS: i16 = 5;

impl Schedule {
    /// Parses a schedule in Argo CD's dialect.
    pub fn parse(spec: &str) -> Result<Schedule, CronError> {
        let trimmed = spec.trim();
        if trimmed.is_empty() {
            return Err(CronError::Empty);
        }
        if trimmed.starts_with("CRON_TZ=") || trimmed.starts_with("TZ=") {
            return Err(CronError::TimeZonePrefix);
        }
        if trimmed.starts_with('@') {
            return Err(CronError::Descriptor(trimmed.to_owned()));
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields.as_slice() else {
            return Err(CronError::FieldCount {
                found: fields.len(),
                spec: spec.to_owned(),
            });
        };
        Ok(Schedule {
            minute: Field::parse(minute, &MINUTE)?,
            hour: Field::parse(hour, &HOUR)?,
            day_of_month: Field::parse(dom, &DAY_OF_MONTH)?,
            month: Field::parse(month, &MONTH)?,
            day_of_week: Field::parse(dow, &DAY_OF_WEEK)?,
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.day_of_month.has(u32::from(date.day().unsigned_abs()));
        let dow = self.day_of_week.has(u32::from(
            date.weekday().to_sunday_zero_offset().unsigned_abs(),
        ));
        if self.day_of_month.star || self.day_of_week.star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first firing minute at or after `start` (seconds are ignored: a start inside
    /// a minute is that minute), within [`SEARCH_YEARS`] years; `None` if there is none.
    #[must_use]
    pub fn first_at_or_after(&self, start: DateTime) -> Option<DateTime> {
        let limit = start.year().saturating_add(SEARCH_YEARS);
        let mut t = start.with().second(0).subsec_nanosecond(0).build().ok()?;
        loop {
            if t.year() > limit {
                return None;
            }
            let date = t.date();
            if !self.month.has(u32::from(t.month().unsigned_abs())) {
                let next_month = date.last_of_month().tomorrow().ok()?;
                t = next_month.to_datetime(Time::midnight());
            } else if !self.day_matches(date) {
                t = date.tomorrow().ok()?.to_datetime(Time::midnight());
            } else if !self.hour.has(u32::from(t.hour().unsigned_abs())) {
                t = t.with().minute(0).build().ok()?;
                t = t.checked_add(jiff::SignedDuration::from_hours(1)).ok()?;
            } else if !self.minute.has(u32::from(t.minute().unsigned_abs())) {
                t = t.checked_add(jiff::SignedDuration::from_mins(1)).ok()?;
            } else {
                return Some(t);
            }
        }
    }

    /// robfig's `Next`: the first firing strictly after `t`'s whole second.
    #[must_use]
    pub fn next_after(&self, t: DateTime) -> Option<DateTime> {
        let second = t.with().subsec_nanosecond(0).build().ok()?;
        let upcoming = second
            .checked_add(jiff::SignedDuration::from_secs(1))
            .ok()?;
        let minute = if upcoming.second() == 0 {
            upcoming
        } else {
            upcoming
                .with()
                .second(0)
                .build()
                .ok()?
                .checked_add(jiff::SignedDuration::from_mins(1))
                .ok()?
        };
        self.first_at_or_after(minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn at(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> DateTime {
        date(y, mo, d).at(h, mi, 0, 0)
    }

    fn next(spec: &str, from: DateTime) -> Option<DateTime> {
        Schedule::parse(spec).unwrap().next_after(from)
    }

    #[test]
    fn fields_ranges_steps_and_names() {
        let from = at(2026, 12, 7, 20, 51);
        assert_eq!(next("* * * * *", from), Some(at(2026, 12, 7, 20, 52)));
        assert_eq!(next("*/15 * * * *", from), Some(at(2026, 12, 7, 21, 0)));
        assert_eq!(next("5/20 * * * *", from), Some(at(2026, 12, 7, 21, 5)));
        assert_eq!(next("0 9-17 * * *", from), Some(at(2026, 12, 8, 9, 0)));
        assert_eq!(next("0 0 1 JAN *", from), Some(at(2027, 1, 1, 0, 0)));
        assert_eq!(
            next("0 22 * * sat,SUN", from),
            Some(at(2026, 12, 12, 22, 0))
        );
        assert_eq!(next("0 8 * * mon-fri/2", from), Some(at(2026, 12, 9, 8, 0)));
        assert_eq!(next("30 2 ? * ?", from), Some(at(2026, 12, 8, 2, 30)));
    }

    #[test]
    fn next_is_strictly_after_the_whole_second() {
        let on = at(2026, 12, 7, 21, 0);
        assert_eq!(next("0 21 * * *", on), Some(at(2026, 12, 8, 21, 0)));
        let before = at(2026, 12, 7, 20, 59).with().second(59).build().unwrap();
        assert_eq!(next("0 21 * * *", before), Some(on));
        let inside = before.with().subsec_nanosecond(999).build().unwrap();
        assert_eq!(next("0 21 * * *", inside), Some(on));
    }

    #[test]
    fn restricted_day_fields_combine_with_or_a_star_with_and() {
        // 2026-12-13 is a Sunday; the 15th a Tuesday.
        let from = at(2026, 12, 12, 0, 0);
        assert_eq!(next("0 0 15 * 0", from), Some(at(2026, 12, 13, 0, 0)));
        assert_eq!(next("0 0 15 * *", from), Some(at(2026, 12, 15, 0, 0)));
        assert_eq!(next("0 0 * * 2", from), Some(at(2026, 12, 15, 0, 0)));
        // A step above 1 is a restriction, not a star: OR again (the 13th is day 13).
        assert_eq!(next("0 0 */2 * 2", from), Some(at(2026, 12, 13, 0, 0)));
    }

    #[test]
    fn a_schedule_that_never_fires_has_no_next() {
        assert_eq!(next("0 0 30 2 *", at(2026, 1, 1, 0, 0)), None);
        assert_eq!(
            next("0 0 29 2 *", at(2026, 1, 1, 0, 0)),
            Some(at(2028, 2, 29, 0, 0))
        );
    }

    #[test]
    fn argo_cd_refusals_are_errors() {
        let refused = [
            ("", "empty spec string"),
            ("@daily", "parser does not accept descriptors: @daily"),
            ("CRON_TZ=Europe/Paris 0 9 * * *", "CRON_TZ"),
            ("0 9 * *", "expected exactly 5 fields, found 4"),
            ("0 0 9 * * *", "expected exactly 5 fields, found 6"),
            ("60 * * * *", "end of range (60) above maximum (59)"),
            ("* * 0 * *", "beginning of range (0) below minimum (1)"),
            ("* * * * 7", "end of range (7) above maximum (6)"),
            ("* * L * *", "failed to parse int from L"),
            ("* * * * 1#2", "failed to parse int from 1#2"),
            (
                "5-2 * * * *",
                "beginning of range (5) beyond end of range (2)",
            ),
            ("*/0 * * * *", "step of range should be a positive number"),
            ("1-2-3 * * * *", "too many hyphens"),
            ("*/2/3 * * * *", "too many slashes"),
            ("1,,2 * * * *", "failed to parse int from "),
            ("99999999999999999999 * * * *", "failed to parse int"),
        ];
        for (spec, want) in refused {
            let err = Schedule::parse(spec).unwrap_err().to_string();
            assert!(err.contains(want), "{spec:?}: {err}");
        }
    }
}
