//! In-process locks for the embedded backend. An embedded store is only ever opened by one
//! process (redb locks its file), so a map in memory is as strong as a lock needs to be:
//! no other broker instance can exist to contend with. Expired entries are replaced on
//! the next attempt; release compares the token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{LockToken, StoreError, StoreResult};

#[derive(Debug, Default)]
pub struct LocalLocks {
    held: Mutex<HashMap<String, (LockToken, Instant)>>,
}

impl LocalLocks {
    pub fn try_lock(&self, name: &str, ttl: Duration) -> StoreResult<Option<LockToken>> {
        let mut held = self.lock_map()?;
        let now = Instant::now();
        held.retain(|_, (_, until)| *until > now);
        if held.contains_key(name) {
            return Ok(None);
        }
        let token = LockToken::generate();
        held.insert(name.to_owned(), (token.clone(), now + ttl));
        Ok(Some(token))
    }

    pub fn unlock(&self, name: &str, token: &LockToken) -> StoreResult<bool> {
        let mut held = self.lock_map()?;
        match held.get(name) {
            Some((t, until)) if t == token && *until > Instant::now() => {
                held.remove(name);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn lock_map(
        &self,
    ) -> StoreResult<std::sync::MutexGuard<'_, HashMap<String, (LockToken, Instant)>>> {
        self.held
            .lock()
            .map_err(|_| StoreError::Unavailable("lock table poisoned".into()))
    }
}
