//! The newest record of each asset this process is working on, with one turn per asset.
//!
//! When an asset's analyses complete together, their handlers each read the record, do their
//! work, then commit: without coordination all but one lose the conditional write and re-read.
//! Handlers of one process instead take the asset's turn around the commit and start from the
//! record the previous holder committed when it is newer than the one they read, so only a
//! writer in another process can make them lose. The conditional write still decides every
//! race; this only saves the lost attempts (a failed write and a re-read each).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use cuepoint_core::asset::Asset;
use cuepoint_core::domain::AssetId;

/// Assets remembered at most (the oldest is forgotten first). Enough for every asset in flight
/// in one process; forgetting one only costs a lost write if it was still being worked on.
const KEPT: usize = 512;

/// One asset's turn, holding the newest record known for it.
pub type Slot = Arc<tokio::sync::Mutex<Option<Asset>>>;

#[derive(Default)]
pub struct LatestRecords {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<AssetId, Slot>,
    /// Insertion order, for forgetting the oldest.
    order: VecDeque<AssetId>,
}

impl LatestRecords {
    /// The turn of `id` (lock it around the commit).
    pub fn slot(&self, id: &AssetId) -> Slot {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = g.slots.get(id) {
            return Arc::clone(s);
        }
        while g.order.len() >= KEPT {
            if let Some(old) = g.order.pop_front() {
                g.slots.remove(&old);
            }
        }
        let s = Slot::default();
        g.slots.insert(id.clone(), Arc::clone(&s));
        g.order.push_back(id.clone());
        s
    }

    /// Forget `id` (its record reached a state where no more handlers race on it).
    pub fn forget(&self, id: &AssetId) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.slots.remove(id).is_some() {
            g.order.retain(|o| o != id);
        }
    }

    /// Assets remembered now.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .slots
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
