//! Server-streaming RPCs over HTTP: Server-Sent Events (`data:` lines, an `error` event if the
//! stream fails), or newline-delimited JSON when the client asks for `application/x-ndjson`.

use std::convert::Infallible;

use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use prost_reflect::DynamicMessage;

use crate::error::ApiError;
use crate::transcode::message::response_json;

/// The HTTP response relaying `messages`.
pub fn respond(
    messages: impl Stream<Item = Result<DynamicMessage, tonic::Status>> + Send + 'static,
    response_body: Option<String>,
    ndjson: bool,
    request_id: String,
) -> Response {
    let lines = messages.map(move |item| match item {
        Ok(message) => match response_json(&message, response_body.as_deref()) {
            Ok(json) => (false, json),
            Err(_) => (
                true,
                ApiError::new(tonic::Code::Internal, "internal error")
                    .for_request(&request_id)
                    .body(),
            ),
        },
        Err(status) => (
            true,
            ApiError::from_status(&status)
                .for_request(&request_id)
                .body(),
        ),
    });
    if ndjson {
        let body = lines.map(|(_, json)| Ok::<_, Infallible>(format!("{json}\n")));
        return (
            [(http::header::CONTENT_TYPE, "application/x-ndjson")],
            axum::body::Body::from_stream(body),
        )
            .into_response();
    }
    let events = lines.map(|(failed, json)| {
        let event = Event::default().data(json.to_string());
        Ok::<_, Infallible>(if failed { event.event("error") } else { event })
    });
    Sse::new(events)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response()
}
