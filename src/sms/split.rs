//! Choosing the coding of a text and splitting it into the parts of a concatenated SMS
//! (3GPP TS 23.040 §9.2.3.24.1 and .8), never cutting a character in two.

use super::gsm7;
use super::{Coding, MessagePlan};

/// Septets in a single-part 7-bit SMS: 140 octets × 8 / 7.
pub const GSM7_SINGLE: usize = 160;
/// Septets per part with the 8-bit reference header (6 octets + 1 fill bit = 7 septets).
pub const GSM7_CONCAT8: usize = 153;
/// Septets per part with the 16-bit reference header (7 octets = 8 septets exactly).
pub const GSM7_CONCAT16: usize = 152;
/// UTF-16 code units in a single-part UCS-2 SMS: 140 octets / 2.
pub const UCS2_SINGLE: usize = 70;
/// Code units per part with the 8-bit reference header: (140 − 6) / 2.
pub const UCS2_CONCAT8: usize = 67;
/// Code units per part with the 16-bit reference header: (140 − 7) / 2, rounded down.
pub const UCS2_CONCAT16: usize = 66;

/// A text cut into parts: unpacked septets for 7-bit, UTF-16 code units for UCS-2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitText {
    Gsm7(Vec<Vec<u8>>),
    Ucs2(Vec<Vec<u16>>),
}

impl SplitText {
    pub fn coding(&self) -> Coding {
        match self {
            Self::Gsm7(_) => Coding::Gsm7,
            Self::Ucs2(_) => Coding::Ucs2,
        }
    }

    pub fn parts(&self) -> usize {
        match self {
            Self::Gsm7(parts) => parts.len(),
            Self::Ucs2(parts) => parts.len(),
        }
    }
}

/// Split `text` into parts; an empty text gives no parts. With `concat_ref16` the
/// parts are sized for the 7-octet header of the 16-bit reference.
pub fn split(text: &str, concat_ref16: bool) -> SplitText {
    let chars = text.chars();
    let gsm: Option<Vec<gsm7::Septets>> = chars.clone().map(gsm7::char_septets).collect();
    match gsm {
        Some(septets) => {
            let per_part = if concat_ref16 {
                GSM7_CONCAT16
            } else {
                GSM7_CONCAT8
            };
            let chunks = septets.iter().map(|s| {
                let mut v = Vec::with_capacity(2);
                s.push_to(&mut v);
                v
            });
            SplitText::Gsm7(pack_chunks(chunks, GSM7_SINGLE, per_part))
        }
        None => {
            let per_part = if concat_ref16 {
                UCS2_CONCAT16
            } else {
                UCS2_CONCAT8
            };
            let chunks = chars.map(|c| {
                let mut buf = [0u16; 2];
                c.encode_utf16(&mut buf).to_vec()
            });
            SplitText::Ucs2(pack_chunks(chunks, UCS2_SINGLE, per_part))
        }
    }
}

/// Everything in one part when it fits `single`; otherwise greedy parts of at most
/// `per_part` units, each chunk (one character) kept whole so that an ESC pair or a
/// surrogate pair never straddles two parts.
fn pack_chunks<T: Copy>(
    chunks: impl Iterator<Item = Vec<T>> + Clone,
    single: usize,
    per_part: usize,
) -> Vec<Vec<T>> {
    let total: usize = chunks.clone().map(|c| c.len()).sum();
    if total == 0 {
        return Vec::new();
    }
    if total <= single {
        return vec![chunks.flatten().collect()];
    }
    let mut parts = Vec::with_capacity(total.div_ceil(per_part));
    let mut current: Vec<T> = Vec::with_capacity(per_part);
    for chunk in chunks {
        if current.len() + chunk.len() > per_part {
            parts.push(std::mem::take(&mut current));
        }
        current.extend_from_slice(&chunk);
    }
    parts.push(current);
    parts
}

/// The plan for `text` with the given header size; see [`super::plan`].
pub fn plan_with(text: &str, concat_ref16: bool) -> MessagePlan {
    let split = split(text, concat_ref16);
    MessagePlan {
        coding: split.coding(),
        parts: split.parts(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> usize {
        plan_with(text, false).parts
    }

    #[test]
    fn capacities_follow_from_the_header_sizes() {
        // 8-bit reference: UDHL + IEI + IEDL + ref + total + seq = 6 octets.
        assert_eq!(GSM7_CONCAT8, (140 * 8 - 6 * 8) / 7);
        assert_eq!(GSM7_CONCAT16, (140 * 8 - 7 * 8) / 7);
        assert_eq!(UCS2_CONCAT8, (140 - 6) / 2);
        assert_eq!(UCS2_CONCAT16, (140 - 7) / 2);
    }

    #[test]
    fn gsm7_boundaries() {
        assert_eq!(parts(""), 0);
        assert_eq!(parts(&"a".repeat(160)), 1);
        assert_eq!(parts(&"a".repeat(161)), 2);
        assert_eq!(parts(&"a".repeat(306)), 2);
        assert_eq!(parts(&"a".repeat(307)), 3);
        assert_eq!(parts(&"a".repeat(612)), 4);
        assert_eq!(parts(&"a".repeat(613)), 5);
        // 80 euro signs are 160 septets: still one part.
        assert_eq!(parts(&"€".repeat(80)), 1);
        assert_eq!(parts(&"€".repeat(81)), 2);
        assert_eq!(plan_with(&"a".repeat(305), true).parts, 3);
        assert_eq!(plan_with(&"a".repeat(304), true).parts, 2);
    }

    #[test]
    fn ucs2_boundaries() {
        assert_eq!(plan_with("Ж", false).coding, Coding::Ucs2);
        assert_eq!(parts(&"Ж".repeat(70)), 1);
        assert_eq!(parts(&"Ж".repeat(71)), 2);
        assert_eq!(parts(&"Ж".repeat(134)), 2);
        assert_eq!(parts(&"Ж".repeat(135)), 3);
        assert_eq!(plan_with(&"Ж".repeat(133), true).parts, 3);
        // 35 emoji are 70 code units.
        assert_eq!(parts(&"🔐".repeat(35)), 1);
        assert_eq!(parts(&"🔐".repeat(36)), 2);
    }

    #[test]
    fn escape_pair_moves_whole_to_the_next_part() {
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let SplitText::Gsm7(parts) = split(&text, false) else {
            panic!("expected 7-bit");
        };
        assert_eq!(parts[0].len(), 152);
        assert_eq!(parts[1][..2], [gsm7::ESC, 0x65]);
    }

    #[test]
    fn surrogate_pair_moves_whole_to_the_next_part() {
        let text = format!("{}🔐{}", "ж".repeat(66), "ж".repeat(10));
        let SplitText::Ucs2(parts) = split(&text, false) else {
            panic!("expected UCS-2");
        };
        assert_eq!(parts[0].len(), 66);
        assert_eq!(parts[1][..2], [0xD83D, 0xDD10]);
    }
}
