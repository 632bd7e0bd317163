//! What pages read: a user's grants, one grant, the admin console's grant pages, counts
//! and audit pages. Thin pass-throughs to the stores, so that no page holds a store and
//! every write stays behind a use case.

use super::Broker;
use crate::Error;
use crate::domain::{AuditEvent, Grant, GrantId, Subject};
use crate::store::admin::{
    AuditCursor, AuditFilter, AuditPage, GrantCount, GrantCursor, GrantFilter, GrantPage,
};

impl Broker {
    /// Every grant of `subject`, any status.
    pub async fn grants_of(&self, subject: &Subject) -> Result<Vec<Grant>, Error> {
        Ok(self.stores.grants.grants_of_subject(subject).await?)
    }

    /// One grant by id, whoever it belongs to (admin pages; users go through `own_grant`).
    pub async fn grant(&self, id: &GrantId) -> Result<Option<Grant>, Error> {
        Ok(self.stores.grants.grant(id).await?)
    }

    /// A page of grants under `filter`, newest first.
    pub async fn list_grants(
        &self,
        filter: &GrantFilter,
        after: Option<&GrantCursor>,
        limit: usize,
    ) -> Result<GrantPage, Error> {
        Ok(self.stores.admin.list_grants(filter, after, limit).await?)
    }

    /// Grants by status, provider and service.
    pub async fn count_grants(&self) -> Result<Vec<GrantCount>, Error> {
        Ok(self.stores.admin.count_grants().await?)
    }

    /// The newest `limit` audit events about one grant.
    pub async fn audit_of_grant(
        &self,
        id: &GrantId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, Error> {
        Ok(self.stores.admin.audit_of_grant(id, limit).await?)
    }

    /// A page of the audit log under `filter`, newest first.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        before: Option<&AuditCursor>,
        limit: usize,
    ) -> Result<AuditPage, Error> {
        Ok(self.stores.admin.audit_page(filter, before, limit).await?)
    }
}
