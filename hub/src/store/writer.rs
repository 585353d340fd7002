//! Group commit: one thread owns the store's connection and runs every job
//! sent to it. Jobs that queue up while a commit is in progress run together
//! in the next SQLite transaction, so one fsync makes a whole batch durable.
//! Each job runs in its own savepoint (a failing job rolls back alone), and no
//! job hears its result before the commit that holds it has reached the disk —
//! durability is exactly what `synchronous=FULL` gives a lone transaction.
//! After each commit the writer tells its subscribers what changed
//! ([`super::Change`]); a job rolled back tells nothing.
//! The queue of jobs is bounded (2 048 jobs): a flood waits for room
//! instead of growing the hub's memory.
//! After each commit, and still before any job hears its result, the
//! history's witness ([`super::witness`]) is written: one more synced write
//! of 4 KiB per commit, never one per job. A second thread writes it, tells
//! the changes and hands the jobs their results, while the store thread
//! already runs the next batch: the two syncs overlap instead of adding up,
//! and the witness still never falls behind what anyone was told.

use tokio::sync::{broadcast, mpsc, oneshot};

use super::witness::{Witness, WitnessFile};
use super::{Change, Store, StoreError};

/// The most jobs one commit carries; bounds how long the first one waits.
const MAX_BATCH: usize = 512;

/// The most jobs waiting for the writer: past it, whoever sends waits (the
/// link's permits bound the requests in flight; this bounds the rest).
const MAX_QUEUED: usize = 2048;

/// Changes kept for a subscriber that is behind; one further behind hears
/// that it lagged (and reads the store again).
const CHANGES_KEPT: usize = 1024;

trait Job: Send {
    /// Runs the job inside the open transaction and keeps its result; false
    /// when it failed.
    fn run(&mut self, store: &mut Store) -> bool;
    /// Hands the kept result over, or `failed` when the commit did not happen.
    fn deliver(self: Box<Self>, failed: Option<&Failed>);
}

struct Typed<R, F> {
    work: Option<F>,
    result: Option<Result<R, StoreError>>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<R, F> Job for Typed<R, F>
where
    R: Send,
    F: FnOnce(&mut Store) -> Result<R, StoreError> + Send,
{
    fn run(&mut self, store: &mut Store) -> bool {
        if let Some(work) = self.work.take() {
            self.result = Some(work(store));
        }
        matches!(self.result, Some(Ok(_)))
    }

    fn deliver(self: Box<Self>, failed: Option<&Failed>) {
        let result = match (failed, self.result) {
            (Some(f), _) if f.storage => Err(StoreError::Storage(f.why.clone())),
            (Some(f), _) => Err(StoreError::Commit(f.why.clone())),
            (None, Some(result)) => result,
            (None, None) => Err(StoreError::Commit("the job did not run".into())),
        };
        let _ = self.reply.send(result);
    }
}

/// Why a commit did not happen; `storage` when the disk refused it.
struct Failed {
    why: String,
    storage: bool,
}

impl From<rusqlite::Error> for Failed {
    fn from(e: rusqlite::Error) -> Failed {
        Failed {
            storage: super::disk_refused(&e),
            why: e.to_string(),
        }
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Failed {
        Failed {
            storage: e.is_storage(),
            why: e.to_string(),
        }
    }
}

/// A cloneable handle to the store thread.
#[derive(Clone)]
pub struct StoreHandle {
    jobs: mpsc::Sender<Box<dyn Job>>,
    changes: broadcast::Sender<Change>,
}

impl StoreHandle {
    /// Moves `store` onto its own thread, which keeps the history's witness:
    /// a database found behind it is logged and refuses sales
    /// ([`Store::unfit_for_sales`]) until the owner deals with it.
    pub fn spawn(mut store: Store) -> std::io::Result<StoreHandle> {
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>(MAX_QUEUED);
        let (changes, _) = broadcast::channel(CHANGES_KEPT);
        store.changes.start();
        let mut keeper = Keeper {
            file: WitnessFile::open(&store.data_dir())?,
            failing: false,
        };
        match store.history_lost() {
            Ok(Some(lost)) => {
                tracing::error!(missing = %lost, "history lost: sales are refused until the owner restores a backup or accepts the loss on the troubleshooting page; sales left pending are reversed only then, after the checkouts' records had their say")
            }
            Ok(None) => keeper.keep(witness_of(&store)),
            Err(e) => tracing::error!(error = %e, "cannot compare the history with its witness"),
        }
        let told = changes.clone();
        // One commit may wait for its witness while the next one runs.
        let (committed, witnessed) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("witness".into())
            .spawn(move || witness(keeper, witnessed, told))?;
        std::thread::Builder::new()
            .name("store".into())
            .spawn(move || run(store, queue, committed))?;
        Ok(StoreHandle { jobs, changes })
    }

    /// What each commit from now on changed, once it is on disk.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Runs `work` on the store; resolves once its transaction is durable.
    pub async fn call<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Typed {
            work: Some(work),
            result: None,
            reply,
        };
        self.jobs
            .send(Box::new(job))
            .await
            .map_err(|_| StoreError::Commit("the store thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Commit("the store thread has stopped".into()))?
    }
}

/// A failed job leaves no trace, whatever it wrote before failing. `Err` when
/// SQLite rolled the whole transaction back under it (it does on a full disk
/// or an I/O error): then no job of the batch is recorded.
fn run_in_savepoint(store: &mut Store, job: &mut dyn Job) -> Result<(), Failed> {
    if let Err(e) = super::exec(store.connection(), "SAVEPOINT job", []) {
        tracing::error!(error = %e, "cannot open a savepoint");
        return Err(Failed::from(e));
    }
    let mark = store.changes.mark();
    let ran = job.run(store);
    if !ran {
        store.changes.roll_back_to(mark);
    }
    if store.connection().is_autocommit() {
        return Err(Failed {
            why: "SQLite rolled the transaction back (disk full or failing)".into(),
            storage: true,
        });
    }
    let undo = if ran {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    if let Err(e) = store.connection().execute_batch(undo) {
        tracing::error!(error = %e, "cannot close a savepoint");
    }
    Ok(())
}

/// The store thread's witness file.
struct Keeper {
    file: WitnessFile,
    /// The last write failed (said once, not at every commit).
    failing: bool,
}

/// What the history now is, to be written; `Ok(None)` when history was
/// lost: then the witness keeps what was lost until the owner deals with it.
fn witness_of(store: &Store) -> Result<Option<Witness>, String> {
    if !matches!(store.history_lost(), Ok(None)) {
        return Ok(None);
    }
    Witness::of(store.connection())
        .map(Some)
        .map_err(|e| e.to_string())
}

impl Keeper {
    /// Writes `witness` and syncs it.
    fn keep(&mut self, witness: Result<Option<Witness>, String>) {
        let written = match witness {
            Ok(None) => return,
            Ok(Some(w)) => self.file.write(&w).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match written {
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::error!(error = %e, "cannot write the history's witness: a loss below the database would go unnoticed");
            }
            Err(_) => {}
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!("the history's witness is written again");
            }
            Ok(()) => {}
        }
    }
}

/// A batch the store thread is done with, for the witness thread.
struct Committed {
    batch: Vec<Box<dyn Job>>,
    /// Why nothing in it was recorded; `None` when it committed.
    failed: Option<Failed>,
    /// The witness to write before anyone hears of it (after a commit).
    witness: Result<Option<Witness>, String>,
    changes: Vec<Change>,
}

/// The witness thread: writes each commit's witness, then tells its
/// changes and hands its jobs their results, in the order of the commits.
fn witness(
    mut keeper: Keeper,
    witnessed: std::sync::mpsc::Receiver<Committed>,
    told: broadcast::Sender<Change>,
) {
    for done in witnessed {
        if done.failed.is_none() {
            keeper.keep(done.witness);
            // Nobody listening is fine: the changes are in the store.
            done.changes
                .into_iter()
                .for_each(|change| drop(told.send(change)));
        }
        for job in done.batch {
            job.deliver(done.failed.as_ref());
        }
    }
}

fn run(
    mut store: Store,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    committed: std::sync::mpsc::SyncSender<Committed>,
) {
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let failed = match super::exec(store.connection(), "BEGIN IMMEDIATE", []) {
            Err(e) => Some(Failed::from(e)),
            Ok(_) => match batch
                .iter_mut()
                .try_for_each(|job| run_in_savepoint(&mut store, job.as_mut()))
            {
                Err(failed) => {
                    let _ = store.connection().execute_batch("ROLLBACK");
                    Some(failed)
                }
                Ok(()) => match store
                    .append_outbox()
                    .map_err(Failed::from)
                    .and_then(|()| super::exec(store.connection(), "COMMIT", []).map_err(Failed::from))
                {
                    Ok(_) => None,
                    Err(failed) => {
                        let _ = store.connection().execute_batch("ROLLBACK");
                        Some(failed)
                    }
                },
            },
        };
        let changes = store.changes.take();
        let witness = match &failed {
            Some(f) => {
                tracing::error!(error = %f.why, jobs = batch.len(), "store commit failed; nothing in it was recorded");
                Ok(None)
            }
            None => witness_of(&store),
        };
        let done = Committed {
            batch,
            failed,
            witness,
            changes,
        };
        if committed.send(done).is_err() {
            // The witness thread is gone (it panicked): no commit can be
            // witnessed any more, so the store stops as if this thread had
            // died; every caller waiting hears that the store has stopped.
            tracing::error!("the store's witness thread has stopped: the store stops");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tallybox_core::card::{test_cards, EntryMode};
    use tallybox_core::money::Amount;
    use tallybox_core::protocol::{RequestId, TerminalId, TxnKind};

    use crate::store::{witness, NewTxn};

    fn begin(minor: u64) -> impl FnOnce(&mut Store) -> Result<i64, StoreError> + Send {
        move |s| {
            let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
            let (rid, tid) = (RequestId::new(), TerminalId::parse("T1").unwrap());
            let new = NewTxn {
                request_id: &rid,
                terminal_id: &tid,
                kind: TxnKind::Sale,
                amount: Amount::from_minor(minor).unwrap(),
                currency: "CNY",
                card: &card,
                original_id: None,
                split: None,
            };
            Ok(s.begin(&new)?.id)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_jobs_all_commit_and_the_chain_holds() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::spawn(Store::open(dir.path()).unwrap()).unwrap();
        let jobs: Vec<_> = (1..=200u64)
            .map(|i| {
                tokio::spawn({
                    let h = handle.clone();
                    async move { h.call(begin(i)).await }
                })
            })
            .collect();
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        // Read back on a fresh connection: everything is on disk.
        let reader = Store::open(dir.path()).unwrap();
        assert_eq!(reader.pending().unwrap().len(), 200);
        assert_eq!(reader.verify_audit().unwrap(), 200);
    }

    #[tokio::test]
    async fn an_older_database_than_its_witness_stops_sales_until_the_loss_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::spawn(Store::open(dir.path()).unwrap()).unwrap();
        handle.call(begin(100)).await.unwrap();
        let old = dir.path().join("old.db");
        let copy = Store::open(dir.path()).unwrap();
        copy.connection()
            .execute("VACUUM INTO ?1", [old.display().to_string()])
            .unwrap();
        for minor in [200, 300, 400] {
            handle.call(begin(minor)).await.unwrap();
        }
        // The SD card gives back the database as it was after the first sale.
        let shop = tempfile::tempdir().unwrap();
        for (from, to) in [
            (old.clone(), "tallybox.db"),
            (dir.path().join(witness::FILE), witness::FILE),
            (dir.path().join("pan-hash.key"), "pan-hash.key"),
        ] {
            std::fs::copy(from, shop.path().join(to)).unwrap();
        }
        let witnessed = witness::read(shop.path()).unwrap().unwrap();
        let handle = StoreHandle::spawn(Store::open(shop.path()).unwrap()).unwrap();
        let unfit = handle.call(|s: &mut Store| s.unfit_for_sales()).await.unwrap();
        let Some(crate::store::Unfit::HistoryLost(lost)) = unfit else {
            panic!("sales must stop: {unfit:?}");
        };
        assert_eq!((lost.on_disk_last_txn, lost.witnessed.last_txn), (1, 4));
        assert!(
            lost.to_string().contains("transactions 2–4 are missing"),
            "{lost}"
        );
        // Other writes go on, but the witness keeps what was lost.
        handle
            .call(|s: &mut Store| s.freeze("T9", "a test"))
            .await
            .unwrap();
        assert_eq!(witness::read(shop.path()).unwrap().unwrap(), witnessed);

        assert!(handle
            .call(|s: &mut Store| s.accept_history_loss("owner"))
            .await
            .unwrap());
        let trace = handle
            .call(|s: &mut Store| {
                assert_eq!(s.unfit_for_sales()?, None, "sales resume");
                let id = begin(500)(s)?;
                Ok(s.get(id)?.unwrap().trace_no)
            })
            .await
            .unwrap();
        assert_eq!(trace, 5, "trace numbers 2–4 went out before the loss");
        let reader = Store::open(shop.path()).unwrap();
        assert!(reader.verify_audit().is_ok());
        assert_eq!(
            witness::read(shop.path()).unwrap().unwrap(),
            witness::Witness::of(reader.connection()).unwrap(),
            "the witness follows the history again"
        );
        assert!(!handle
            .call(|s: &mut Store| s.accept_history_loss("owner"))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_failing_job_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::spawn(Store::open(dir.path()).unwrap()).unwrap();
        // Writes a row, then fails: the row must not survive.
        let bad = handle.call(|s: &mut Store| {
            s.connection()
                .execute("INSERT INTO settings (key, value) VALUES ('half', 'done')", [])?;
            s.connection()
                .execute("INSERT INTO settings (key, value) VALUES ('batch_no', 'dup')", [])?;
            Ok(())
        });
        let good = handle.call(begin(100));
        let (bad, good) = tokio::join!(bad, good);
        assert!(bad.is_err());
        let id = good.unwrap();
        let reader = Store::open(dir.path()).unwrap();
        assert!(reader.get(id).unwrap().is_some());
        let half: i64 = reader
            .connection()
            .query_row("SELECT count(*) FROM settings WHERE key = 'half'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(half, 0);
    }

    #[tokio::test]
    async fn each_commit_tells_what_it_changed_and_a_failed_job_tells_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::spawn(Store::open(dir.path()).unwrap()).unwrap();
        let mut changes = handle.subscribe();
        let failing = handle.call(|s: &mut Store| {
            s.freeze("store", "a test")?;
            Err::<(), _>(StoreError::Commit("fails after writing".into()))
        });
        let (failed, id) = tokio::join!(failing, handle.call(begin(100)));
        assert!(failed.is_err());
        let id = id.unwrap();
        assert_eq!(
            changes.try_recv().unwrap(),
            Change::Txn {
                id,
                terminal: tallybox_core::protocol::TerminalId::parse("T1").unwrap(),
                status: tallybox_core::protocol::TxnStatus::Pending,
            }
        );
        assert!(changes.try_recv().is_err(), "the rolled-back freeze is not told");
        handle
            .call(|s: &mut Store| s.freeze("T1", "a test"))
            .await
            .unwrap();
        assert_eq!(
            changes.try_recv().unwrap(),
            Change::Freeze {
                scope: "T1".into(),
                frozen: true
            }
        );
        // A store on another connection collects nothing (the page's edits
        // are seen through `data_version`).
        let mut other = Store::open(dir.path()).unwrap();
        other.freeze("T2", "a test").unwrap();
        assert!(other.changes.take().is_empty());
    }
}
