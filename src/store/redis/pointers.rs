//! A bounded in-process memo of pointer keys (`grant-id:…`, `handle:…` → elicitation id),
//! so a redemption does not spend a round trip re-reading a pointer it has followed before.
//!
//! Sound because pointers are never changed once written (see the module header of
//! `redis/mod.rs`): a pointer is only ever created, or removed again when its settlement
//! lost. A remembered pointer that was removed, or whose Redis data is gone, leads to a
//! grant record that does not confirm it, and every reader already answers "none" then:
//! the memo can only save a lookup, never change an answer. Only pointers that were found
//! are remembered (never an absence). When full, the memo starts over.

use std::collections::HashMap;
use std::sync::Mutex;

/// Most pointers remembered (about 100 bytes each).
const CAPACITY: usize = 200_000;

#[derive(Debug, Default)]
pub(super) struct Pointers {
    // Held only for a map lookup or insert, never across an await.
    seen: Mutex<HashMap<String, String>>,
}

impl Pointers {
    pub(super) fn get(&self, pointer: &str) -> Option<String> {
        self.seen.lock().ok()?.get(pointer).cloned()
    }

    pub(super) fn remember(&self, pointer: String, elicitation: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= CAPACITY {
                seen.clear();
            }
            seen.insert(pointer, elicitation.to_owned());
        }
    }
}
