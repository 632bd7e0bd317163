//! Group commit for the embedded store: one writer thread owns every write transaction.
//! Callers queue a write (a closure over the open transaction) and wait; the writer runs
//! everything queued so far in one redb transaction and commits it once (one fsync), then
//! answers each caller. Under load one disk flush serves many requests; alone, a write
//! costs what it did before (one transaction, one commit). Writes to the audit log and
//! grants' activity only (redemptions) are queued as such: a run of them shares those
//! tables, opened once ([`Hot`]), instead of opening three tables each.
//!
//! Invariants:
//! - **Durable before acknowledged**: a caller hears `Ok` only after the transaction that
//!   holds its write committed with `Durability::Immediate`. If the commit (or any write in
//!   the batch) fails at the database level, the whole batch is rolled back and every
//!   caller in it hears `Unavailable`: nothing half-written is ever acknowledged or kept.
//! - **An operation that fails on its own leaves no trace**: operations may only fail
//!   with [`Fail::Decode`] *before* their first write (they read and judge first, then
//!   write), so the rest of the batch commits unaffected. A database error from any
//!   operation poisons the batch (above).
//! - **Order**: operations run in the order they were queued, each seeing the writes of
//!   those before it, exactly as if each had its own transaction in that order.
//! - Readers never see a batch before it is durable (redb publishes a commit only once it
//!   is on disk), so nothing a reader acts on can be lost in a crash.
//! - A panic inside an operation is caught: its batch is rolled back and answered
//!   `Unavailable`, and the writer carries on.
//! - The writer holds the database only while a store handle exists: the last handle's
//!   drop closes the queue and joins the thread, so the file can be opened again at once.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;

use redb::{Database, WriteTransaction};

use super::activity::Hot;
use super::tables::Fail;
use crate::store::{StoreError, StoreResult};

/// Most operations in one transaction; more wait for the next one.
const MAX_BATCH: usize = 1024;

/// What an operation hands back once it ran: whether it poisoned the transaction (a
/// database error), and how to answer its caller given the commit's outcome.
type Ran = (bool, Box<dyn FnOnce(Result<(), StoreError>) + Send>);

/// A queued write: one that opens its own tables, or one to the audit log and grants'
/// activity only, which runs on [`Hot`] tables opened once for every such write in a row.
enum Op {
    Tx(Box<dyn FnOnce(&WriteTransaction) -> Ran + Send>),
    Hot(Box<dyn for<'t> FnOnce(&mut Hot<'t>) -> Ran + Send>),
}

/// The queue to the writer thread. Dropping the last clone stops the thread.
pub(super) struct Writer {
    queue: Option<mpsc::Sender<Op>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer(..)")
    }
}

impl Writer {
    pub(super) fn start(db: Arc<Database>) -> StoreResult<Self> {
        let (queue, ops) = mpsc::channel::<Op>();
        let thread = std::thread::Builder::new()
            .name("redb-writer".into())
            .spawn(move || write_forever(&db, &ops))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Runs `f` in the next batch's transaction; returns its result once that batch is
    /// durable. `f` must not fail with `Fail::Decode` after it wrote anything.
    pub(super) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, Fail> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let op = Op::Tx(Box::new(move |tx| ran(f(tx), answer)));
        self.queue(op, answered).await
    }

    /// [`Writer::write`] for a write to the [`Hot`] tables only.
    pub(super) async fn write_hot<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&mut Hot<'t>) -> Result<T, Fail> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let op = Op::Hot(Box::new(move |hot| ran(f(hot), answer)));
        self.queue(op, answered).await
    }

    async fn queue<T>(
        &self,
        op: Op,
        answered: tokio::sync::oneshot::Receiver<StoreResult<T>>,
    ) -> StoreResult<T> {
        let queue = self
            .queue
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("store writer stopped".into()))?;
        queue
            .send(op)
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?;
        // A dropped answer means the operation panicked or never ran.
        answered
            .await
            .map_err(|_| StoreError::Unavailable("store write failed".into()))?
    }
}

/// An operation's result, and its caller's answer once the commit's outcome is known.
fn ran<T: Send + 'static>(
    result: Result<T, Fail>,
    answer: tokio::sync::oneshot::Sender<StoreResult<T>>,
) -> Ran {
    let poisoned = matches!(result, Err(Fail::Db(_)));
    let reply = move |committed: Result<(), StoreError>| {
        let outcome = match (result, committed) {
            (Err(e), _) => Err(StoreError::from(e)),
            (Ok(_), Err(e)) => Err(e),
            (Ok(value), Ok(())) => Ok(value),
        };
        let _ = answer.send(outcome);
    };
    (poisoned, Box::new(reply))
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has answered what was queued.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_forever(db: &Database, ops: &mpsc::Receiver<Op>) {
    // Ends once every sender is gone and what they queued is answered.
    while let Ok(first) = ops.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        commit_batch(db, batch);
    }
}

/// One transaction for the whole batch; every caller is answered after the commit.
fn commit_batch(db: &Database, batch: Vec<Op>) {
    let tx = match db.begin_write() {
        Ok(tx) => tx,
        Err(e) => {
            // Dropping the operations unrun drops their answer channels: each caller
            // hears `Unavailable`.
            tracing::warn!(error = %e, ops = batch.len(), "store writer could not open a transaction");
            return;
        }
    };
    let mut replies = Vec::with_capacity(batch.len());
    let mut poisoned = false;
    // The hot tables stay open from the first hot write of a run to the next other
    // write, which may open them itself.
    let mut hot: Option<Hot<'_>> = None;
    for op in batch {
        let outcome = match op {
            Op::Tx(op) => {
                drop(hot.take());
                catch_unwind(AssertUnwindSafe(|| op(&tx)))
            }
            Op::Hot(op) => match hot.take().map_or_else(|| Hot::open(&tx), Ok) {
                Ok(opened) => {
                    let tables = hot.insert(opened);
                    catch_unwind(AssertUnwindSafe(|| op(tables)))
                }
                // Dropped unrun, the operation's caller hears `Unavailable`.
                Err(_) => {
                    poisoned = true;
                    continue;
                }
            },
        };
        match outcome {
            Ok((bad, reply)) => {
                poisoned |= bad;
                replies.push(reply);
            }
            Err(_) => poisoned = true,
        }
    }
    drop(hot);
    let committed = if poisoned {
        let _ = tx.abort();
        Err(StoreError::Unavailable(
            "store write failed; nothing in its batch was kept".into(),
        ))
    } else {
        tx.commit()
            .map_err(|e| StoreError::Unavailable(format!("store commit: {e}")))
    };
    for reply in replies {
        reply(committed.as_ref().map(|_| ()).map_err(clone_error));
    }
}

fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
    }
}

#[cfg(test)]
mod tests {
    use redb::TableDefinition;

    use super::*;

    const T: TableDefinition<&str, u64> = TableDefinition::new("t");

    fn writer() -> (Writer, Arc<Database>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
        (Writer::start(db.clone()).unwrap(), db, dir)
    }

    fn read(db: &Database, key: &str) -> Option<u64> {
        use redb::ReadableDatabase;
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(T).ok()?;
        t.get(key).unwrap().map(|v| v.value())
    }

    #[tokio::test]
    async fn concurrent_writes_are_all_kept_and_readable_once_acknowledged() {
        let (w, db, _dir) = writer();
        let w = Arc::new(w);
        let tasks: Vec<_> = (0..50u64)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move {
                    w.write(move |tx| {
                        tx.open_table(T)?.insert(format!("k{i}").as_str(), i)?;
                        Ok(i)
                    })
                    .await
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let i = i as u64;
            assert_eq!(t.await.unwrap().unwrap(), i);
            assert_eq!(read(&db, &format!("k{i}")), Some(i));
        }
    }

    /// Audit events appended by hot writes and by ordinary ones, queued at once so that
    /// they share batches, each get their own number: a run of hot writes reads the log's
    /// end again after any other write.
    #[tokio::test]
    async fn hot_and_other_writes_interleaved_keep_every_audit_event() {
        use crate::store::embedded::tables::AUDIT;
        let (w, db, _dir) = writer();
        let w = Arc::new(w);
        let tasks: Vec<_> = (0..40u8)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move {
                    if i % 3 == 0 {
                        w.write(move |tx| {
                            let mut audit = tx.open_table(AUDIT)?;
                            let next = audit.last()?.map_or(0, |(k, _)| k.value() + 1);
                            audit.insert(next, [i].as_slice())?;
                            Ok(())
                        })
                        .await
                    } else {
                        w.write_hot(move |hot| hot.append(&[i], None, None)).await
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        use redb::{ReadableDatabase, ReadableTable};
        let tx = db.begin_read().unwrap();
        let audit = tx.open_table(AUDIT).unwrap();
        let mut seen: Vec<(u64, u8)> = audit
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value(), v.value()[0])
            })
            .collect();
        assert_eq!(
            seen.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            (0..40).collect::<Vec<_>>()
        );
        seen.sort_by_key(|(_, v)| *v);
        assert_eq!(
            seen.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            (0..40).collect::<Vec<_>>(),
            "no event overwrote another"
        );
    }

    #[tokio::test]
    async fn an_operation_that_fails_on_its_own_leaves_the_others_alone() {
        let (w, db, _dir) = writer();
        let refused = w.write(|_| Err::<(), _>(Fail::Decode("unreadable".into())));
        let kept = w.write(|tx| {
            tx.open_table(T)?.insert("kept", 1)?;
            Ok(())
        });
        let (refused, kept) = tokio::join!(refused, kept);
        assert!(matches!(refused, Err(StoreError::Corrupt(_))));
        kept.unwrap();
        assert_eq!(read(&db, "kept"), Some(1));
    }

    #[tokio::test]
    async fn a_panicking_operation_is_answered_and_the_writer_carries_on() {
        let (w, db, _dir) = writer();
        let failed = w
            .write(|tx| -> Result<(), Fail> {
                tx.open_table(T)?.insert("never", 1)?;
                panic!("a bug in an operation")
            })
            .await;
        assert!(matches!(failed, Err(StoreError::Unavailable(_))));
        assert_eq!(read(&db, "never"), None, "its write was rolled back");
        w.write(|tx| {
            tx.open_table(T)?.insert("after", 2)?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(read(&db, "after"), Some(2));
    }
}
