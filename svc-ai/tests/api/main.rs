//! svc-ai's API over real gRPC: a real server with the real model (installed by
//! `scripts/setup.sh`, named by AI_MODELS_DIR and AI_ONNXRUNTIME_LIBRARY), real tokens, over a fresh database
//! with Redis and RabbitMQ.

mod analysis;
mod batch;
mod classify;
mod embed;
mod helpers;
mod isolation;
mod label_sets;
mod models;
mod permissions;
mod queue;
mod similarity;
mod triage;
