//! The inference pool: each loaded model gets a bounded queue and one thread that feeds it to
//! ONNX Runtime, whose fixed thread pool (`AI_INFERENCE_THREADS`) all models share. The
//! thread takes what is waiting, up to `AI_MAX_BATCH` texts, sorts the texts by length and runs
//! them in batches of similar length (padding costs as much as text). A full queue refuses
//! new requests at once; requests whose caller has gone, or that waited longer than
//! `AI_QUEUE_TIMEOUT`, are dropped without running.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::oneshot;

use crate::config::ModelsConfig;
use crate::models::{self, Embedded, Embedder, Manifest, Task};

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The model's queue is full.
    #[error("the model's queue is full: retry later")]
    Busy,
    /// The request waited longer than the queue timeout.
    #[error("the request waited too long for the model")]
    Expired,
    /// The pool is stopping.
    #[error("the model is stopping")]
    Stopped,
    /// The model failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Batches of up to `max` of the texts of these `lengths` (in tokens, shortest first), each of
/// texts about as long as its first: at most a sixteenth longer, plus one token. A run costs
/// what its longest text costs for every text in it, so padding short texts to a long one
/// costs more than running them apart saves (measured on the held-out tickets:
/// docs/benchmarks.md).
fn similar_lengths(lengths: &[usize], max: usize) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    for (index, &length) in lengths.iter().enumerate() {
        let first = lengths[start];
        if index - start == max || length > first + first / 16 + 1 {
            batches.push(start..index);
            start = index;
        }
    }
    if start < lengths.len() {
        batches.push(start..lengths.len());
    }
    batches
}

/// A model in the pool.
#[derive(Debug)]
pub struct LoadedModel {
    manifest: Manifest,
    version: String,
    queue: SyncSender<Job>,
    waiting: Arc<AtomicUsize>,
}

impl LoadedModel {
    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Its version ([`models::version`]).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `{id}@{version}`: what names the model's embeddings wherever they are kept.
    pub fn key(&self) -> String {
        format!("{}@{}", self.manifest.id, self.version)
    }

    /// Embeds `texts` (in order), waiting in the model's queue.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Embedded>, InferenceError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            texts,
            reply,
            enqueued: Instant::now(),
        };
        // Counted before it is sent, so that the worker never decrements below zero.
        self.waiting.fetch_add(1, Ordering::Relaxed);
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(refused) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                return Err(match refused {
                    TrySendError::Full(_) => {
                        crate::metrics::request_refused(&self.manifest.id, "queue_full");
                        InferenceError::Busy
                    }
                    TrySendError::Disconnected(_) => InferenceError::Stopped,
                });
            }
        }
        crate::metrics::queue_depth(&self.manifest.id, self.waiting.load(Ordering::Relaxed));
        answer.await.unwrap_or(Err(InferenceError::Stopped))
    }
}

/// The loaded models, by id, and their threads.
#[derive(Debug)]
pub struct InferencePool {
    models: Vec<LoadedModel>,
    workers: Vec<JoinHandle<()>>,
}

impl InferencePool {
    /// Loads every model under `config.models_dir` into ONNX Runtime (loaded from
    /// `config.onnxruntime_library`), each checked with one embedding before it serves.
    pub fn load(config: &ModelsConfig) -> anyhow::Result<Self> {
        // Tokenize on the model's thread; no second (rayon) pool competing for the CPUs.
        tokenizers::utils::parallelism::set_parallelism(false);
        let runtime = models::runtime(&config.onnxruntime_library, config.inference_threads)?;
        let mut models = Vec::new();
        let mut workers = Vec::new();
        for (dir, manifest) in models::discover(&config.models_dir)? {
            let started = Instant::now();
            let version = models::version(&dir, &manifest)?;
            let mut embedder = Embedder::load(runtime, &dir, manifest.clone())?;
            let probe = embedder.tokenize("FormFlow checks that the model runs.")?;
            let check = embedder.embed(&[&probe])?;
            anyhow::ensure!(
                check.len() == 1 && check[0].vector.len() == manifest.dimensions,
                "{} gave no embedding of {} dimensions",
                manifest.id,
                manifest.dimensions
            );
            tracing::info!(model = %manifest.id, elapsed_ms = started.elapsed().as_millis() as u64, "model loaded");
            let (queue, jobs) = std::sync::mpsc::sync_channel(config.queue_capacity as usize);
            let waiting = Arc::new(AtomicUsize::new(0));
            let max_batch = usize::from(config.max_batch);
            let worker = Worker {
                embedder,
                jobs,
                waiting: waiting.clone(),
                max_batch,
                max_run: manifest
                    .max_batch
                    .map_or(max_batch, |most| most.min(max_batch)),
                queue_timeout: config.queue_timeout,
            };
            workers.push(
                std::thread::Builder::new()
                    .name(format!("ai-{}", manifest.id))
                    .spawn(move || worker.run())
                    .context("starting a model thread")?,
            );
            models.push(LoadedModel {
                manifest,
                version,
                queue,
                waiting,
            });
        }
        Ok(Self { models, workers })
    }

    /// The models, by id.
    pub fn models(&self) -> &[LoadedModel] {
        &self.models
    }

    /// The model with this id.
    pub fn get(&self, id: &str) -> Option<&LoadedModel> {
        self.models.iter().find(|model| model.manifest.id == id)
    }

    /// The default model for `task`: the first, by id, that serves it.
    pub fn default_for(&self, task: Task) -> Option<&LoadedModel> {
        self.models
            .iter()
            .find(|model| model.manifest.tasks.contains(&task))
    }

    /// Stops taking requests, lets the threads finish what is queued, and waits for them.
    pub fn shut_down(self) {
        drop(self.models);
        for worker in self.workers {
            if worker.join().is_err() {
                tracing::error!("a model thread panicked");
            }
        }
    }
}

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Embedded>, InferenceError>>,
    enqueued: Instant,
}

struct Worker {
    embedder: Embedder,
    jobs: Receiver<Job>,
    waiting: Arc<AtomicUsize>,
    /// Most texts taken from the queue at once.
    max_batch: usize,
    /// Most texts in one run of the model (its manifest's `max_batch`, or `max_batch`).
    max_run: usize,
    queue_timeout: Duration,
}

impl Worker {
    /// Serves until every sender is gone and the queue is empty.
    fn run(mut self) {
        let model = self.embedder.manifest().id.clone();
        while let Ok(first) = self.jobs.recv() {
            let mut texts = first.texts.len();
            let mut jobs = vec![first];
            while texts < self.max_batch {
                match self.jobs.try_recv() {
                    Ok(job) => {
                        texts += job.texts.len();
                        jobs.push(job);
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            let left = self.waiting.fetch_sub(jobs.len(), Ordering::Relaxed) - jobs.len();
            crate::metrics::queue_depth(&model, left);

            let mut live = Vec::with_capacity(jobs.len());
            for job in jobs {
                if job.reply.is_closed() {
                    continue; // the caller has gone (deadline, cancellation)
                }
                if job.enqueued.elapsed() > self.queue_timeout {
                    crate::metrics::request_refused(&model, "expired");
                    let _ = job.reply.send(Err(InferenceError::Expired));
                    continue;
                }
                live.push(job);
            }
            if live.is_empty() {
                continue;
            }
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.embed_jobs(&live)))
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the model panicked")));
            match outcome {
                Ok(results) => {
                    for (job, result) in live.into_iter().zip(results) {
                        let _ = job.reply.send(result.map_err(InferenceError::Failed));
                    }
                }
                Err(error) => {
                    tracing::error!(model = %model, error = format!("{error:#}"), "inference failed");
                    for job in live {
                        let _ = job
                            .reply
                            .send(Err(InferenceError::Failed(anyhow::anyhow!("{error:#}"))));
                    }
                }
            }
        }
    }

    /// Embeds the texts of `jobs`, shortest first in batches of up to `max_run` texts of
    /// about the same length ([`similar_lengths`]): per job its embeddings in request order, or
    /// why its texts could not be tokenized.
    fn embed_jobs(&mut self, jobs: &[Job]) -> anyhow::Result<Vec<anyhow::Result<Vec<Embedded>>>> {
        let mut results: Vec<anyhow::Result<Vec<Option<Embedded>>>> = Vec::new();
        // (job, text, tokens) of every text that tokenized
        let mut texts = Vec::new();
        for (index, job) in jobs.iter().enumerate() {
            let tokenized: anyhow::Result<Vec<_>> = job
                .texts
                .iter()
                .map(|text| self.embedder.tokenize(text))
                .collect();
            results.push(tokenized.map(|encodings| {
                texts.extend(
                    encodings
                        .into_iter()
                        .enumerate()
                        .map(|(position, encoding)| (index, position, encoding)),
                );
                vec![None; job.texts.len()]
            }));
        }
        texts.sort_by_key(|(_, _, encoding)| encoding.get_ids().len());
        let lengths: Vec<usize> = texts
            .iter()
            .map(|(_, _, encoding)| encoding.get_ids().len())
            .collect();
        for batch in similar_lengths(&lengths, self.max_run) {
            let chunk = &texts[batch];
            let batch: Vec<&tokenizers::Encoding> =
                chunk.iter().map(|(_, _, encoding)| encoding).collect();
            crate::metrics::batch_size(batch.len());
            let started = Instant::now();
            let embedded = self.embedder.embed(&batch)?;
            crate::metrics::inference_seconds(
                &self.embedder.manifest().id,
                started.elapsed().as_secs_f64(),
            );
            for ((job, position, _), embedding) in chunk.iter().zip(embedded) {
                if let Ok(slots) = &mut results[*job] {
                    slots[*position] = Some(embedding);
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|slots| {
                slots?
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .context("the model returned fewer embeddings than texts")
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_texts_of_about_one_length_up_to_the_most() {
        assert_eq!(
            similar_lengths(&[10, 10, 11, 12, 30, 31, 32, 33, 100], 3),
            [0..3, 3..4, 4..7, 7..8, 8..9]
        );
        assert_eq!(similar_lengths(&[5, 5, 5, 5], 1), [0..1, 1..2, 2..3, 3..4]);
        assert_eq!(similar_lengths(&[64, 69, 70], 32), [0..2, 2..3]);
        assert!(similar_lengths(&[], 32).is_empty());
    }
}
