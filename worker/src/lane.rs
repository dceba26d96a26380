//! The long trial lane: runs one long trial at a time, the one with the smallest static bound
//! first, and lets a trial with a smaller bound preempt a running one, which starts again
//! from the beginning once the lane is free.
//!
//! A long trial is a kernel the worker has not signed for whose static bound
//! ([`capacloud_executor::cost`]) says it *could* run until its time limit. Run first come,
//! first served, one renter's runaway kernel (a bound near the limits, refused only when its
//! time limit ends) holds the lane for that whole limit, and an honest job queued behind it
//! misses its accept window (measured by `make bench-flood`). Shortest bound first, that
//! kernel runs only when nothing provably shorter waits, and is stopped (its sandboxed child
//! killed) the moment something does: the static bound is an upper bound on the work a kernel
//! does, so a renter cannot buy a place ahead of a job by declaring less than it runs.
//!
//! Preemption needs a computation that stops when it is dropped (the kernel sandbox's child
//! is killed then); one that does not (in-process execution) keeps the order but is never
//! preempted ([`LongLane::new`]'s `preemptive`).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Mutex;
use tokio::sync::Notify;

/// A trial's place in the lane: its bound, then its arrival (first come first among equals).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ticket {
    bound: u64,
    seq: u64,
}

#[derive(Debug, Default)]
struct Queue {
    next_seq: u64,
    waiting: BTreeSet<Ticket>,
    running: Option<Ticket>,
}

impl Queue {
    /// Whether `t` may run now: nothing runs and nothing shorter (or as short and older) waits.
    fn turn_of(&self, t: Ticket) -> bool {
        self.running.is_none() && self.waiting.first() == Some(&t)
    }

    /// Whether a trial with a strictly smaller bound than the running `t` waits.
    fn overtaken(&self, t: Ticket) -> bool {
        self.waiting.first().is_some_and(|w| w.bound < t.bound)
    }
}

/// The long trial lane (see the module docs).
#[derive(Debug)]
pub struct LongLane {
    queue: Mutex<Queue>,
    /// Woken on every change of `queue`.
    changed: Notify,
    preemptive: bool,
}

/// How a trial's time in the lane went.
#[derive(Debug)]
pub struct Ran<T> {
    /// What its last (completed) run returned.
    pub output: T,
    /// How many times a shorter trial stopped it.
    pub preempted: u32,
}

impl LongLane {
    /// An empty lane; `preemptive` only where dropping a run stops it.
    pub fn new(preemptive: bool) -> Self {
        Self { queue: Mutex::new(Queue::default()), changed: Notify::new(), preemptive }
    }

    /// Runs `work()` for a trial whose static bound is `bound` once its turn comes, and again
    /// from the beginning after every preemption, until one run completes. Dropping the
    /// returned future (the job's window closed) gives up its place or its turn.
    pub async fn run<T, F, Fut>(&self, bound: u64, mut work: F) -> Ran<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = T>,
    {
        let ticket = self.change(|q| {
            let t = Ticket { bound, seq: q.next_seq };
            q.next_seq += 1;
            q.waiting.insert(t);
            t
        });
        let _leave = Leave { lane: self, ticket };
        let mut preempted = 0;
        loop {
            self.wait_until(|q| q.turn_of(ticket), |q| {
                q.waiting.remove(&ticket);
                q.running = Some(ticket);
            })
            .await;
            let finished = {
                let run = work();
                tokio::pin!(run);
                tokio::select! {
                    biased;
                    output = &mut run => Some(output),
                    () = self.wait_until(|q| q.overtaken(ticket), |_| ()), if self.preemptive => None,
                }
                // A preempted run is dropped here, before the shorter trial may start.
            };
            match finished {
                Some(output) => return Ran { output, preempted },
                None => {
                    preempted += 1;
                    self.change(|q| {
                        q.running = None;
                        q.waiting.insert(ticket);
                    });
                }
            }
        }
    }

    /// Trials waiting and running: what the lane holds now.
    pub fn len(&self) -> usize {
        let q = self.queue.lock().unwrap();
        q.waiting.len() + usize::from(q.running.is_some())
    }

    /// Whether no trial waits or runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies `f` to the queue and wakes everyone waiting on it.
    fn change<R>(&self, f: impl FnOnce(&mut Queue) -> R) -> R {
        let r = f(&mut self.queue.lock().unwrap());
        self.changed.notify_waiters();
        r
    }

    /// Waits until `ready` holds of the queue, then applies `then` to it in the same lock.
    async fn wait_until(&self, ready: impl Fn(&Queue) -> bool, then: impl Fn(&mut Queue)) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut q = self.queue.lock().unwrap();
                if ready(&q) {
                    then(&mut q);
                    drop(q);
                    self.changed.notify_waiters();
                    return;
                }
            }
            notified.await;
        }
    }
}

/// Takes a trial out of the lane however its future ends (completed, or dropped while
/// waiting or running).
struct Leave<'a> {
    lane: &'a LongLane,
    ticket: Ticket,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let t = self.ticket;
        self.lane.change(|q| {
            q.waiting.remove(&t);
            if q.running == Some(t) {
                q.running = None;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::{mpsc, oneshot};

    type Log = Arc<Mutex<Vec<String>>>;

    /// A run of trial `name` that logs its start and its end, and ends when `release` says.
    async fn logged(log: &Log, name: &str, release: &tokio::sync::watch::Receiver<bool>) -> &'static str {
        log.lock().unwrap().push(format!("start {name}"));
        let mut r = release.clone();
        r.wait_for(|done| *done).await.unwrap();
        log.lock().unwrap().push(format!("end {name}"));
        "done"
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_shorter_trial_preempts_a_longer_one_which_then_starts_again() {
        let lane = Arc::new(LongLane::new(true));
        let log: Log = Arc::default();
        let (long_go, long_rx) = tokio::sync::watch::channel(false);
        let (short_go, short_rx) = tokio::sync::watch::channel(false);
        let long = tokio::spawn({
            let (lane, log) = (lane.clone(), log.clone());
            async move { lane.run(1_000, || logged(&log, "long", &long_rx)).await.preempted }
        });
        settle().await;
        assert_eq!(*log.lock().unwrap(), ["start long"]);
        let short = tokio::spawn({
            let (lane, log) = (lane.clone(), log.clone());
            async move { lane.run(10, || logged(&log, "short", &short_rx)).await.preempted }
        });
        settle().await;
        assert_eq!(*log.lock().unwrap(), ["start long", "start short"], "the long run stopped, the short one runs");
        long_go.send(true).unwrap();
        settle().await;
        assert_eq!(log.lock().unwrap().len(), 2, "the long trial does not run beside the short one");
        short_go.send(true).unwrap();
        assert_eq!(short.await.unwrap(), 0);
        assert_eq!(long.await.unwrap(), 1, "preempted once");
        assert_eq!(*log.lock().unwrap(), ["start long", "start short", "end short", "start long", "end long"]);
        assert!(lane.is_empty());
    }

    #[tokio::test]
    async fn waiting_trials_run_shortest_bound_first_then_oldest_first() {
        let lane = Arc::new(LongLane::new(true));
        let (order_tx, mut order) = mpsc::unbounded_channel();
        let (hold_go, hold_rx) = oneshot::channel::<()>();
        let holder = tokio::spawn({
            let lane = lane.clone();
            async move {
                let mut rx = Some(hold_rx);
                lane.run(0, || {
                    let rx = rx.take().expect("a bound-0 trial is never preempted");
                    async move { rx.await.unwrap() }
                })
                .await
            }
        });
        settle().await;
        let mut trials = Vec::new();
        for (name, bound) in [("c", 30), ("a1", 10), ("b", 20), ("a2", 10)] {
            let (lane, tx) = (lane.clone(), order_tx.clone());
            trials.push(tokio::spawn(async move {
                let tx = &tx;
                lane.run(bound, move || async move { tx.send(name).unwrap() }).await.preempted
            }));
            settle().await;
        }
        assert_eq!(lane.len(), 5);
        hold_go.send(()).unwrap();
        holder.await.unwrap();
        for t in trials {
            assert_eq!(t.await.unwrap(), 0, "none of them was preempted: none ran while a shorter one waited");
        }
        let mut ran = Vec::new();
        while let Ok(n) = order.try_recv() {
            ran.push(n);
        }
        assert_eq!(ran, ["a1", "a2", "b", "c"]);
        assert!(lane.is_empty());
    }

    #[tokio::test]
    async fn an_equal_bound_does_not_preempt_and_a_non_preemptive_lane_only_orders() {
        for preemptive in [true, false] {
            let lane = Arc::new(LongLane::new(preemptive));
            let log: Log = Arc::default();
            let (first_go, first_rx) = tokio::sync::watch::channel(false);
            let (_second_go, second_rx) = tokio::sync::watch::channel(true);
            let first = tokio::spawn({
                let (lane, log) = (lane.clone(), log.clone());
                async move { lane.run(100, || logged(&log, "first", &first_rx)).await.preempted }
            });
            settle().await;
            // Equal bound when preemptive, a smaller one when not: neither stops the first.
            let bound = if preemptive { 100 } else { 1 };
            let second = tokio::spawn({
                let (lane, log) = (lane.clone(), log.clone());
                async move { lane.run(bound, || logged(&log, "second", &second_rx)).await.preempted }
            });
            settle().await;
            assert_eq!(*log.lock().unwrap(), ["start first"], "preemptive: {preemptive}");
            first_go.send(true).unwrap();
            assert_eq!((first.await.unwrap(), second.await.unwrap()), (0, 0));
            assert_eq!(*log.lock().unwrap(), ["start first", "end first", "start second", "end second"]);
        }
    }

    #[tokio::test]
    async fn a_trial_dropped_while_waiting_or_running_leaves_the_lane() {
        let lane = Arc::new(LongLane::new(true));
        let running = tokio::spawn({
            let lane = lane.clone();
            async move { lane.run(5, std::future::pending::<()>).await }
        });
        settle().await;
        let waiting = tokio::spawn({
            let lane = lane.clone();
            async move { lane.run(50, std::future::pending::<()>).await }
        });
        settle().await;
        assert_eq!(lane.len(), 2);
        waiting.abort();
        running.abort();
        let _ = (waiting.await, running.await);
        assert!(lane.is_empty(), "both left: {:?}", lane.queue.lock().unwrap());
        // The lane still serves the next trial at once.
        let next = tokio::time::timeout(Duration::from_secs(5), lane.run(7, || async { 7 })).await.expect("the lane is free");
        assert_eq!((next.output, next.preempted), (7, 0));
    }
}
