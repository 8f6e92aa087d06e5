//! A local HTTP server that `action.http` nodes call in tests: it records every request and
//! answers by path, and counts effective calls as a target honouring `Idempotency-Key` would
//! (a key seen before is answered again, not acted on).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::any;
use serde_json::{Value, json};

/// A request as the target received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) uri: String,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: String,
}

#[derive(Debug, Default)]
struct Log {
    received: Vec<Received>,
    /// Calls by path.
    calls: HashMap<String, u32>,
    /// Idempotency keys acted on.
    effective: Vec<String>,
}

/// The target, listening on `addr`.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl Target {
    /// A target on `ip` (a loopback address), on a free port.
    pub(crate) async fn start(ip: &str) -> Target {
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("binding the target");
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let app = Router::new()
            .route("/{*path}", any(answer))
            .with_state(log.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Target { addr, log }
    }

    /// `http://{addr}{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().received.clone()
    }

    /// The idempotency keys acted on, once each.
    pub(crate) fn effective_calls(&self) -> Vec<String> {
        self.log.lock().unwrap().effective.clone()
    }
}

/// Answers by path:
/// - `/echo`: 200 with the request as JSON;
/// - `/status/{code}`: that status;
/// - `/flaky/{failures}`: 503 for the first `failures` calls, then as `/echo`;
/// - `/hang-once`: the first call waits a minute, later ones answer as `/echo`;
/// - `/redirect?to={url}`: 302 to `url`.
async fn answer(
    State(log): State<Arc<Mutex<Log>>>,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Received {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let key = received.headers.get("idempotency-key").cloned();
    let calls = {
        let mut log = log.lock().unwrap();
        log.received.push(received.clone());
        let calls = log.calls.entry(path.clone()).or_default();
        *calls += 1;
        *calls
    };
    let echo = |log: &Arc<Mutex<Log>>| {
        let mut log = log.lock().unwrap();
        if let Some(key) = &key
            && !log.effective.contains(key)
        {
            log.effective.push(key.clone());
        }
        let body: Value = serde_json::from_str(&received.body).unwrap_or(json!(received.body));
        axum::Json(json!({"method": received.method, "uri": received.uri, "body": body}))
            .into_response()
    };
    let mut segments = path.split('/');
    match (segments.next(), segments.next()) {
        (Some("echo"), _) => echo(&log),
        (Some("status"), Some(code)) => StatusCode::from_u16(code.parse().unwrap_or(500))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        (Some("flaky"), Some(failures)) => {
            if calls <= failures.parse().unwrap_or(0) {
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            } else {
                echo(&log)
            }
        }
        (Some("slow"), Some(millis)) => {
            tokio::time::sleep(Duration::from_millis(millis.parse().unwrap_or(0))).await;
            echo(&log)
        }
        (Some("hang-once"), _) => {
            if calls == 1 {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            echo(&log)
        }
        (Some("redirect"), _) => {
            Redirect::to(query.get("to").map_or("/", String::as_str)).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
