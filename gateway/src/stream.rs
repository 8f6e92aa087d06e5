//! Server-streaming RPCs over HTTP: Server-Sent Events (`data:` lines, an `error` event if the
//! stream fails), or newline-delimited JSON when the client asks for `application/x-ndjson`;
//! a stream of `google.api.HttpBody` chunks is one raw body (a file download).

use std::convert::Infallible;

use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use prost_reflect::DynamicMessage;

use crate::error::ApiError;
use crate::transcode::message::{http_body_parts, response_json};

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

/// The HTTP response of a stream of `google.api.HttpBody` chunks: their data as one body, with
/// the first chunk's content type, relayed as it comes. A failure before the first chunk is an
/// ordinary error response; a later one aborts the body, so that the client sees a truncated
/// transfer, never a complete-looking file.
pub async fn respond_raw(
    messages: impl Stream<Item = Result<DynamicMessage, tonic::Status>> + Send + 'static,
) -> Result<Response, ApiError> {
    let mut messages = Box::pin(messages);
    let (content_type, first) = match messages.next().await {
        Some(Ok(message)) => http_body_parts(&message),
        Some(Err(status)) => return Err(ApiError::from_status(&status)),
        None => ("application/octet-stream".to_owned(), Vec::new()),
    };
    let rest = messages.map(|item| match item {
        Ok(message) => Ok(bytes::Bytes::from(http_body_parts(&message).1)),
        Err(status) => {
            tracing::warn!(code = ?status.code(), "a raw stream failed part way");
            Err(std::io::Error::other(status.message().to_owned()))
        }
    });
    let body = futures_util::stream::once(async { Ok(bytes::Bytes::from(first)) }).chain(rest);
    Ok((
        [(http::header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}
