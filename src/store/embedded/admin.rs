//! The admin console's queries ([`AdminQueries`]) on the embedded store: grant pages
//! from the indexes of [`super::indexes`], grant counts, a grant's trail (from
//! [`super::activity`]) and audit pages. Reads only.

use redb::{ReadableDatabase, ReadableTable};

use super::activity::{self, View};
use super::db::EmbeddedStore;
use super::indexes::{GRANT_COUNTS, GRANT_INDEX, parse_position, position, prefix_for};
use super::tables::{AUDIT, GRANTS, decode};
use crate::domain::{AuditEvent, GrantId};
use crate::store::StoreResult;
use crate::store::admin::{
    AUDIT_PER_GRANT, AUDIT_SCAN_BUDGET, AdminQueries, AuditCursor, AuditFilter, AuditPage,
    GrantCount, GrantCursor, GrantFilter, GrantPage, SCAN_BUDGET, parse_count_key,
};

#[async_trait::async_trait]
impl AdminQueries for EmbeddedStore {
    async fn list_grants(
        &self,
        filter: &GrantFilter,
        after: Option<&GrantCursor>,
        limit: usize,
    ) -> StoreResult<GrantPage> {
        let filter = filter.clone();
        let prefix = prefix_for(&filter.index());
        let after = after.map(|c| position(c.created_ms, c.id.as_str()));
        self.run(move |db| {
            let tx = db.begin_read()?;
            let index = tx.open_table(GRANT_INDEX)?;
            let (grants, uses) = (tx.open_table(GRANTS)?, View::open(&tx)?);
            let start = match &after {
                Some(pos) => format!("{prefix}{pos}"),
                None => prefix.clone(),
            };
            let (mut out, mut examined, mut last, mut more) = (Vec::new(), 0, None, false);
            for entry in index.range(start.as_str()..)? {
                let (key, _) = entry?;
                let Some(rest) = key.value().strip_prefix(prefix.as_str()) else {
                    break;
                };
                if after.as_deref() == Some(rest) {
                    continue;
                }
                if out.len() >= limit || examined >= SCAN_BUDGET {
                    more = true;
                    break;
                }
                examined += 1;
                let Some(cursor) = parse_position(rest) else {
                    continue;
                };
                if let Some(g) = uses.read_grant(&grants, cursor.id.as_str())?
                    && filter.matches(&g)
                {
                    out.push(g);
                }
                last = Some(cursor);
            }
            Ok(GrantPage {
                grants: out,
                next: if more { last } else { None },
            })
        })
        .await
    }

    async fn count_grants(&self) -> StoreResult<Vec<GrantCount>> {
        self.run(|db| {
            let tx = db.begin_read()?;
            let mut out = Vec::new();
            for entry in tx.open_table(GRANT_COUNTS)?.iter()? {
                let (k, v) = entry?;
                if let Some(c) = parse_count_key(k.value(), v.value()) {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn audit_of_grant(&self, id: &GrantId, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let (id, limit) = (id.as_str().to_owned(), limit.min(AUDIT_PER_GRANT));
        self.run(move |db| activity::trail(&db.begin_read()?, &id, limit))
            .await
    }

    async fn audit_page(
        &self,
        filter: &AuditFilter,
        before: Option<&AuditCursor>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        let filter = filter.clone();
        let before: Option<u64> = before.and_then(|c| c.0.parse().ok());
        self.run(move |db| {
            let tx = db.begin_read()?;
            let audit = tx.open_table(AUDIT)?;
            let (mut out, mut examined, mut last, mut more) = (Vec::new(), 0, None, false);
            for entry in audit.range(..before.unwrap_or(u64::MAX))?.rev() {
                if out.len() >= limit || examined >= AUDIT_SCAN_BUDGET {
                    more = true;
                    break;
                }
                examined += 1;
                let (seq, v) = entry?;
                let e: AuditEvent = decode(v.value())?;
                if filter.matches(&e) {
                    out.push(e);
                }
                last = Some(seq.value());
            }
            Ok(AuditPage {
                events: out,
                next: if more {
                    last.map(|s| AuditCursor(s.to_string()))
                } else {
                    None
                },
            })
        })
        .await
    }
}
