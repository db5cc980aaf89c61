//! Hands the store transactions of an ingest to several writer threads
//! without reordering any two that touch the same instrument.
//!
//! Jobs are taken strictly in the order they were sent. A job waits while a
//! job taken before it, still in flight, shares an instrument with it, so
//! two uploads of one instrument are applied in upload order whatever the
//! number of writers (the first registered link stands: which one that is
//! must not depend on thread timing; the database's row locks would order
//! the two, but by whichever locked first). Waiting here also keeps a
//! second writer from blocking inside the database on the first one's
//! rows. Jobs with disjoint instruments run at once.

use std::collections::BTreeSet;
use std::sync::mpsc::Receiver;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use tessera_core::InstrumentId;

/// A store transaction's work and the instruments it writes.
#[derive(Debug)]
pub(crate) struct Job<J> {
    pub keys: BTreeSet<InstrumentId>,
    pub work: J,
}

/// The queue the writer threads share.
pub(crate) struct Lanes<J> {
    state: Mutex<State<J>>,
    freed: Condvar,
}

struct State<J> {
    /// `None` once closed: the producer's next send fails.
    incoming: Option<Receiver<Job<J>>>,
    /// The instruments of each job in flight, by ticket.
    busy: Vec<(u64, BTreeSet<InstrumentId>)>,
    next_ticket: u64,
}

impl<J> State<J> {
    /// Whether a job taken before `ticket`, still in flight, shares an
    /// instrument with it.
    fn behind_another(&self, ticket: u64) -> bool {
        let Some((_, mine)) = self.busy.iter().find(|(t, _)| *t == ticket) else {
            return false;
        };
        self.busy.iter().any(|(t, keys)| *t < ticket && !keys.is_disjoint(mine))
    }
}

/// A job in flight; dropping it (done, failed or unwound) frees its
/// instruments for the jobs waiting on them.
pub(crate) struct Slot<'a, J> {
    lanes: &'a Lanes<J>,
    ticket: u64,
}

impl<J> Lanes<J> {
    pub(crate) fn new(incoming: Receiver<Job<J>>) -> Self {
        Self {
            state: Mutex::new(State { incoming: Some(incoming), busy: Vec::new(), next_ticket: 0 }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<J>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next job, once no job in flight shares an instrument with it.
    /// `None` when the producer is done or the lanes were closed.
    pub(crate) fn take(&self) -> Option<(Slot<'_, J>, J)> {
        // Receiving under the lock hands jobs out in order: a job sent
        // later is never taken, and so never registered, before an
        // earlier one.
        let mut state = self.lock();
        let Job { keys, work } = state.incoming.as_ref()?.recv().ok()?;
        // Listed at once, so a job taken later (while this one waits with
        // the lock released) waits for it in turn.
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.busy.push((ticket, keys));
        let slot = Slot { lanes: self, ticket };
        while state.behind_another(ticket) {
            state = self.freed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        let closed = state.incoming.is_none();
        drop(state);
        // Dropping the slot of a job not handed out frees its instruments.
        (!closed).then_some((slot, work))
    }

    /// Hands out no more jobs (a writer failed): the producer's next send
    /// fails, and a job waiting for instruments is dropped.
    pub(crate) fn close(&self) {
        self.lock().incoming = None;
        self.freed.notify_all();
    }
}

impl<J> Drop for Slot<'_, J> {
    fn drop(&mut self) {
        let mut state = self.lanes.lock();
        state.busy.retain(|(ticket, _)| *ticket != self.ticket);
        drop(state);
        self.lanes.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::mpsc::sync_channel;

    fn id(n: u8) -> InstrumentId {
        InstrumentId([n; 16])
    }

    fn job(ids: &[u8], work: u32) -> Job<u32> {
        Job { keys: ids.iter().map(|n| id(*n)).collect(), work }
    }

    /// Jobs sharing an instrument finish in the order they were sent,
    /// however long the earlier one takes; disjoint ones overlap.
    #[test]
    fn shared_instruments_keep_their_order_and_disjoint_jobs_overlap() {
        let (tx, rx) = sync_channel(4);
        let lanes = Lanes::new(rx);
        let finished = Mutex::new(Vec::new());
        let overlapped = std::sync::atomic::AtomicBool::new(false);
        let in_flight = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while let Some((slot, work)) = lanes.take() {
                        let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        if now > 1 {
                            overlapped.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                        // The first job is slow: the second, which shares
                        // its instrument, must still finish after it.
                        let pause = if work == 0 { 150 } else { 50 };
                        std::thread::sleep(std::time::Duration::from_millis(pause));
                        finished.lock().unwrap().push(work);
                        in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        drop(slot);
                    }
                });
            }
            for j in [job(&[1, 2], 0), job(&[2, 3], 1), job(&[7], 2), job(&[8], 3), job(&[9], 4)] {
                tx.send(j).unwrap();
            }
            drop(tx);
        });
        let order = finished.into_inner().unwrap();
        assert_eq!(order.len(), 5);
        let at = |w: u32| order.iter().position(|x| *x == w).unwrap();
        assert!(at(0) < at(1), "job 1 shares instrument 2 with job 0: {order:?}");
        assert!(overlapped.into_inner(), "disjoint jobs never ran at once");
    }

    /// A closed queue hands out nothing more and the producer's send fails.
    #[test]
    fn closing_stops_the_producer() {
        let (tx, rx) = sync_channel(1);
        let lanes = Lanes::new(rx);
        tx.send(job(&[1], 0)).unwrap();
        let (slot, work) = lanes.take().unwrap();
        assert_eq!(work, 0);
        lanes.close();
        drop(slot);
        assert!(tx.send(job(&[2], 1)).is_err());
        assert!(lanes.take().is_none());
    }
}
