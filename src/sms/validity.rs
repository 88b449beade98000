//! The relative TP-VP octet (3GPP TS 23.040 §9.2.3.12.1).

use std::time::Duration;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;

/// The period a relative TP-VP value stands for.
pub fn relative_validity(vp: u8) -> Duration {
    let vp = u64::from(vp);
    let secs = match vp {
        0..=143 => (vp + 1) * 5 * MINUTE,
        144..=167 => 12 * HOUR + (vp - 143) * 30 * MINUTE,
        168..=196 => (vp - 166) * DAY,
        _ => (vp - 192) * WEEK,
    };
    Duration::from_secs(secs)
}

/// The smallest TP-VP whose period is at least `validity`, so that the network never
/// drops a code that is still valid (10 min → 0x01, anything up to 5 min → 0x00); 255
/// (63 weeks) for anything longer.
pub fn relative_vp(validity: Duration) -> u8 {
    // The periods grow with the value, so the first one long enough is the smallest.
    (0..=u8::MAX)
        .find(|&vp| relative_validity(vp) >= validity)
        .unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn mins(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    #[test]
    fn table_of_23_040() {
        assert_eq!(relative_validity(0), mins(5));
        assert_eq!(relative_validity(143), mins(12 * 60));
        assert_eq!(relative_validity(144), mins(12 * 60 + 30));
        assert_eq!(relative_validity(167), mins(24 * 60));
        assert_eq!(relative_validity(168), mins(2 * 24 * 60));
        assert_eq!(relative_validity(196), mins(30 * 24 * 60));
        assert_eq!(relative_validity(197), mins(5 * 7 * 24 * 60));
        assert_eq!(relative_validity(255), mins(63 * 7 * 24 * 60));
    }

    #[test]
    fn smallest_value_that_covers_the_lifetime() {
        assert_eq!(relative_vp(Duration::ZERO), 0x00);
        assert_eq!(relative_vp(mins(5)), 0x00);
        assert_eq!(relative_vp(mins(5) + Duration::from_secs(1)), 0x01);
        assert_eq!(relative_vp(mins(10)), 0x01);
        assert_eq!(relative_vp(mins(10) - Duration::from_millis(1)), 0x01);
        assert_eq!(relative_vp(mins(60)), 11);
        assert_eq!(relative_vp(mins(12 * 60 + 1)), 144);
        assert_eq!(relative_vp(mins(24 * 60)), 167);
        assert_eq!(relative_vp(mins(24 * 60 + 1)), 168);
        // Classic vector: 0xAA is 4 days; python-gsmmodem: 0xA9 is 3 days, 0xF4 52 weeks.
        assert_eq!(relative_vp(mins(4 * 24 * 60)), 0xAA);
        assert_eq!(relative_vp(mins(3 * 24 * 60)), 0xA9);
        assert_eq!(relative_vp(mins(52 * 7 * 24 * 60)), 0xF4);
        assert_eq!(relative_vp(mins(31 * 24 * 60)), 197);
        assert_eq!(relative_vp(Duration::MAX), 255);
    }

    #[test]
    fn every_value_is_its_own_smallest_cover() {
        for vp in 0..=u8::MAX {
            assert_eq!(relative_vp(relative_validity(vp)), vp);
        }
    }
}
