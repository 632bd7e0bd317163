//! The admin queries on the embedded store. Three tables, written in the transactions that
//! write the records they describe (so they never disagree with them):
//!
//! - `grant_index`: `<dim>␟<value>␟<rev ms>␟<grant id>` → `()`, for `dim` `all` (empty
//!   value), `u` (subject), `p` (provider), `s` (service). `rev ms` is `u64::MAX` minus the
//!   creation millisecond, zero-padded, so ascending key order is newest first and a page
//!   is one range read from the cursor.
//! - `grant_counts`: `status|provider|service` → count.
//! - `audit_by_grant`: `<grant id>␟<event seq>` → `()`, the audit trail of one grant.
//!
//! A database written before these tables existed is indexed once, when it is opened.

use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};

use super::activity::View;
use super::{AUDIT, EmbeddedStore, Fail, GRANTS, SEP, decode};
use crate::domain::{AuditEvent, Grant, GrantId, GrantStatus};
use crate::store::StoreResult;
use crate::store::admin::{
    AUDIT_PER_GRANT, AUDIT_SCAN_BUDGET, AdminQueries, AuditCursor, AuditFilter, AuditPage,
    GrantCount, GrantCursor, GrantFilter, GrantPage, IndexChoice, SCAN_BUDGET, count_key,
    created_ms, parse_count_key,
};

const GRANT_INDEX: TableDefinition<&str, ()> = TableDefinition::new("grant_index");
const GRANT_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("grant_counts");

/// Creates the tables; indexes every grant once if the index is new.
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), Fail> {
    let fresh = tx.open_table(GRANT_INDEX)?.is_empty()?;
    tx.open_table(GRANT_COUNTS)?;
    if fresh {
        let grants: Vec<Grant> = {
            let t = tx.open_table(GRANTS)?;
            let mut all = Vec::new();
            for entry in t.iter()? {
                // An unreadable record stays out of the index, as it stays out of every list.
                if let Ok(g) = decode::<Grant>(entry?.1.value()) {
                    all.push(g);
                }
            }
            all
        };
        for g in &grants {
            index_new_grant(tx, g)?;
        }
    }
    Ok(())
}

fn rev_ms(ms: i64) -> String {
    format!("{:020}", u64::MAX - u64::try_from(ms).unwrap_or(0))
}

fn prefix(dim: &str, value: &str) -> String {
    format!("{dim}{SEP}{value}{SEP}")
}

fn prefix_for(choice: &IndexChoice<'_>) -> String {
    match choice {
        IndexChoice::All => prefix("all", ""),
        IndexChoice::Subject(s) => prefix("u", s.as_str()),
        IndexChoice::Provider(p) => prefix("p", p.as_str()),
        IndexChoice::Service(s) => prefix("s", s.as_str()),
    }
}

fn position(ms: i64, id: &str) -> String {
    format!("{}{SEP}{id}", rev_ms(ms))
}

fn parse_position(rest: &str) -> Option<GrantCursor> {
    let (rev, id) = rest.split_once(SEP)?;
    let rev: u64 = rev.parse().ok()?;
    Some(GrantCursor {
        created_ms: i64::try_from(u64::MAX - rev).ok()?,
        id: GrantId::parse(id).ok()?,
    })
}

/// Index entries and the count of a grant just stored.
pub(super) fn index_new_grant(tx: &WriteTransaction, g: &Grant) -> Result<(), Fail> {
    let pos = position(created_ms(g), g.id.as_str());
    let mut index = tx.open_table(GRANT_INDEX)?;
    for p in [
        prefix("all", ""),
        prefix("u", g.subject.as_str()),
        prefix("p", g.provider.as_str()),
        prefix("s", g.service.as_str()),
    ] {
        index.insert(format!("{p}{pos}").as_str(), ())?;
    }
    add_count(tx, &count_key(g.status, &g.provider, &g.service), 1)
}

/// Moves a grant's count from its `before` status to its current one.
pub(super) fn recount(tx: &WriteTransaction, g: &Grant, before: GrantStatus) -> Result<(), Fail> {
    if before != g.status {
        add_count(tx, &count_key(before, &g.provider, &g.service), -1)?;
        add_count(tx, &count_key(g.status, &g.provider, &g.service), 1)?;
    }
    Ok(())
}

fn add_count(tx: &WriteTransaction, key: &str, delta: i64) -> Result<(), Fail> {
    let mut t = tx.open_table(GRANT_COUNTS)?;
    let current = t.get(key)?.map_or(0, |v| v.value());
    let next = current.saturating_add_signed(delta);
    if next == 0 {
        t.remove(key)?;
    } else {
        t.insert(key, next)?;
    }
    Ok(())
}

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
        let activities = self.activities.clone();
        self.run(move |db| {
            let tx = db.begin_read()?;
            let index = tx.open_table(GRANT_INDEX)?;
            let (grants, uses) = (tx.open_table(GRANTS)?, View::open(&tx, &activities)?);
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
        let activities = self.activities.clone();
        self.run(move |db| super::activity::trail(&db.begin_read()?, &activities, &id, limit))
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
