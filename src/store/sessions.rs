//! A cloneable, type-erased tower-sessions store, so the session layer is chosen at run
//! time together with the rest of the backend.

use std::sync::Arc;

use async_trait::async_trait;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::Result;

#[derive(Clone, Debug)]
pub struct SharedSessionStore(Arc<dyn SessionStore>);

impl SharedSessionStore {
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Self(store)
    }
}

#[async_trait]
impl SessionStore for SharedSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.0.create(record).await
    }
    async fn save(&self, record: &Record) -> Result<()> {
        self.0.save(record).await
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.0.load(id).await
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        self.0.delete(id).await
    }
}
