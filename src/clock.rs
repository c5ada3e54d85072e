//! The daemon's one wall clock and its calendar arithmetic: epoch milliseconds and
//! seconds, and the proleptic Gregorian civil date of an epoch second (UTC).
//!
//! A leaf: it imports nothing from the crate. Protocol date syntaxes (SigV4's
//! `YYYYMMDDTHHMMSSZ`, RFC 5322 dates, IMAP INTERNALDATE) stay with their protocol
//! and build on [`civil`]; pure logic keeps taking `now_ms` as a parameter so tests
//! can inject time, and only the callers at the edge read the clock here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before 1970): the store's
/// and the events' timestamps.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// [`now_ms`] unsigned, for the directory and access engines, which count in `u64`.
pub fn now_ms_u64() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0)
}

/// Seconds since the Unix epoch (0 if the clock is before 1970), for the date
/// headers and signatures that count in whole seconds.
pub fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}

/// A UTC calendar date and time of day, as date syntaxes need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Proleptic Gregorian year (may be before 1970 or negative).
    pub year: i64,
    /// Month, 1-12.
    pub month: u32,
    /// Day of the month, 1-31.
    pub day: u32,
    /// Hour, 0-23.
    pub hour: u32,
    /// Minute, 0-59.
    pub minute: u32,
    /// Second, 0-59.
    pub second: u32,
    /// Day of the week, 0 = Sunday … 6 = Saturday.
    pub weekday: u32,
}

/// English month abbreviations (`Jan` … `Dec`), as RFC 5322 and IMAP dates write them.
pub const MONTH_ABBR: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// English weekday abbreviations indexed by [`Civil::weekday`] (`Sun` = 0).
pub const WEEKDAY_ABBR: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// The UTC calendar date and time of `secs` since the epoch.
pub fn civil(secs: i64) -> Civil {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    // Cast: rem is in 0..86_400 and (days + 4) mod 7 in 0..7.
    let rem = rem as u32;
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
        weekday: (days + 4).rem_euclid(7) as u32, // 1970-01-01 was a Thursday
    }
}

// Howard Hinnant's civil calendar algorithms (public domain).

/// Days since the epoch of a proleptic Gregorian date (month 1-12, day 1-31).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since the epoch to (year, month 1-12, day 1-31), proleptic Gregorian.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Casts: the day is in 1..=31 and the month in 1..=12 by construction.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_epoch_milliseconds() {
        // 2020-01-01 in ms; any sane clock is past it.
        assert!(now_ms() > 1_577_836_800_000);
        assert!(now_ms_u64() > 1_577_836_800_000);
        assert!(now_secs() > 1_577_836_800);
    }

    #[test]
    fn civil_dates() {
        let c = civil(0);
        assert_eq!((c.year, c.month, c.day, c.weekday), (1970, 1, 1, 4));
        let c = civil(1_795_482_123); // 2026-11-24 01:02:03, a Tuesday
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2026, 11, 24, 1, 2, 3)
        );
        assert_eq!(WEEKDAY_ABBR[c.weekday as usize], "Tue");
        let c = civil(-1);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.weekday),
            (1969, 12, 31, 23, 3)
        );
        for days in [-800_000, -1, 0, 59, 365 * 30 + 7, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m.into(), d.into()), days);
        }
    }
}
