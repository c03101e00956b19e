//! The few HTTP pieces a device needs around the WebSocket handshake: reading a
//! response header and turning the server's `Date` into Unix time.
//!
//! The device has no battery-backed clock. The handshake response of API Gateway (and
//! of the LocalGateway) carries a `Date` header, so every successful connect also sets
//! the device's clock to within a second, with no NTP.

/// The value of header `name` (ASCII case-insensitive) in an HTTP response head
/// (`HTTP/1.1 101 …\r\nName: value\r\n…\r\n\r\n`), trimmed. The status line is skipped.
pub fn header<'a>(response_head: &'a str, name: &str) -> Option<&'a str> {
    response_head
        .split("\r\n")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
}

/// The status code of an HTTP response head (`HTTP/1.1 101 Switching Protocols`).
pub fn status_code(response_head: &str) -> Option<u16> {
    let line = response_head.split("\r\n").next()?;
    let mut words = line.split(' ');
    let version = words.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code = words.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// Unix time in milliseconds of an HTTP date in the IMF-fixdate form every current
/// server sends (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
///
/// The value is the start of that second; [`server_time_ms`] centres it.
pub fn parse_http_date(date: &str) -> Option<u64> {
    let date = date.trim();
    let (_weekday, rest) = date.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u32 = number(parts.next()?, 2)?;
    let month = month(parts.next()?)?;
    let year: u32 = number(parts.next()?, 4)?;
    let time = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    let mut hms = time.split(':');
    let hour: u32 = number(hms.next()?, 2)?;
    let minute: u32 = number(hms.next()?, 2)?;
    let second: u32 = number(hms.next()?, 2)?;
    if hms.next().is_some()
        || year < 1970
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400
        + u64::from(hour) * 3_600
        + u64::from(minute) * 60
        + u64::from(second.min(59));
    Some(seconds * 1_000)
}

/// The server's time when it answered, from its `Date` header: the middle of the
/// second the header names (so the error is at most half a second, plus the
/// network's one-way delay).
pub fn server_time_ms(response_head: &str) -> Option<u64> {
    header(response_head, "date")
        .and_then(parse_http_date)
        .map(|ms| ms + 500)
}

/// A UTC calendar time, what C's `struct tm` holds (the firmware hands it to mbedTLS
/// for certificate date checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    /// The year, e.g. 2024.
    pub year: u32,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    /// 0–23.
    pub hour: u32,
    /// 0–59.
    pub minute: u32,
    /// 0–59.
    pub second: u32,
    /// Days since Sunday, 0–6.
    pub weekday: u32,
    /// Days since 1 January, 0–365.
    pub yearday: u32,
}

/// The UTC calendar time of Unix time `unix_ms` (the inverse of
/// [`parse_http_date`], to the second).
pub fn civil_from_unix_ms(unix_ms: u64) -> CivilTime {
    let seconds = unix_ms / 1_000;
    let days = seconds / 86_400;
    let of_day = seconds % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (year_of_era + era * 400 + i64::from(month <= 2)) as u32;
    CivilTime {
        year,
        month,
        day,
        hour: (of_day / 3_600) as u32,
        minute: (of_day % 3_600 / 60) as u32,
        second: (of_day % 60) as u32,
        // 1970-01-01 was a Thursday.
        weekday: ((days + 4) % 7) as u32,
        yearday: (days - days_from_civil(year, 1, 1)) as u32,
    }
}

fn number(s: &str, digits: usize) -> Option<u32> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn month(s: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|m| *m == s)
        .map(|index| index as u32 + 1)
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: u32, month: u32, day: u32) -> u64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era - 719_468) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\ndate: Fri, 22 Nov 2024 00:20:00 GMT\r\n\r\n";

    #[test]
    fn a_header_is_found_case_insensitively_and_trimmed() {
        assert_eq!(header(HEAD, "Date"), Some("Fri, 22 Nov 2024 00:20:00 GMT"));
        assert_eq!(header(HEAD, "UPGRADE"), Some("websocket"));
        assert_eq!(header(HEAD, "x-missing"), None);
    }

    #[test]
    fn headers_after_the_blank_line_are_not_headers() {
        let head = "HTTP/1.1 101 OK\r\nA: 1\r\n\r\nDate: Fri, 22 Nov 2024 00:20:00 GMT\r\n";
        assert_eq!(header(head, "date"), None);
        assert_eq!(header(head, "a"), Some("1"));
    }

    #[test]
    fn the_status_code_comes_from_the_status_line() {
        assert_eq!(status_code(HEAD), Some(101));
        assert_eq!(status_code("HTTP/1.1 403 Forbidden\r\n\r\n"), Some(403));
        assert_eq!(status_code("garbage"), None);
    }

    #[test]
    fn imf_fixdates_become_unix_milliseconds() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777_000)
        );
        assert_eq!(
            parse_http_date("Fri, 22 Nov 2024 00:20:00 GMT"),
            Some(1_732_234_800_000)
        );
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT"),
            Some(1_709_208_000_000)
        );
        assert_eq!(
            parse_http_date("Fri, 31 Dec 2100 23:59:59 GMT"),
            Some(4_133_980_799_000)
        );
    }

    #[test]
    fn malformed_or_impossible_dates_are_refused() {
        for bad in [
            "",
            "Fri, 22 Nov 2024 00:20:00",
            "Fri, 22 Nov 2024 00:20:00 UTC",
            "Friday, 22-Nov-24 00:20:00 GMT",
            "Fri Nov 22 00:20:00 2024",
            "Fri, 31 Nov 2024 00:20:00 GMT",
            "Thu, 29 Feb 2023 00:00:00 GMT",
            "Fri, 22 Nov 2024 24:00:00 GMT",
            "Fri, 22 Foo 2024 00:20:00 GMT",
            "Fri, 2 Nov 2024 00:20:00 GMT",
            "Wed, 31 Dec 1969 23:59:59 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unix_time_becomes_the_calendar_time_mbedtls_checks_certificates_against() {
        assert_eq!(
            civil_from_unix_ms(0),
            CivilTime {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
                weekday: 4,
                yearday: 0
            }
        );
        assert_eq!(
            civil_from_unix_ms(1_709_208_000_999),
            CivilTime {
                year: 2024,
                month: 2,
                day: 29,
                hour: 12,
                minute: 0,
                second: 0,
                weekday: 4,
                yearday: 59
            }
        );
        let end_of_2100 = civil_from_unix_ms(4_133_980_799_000);
        assert_eq!(
            (end_of_2100.year, end_of_2100.month, end_of_2100.day),
            (2100, 12, 31)
        );
        assert_eq!((end_of_2100.weekday, end_of_2100.yearday), (5, 364));
    }

    #[test]
    fn calendar_time_and_http_dates_agree_for_every_day_of_two_centuries() {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        for day in 0..(200 * 365) {
            let ms = day * 86_400_000 + 45_296_000; // 12:34:56
            let t = civil_from_unix_ms(ms);
            let date = format!(
                "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
                DAYS[t.weekday as usize],
                t.day,
                MONTHS[t.month as usize - 1],
                t.year,
                t.hour,
                t.minute,
                t.second
            );
            assert_eq!(parse_http_date(&date), Some(ms), "{date}");
        }
    }

    #[test]
    fn the_server_time_is_the_middle_of_the_dated_second() {
        assert_eq!(server_time_ms(HEAD), Some(1_732_234_800_500));
        assert_eq!(server_time_ms("HTTP/1.1 101 OK\r\n\r\n"), None);
    }
}
