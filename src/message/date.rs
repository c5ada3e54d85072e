//! The Date header (RFC 5322 3.3) as an instant and the zone it was written in,
//! parsed by mail-parser. IMAP compares the wall-clock day as written
//! (SENTBEFORE/SENTON/SENTSINCE); EWS reports DateTimeSent in UTC.

use super::header::unfold;

/// A parsed Date header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    /// The instant, in seconds since the epoch (UTC).
    pub utc: i64,
    /// The zone it was written in, seconds east of UTC (`+0200` is 7200).
    pub offset_secs: i32,
}

impl Date {
    /// Parses a raw (possibly folded) Date value; `None` when it is not a valid
    /// RFC 5322 date.
    pub fn parse(value: &[u8]) -> Option<Date> {
        let value = String::from_utf8_lossy(&unfold(value)).into_owned();
        let d = mail_parser::DateTime::parse_rfc822(&value).filter(|d| d.is_valid())?;
        let zone = i32::from(d.tz_hour) * 3600 + i32::from(d.tz_minute) * 60;
        Some(Date {
            utc: d.to_timestamp(),
            offset_secs: if d.tz_before_gmt { -zone } else { zone },
        })
    }

    /// The wall-clock time as written, in its own zone, as seconds since the epoch
    /// ("25 Mar 2007 00:00 +0200" is on the 25th, RFC 9051 6.4.4).
    pub fn wall_clock(&self) -> i64 {
        self.utc + i64::from(self.offset_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_and_zone() {
        let d = Date::parse(b" Sun, 25 Mar 2007 00:00:00\r\n +0200").unwrap();
        assert_eq!(d.offset_secs, 7200);
        assert_eq!(d.utc, 1_174_773_600);
        assert_eq!(d.wall_clock(), 1_174_780_800);
        let d = Date::parse(b"Tue, 1 Dec 2026 00:00:00 -0500").unwrap();
        assert_eq!((d.utc, d.offset_secs), (1_796_101_200, -18_000));
        assert_eq!(Date::parse(b"not a date"), None);
        assert_eq!(Date::parse(b""), None);
    }
}
