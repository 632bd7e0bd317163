//! Times as a person reads them: in the organisation's time zone (`branding.time_zone`),
//! with UTC beside them, e.g. "2026-12-01 11:44 CET (10:44 UTC)"; in UTC alone when no
//! zone is set. Pages stay script-free (the CSP admits no script), so the zone is the
//! configured one, not the browser's; templates put the instant in `<time datetime>`.

use std::fmt;

use jiff::tz::TimeZone;

use crate::domain::Timestamp;

/// One instant, ready for a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    /// RFC 3339 in UTC, for `<time datetime>`.
    pub iso: String,
    /// In words: the zone's time, and UTC beside it unless the zone is UTC.
    pub text: String,
}

impl When {
    pub fn new(t: Timestamp, tz: &TimeZone) -> When {
        let utc = t.to_offset(time::UtcOffset::UTC);
        let iso = utc
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let utc_text = utc
            .format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .unwrap_or_default();
        let is_utc = *tz == TimeZone::UTC || matches!(tz.iana_name(), Some("UTC" | "Etc/UTC"));
        let zoned = jiff::Timestamp::from_second(utc.unix_timestamp())
            .ok()
            .filter(|_| !is_utc)
            .map(|ts| ts.to_zoned(tz.clone()));
        let text = match zoned {
            Some(z) => {
                let local = z.strftime("%Y-%m-%d %H:%M %Z").to_string();
                let same_day =
                    z.strftime("%Y-%m-%d").to_string() == utc_text.get(..10).unwrap_or("");
                let beside = if same_day {
                    utc_text.get(11..).unwrap_or(&utc_text)
                } else {
                    &utc_text
                };
                format!("{local} ({beside})")
            }
            None => utc_text,
        };
        When { iso, text }
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `t` in words, in `tz` with UTC beside it.
pub fn format_time(t: Timestamp, tz: &TimeZone) -> String {
    When::new(t, tz).text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
            .unwrap()
    }

    #[test]
    fn utc_alone_without_a_zone_and_both_with_one() {
        let t = at("2026-12-01T10:44:00Z");
        let utc = When::new(t, &TimeZone::UTC);
        assert_eq!(utc.text, "2026-12-01 10:44 UTC");
        assert_eq!(utc.iso, "2026-12-01T10:44:00Z");
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            When::new(t, &berlin).text,
            "2026-12-01 11:44 CET (10:44 UTC)"
        );
        // Another day in UTC: the date beside it too.
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        assert_eq!(
            When::new(at("2026-12-01T20:00:00Z"), &tokyo).text,
            "2026-12-02 05:00 JST (2026-12-01 20:00 UTC)"
        );
    }
}
