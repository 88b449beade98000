//! The modem's message memories as `AT+CPMS`, `AT+CMGR`, `AT+CMGD` and `AT+CMGL` see
//! them: `SM` (the SIM), `ME` (the modem) and `SR` (status reports). They keep their
//! contents across a reboot, as real storage does.

use std::collections::BTreeMap;

/// The memories this modem offers.
pub const MEMORIES: [&str; 3] = ["SM", "ME", "SR"];
/// Entries per memory (a SIM holds 10 to 50).
pub const CAPACITY: usize = 20;
/// `+CMS ERROR` for an index with nothing in it.
pub const INVALID_INDEX: u16 = 321;
/// `+CMS ERROR` for a memory this modem does not have.
pub const UNKNOWN_MEMORY: u16 = 302;

/// One stored message: its `<stat>` (0 received unread, 1 received read, 2 stored
/// unsent, 3 stored sent) and its PDU, SMSC field first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPdu {
    pub stat: u8,
    pub pdu: Vec<u8>,
}

impl StoredPdu {
    /// The `<length>` of `+CMGR`/`+CMGL`: the TPDU, without the SMSC field.
    pub fn tpdu_len(&self) -> usize {
        let smsc = self.pdu.first().map_or(0, |n| 1 + usize::from(*n));
        self.pdu.len().saturating_sub(smsc)
    }
}

#[derive(Debug, Clone)]
pub struct Storage {
    memories: BTreeMap<&'static str, BTreeMap<u32, StoredPdu>>,
    /// `<mem1>`: read, listed and deleted from.
    selected: &'static str,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            memories: MEMORIES.iter().map(|m| (*m, BTreeMap::new())).collect(),
            selected: "SM",
        }
    }
}

fn known(mem: &str) -> Option<&'static str> {
    MEMORIES
        .iter()
        .copied()
        .find(|m| m.eq_ignore_ascii_case(mem))
}

impl Storage {
    /// Put `entry` in `mem` at its first free index (from 1); `None` when full.
    pub fn store(&mut self, mem: &str, entry: StoredPdu) -> Option<u32> {
        let slots = self.memories.get_mut(known(mem)?)?;
        if slots.len() >= CAPACITY {
            return None;
        }
        let index = (1..).find(|i| !slots.contains_key(i))?;
        slots.insert(index, entry);
        Some(index)
    }

    /// Whether `mem` has no free slot.
    pub fn full(&self, mem: &str) -> bool {
        known(mem)
            .and_then(|m| self.memories.get(m))
            .is_some_and(|slots| slots.len() >= CAPACITY)
    }

    pub fn select(&mut self, mem: &str) -> Result<(), u16> {
        self.selected = known(mem).ok_or(UNKNOWN_MEMORY)?;
        Ok(())
    }

    fn slots(&self) -> &BTreeMap<u32, StoredPdu> {
        static EMPTY: BTreeMap<u32, StoredPdu> = BTreeMap::new();
        self.memories.get(self.selected).unwrap_or(&EMPTY)
    }

    /// Read an entry of the selected memory; a received unread one becomes read.
    pub fn read(&mut self, index: u32) -> Result<StoredPdu, u16> {
        let entry = self
            .memories
            .get_mut(self.selected)
            .and_then(|slots| slots.get_mut(&index))
            .ok_or(INVALID_INDEX)?;
        let read = entry.clone();
        if entry.stat == 0 {
            entry.stat = 1;
        }
        Ok(read)
    }

    pub fn delete(&mut self, index: u32) {
        if let Some(slots) = self.memories.get_mut(self.selected) {
            slots.remove(&index);
        }
    }

    /// The entries of the selected memory with `<stat>` `stat` (4: all).
    pub fn list(&self, stat: u8) -> Vec<(u32, StoredPdu)> {
        self.slots()
            .iter()
            .filter(|(_, e)| stat == 4 || e.stat == stat)
            .map(|(i, e)| (*i, e.clone()))
            .collect()
    }

    /// `+CPMS: "<mem1>",<used>,<total>,...` for `AT+CPMS?`; the numbers alone answer
    /// `AT+CPMS=...`.
    pub fn usage(&self, with_names: bool) -> String {
        let used = self.slots().len();
        if with_names {
            let m = self.selected;
            format!("+CPMS: \"{m}\",{used},{CAPACITY},\"SM\",0,{CAPACITY},\"SM\",0,{CAPACITY}")
        } else {
            format!("+CPMS: {used},{CAPACITY},0,{CAPACITY},0,{CAPACITY}")
        }
    }

    /// Entries per memory, for tests.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.memories
            .iter()
            .map(|(m, slots)| ((*m).to_owned(), slots.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stat: u8) -> StoredPdu {
        StoredPdu {
            stat,
            pdu: vec![0x00, 0x06, 0x01],
        }
    }

    #[test]
    fn store_select_read_list_delete() {
        let mut storage = Storage::default();
        assert_eq!(storage.store("SR", entry(0)), Some(1));
        assert_eq!(storage.store("sr", entry(0)), Some(2));
        assert_eq!(storage.store("XX", entry(0)), None);
        assert_eq!(storage.read(1), Err(INVALID_INDEX), "SM is selected");
        storage.select("SR").unwrap();
        assert_eq!(storage.read(1).map(|e| e.stat), Ok(0));
        assert_eq!(storage.list(0).len(), 1, "read once, it is read");
        assert_eq!(storage.list(4).len(), 2);
        storage.delete(1);
        assert_eq!(storage.store("SR", entry(0)), Some(1), "freed index reused");
        assert_eq!(entry(0).tpdu_len(), 2);
        assert_eq!(storage.select("ZZ"), Err(UNKNOWN_MEMORY));
        for _ in 2..CAPACITY {
            storage.store("SR", entry(3));
        }
        assert_eq!(storage.store("SR", entry(3)), None, "full");
        assert_eq!(storage.counts()["SR"], CAPACITY);
    }
}
