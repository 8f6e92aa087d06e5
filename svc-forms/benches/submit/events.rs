//! When each submission's `forms.submission.created` event arrives at a queue of the
//! benchmark's own, bound to the events exchange before the first submission.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use platform::config::AmqpConfig;
use platform::testing::EventObserver;

/// How long the events of a run may take to arrive before the run counts as having lost one.
pub(crate) const EVENT_WAIT: Duration = Duration::from_secs(120);

/// The submissions whose event arrived, with when it arrived, and how many arrived twice.
#[derive(Debug)]
pub(crate) struct Arrivals {
    receiver: mpsc::UnboundedReceiver<(String, Instant)>,
    at: HashMap<String, Instant>,
    duplicates: u64,
}

impl Arrivals {
    /// Starts observing `forms.submission.created`: a task receives each event as it comes
    /// and notes its arrival, so the time does not wait for the benchmark to look.
    pub(crate) async fn observe(amqp: &AmqpConfig) -> Arrivals {
        let mut observer = EventObserver::start(amqp, &["forms.submission.created.#"]).await;
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let received = observer.receive(1, Duration::from_secs(24 * 3600)).await;
                let arrived_at = Instant::now();
                for message in received {
                    let name = message.body["data"]["submission"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    if sender.send((name, arrived_at)).is_err() {
                        return;
                    }
                }
            }
        });
        Arrivals {
            receiver,
            at: HashMap::new(),
            duplicates: 0,
        }
    }

    /// Takes in what arrived until the events of all of `names` have, or `EVENT_WAIT` passed;
    /// returns how many of them are still missing.
    pub(crate) async fn wait_for<'a>(&mut self, names: impl Iterator<Item = &'a String>) -> usize {
        let mut missing: HashSet<&String> =
            names.filter(|name| !self.at.contains_key(*name)).collect();
        let deadline = tokio::time::Instant::now() + EVENT_WAIT;
        while !missing.is_empty() {
            match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                Ok(Some((name, arrived_at))) => {
                    missing.remove(&name);
                    if self.at.insert(name, arrived_at).is_some() {
                        self.duplicates += 1;
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        missing.len()
    }

    /// Milliseconds from each answer to its event's arrival, sorted; negative when the event
    /// arrived before the answer. Every event must have arrived ([`Arrivals::wait_for`]).
    pub(crate) fn lags_ms(&self, answered: &[(String, Instant)]) -> Vec<f64> {
        let mut lags: Vec<f64> = answered
            .iter()
            .map(|(name, answered_at)| {
                let arrived_at = self.at[name];
                match arrived_at.checked_duration_since(*answered_at) {
                    Some(after) => after.as_secs_f64() * 1e3,
                    None => -(answered_at.duration_since(arrived_at).as_secs_f64() * 1e3),
                }
            })
            .collect();
        lags.sort_by(f64::total_cmp);
        lags
    }

    /// How many of the events taken in arrived within `window`.
    pub(crate) fn arrived_within(&self, window: &Range<Instant>) -> usize {
        self.at.values().filter(|at| window.contains(*at)).count()
    }

    /// When the last event taken in arrived.
    pub(crate) fn last_arrival(&self) -> Option<Instant> {
        self.at.values().max().copied()
    }

    /// How many events arrived for a submission whose event had arrived already.
    pub(crate) fn duplicates(&self) -> u64 {
        self.duplicates
    }
}
