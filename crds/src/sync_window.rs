//! Sync windows: whether an `AppProject`'s `syncWindows` let an Application sync now, and
//! when that changes. Pure: the time is passed in.
//!
//! The rules are Argo CD's (`SyncWindows.Matches`, `Active`, `InactiveAllows`, `CanSync`
//! in `types.go`):
//!
//! - **Matching** ([`MatchedWindows::of`]): `applications` globs the Application's name,
//!   `clusters` its destination's `name` or `server` (as written in the spec), `namespaces`
//!   its destination namespace, all with gobwas globs without separators and no `!`
//!   negation. A window matches when any list that is set matches, or with `andOperator`
//!   when every list that is set matches; a window with no list matches nothing.
//! - **Active**: some firing `f` of the schedule lies in `(now - duration, now)` on the
//!   window's wall clock (`timeZone`, with the zone's offset at `now`: across a DST change
//!   a window keeps its wall-clock times). A schedule that never fires within five years
//!   (`0 0 30 2 *`) counts as always active, as robfig's zero time does in Argo CD.
//! - **May sync** ([`MatchedWindows::can_sync`]): an active deny window blocks (a manual
//!   sync passes if every active deny window has `manualSync`); otherwise an active allow
//!   window allows; otherwise, if there are allow windows (none active), the sync is
//!   blocked (a manual sync passes if every allow window has `manualSync`); with no
//!   windows at all it runs. `syncOverrun` lets an operation that started while it was
//!   allowed go on. An unparsable schedule or duration in any matching window blocks
//!   (Argo CD: "invalid sync windows"); an unknown `timeZone` is read as UTC, as Argo CD
//!   does, and reported by [`MatchedWindows::warnings`].
//! - **When it opens** ([`Blocked::opens_at`]): the verdict can only change when a window
//!   opens or closes, so those instants are visited in order (bounded by [`MAX_STEPS`]
//!   and [`HORIZON`]) until the verdict allows; the controller requeues then.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::application::ApplicationDestination;
use crate::appproject::{SyncWindow, WindowKind};
use crate::cron::{CronError, Schedule};
use crate::duration::{DurationError, GoDuration};
use crate::glob::Glob;

/// Why the windows cannot be evaluated. Argo CD's texts; any one blocks every sync.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// `schedule` is not a five-field cron expression.
    #[error("invalid sync windows: cannot parse schedule '{schedule}': {source}")]
    Schedule {
        /// The schedule as written.
        schedule: String,
        /// Why.
        source: CronError,
    },
    /// `duration` is not a Go duration.
    #[error("invalid sync windows: cannot parse duration '{duration}': {source}")]
    Duration {
        /// The duration as written.
        duration: String,
        /// Why.
        source: DurationError,
    },
}

/// How many open/close instants [`MatchedWindows::blocked`] visits looking for the
/// opening before it gives up (`opens_at: None`).
pub const MAX_STEPS: usize = 2000;
/// How far ahead it looks.
pub const HORIZON: SignedDuration = SignedDuration::from_hours(24 * 366);

impl SyncWindow {
    /// A one-line description: Argo CD's `kind:schedule:duration`, then the time zone and
    /// the description when set.
    #[must_use]
    pub fn describe(&self) -> String {
        let zone = if self.time_zone.is_empty() || self.time_zone == "UTC" {
            String::new()
        } else {
            format!(" ({})", self.time_zone)
        };
        let description = if self.description.is_empty() {
            String::new()
        } else {
            format!(" \"{}\"", self.description)
        };
        format!(
            "{}:{}:{}{zone}{description}",
            self.kind.as_str(),
            self.schedule,
            self.duration
        )
    }

    /// Argo CD's `Matches` for one window.
    #[must_use]
    pub fn matches(&self, app_name: &str, destination: &ApplicationDestination) -> bool {
        let any =
            |patterns: &[String], value: &str| patterns.iter().any(|p| glob_matches(p, value));
        let cluster = |pattern: &String| {
            (!destination.name.is_empty() && glob_matches(pattern, &destination.name))
                || (!destination.server.is_empty() && glob_matches(pattern, &destination.server))
        };
        let set = [
            (!self.applications.is_empty()).then(|| any(&self.applications, app_name)),
            (!self.clusters.is_empty()).then(|| self.clusters.iter().any(cluster)),
            (!self.namespaces.is_empty()).then(|| any(&self.namespaces, &destination.namespace)),
        ];
        let mut set = set.into_iter().flatten().peekable();
        if self.and_operator {
            set.peek().is_some() && set.all(|m| m)
        } else {
            set.any(|m| m)
        }
    }
}

/// Argo CD's `globMatch(pattern, value, false)`: `*` short-cuts, no negation, no separator.
fn glob_matches(pattern: &str, value: &str) -> bool {
    pattern == "*" || Glob::gobwas(pattern, None).is_match(value)
}

/// A window's schedule, duration and zone, parsed.
#[derive(Clone, Debug)]
struct Rule {
    schedule: Schedule,
    duration: SignedDuration,
    zone: TimeZone,
}

impl Rule {
    fn wall(&self, t: Timestamp) -> DateTime {
        self.zone.to_datetime(t)
    }

    /// The first firing after `wall - duration` (robfig's `Next`), `None` when there is
    /// none within its five-year search.
    fn first_firing_in_reach(&self, wall: DateTime) -> Option<DateTime> {
        let from = wall
            .checked_sub(self.duration)
            .unwrap_or(if self.duration.is_positive() {
                DateTime::MIN
            } else {
                DateTime::MAX
            });
        self.schedule.next_after(from)
    }

    fn active_at(&self, t: Timestamp) -> bool {
        let wall = self.wall(t);
        // No firing found is robfig's zero time, which is before any `now`: active.
        self.first_firing_in_reach(wall).is_none_or(|f| f < wall)
    }

    /// The next instant after `t` at which this window may open or close; `None` if it
    /// never changes (it never fires, or its duration is not positive).
    fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        if !self.duration.is_positive() {
            return None;
        }
        let wall = self.wall(t);
        let first = self.first_firing_in_reach(wall)?;
        let change = if first < wall {
            // Active: the earliest firing in reach leaves it (a later one may keep the
            // window open; the caller then asks again from there).
            first.checked_add(self.duration).ok()?
        } else {
            // Inactive: it opens just after its next firing at or after `wall` (active
            // means strictly after a firing).
            let second_before = wall.checked_sub(SignedDuration::from_secs(1)).ok()?;
            self.schedule
                .next_after(second_before)?
                .checked_add(SignedDuration::from_secs(1))
                .ok()?
        };
        // Reached on the wall clock of `t`'s offset; if the zone's offset changes first
        // (DST), the wall clock jumps, so that instant is visited too.
        let reached = t.checked_add(change.duration_since(wall)).ok()?;
        let transition = self
            .zone
            .following(t)
            .next()
            .map(|tr| tr.timestamp())
            .filter(|&at| at > t);
        Some(transition.map_or(reached, |at| at.min(reached)))
    }
}

/// A matching window, parsed once.
#[derive(Clone, Debug)]
struct Compiled {
    window: SyncWindow,
    rule: Result<Rule, WindowError>,
    /// Set when `timeZone` is unknown and UTC is used instead.
    zone_warning: Option<String>,
}

impl Compiled {
    fn new(window: &SyncWindow) -> Compiled {
        let (zone, zone_warning) = zone(&window.time_zone);
        let rule = Schedule::parse(&window.schedule)
            .map_err(|source| WindowError::Schedule {
                schedule: window.schedule.clone(),
                source,
            })
            .and_then(|schedule| {
                let duration = GoDuration::parse(&window.duration).map_err(|source| {
                    WindowError::Duration {
                        duration: window.duration.clone(),
                        source,
                    }
                })?;
                Ok(Rule {
                    schedule,
                    duration: SignedDuration::from_nanos(duration.as_nanos()),
                    zone,
                })
            });
        Compiled {
            window: window.clone(),
            rule,
            zone_warning: zone_warning.map(|w| format!("sync window {}: {w}", window.describe())),
        }
    }

    fn is(&self, kind: &WindowKind) -> bool {
        self.window.kind == *kind
    }
}

/// Go's `time.LoadLocation` names: empty or `UTC` is UTC, `Local` the host's zone, else an
/// IANA name; an unknown one is UTC with a warning (Argo CD logs one).
fn zone(name: &str) -> (TimeZone, Option<String>) {
    match name {
        "" | "UTC" => (TimeZone::UTC, None),
        "Local" => (TimeZone::system(), None),
        _ => match TimeZone::get(name) {
            Ok(zone) => (zone, None),
            Err(_) => (
                TimeZone::UTC,
                Some(format!(
                    "unknown timeZone {name:?}; the schedule is read in UTC"
                )),
            ),
        },
    }
}

/// The windows of a project that match one Application.
#[derive(Clone, Debug, Default)]
pub struct MatchedWindows {
    windows: Vec<Compiled>,
}

/// Why a sync may not run now, and when it may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// Which windows block.
    pub reason: BlockReason,
    /// When the verdict first allows the sync (within [`HORIZON`]); `None`: not within
    /// the search, or never (an invalid window blocks until it is fixed).
    pub opens_at: Option<Timestamp>,
}

/// Which windows block a sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockReason {
    /// Active deny windows (each described by [`SyncWindow::describe`]).
    Denied(Vec<String>),
    /// Allow windows exist and none is active.
    OutsideAllowed(Vec<String>),
    /// A matching window cannot be read.
    Invalid(WindowError),
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            BlockReason::Denied(windows) => {
                write!(f, "blocked by deny sync window {}", windows.join(", "))?;
            }
            BlockReason::OutsideAllowed(windows) => write!(
                f,
                "blocked outside the allow sync window {}",
                windows.join(", ")
            )?,
            BlockReason::Invalid(e) => return write!(f, "{e}"),
        }
        match self.opens_at {
            Some(at) => write!(
                f,
                "; opens at {}",
                at.round(jiff::Unit::Second).unwrap_or(at)
            ),
            None => write!(f, "; does not open within {} days", HORIZON.as_hours() / 24),
        }
    }
}

impl MatchedWindows {
    /// Argo CD's `Matches`: the windows that apply to an Application named `app_name`
    /// deploying to `destination` (the spec's destination as written).
    #[must_use]
    pub fn of(
        windows: &[SyncWindow],
        app_name: &str,
        destination: &ApplicationDestination,
    ) -> MatchedWindows {
        MatchedWindows {
            windows: windows
                .iter()
                .filter(|w| w.matches(app_name, destination))
                .map(Compiled::new)
                .collect(),
        }
    }

    /// No window matches: every sync may run.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// The matching windows, described.
    #[must_use]
    pub fn describe(&self) -> Vec<String> {
        self.windows.iter().map(|c| c.window.describe()).collect()
    }

    /// Unknown time zones read as UTC.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        self.windows
            .iter()
            .filter_map(|c| c.zone_warning.clone())
            .collect()
    }

    /// The windows active at `now`, or the first unreadable one's error.
    fn active(&self, now: Timestamp) -> Result<Vec<&Compiled>, WindowError> {
        let mut active = Vec::new();
        for c in &self.windows {
            if c.rule.as_ref().map_err(Clone::clone)?.active_at(now) {
                active.push(c);
            }
        }
        Ok(active)
    }

    /// Argo CD's `CanSync`: may a sync (`manual` or automated) run at `now`?
    /// `started` is when the operation being continued started (for `syncOverrun`).
    pub fn can_sync(
        &self,
        manual: bool,
        started: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<bool, WindowError> {
        if self.windows.is_empty() {
            return Ok(true);
        }
        let active = self.active(now)?;
        let denies: Vec<&&Compiled> = active.iter().filter(|c| c.is(&WindowKind::Deny)).collect();
        // `syncOverrun` needs every window concerned to have it, and the operation to have
        // been allowed when it started.
        let overruns = |all_overrun: bool| -> Result<bool, WindowError> {
            match started {
                Some(start) if all_overrun => self.can_sync(manual, None, start),
                _ => Ok(false),
            }
        };
        if !denies.is_empty() {
            if manual && denies.iter().all(|c| c.window.manual_sync) {
                return Ok(true);
            }
            return overruns(denies.iter().all(|c| c.window.sync_overrun));
        }
        if active.iter().any(|c| c.is(&WindowKind::Allow)) {
            return Ok(true);
        }
        let allows: Vec<&Compiled> = self
            .windows
            .iter()
            .filter(|c| c.is(&WindowKind::Allow))
            .collect();
        if allows.is_empty() {
            return Ok(true);
        }
        if manual && allows.iter().all(|c| c.window.manual_sync) {
            return Ok(true);
        }
        overruns(allows.iter().all(|c| c.window.sync_overrun))
    }

    /// `None` when the sync may run at `now`; otherwise which windows block it and when
    /// it may run.
    #[must_use]
    pub fn blocked(
        &self,
        manual: bool,
        started: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<Blocked> {
        match self.can_sync(manual, started, now) {
            Ok(true) => None,
            Err(e) => Some(Blocked {
                reason: BlockReason::Invalid(e),
                opens_at: None,
            }),
            Ok(false) => Some(Blocked {
                reason: self.reason(manual, now),
                opens_at: self.opens_at(manual, started, now),
            }),
        }
    }

    /// Which windows block at `now` (the evaluation succeeded and said no).
    fn reason(&self, manual: bool, now: Timestamp) -> BlockReason {
        let denies: Vec<String> = self
            .windows
            .iter()
            .filter(|c| c.is(&WindowKind::Deny) && !(manual && c.window.manual_sync))
            .filter(|c| c.rule.as_ref().is_ok_and(|r| r.active_at(now)))
            .map(|c| c.window.describe())
            .collect();
        if denies.is_empty() {
            BlockReason::OutsideAllowed(
                self.windows
                    .iter()
                    .filter(|c| c.is(&WindowKind::Allow))
                    .map(|c| c.window.describe())
                    .collect(),
            )
        } else {
            BlockReason::Denied(denies)
        }
    }

    /// The first instant after `now` at which the sync may run, visiting the instants at
    /// which some window opens or closes.
    fn opens_at(
        &self,
        manual: bool,
        started: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let rules: Vec<&Rule> = self
            .windows
            .iter()
            .filter_map(|c| c.rule.as_ref().ok())
            .collect();
        let limit = now.checked_add(HORIZON).ok()?;
        let mut t = now;
        for _ in 0..MAX_STEPS {
            t = rules.iter().filter_map(|r| r.next_change(t)).min()?;
            if t > limit {
                return None;
            }
            if self.can_sync(manual, started, t) == Ok(true) {
                return Some(t);
            }
        }
        None
    }
}

/// For callers that hold an Application's name and destination and its project's windows
/// (the `ApplicationSet` `RollingSync` step): `None` when a sync may start at `now`, else
/// which window blocks it and when it opens. `manual` is how the sync's operation is
/// marked: Argo CD's `RollingSync` marks its operations `initiatedBy.automated: true`, so a
/// step passes `false` (and `manualSync` does not let it through), as the Application
/// controller will judge it.
#[must_use]
pub fn sync_blocked(
    windows: &[SyncWindow],
    app_name: &str,
    destination: &ApplicationDestination,
    manual: bool,
    now: Timestamp,
) -> Option<Blocked> {
    MatchedWindows::of(windows, app_name, destination).blocked(manual, None, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(kind: &str, schedule: &str, duration: &str) -> SyncWindow {
        SyncWindow {
            kind: WindowKind::from(kind.to_owned()),
            schedule: schedule.into(),
            duration: duration.into(),
            applications: vec!["*".into()],
            ..SyncWindow::default()
        }
    }

    fn dest(server: &str, namespace: &str, name: &str) -> ApplicationDestination {
        ApplicationDestination {
            server: server.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn matched(windows: &[SyncWindow]) -> MatchedWindows {
        MatchedWindows::of(windows, "web", &dest("https://gold:6443", "shop", "gold"))
    }

    fn may(windows: &[SyncWindow], manual: bool, now: &str) -> bool {
        matched(windows).can_sync(manual, None, at(now)).unwrap()
    }

    #[test]
    fn matching_follows_argo_cds_or_and_and_operator() {
        let d = dest("https://gold:6443", "shop", "gold");
        let mut w = SyncWindow::default();
        assert!(
            !w.matches("web", &d),
            "a window with no list matches nothing"
        );
        w.applications = vec!["w*".into()];
        assert!(w.matches("web", &d));
        w.applications = vec!["api".into()];
        w.clusters = vec!["gold".into()];
        assert!(w.matches("web", &d), "OR: the cluster name matches");
        w.and_operator = true;
        assert!(!w.matches("web", &d), "AND: the application does not");
        w.applications = vec!["web".into()];
        w.namespaces = vec!["other".into()];
        assert!(!w.matches("web", &d), "AND: the namespace does not");
        w.namespaces = vec!["sh?p".into()];
        assert!(w.matches("web", &d));
        w.and_operator = false;
        w.applications.clear();
        w.namespaces.clear();
        w.clusters = vec!["https://gold:*".into()];
        assert!(w.matches("web", &d), "the server matches too");
        w.clusters = vec!["!silver".into()];
        assert!(!w.matches("web", &d), "no negation: `!` is a literal");
        w.clusters = vec!["{gold,silver}".into()];
        assert!(w.matches("web", &d), "gobwas alternatives");
        let by_server = dest("https://gold:6443", "shop", "");
        w.clusters = vec!["gold".into()];
        assert!(
            !w.matches("web", &by_server),
            "the spec's destination as written"
        );
    }

    #[test]
    fn active_from_just_after_the_firing_until_the_duration_ends() {
        let w = [window("deny", "0 22 * * *", "1h")];
        assert!(may(&w, false, "2026-12-07T21:59:59Z"));
        assert!(
            may(&w, false, "2026-12-07T22:00:00Z"),
            "at the firing itself: not yet"
        );
        assert!(!may(&w, false, "2026-12-07T22:00:01Z"));
        assert!(!may(&w, false, "2026-12-07T22:59:59Z"));
        assert!(may(&w, false, "2026-12-07T23:00:00Z"));
    }

    #[test]
    fn deny_beats_allow_and_manual_sync_needs_every_active_deny_to_allow_it() {
        let mut deny = window("deny", "0 22 * * *", "2h");
        let allow = window("allow", "0 21 * * *", "4h");
        let both = [deny.clone(), allow.clone()];
        assert!(may(&both, false, "2026-12-07T21:30:00Z"));
        assert!(!may(&both, false, "2026-12-07T22:30:00Z"));
        assert!(!may(&both, true, "2026-12-07T22:30:00Z"));
        deny.manual_sync = true;
        let mut other = window("deny", "30 22 * * *", "1h");
        assert!(may(
            &[deny.clone(), allow.clone()],
            true,
            "2026-12-07T22:40:00Z"
        ));
        assert!(!may(
            &[deny.clone(), other.clone()],
            true,
            "2026-12-07T22:40:00Z"
        ));
        other.manual_sync = true;
        assert!(may(&[deny, other], true, "2026-12-07T22:40:00Z"));
    }

    #[test]
    fn outside_every_allow_window_syncs_are_blocked() {
        let mut allow = window("allow", "0 9 * * 1-5", "8h");
        // 2026-12-07 is a Monday.
        assert!(may(&[allow.clone()], false, "2026-12-07T10:00:00Z"));
        assert!(!may(&[allow.clone()], false, "2026-12-07T18:00:00Z"));
        assert!(!may(&[allow.clone()], true, "2026-12-07T18:00:00Z"));
        allow.manual_sync = true;
        assert!(may(&[allow.clone()], true, "2026-12-07T18:00:00Z"));
        let blocked = matched(&[allow]).blocked(false, None, at("2026-12-11T18:00:00Z"));
        let blocked = blocked.unwrap();
        assert_eq!(
            blocked.opens_at,
            Some(at("2026-12-14T09:00:01Z")),
            "Friday evening: Monday"
        );
        assert!(matches!(blocked.reason, BlockReason::OutsideAllowed(_)));
        assert!(
            blocked.to_string().contains("allow:0 9 * * 1-5:8h"),
            "{blocked}"
        );
    }

    #[test]
    fn overlapping_windows_open_when_the_last_one_closes() {
        let w = [
            window("deny", "0 22 * * *", "1h"),
            window("deny", "30 22 * * *", "1h"),
            window("deny", "0 * * * *", "10m"),
        ];
        let blocked = matched(&w)
            .blocked(false, None, at("2026-12-07T22:15:00Z"))
            .unwrap();
        assert_eq!(blocked.opens_at, Some(at("2026-12-07T23:30:00Z")));
        assert_eq!(
            blocked.reason,
            BlockReason::Denied(vec!["deny:0 22 * * *:1h".into()])
        );
        // A window longer than its period stays active from firing to firing.
        let w = [window("deny", "*/10 * * * *", "15m")];
        let blocked = matched(&w)
            .blocked(false, None, at("2026-12-07T22:15:00Z"))
            .unwrap();
        assert_eq!(blocked.opens_at, None, "never opens");
    }

    #[test]
    fn time_zones_and_dst_keep_wall_clock_times() {
        let mut deny = window("deny", "0 9 * * *", "1h");
        deny.time_zone = "Europe/Paris".into();
        // Winter: UTC+1, so 09:00 in Paris is 08:00Z; summer: UTC+2, 07:00Z.
        assert!(!may(&[deny.clone()], false, "2026-12-07T08:30:00Z"));
        assert!(may(&[deny.clone()], false, "2026-12-07T09:30:00Z"));
        assert!(!may(&[deny.clone()], false, "2026-07-07T07:30:00Z"));
        assert!(may(&[deny.clone()], false, "2026-07-07T08:30:00Z"));
        // The night DST starts (2026-03-29, 01:00Z: 02:00 -> 03:00 in Paris): a window of
        // 01:00-03:00 local ends when the clock jumps, at 01:00Z, not at 02:00Z.
        let mut night = window("deny", "0 1 * * *", "2h");
        night.time_zone = "Europe/Paris".into();
        let blocked = matched(&[night])
            .blocked(false, None, at("2026-03-29T00:30:00Z"))
            .unwrap();
        assert_eq!(blocked.opens_at, Some(at("2026-03-29T01:00:00Z")));
        // The night DST ends (2026-10-25, 01:00Z: 03:00 -> 02:00): 02:00-03:00 local is
        // lived twice, and a window over it is active both times.
        let mut fold = window("deny", "0 2 * * *", "1h");
        fold.time_zone = "Europe/Paris".into();
        assert!(!may(&[fold.clone()], false, "2026-10-25T00:30:00Z"));
        assert!(!may(&[fold.clone()], false, "2026-10-25T01:30:00Z"));
        assert!(may(&[fold], false, "2026-10-25T02:30:00Z"));
        // A window inside the skipped hour: its wall-clock interval is entered when the
        // clock jumps (03:00 local, 01:00Z) and ends at 03:30 local.
        deny.schedule = "30 2 * * *".into();
        assert!(may(&[deny.clone()], false, "2026-03-29T00:59:00Z"));
        assert!(!may(&[deny.clone()], false, "2026-03-29T01:10:00Z"));
        assert!(may(&[deny.clone()], false, "2026-03-29T01:30:00Z"));
        // New York: 17:00 local is 22:00Z in winter.
        let mut ny = window("allow", "0 17 * * *", "1h");
        ny.time_zone = "America/New_York".into();
        assert!(may(&[ny.clone()], false, "2026-12-07T22:30:00Z"));
        assert!(!may(&[ny], false, "2026-12-07T17:30:00Z"));
    }

    #[test]
    fn an_unknown_time_zone_is_utc_with_a_warning() {
        let mut deny = window("deny", "0 22 * * *", "1h");
        deny.time_zone = "Mars/Olympus".into();
        let m = matched(&[deny]);
        assert!(!m.can_sync(false, None, at("2026-12-07T22:30:00Z")).unwrap());
        let warnings = m.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("Mars/Olympus"), "{warnings:?}");
    }

    #[test]
    fn an_invalid_window_blocks_with_argo_cds_error() {
        for (w, want) in [
            (
                window("allow", "0 25 * * *", "1h"),
                "cannot parse schedule '0 25 * * *'",
            ),
            (
                window("deny", "@daily", "1h"),
                "parser does not accept descriptors",
            ),
            (
                window("deny", "0 22 * * *", "1 hour"),
                "cannot parse duration '1 hour'",
            ),
        ] {
            let blocked = matched(&[w])
                .blocked(true, None, at("2026-12-07T12:00:00Z"))
                .unwrap();
            assert!(matches!(blocked.reason, BlockReason::Invalid(_)));
            assert_eq!(blocked.opens_at, None);
            let text = blocked.to_string();
            assert!(text.starts_with("invalid sync windows: "), "{text}");
            assert!(text.contains(want), "{text}");
        }
        // An invalid window that does not match the app is not read (as in Argo CD).
        let mut other = window("deny", "nonsense", "1h");
        other.applications = vec!["api".into()];
        assert!(may(&[other], false, "2026-12-07T12:00:00Z"));
    }

    #[test]
    fn a_schedule_that_never_fires_is_always_active_as_in_argo_cd() {
        let w = [window("deny", "0 0 30 2 *", "1h")];
        assert!(!may(&w, false, "2026-12-07T12:00:00Z"));
        let other = [window("other", "0 22 * * *", "1h")];
        assert!(
            may(&other, false, "2026-12-07T22:30:00Z"),
            "an unknown kind neither allows nor denies"
        );
    }

    #[test]
    fn sync_overrun_lets_an_operation_started_while_allowed_go_on() {
        let mut deny = window("deny", "0 22 * * *", "1h");
        let started = Some(at("2026-12-07T21:55:00Z"));
        let now = at("2026-12-07T22:10:00Z");
        assert!(
            !matched(&[deny.clone()])
                .can_sync(false, started, now)
                .unwrap()
        );
        deny.sync_overrun = true;
        assert!(
            matched(&[deny.clone()])
                .can_sync(false, started, now)
                .unwrap()
        );
        let inside = Some(at("2026-12-07T22:05:00Z"));
        assert!(
            !matched(&[deny]).can_sync(false, inside, now).unwrap(),
            "started while denied"
        );
        let mut allow = window("allow", "0 21 * * *", "1h");
        allow.sync_overrun = true;
        assert!(matched(&[allow]).can_sync(false, started, now).unwrap());
    }

    #[test]
    fn no_matching_window_means_no_block_and_the_helper_agrees() {
        let mut deny = window("deny", "* * * * *", "1h");
        deny.applications = vec![];
        deny.clusters = vec!["silver".into()];
        let now = at("2026-12-07T12:00:00Z");
        let gold = dest("https://gold:6443", "shop", "gold");
        let silver = dest("https://silver:6443", "shop", "silver");
        assert_eq!(
            sync_blocked(&[deny.clone()], "web", &gold, false, now),
            None
        );
        let blocked = sync_blocked(&[deny], "web", &silver, false, now).unwrap();
        assert_eq!(
            blocked.opens_at, None,
            "every minute for an hour never closes"
        );
    }

    #[test]
    fn the_window_model_round_trips_unknown_fields() {
        let json = serde_json::json!({"kind": "deny", "schedule": "0 22 * * *", "duration": "1h",
            "clusters": ["gold"], "manualSync": true, "timeZone": "Europe/Paris",
            "andOperator": true, "description": "freeze", "syncOverrun": true, "future": 1});
        let w: SyncWindow = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(w.kind, WindowKind::Deny);
        assert!(w.and_operator && w.manual_sync && w.sync_overrun);
        assert_eq!(serde_json::to_value(&w).unwrap(), json);
        let odd: SyncWindow = serde_json::from_value(serde_json::json!({"kind": "maybe"})).unwrap();
        assert_eq!(
            serde_json::to_value(&odd).unwrap(),
            serde_json::json!({"kind": "maybe"})
        );
    }
}
