//! Received parts put back together. A part is keyed by where it came from (`K`: a
//! storage index, say) so that the caller deletes the parts only once the whole SMS
//! is kept; a message whose parts do not all arrive is given up after a while, with
//! the missing parts marked, rather than held for ever.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::Deliver;

/// What marks a missing part in a message given up incomplete.
pub const MISSING_PART: &str = "[…]";

/// A whole received SMS, and the keys of every part it was made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<K> {
    pub keys: Vec<K>,
    pub sender: String,
    pub text: String,
    /// The first part's service centre time (RFC 3339).
    pub service_centre_time: String,
    pub parts: usize,
    /// Some parts never came.
    pub incomplete: bool,
}

#[derive(Debug)]
struct Pending<K> {
    total: u8,
    parts: BTreeMap<u8, Deliver>,
    keys: Vec<K>,
    first_seen: DateTime<Utc>,
}

#[derive(Debug)]
pub struct Reassembly<K> {
    pending: HashMap<(String, u16, u8), Pending<K>>,
}

impl<K> Default for Reassembly<K> {
    fn default() -> Self {
        Self {
            pending: HashMap::new(),
        }
    }
}

impl<K> Reassembly<K> {
    /// Add a part; the whole SMS once its last part is in (at once for a single part).
    /// A part that comes twice (read again from storage) replaces the first; both keys
    /// are kept so both copies are deleted.
    pub fn add(&mut self, key: K, part: Deliver, now: DateTime<Utc>) -> Option<Received<K>> {
        let Some(concat) = part.concat.filter(|c| c.total > 1) else {
            return Some(Received {
                keys: vec![key],
                sender: part.sender,
                text: part.text,
                service_centre_time: part.service_centre_time,
                parts: 1,
                incomplete: false,
            });
        };
        let id = (part.sender.clone(), concat.reference, concat.total);
        let pending = self.pending.entry(id.clone()).or_insert_with(|| Pending {
            total: concat.total,
            parts: BTreeMap::new(),
            keys: Vec::new(),
            first_seen: now,
        });
        pending.keys.push(key);
        pending.parts.insert(concat.sequence, part);
        let complete = (1..=pending.total).all(|seq| pending.parts.contains_key(&seq));
        if !complete {
            return None;
        }
        self.pending.remove(&id).map(|p| finish(p, false))
    }

    /// Messages whose first part came before `before` and that are still incomplete:
    /// given up, with [`MISSING_PART`] where parts are missing.
    pub fn give_up_before(&mut self, before: DateTime<Utc>) -> Vec<Received<K>> {
        let stale: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, p)| p.first_seen < before)
            .map(|(id, _)| id.clone())
            .collect();
        stale
            .into_iter()
            .filter_map(|id| self.pending.remove(&id))
            .map(|p| finish(p, true))
            .collect()
    }

    /// Parts waiting for the rest of their message.
    pub fn waiting(&self) -> usize {
        self.pending.values().map(|p| p.parts.len()).sum()
    }
}

fn finish<K>(pending: Pending<K>, incomplete: bool) -> Received<K> {
    let first = pending.parts.values().next();
    let sender = first.map(|p| p.sender.clone()).unwrap_or_default();
    let service_centre_time = first
        .map(|p| p.service_centre_time.clone())
        .unwrap_or_default();
    let text = (1..=pending.total)
        .map(|seq| {
            pending
                .parts
                .get(&seq)
                .map_or(MISSING_PART, |p| p.text.as_str())
        })
        .collect();
    Received {
        keys: pending.keys,
        sender,
        text,
        service_centre_time,
        parts: usize::from(pending.total),
        incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::{decode_deliver, encode_deliver};

    fn parts(text: &str, reference: u16) -> Vec<Deliver> {
        encode_deliver(
            "+447700900123",
            text,
            "2026-12-05T10:00:00+00:00",
            reference,
        )
        .unwrap()
        .iter()
        .map(|p| decode_deliver(p).unwrap())
        .collect()
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn parts_in_any_order_make_the_message_once_all_are_in() {
        let text = "x".repeat(400);
        let mut pieces = parts(&text, 9);
        assert_eq!(pieces.len(), 3);
        pieces.reverse();
        let mut reassembly = Reassembly::default();
        assert_eq!(reassembly.add(3, pieces[0].clone(), now()), None);
        assert_eq!(reassembly.add(2, pieces[1].clone(), now()), None);
        assert_eq!(reassembly.waiting(), 2);
        let whole = reassembly
            .add(1, pieces[2].clone(), now())
            .expect("complete");
        assert_eq!(whole.text, text);
        assert_eq!(whole.keys, vec![3, 2, 1]);
        assert_eq!(whole.parts, 3);
        assert!(!whole.incomplete);
        assert_eq!(reassembly.waiting(), 0);
    }

    #[test]
    fn two_messages_with_one_reference_from_two_senders_stay_apart() {
        let mut reassembly = Reassembly::default();
        let a = parts(&"a".repeat(200), 5);
        let mut b = parts(&"b".repeat(200), 5);
        for part in &mut b {
            part.sender = "+447700900999".into();
        }
        assert!(reassembly.add("a1", a[0].clone(), now()).is_none());
        assert!(reassembly.add("b2", b[1].clone(), now()).is_none());
        let whole_a = reassembly.add("a2", a[1].clone(), now()).unwrap();
        assert_eq!(whole_a.text, "a".repeat(200));
        let whole_b = reassembly.add("b1", b[0].clone(), now()).unwrap();
        assert_eq!(whole_b.text, "b".repeat(200));
        assert_eq!(whole_b.sender, "+447700900999");
    }

    #[test]
    fn a_single_part_is_whole_at_once_and_a_lost_part_is_given_up_marked() {
        let mut reassembly = Reassembly::default();
        let single = parts("hello", 1);
        assert_eq!(
            reassembly.add(0, single[0].clone(), now()).unwrap().text,
            "hello"
        );
        let three = parts(&"y".repeat(400), 2);
        reassembly.add(1, three[0].clone(), now());
        reassembly.add(3, three[2].clone(), now());
        assert!(reassembly.give_up_before(now()).is_empty(), "not stale yet");
        let given_up = reassembly.give_up_before(now() + chrono::Duration::seconds(1));
        assert_eq!(given_up.len(), 1);
        assert!(given_up[0].incomplete);
        assert!(given_up[0].text.contains(MISSING_PART));
        assert_eq!(given_up[0].keys, vec![1, 3]);
    }
}
