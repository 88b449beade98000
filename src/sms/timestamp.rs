//! Service centre time stamps (TP-SCTS, TP-DT; 3GPP TS 23.040 §9.2.3.11): seven swapped
//! semi-octet pairs YY MM DD hh mm ss TZ, the time zone in quarter hours with its sign
//! in bit 3 of the first semi-octet. Outside the PDU they are RFC 3339 strings with the
//! offset they carried (`2011-01-11T17:59:15+01:00`); years are read as 2000–2099.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike};

use super::DecodeError;

/// A time stamp that RFC 3339 text cannot be turned into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("not an RFC 3339 time stamp: {0:?}")]
    NotRfc3339(String),
    #[error("the year {0} is outside 2000-2099, which TP-SCTS cannot hold")]
    Year(i32),
    #[error("the UTC offset must be a whole number of quarter hours below 20 hours")]
    Offset,
}

/// RFC 3339 text of a TP-SCTS/TP-DT field.
pub fn decode(field: [u8; 7]) -> Result<String, DecodeError> {
    const BAD: DecodeError = DecodeError::Invalid("time stamp");
    let mut v = [0u32; 6];
    for (slot, &octet) in v.iter_mut().zip(&field) {
        *slot = swapped_bcd(octet).ok_or(BAD)?;
    }
    let [yy, month, day, hour, minute, second] = v;
    let [.., tz] = field;
    // The sign sits in bit 3 of the tens digit, which is the low semi-octet.
    let quarters = swapped_bcd(tz & !0x08).ok_or(BAD)?;
    let quarters = i32::try_from(quarters).map_err(|_| BAD)?;
    let offset_secs = quarters * 15 * 60 * if tz & 0x08 != 0 { -1 } else { 1 };
    let offset = FixedOffset::east_opt(offset_secs).ok_or(BAD)?;
    let date = NaiveDate::from_ymd_opt(2000 + i32::try_from(yy).map_err(|_| BAD)?, month, day)
        .ok_or(BAD)?;
    let local = date.and_hms_opt(hour, minute, second).ok_or(BAD)?;
    let stamp = local.and_local_timezone(offset).single().ok_or(BAD)?;
    Ok(stamp.to_rfc3339())
}

/// The TP-SCTS/TP-DT field for RFC 3339 text, in the time zone the text names.
pub fn encode(rfc3339: &str) -> Result<[u8; 7], TimestampError> {
    let t: DateTime<FixedOffset> = DateTime::parse_from_rfc3339(rfc3339)
        .map_err(|_| TimestampError::NotRfc3339(rfc3339.to_owned()))?;
    if !(2000..=2099).contains(&t.year()) {
        return Err(TimestampError::Year(t.year()));
    }
    let offset = t.offset().local_minus_utc();
    let quarters = offset.unsigned_abs() / (15 * 60);
    if offset % (15 * 60) != 0 || quarters > 79 {
        return Err(TimestampError::Offset);
    }
    let sign = if offset < 0 { 0x08 } else { 0 };
    // The year was checked above, so it is in 0..100 and the conversion is exact.
    let yy = u32::try_from(t.year() - 2000).unwrap_or(0);
    Ok([
        to_swapped_bcd(yy),
        to_swapped_bcd(t.month()),
        to_swapped_bcd(t.day()),
        to_swapped_bcd(t.hour()),
        to_swapped_bcd(t.minute()),
        to_swapped_bcd(t.second()),
        to_swapped_bcd(quarters) | sign,
    ])
}

/// The two decimal digits of an octet whose low semi-octet is the tens digit.
fn swapped_bcd(octet: u8) -> Option<u32> {
    let (tens, units) = (octet & 0x0F, octet >> 4);
    (tens <= 9 && units <= 9).then(|| u32::from(tens) * 10 + u32::from(units))
}

/// Callers pass values below 100 (date and time fields, quarter hours up to 79).
fn to_swapped_bcd(value: u32) -> u8 {
    let value = value % 100;
    // Both digits are below 10 after the modulo, so the narrowing is exact.
    (((value % 10) << 4) | (value / 10)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_gsmmodem_status_report_stamp() {
        // From the status report "0006D60B911326880736F4111011719551401110117195714000".
        let field = [0x11, 0x10, 0x11, 0x71, 0x95, 0x51, 0x40];
        assert_eq!(decode(field).unwrap(), "2011-01-11T17:59:15+01:00");
        assert_eq!(encode("2011-01-11T17:59:15+01:00").unwrap(), field);
    }

    #[test]
    fn negative_offset_sets_bit_3() {
        // python-gsmmodem's SmsPduTzInfo test: "B2" (semi-octets in reading order, so
        // the octet 0x2B) is −8 hours: 32 quarters with the sign bit.
        let field = [0x42, 0x30, 0x21, 0x01, 0x02, 0x03, 0x2B];
        assert_eq!(decode(field).unwrap(), "2024-03-12T10:20:30-08:00");
        assert_eq!(encode("2024-03-12T10:20:30-08:00").unwrap(), field);
        assert_eq!(encode("2024-03-12T10:20:30Z").unwrap()[6], 0x00);
    }

    #[test]
    fn invalid_stamps() {
        assert!(decode([0x42, 0x31, 0x21, 0, 0, 0, 0]).is_err()); // month 13
        assert!(decode([0xAA, 0x10, 0x10, 0, 0, 0, 0]).is_err()); // not BCD
        assert!(encode("yesterday").is_err());
        assert_eq!(
            encode("1999-12-31T23:59:59Z"),
            Err(TimestampError::Year(1999))
        );
        assert_eq!(
            encode("2024-01-01T00:00:00+05:45").unwrap()[6],
            to_swapped_bcd(23)
        );
        assert_eq!(
            encode("2024-01-01T00:00:00+05:50"),
            Err(TimestampError::Offset)
        );
    }
}
