//! Go's `time.Duration`, parsed and printed exactly as Go does.
//!
//! Argo CD's fields that hold durations (`syncPolicy.retry.backoff.duration`, sync
//! windows, ...) are strings that Argo CD reads with Go's `time.ParseDuration`, so a value
//! Argosy accepts must be one Argo CD accepts, with the same meaning, and the other way
//! round. [`GoDuration::parse`] follows `time.ParseDuration` (`src/time/format.go`) step by
//! step, including its error texts, and [`GoDuration`]'s `Display` is Go's
//! `Duration.String()`. Where Go's arithmetic would silently wrap, this module reports an
//! error (parsing) or saturates (arithmetic) instead; each place says so.

#![deny(missing_docs)]

use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A signed span of time in nanoseconds, with the range of Go's `time.Duration` (about
/// ±292 years).
///
/// Ordered like the number it holds, so [`Ord::min`] / [`Ord::max`] are the min/max
/// helpers for backoff arithmetic; [`GoDuration::saturating_mul`] and
/// [`GoDuration::mul_f64`] never overflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(i64);

/// Why a duration string was refused. `Display` is Go's error text (for overflow, Go's
/// text followed by the reason), so a message matches what Argo CD would report.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Empty, a sign alone, a number without digits, or a character that cannot start a
    /// number.
    #[error("time: invalid duration {}", quote(text))]
    Invalid {
        /// The whole text that was parsed.
        text: String,
    },
    /// A number that is not followed by a unit (only `0` alone may omit it).
    #[error("time: missing unit in duration {}", quote(text))]
    MissingUnit {
        /// The whole text that was parsed.
        text: String,
    },
    /// A unit other than `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`.
    #[error("time: unknown unit {} in duration {}", quote(unit), quote(text))]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole text that was parsed.
        text: String,
    },
    /// The value does not fit in int64 nanoseconds. Go reports this as "invalid
    /// duration"; the reason is appended because that text alone reads like a typo.
    #[error(
        "time: invalid duration {}: out of range (the limit is ±2562047h47m16.854775807s)",
        quote(text)
    )]
    Overflow {
        /// The whole text that was parsed.
        text: String,
    },
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// 2^63, the magnitude of the most negative duration; Go's parser accumulates in u64 and
/// checks against it.
const TWO_POW_63: u64 = 1 << 63;

impl GoDuration {
    /// No time.
    pub const ZERO: GoDuration = GoDuration(0);
    /// One nanosecond.
    pub const NANOSECOND: GoDuration = GoDuration(1);
    /// One microsecond.
    pub const MICROSECOND: GoDuration = GoDuration(1_000);
    /// One millisecond.
    pub const MILLISECOND: GoDuration = GoDuration(1_000_000);
    /// One second.
    pub const SECOND: GoDuration = GoDuration(1_000_000_000);
    /// One minute.
    pub const MINUTE: GoDuration = GoDuration(60_000_000_000);
    /// One hour.
    pub const HOUR: GoDuration = GoDuration(3_600_000_000_000);
    /// The longest duration (`2562047h47m16.854775807s`).
    pub const MAX: GoDuration = GoDuration(i64::MAX);
    /// The most negative duration (`-2562047h47m16.854775808s`).
    pub const MIN: GoDuration = GoDuration(i64::MIN);

    /// A duration of `nanos` nanoseconds.
    #[must_use]
    pub const fn from_nanos(nanos: i64) -> GoDuration {
        GoDuration(nanos)
    }

    /// `secs` seconds, saturating at [`GoDuration::MAX`] / [`GoDuration::MIN`].
    #[must_use]
    pub const fn from_secs_saturating(secs: i64) -> GoDuration {
        GoDuration(secs.saturating_mul(NANOS_PER_SECOND.cast_signed()))
    }

    /// The length in nanoseconds (negative for negative durations).
    #[must_use]
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// True for durations below zero.
    #[must_use]
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Parses a duration exactly as Go's `time.ParseDuration`: an optional sign, then one
    /// or more decimal numbers (with optional fraction) each followed by a unit (`ns`,
    /// `us`, `µs` U+00B5, `μs` U+03BC, `ms`, `s`, `m`, `h`), e.g. `300ms`, `-1.5h`,
    /// `1h2m3s4ms`. `0` (optionally signed) is the only number allowed without a unit.
    ///
    /// One deliberate difference: Go's u64 accumulator wraps when two terms of exactly
    /// 2^63 ns are added (`-9223372036854775808ns9223372036854775808ns` parses to 0 in
    /// Go); here that is an [`DurationError::Overflow`].
    pub fn parse(text: &str) -> Result<GoDuration, DurationError> {
        let invalid = || DurationError::Invalid {
            text: text.to_owned(),
        };
        let overflow = || DurationError::Overflow {
            text: text.to_owned(),
        };

        let mut s = text.as_bytes();
        let mut neg = false;
        if let Some((&c, rest)) = s.split_first()
            && (c == b'-' || c == b'+')
        {
            neg = c == b'-';
            s = rest;
        }
        // Go's special case: "0" alone (after the sign) needs no unit.
        if s == b"0" {
            return Ok(GoDuration::ZERO);
        }
        if s.is_empty() {
            return Err(invalid());
        }

        let mut total: u64 = 0;
        while let Some(&first) = s.first() {
            // The next character must be [0-9.]
            if !(first == b'.' || first.is_ascii_digit()) {
                return Err(invalid());
            }
            // Consume [0-9]*
            let before = s.len();
            let (int, rest) = leading_int(s).ok_or_else(overflow)?;
            s = rest;
            let pre = before != s.len();

            // Consume (\.[0-9]*)?
            let mut post = false;
            let mut frac: u64 = 0;
            let mut scale: f64 = 1.0;
            if let Some((&b'.', rest)) = s.split_first() {
                let before = rest.len();
                (frac, scale, s) = leading_fraction(rest);
                post = before != s.len();
            }
            if !pre && !post {
                // No digits at all, e.g. ".s" or "-.s".
                return Err(invalid());
            }

            // Consume the unit: everything up to the next number.
            let unit_len = s
                .iter()
                .position(|&c| c == b'.' || c.is_ascii_digit())
                .unwrap_or(s.len());
            if unit_len == 0 {
                return Err(DurationError::MissingUnit {
                    text: text.to_owned(),
                });
            }
            let (unit, rest) = s.split_at_checked(unit_len).ok_or_else(invalid)?;
            s = rest;
            let Some(unit_nanos) = unit_nanos(unit) else {
                // The unit ends before an ASCII byte (or at the end), so it is whole UTF-8;
                // the lossy conversion never actually replaces anything.
                return Err(DurationError::UnknownUnit {
                    unit: String::from_utf8_lossy(unit).into_owned(),
                    text: text.to_owned(),
                });
            };

            if int > TWO_POW_63 / unit_nanos {
                return Err(overflow());
            }
            let mut term = int * unit_nanos;
            if frac > 0 {
                // As in Go: f64 keeps fractions of hours nanosecond-accurate, and
                // frac / scale < 1, so the product is below one unit (<= 3.6e12).
                // The casts are Go's: precision lost going to f64 is lost in Go too, and the
                // product is non-negative and below 3.6e12, so the cast back is exact in range.
                #[allow(
                    clippy::cast_precision_loss,
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss
                )]
                let frac_nanos = (frac as f64 * (unit_nanos as f64 / scale)) as u64;
                term = term.saturating_add(frac_nanos);
                if term > TWO_POW_63 {
                    return Err(overflow());
                }
            }
            total = total.checked_add(term).ok_or_else(overflow)?;
            if total > TWO_POW_63 {
                return Err(overflow());
            }
        }

        if neg {
            // total <= 2^63; for 2^63 the cast gives i64::MIN, whose negation is itself,
            // which is exactly the most negative duration.
            return Ok(GoDuration(total.cast_signed().wrapping_neg()));
        }
        i64::try_from(total).map(GoDuration).map_err(|_| overflow())
    }

    /// Argo CD's reading of retry backoff durations (`parseStringToDuration` in argo-cd's
    /// `pkg/apis/application/v1alpha1/types.go`): a plain integer (Go's `strconv.Atoi`:
    /// optional sign, decimal digits) is a number of seconds (`"5"` is 5 s); anything
    /// else goes through [`GoDuration::parse`].
    ///
    /// Go multiplies the seconds by `time.Second` without an overflow check (a huge count
    /// wraps to a nonsense value); here it saturates.
    pub fn parse_seconds_or_duration(text: &str) -> Result<GoDuration, DurationError> {
        // Rust's i64 parser accepts exactly what Atoi does on 64-bit Go: an optional `+`
        // or `-` followed by ASCII digits, within the i64 range.
        match text.parse::<i64>() {
            Ok(secs) => Ok(GoDuration::from_secs_saturating(secs)),
            Err(_) => GoDuration::parse(text),
        }
    }

    /// As a `std::time::Duration`; negative durations become zero (a delay that has
    /// already passed).
    #[must_use]
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(u64::try_from(self.0).unwrap_or(0))
    }

    /// From a `std::time::Duration`, saturating at [`GoDuration::MAX`].
    #[must_use]
    pub fn from_std(duration: std::time::Duration) -> GoDuration {
        GoDuration(i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX))
    }

    /// `self * factor`, saturating at [`GoDuration::MAX`] / [`GoDuration::MIN`].
    #[must_use]
    pub const fn saturating_mul(self, factor: i64) -> GoDuration {
        GoDuration(self.0.saturating_mul(factor))
    }

    /// `self * factor` computed in f64 (as Argo CD's backoff does), saturating at
    /// [`GoDuration::MAX`] / [`GoDuration::MIN`]; a NaN product (zero times infinity) is
    /// zero.
    // The f64 computation is the point (Argo CD's backoff does it in float64); `as` from
    // f64 to i64 saturates and maps NaN to 0, which is the documented behaviour.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    #[must_use]
    pub fn mul_f64(self, factor: f64) -> GoDuration {
        GoDuration((self.0 as f64 * factor) as i64)
    }

    /// `self + other`, saturating at [`GoDuration::MAX`] / [`GoDuration::MIN`].
    #[must_use]
    pub const fn saturating_add(self, other: GoDuration) -> GoDuration {
        GoDuration(self.0.saturating_add(other.0))
    }
}

/// Go's `Duration.String()`: `1h2m3.5s`, `1m30s`, `1.5s`, `300ms`, `1.5µs`, `10ns`, `0s`.
/// Hours are never folded into days; units below a second appear only for durations
/// below a second.
impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(32);
        if self.0 < 0 {
            out.push('-');
        }
        let u = self.0.unsigned_abs();
        if u == 0 {
            out.push_str("0s");
        } else if u < NANOS_PER_SECOND {
            // (digits after the point, unit); Go uses U+00B5 for micro.
            let (prec, unit) = match u {
                0..1_000 => (0, "ns"),
                1_000..1_000_000 => (3, "µs"),
                _ => (6, "ms"),
            };
            let pow = 10u64.pow(prec);
            push_number(&mut out, u / pow, u % pow, prec);
            out.push_str(unit);
        } else {
            let secs = u / NANOS_PER_SECOND;
            let (hours, minutes) = (secs / 3600, secs / 60 % 60);
            // Writing to a String cannot fail.
            if hours > 0 {
                let _ = write!(out, "{hours}h");
            }
            if secs >= 60 {
                let _ = write!(out, "{minutes}m");
            }
            push_number(&mut out, secs % 60, u % NANOS_PER_SECOND, 9);
            out.push('s');
        }
        f.write_str(&out)
    }
}

/// Writes `int` and, when `frac` is non-zero, `.` and `frac` as `prec` digits without
/// trailing zeros (Go's `fmtInt` + `fmtFrac`).
fn push_number(out: &mut String, int: u64, frac: u64, prec: u32) {
    out.push_str(&int.to_string());
    if frac != 0 {
        let digits = format!("{frac:0width$}", width = prec as usize);
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

impl FromStr for GoDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<GoDuration, DurationError> {
        GoDuration::parse(s)
    }
}

impl From<GoDuration> for std::time::Duration {
    fn from(d: GoDuration) -> std::time::Duration {
        d.to_std()
    }
}

/// Serialized as Go prints it (`"1m30s"`), which Go and Argo CD read back unchanged.
impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Deserialized from Go's string form; the error quotes the text that was refused.
impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<GoDuration, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = GoDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Go duration string such as \"1m30s\"")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<GoDuration, E> {
                GoDuration::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Nanoseconds per unit, or `None` for an unknown unit.
fn unit_nanos(unit: &[u8]) -> Option<u64> {
    Some(match unit {
        b"ns" => 1,
        // "µs" is U+00B5 (micro sign), "μs" U+03BC (Greek mu); Go accepts both.
        b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
        b"ms" => 1_000_000,
        b"s" => NANOS_PER_SECOND,
        b"m" => 60 * NANOS_PER_SECOND,
        b"h" => 3600 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// Consumes leading `[0-9]*`; `None` when the number exceeds 2^63 (Go's `leadingInt`).
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    for &c in s.iter().take(digits) {
        if x > TWO_POW_63 / 10 {
            return None;
        }
        x = x * 10 + u64::from(c - b'0');
        if x > TWO_POW_63 {
            return None;
        }
    }
    let (_, rest) = s.split_at_checked(digits)?;
    Some((x, rest))
}

/// Consumes leading `[0-9]*` after a decimal point and returns `(x, scale, rest)` with
/// the fraction being `x / scale`. Digits past what fits in the accumulator are consumed
/// and ignored, as in Go's `leadingFraction` (they are below a nanosecond).
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut x: u64 = 0;
    let mut scale: f64 = 1.0;
    let mut overflow = false;
    for &c in s.iter().take(digits) {
        if overflow {
            continue;
        }
        if x > (TWO_POW_63 - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > TWO_POW_63 {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    let rest = s.split_at_checked(digits).map_or(&[][..], |(_, r)| r);
    (x, scale, rest)
}

/// Go's `time.quote`: double quotes, `"` and `\` escaped, and every byte of a control or
/// non-ASCII character written as `\xNN`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c < ' ' || !c.is_ascii() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\x{b:02x}");
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i64 = 1;
    const US: i64 = 1_000;
    const MS: i64 = 1_000_000;
    const S: i64 = 1_000_000_000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;

    /// Go's `parseDurationTests` (`src/time/time_test.go`).
    #[test]
    fn go_parse_table() {
        let cases: &[(&str, i64)] = &[
            // simple
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            // sign
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            // decimal
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("1.0040s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            // different units
            ("10ns", 10 * NS),
            ("11us", 11 * US),
            ("12µs", 12 * US),
            ("12μs", 12 * US),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * M),
            ("16h", 16 * H),
            // composite durations
            ("3h30m", 3 * H + 30 * M),
            ("10.5s4m", 4 * M + 10 * S + 500 * MS),
            ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
            (
                "1h2m3s4ms5us6ns",
                H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
            ),
            ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
            // large value
            ("52763797000ns", 52_763_797_000 * NS),
            // more than 9 digits after decimal point, see https://golang.org/issue/6617
            ("0.3333333333333333333h", 20 * M),
            // 9007199254740993 = 1<<53+1 cannot be stored precisely in a float64
            ("9007199254740993ns", (1 << 53) + 1),
            // largest duration that can be represented by int64 in nanoseconds
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            // largest negative round trip value, see https://golang.org/issue/48629
            ("-2562047h47m16.854775808s", i64::MIN),
            // huge string; issue 15011.
            ("0.100000000000000000000h", 6 * M),
            // This value tests the first overflow check in leadingFraction.
            (
                "0.830103483285477580700h",
                49 * M + 48 * S + 372_539_827 * NS,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                GoDuration::parse(text),
                Ok(GoDuration::from_nanos(*want)),
                "{text}"
            );
        }
    }

    /// Go's `parseDurationErrorTests`; each message quotes the input as Go does.
    #[test]
    fn go_error_table() {
        let cases: &[(&str, &str)] = &[
            ("", r#""""#),
            ("3", r#""3""#),
            ("-", r#""-""#),
            ("s", r#""s""#),
            (".", r#"".""#),
            ("-.", r#""-.""#),
            (".s", r#"".s""#),
            ("+.s", r#""+.s""#),
            ("1d", r#""1d""#),
            ("\u{FFFD}", r#""\xef\xbf\xbd""#),
            (
                "\u{FFFD} hello \u{FFFD} world",
                r#""\xef\xbf\xbd hello \xef\xbf\xbd world""#,
            ),
            // overflow
            ("9223372036854775810ns", r#""9223372036854775810ns""#),
            ("9223372036854775808ns", r#""9223372036854775808ns""#),
            ("-9223372036854775809ns", r#""-9223372036854775809ns""#),
            ("9223372036854776us", r#""9223372036854776us""#),
            ("3000000h", r#""3000000h""#),
            ("9223372036854775.808us", r#""9223372036854775.808us""#),
            (
                "9223372036854ms775us808ns",
                r#""9223372036854ms775us808ns""#,
            ),
        ];
        for (text, quoted) in cases {
            let err = GoDuration::parse(text).unwrap_err().to_string();
            assert!(err.contains(quoted), "{text:?}: {err}");
        }
    }

    #[test]
    fn go_error_messages() {
        let msg = |s: &str| GoDuration::parse(s).unwrap_err().to_string();
        assert_eq!(msg("x"), r#"time: invalid duration "x""#);
        assert_eq!(msg(""), r#"time: invalid duration """#);
        assert_eq!(msg("1"), r#"time: missing unit in duration "1""#);
        assert_eq!(msg("1x"), r#"time: unknown unit "x" in duration "1x""#);
        assert_eq!(msg("1d"), r#"time: unknown unit "d" in duration "1d""#);
        assert_eq!(
            msg("5s garbage"),
            r#"time: unknown unit "s garbage" in duration "5s garbage""#
        );
        // The unit runs up to the next digit or '.', so a second '.' leaves none.
        assert_eq!(msg("1.2.3s"), r#"time: missing unit in duration "1.2.3s""#);
        assert_eq!(
            msg("1\"\\"),
            r#"time: unknown unit "\"\\" in duration "1\"\\""#
        );
        // Go's quote writes control and non-ASCII bytes as \xNN.
        assert_eq!(
            msg("1µx"),
            r#"time: unknown unit "\xc2\xb5x" in duration "1\xc2\xb5x""#
        );
        assert_eq!(msg("\t1s"), r#"time: invalid duration "\x091s""#);
    }

    #[test]
    fn overflow_is_a_clear_error_never_a_panic() {
        for text in [
            "99999999999999999999999h",
            "99999999999999999999999",
            "2562048h",
            "-2562048h",
            "9223372036854775808ns",
            // Go's u64 accumulator wraps to 0 here; we refuse it.
            "-9223372036854775808ns9223372036854775808ns",
            "1.99999999999999999999999999999999999999h9223372036854775807ns",
        ] {
            let err = GoDuration::parse(text).unwrap_err();
            assert_eq!(err, DurationError::Overflow { text: text.into() }, "{text}");
            let msg = err.to_string();
            assert!(msg.starts_with("time: invalid duration \""), "{msg}");
            assert!(msg.contains("out of range"), "{msg}");
        }
        assert_eq!(
            GoDuration::parse("2562047h47m16.854775807s"),
            Ok(GoDuration::MAX)
        );
    }

    #[test]
    fn project_cases() {
        let p = |s: &str| GoDuration::parse(s).unwrap();
        assert_eq!(p("1m30s").to_std(), std::time::Duration::from_secs(90));
        assert_eq!(p("1.5h"), GoDuration::from_nanos(90 * M));
        assert_eq!(p("300ms").to_std(), std::time::Duration::from_millis(300));
        assert_eq!(p("-1s"), GoDuration::from_nanos(-S));
        assert_eq!(
            p("1h2m3s4ms"),
            GoDuration::from_nanos(H + 2 * M + 3 * S + 4 * MS)
        );
        assert!(matches!(
            GoDuration::parse("garbage"),
            Err(DurationError::Invalid { .. })
        ));
        assert!(matches!(
            GoDuration::parse("1m30"),
            Err(DurationError::MissingUnit { .. })
        ));
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "+", "-", "--1s", "+-1s", ".", "..", "1..s", "1.e3s", "1e3s", "0x10s", " 1s", "1s ",
            "1 s", "µs", "1µ", "1\u{0}s", "١s", "1١s", "🦀", "1🦀", "-0.s", "0.0", "00", "-00s",
            "1.", "1.s.", "1s.", ".0", "+.0s",
        ] {
            let _ = GoDuration::parse(text);
            let _ = GoDuration::parse_seconds_or_duration(text);
        }
        assert_eq!(GoDuration::parse("-0.s"), Ok(GoDuration::ZERO));
        assert!(
            GoDuration::parse("00").is_err(),
            "only \"0\" itself is unit-less"
        );
        assert_eq!(GoDuration::parse("+.0s"), Ok(GoDuration::ZERO));
    }

    /// Go's `durationTests` for `Duration.String()`.
    #[test]
    fn display_is_go_string() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1100, "1.1µs"),
            (2200 * US, "2.2ms"),
            (3300 * MS, "3.3s"),
            (4 * M + 5 * S, "4m5s"),
            (4 * M + 5001 * MS, "4m5.001s"),
            (5 * H + 6 * M + 7001 * MS, "5h6m7.001s"),
            (8 * M + 1, "8m0.000000001s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (90 * S, "1m30s"),
            (1500 * MS, "1.5s"),
            (300 * MS, "300ms"),
            (H, "1h0m0s"),
            (-S, "-1s"),
            (999, "999ns"),
        ];
        for (nanos, want) in cases {
            assert_eq!(GoDuration::from_nanos(*nanos).to_string(), *want, "{nanos}");
            // Go's printed form parses back to the same value.
            assert_eq!(
                GoDuration::parse(want),
                Ok(GoDuration::from_nanos(*nanos)),
                "{want}"
            );
        }
    }

    #[test]
    fn argo_plain_seconds() {
        let p = GoDuration::parse_seconds_or_duration;
        assert_eq!(p("5"), Ok(GoDuration::from_nanos(5 * S)));
        assert_eq!(p("+5"), Ok(GoDuration::from_nanos(5 * S)));
        assert_eq!(p("-5"), Ok(GoDuration::from_nanos(-5 * S)));
        assert_eq!(p("0"), Ok(GoDuration::ZERO));
        assert_eq!(p("2m"), Ok(GoDuration::from_nanos(2 * M)));
        // Atoi fits, seconds do not: saturates (Go would wrap).
        assert_eq!(p("9223372036854775807"), Ok(GoDuration::MAX));
        assert_eq!(p("-9223372036854775808"), Ok(GoDuration::MIN));
        // Beyond int64, Atoi fails and ParseDuration reports the missing unit, or the
        // overflow when the number does not even fit its accumulator.
        assert!(matches!(
            p("9223372036854775808"),
            Err(DurationError::MissingUnit { .. })
        ));
        assert!(matches!(
            p("99999999999999999999"),
            Err(DurationError::Overflow { .. })
        ));
        assert!(matches!(p("5x"), Err(DurationError::UnknownUnit { .. })));
        assert!(matches!(p(""), Err(DurationError::Invalid { .. })));
    }

    #[test]
    fn conversions_and_arithmetic_saturate() {
        assert_eq!(
            GoDuration::from_nanos(-5).to_std(),
            std::time::Duration::ZERO
        );
        assert_eq!(
            GoDuration::MAX.to_std(),
            std::time::Duration::from_nanos(i64::MAX as u64)
        );
        assert_eq!(
            GoDuration::from_std(std::time::Duration::MAX),
            GoDuration::MAX
        );
        assert_eq!(
            GoDuration::from_std(std::time::Duration::from_millis(1500)),
            GoDuration::from_nanos(1500 * MS)
        );
        assert_eq!(GoDuration::SECOND.saturating_mul(i64::MAX), GoDuration::MAX);
        assert_eq!(GoDuration::SECOND.saturating_mul(i64::MIN), GoDuration::MIN);
        assert_eq!(
            GoDuration::SECOND.saturating_mul(3),
            GoDuration::from_nanos(3 * S)
        );
        assert_eq!(GoDuration::SECOND.mul_f64(f64::INFINITY), GoDuration::MAX);
        assert_eq!(
            GoDuration::SECOND.mul_f64(f64::NEG_INFINITY),
            GoDuration::MIN
        );
        assert_eq!(GoDuration::ZERO.mul_f64(f64::INFINITY), GoDuration::ZERO);
        assert_eq!(GoDuration::SECOND.mul_f64(f64::NAN), GoDuration::ZERO);
        assert_eq!(
            GoDuration::SECOND.mul_f64(2.5),
            GoDuration::from_nanos(2500 * MS)
        );
        assert_eq!(
            GoDuration::MAX.saturating_add(GoDuration::SECOND),
            GoDuration::MAX
        );
        assert_eq!(GoDuration::MINUTE.min(GoDuration::HOUR), GoDuration::MINUTE);
        assert_eq!(GoDuration::from_secs_saturating(i64::MAX), GoDuration::MAX);
    }

    #[test]
    fn serde_uses_the_string_form() {
        #[derive(Debug, serde::Deserialize)]
        struct Holder {
            #[allow(dead_code)]
            wait: GoDuration,
        }

        let d: GoDuration = serde_json::from_str(r#""1m30s""#).unwrap();
        assert_eq!(d, GoDuration::from_nanos(90 * S));
        assert_eq!(serde_json::to_string(&d).unwrap(), r#""1m30s""#);

        let err = serde_json::from_str::<Holder>(r#"{"wait": "5 minutes"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#""5 minutes""#), "{err}");
        let err = serde_json::from_str::<Holder>(r#"{"wait": 5}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Go duration string"), "{err}");
        assert_eq!(
            "2h".parse::<GoDuration>(),
            Ok(GoDuration::from_nanos(2 * H))
        );
    }
}
