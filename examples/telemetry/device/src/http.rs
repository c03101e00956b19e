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
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
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
    fn the_server_time_is_the_middle_of_the_dated_second() {
        assert_eq!(server_time_ms(HEAD), Some(1_732_234_800_500));
        assert_eq!(server_time_ms("HTTP/1.1 101 OK\r\n\r\n"), None);
    }
}
