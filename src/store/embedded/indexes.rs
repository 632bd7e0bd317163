//! The admin console's tables on the embedded store, written in the transactions that
//! write the records they describe (so they never disagree with them); read by
//! [`super::admin`]:
//!
//! - `grant_index`: `<dim>␟<value>␟<rev ms>␟<grant id>` → `()`, for `dim` `all` (empty
//!   value), `u` (subject), `p` (provider), `s` (service). `rev ms` is `u64::MAX` minus the
//!   creation millisecond, zero-padded, so ascending key order is newest first and a page
//!   is one range read from the cursor.
//! - `grant_counts`: `status|provider|service` → count.
//!
//! A database written before these tables existed is indexed once, when it is opened.
//! (A grant's audit trail is kept by [`super::activity`].)

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use super::tables::{Fail, GRANTS, SEP, decode};
use crate::domain::{Grant, GrantId, GrantStatus};
use crate::store::admin::{GrantCursor, IndexChoice, count_key, created_ms};

pub(super) const GRANT_INDEX: TableDefinition<&str, ()> = TableDefinition::new("grant_index");
pub(super) const GRANT_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("grant_counts");

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

pub(super) fn prefix_for(choice: &IndexChoice<'_>) -> String {
    match choice {
        IndexChoice::All => prefix("all", ""),
        IndexChoice::Subject(s) => prefix("u", s.as_str()),
        IndexChoice::Provider(p) => prefix("p", p.as_str()),
        IndexChoice::Service(s) => prefix("s", s.as_str()),
    }
}

pub(super) fn position(ms: i64, id: &str) -> String {
    format!("{}{SEP}{id}", rev_ms(ms))
}

pub(super) fn parse_position(rest: &str) -> Option<GrantCursor> {
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
