//! `POST /publish`: one event (`{"topic", "data", …}` → `{"id"}`) or a batch (`[…]` →
//! `{"ids"}`), published atomically and in order.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use futures_util::{Stream, StreamExt};
use herald_bus::{Bus, Draft, Selector};
use prometheus::Histogram;
use serde::de::IgnoredAny;
use serde_json::{json, value::RawValue};
use warp::{Filter, Rejection, Reply, reply::Response};

use super::request::{Caller, Gate, caller};
use crate::{
    app::App,
    error::{ApiError, ErrorCode},
    limits::RateLimiter,
};

/// What publishing needs of the server.
#[derive(Debug)]
struct Publishing {
    bus: Bus,
    rate: Arc<RateLimiter>,
    max_body_bytes: usize,
    duration: Histogram,
}

pub(crate) fn route(
    app: &App,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + use<> {
    // One reference count per request, not one per part.
    let publishing = Arc::new(Publishing {
        bus: app.bus.clone(),
        rate: app.publish_rate.clone(),
        max_body_bytes: app.config.limits.max_body_bytes,
        duration: app.metrics.publish_duration.clone(),
    });
    warp::path("publish")
        .and(warp::path::end())
        .and(warp::post())
        .and(caller(Gate::new(app)))
        .and(warp::body::stream())
        .and_then(move |caller: Caller, body| {
            let publishing = publishing.clone();
            async move {
                publish(&publishing, caller, body)
                    .await
                    .map_err(warp::reject::custom)
            }
        })
}

async fn publish<S, B>(
    publishing: &Publishing,
    caller: Caller,
    body: S,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let bytes = read_body(body, publishing.max_body_bytes).await?;
    let (drafts, batch) = parse(&bytes)?;
    for draft in &drafts {
        let topic = Selector::from(draft.topic().clone());
        if caller.identity.publish.refused([&topic]).is_some() {
            return Err(ApiError::new(
                ErrorCode::ForbiddenTopic,
                format!("not allowed to publish to {topic}"),
            ));
        }
    }
    caller.charge_publish(&publishing.rate, drafts.len())?;
    let timer = publishing.duration.start_timer();
    let ids = publishing.bus.publish_batch(drafts).await?;
    timer.observe_duration();
    let body = if batch {
        json!({ "ids": ids })
    } else {
        json!({ "id": ids[0] })
    };
    Ok(warp::reply::json(&body).into_response())
}

/// Reads the whole body, refusing it as soon as it passes `limit` bytes (chunked bodies
/// included, which a Content-Length check alone would let through).
async fn read_body<S, B>(mut body: S, limit: usize) -> Result<BytesMut, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| {
            ApiError::new(ErrorCode::BadBody, format!("could not read the body: {e}"))
        })?;
        if out.len() + chunk.remaining() > limit {
            return Err(ApiError::new(
                ErrorCode::BodyTooLarge,
                format!("the body is over the limit of {limit} bytes"),
            ));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out)
}

/// The drafts in `body`, and whether it was a batch.
fn parse(body: &[u8]) -> Result<(Vec<Draft>, bool), ApiError> {
    // Straight from the bytes into drafts: no JSON tree in between.
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
                body_error(e, |e| ApiError::new(ErrorCode::InvalidEvent, e.to_string()))
            })?;
            if items.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::EmptyBatch,
                    "a batch needs at least one event",
                ));
            }
            let drafts = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    serde_json::from_str(item.get()).map_err(|e| {
                        ApiError::new(ErrorCode::InvalidEvent, format!("event {i}: {e}"))
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok((drafts, true))
        }
        Some(b'{') => serde_json::from_slice(body)
            .map(|draft| (vec![draft], false))
            .map_err(|e| body_error(e, |e| ApiError::new(ErrorCode::InvalidEvent, e.to_string()))),
        _ => Err(match serde_json::from_slice::<IgnoredAny>(body) {
            Err(e) => body_error(e, |e| ApiError::new(ErrorCode::InvalidJson, e.to_string())),
            Ok(_) => ApiError::new(
                ErrorCode::InvalidEvent,
                "the body must be a JSON object {\"topic\", \"data\", ...} or an array of them",
            ),
        }),
    }
}

/// `invalid_json` when the body is not JSON at all; otherwise what `shape` makes of an
/// error about its content.
fn body_error(e: serde_json::Error, shape: impl FnOnce(serde_json::Error) -> ApiError) -> ApiError {
    match e.classify() {
        serde_json::error::Category::Data => shape(e),
        _ => ApiError::new(ErrorCode::InvalidJson, format!("invalid JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> ApiError {
        parse(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn parses_one_event_or_a_batch() {
        let (one, batch) = parse(br#"{"topic":"a","data":1}"#).unwrap();
        assert_eq!((one.len(), batch), (1, false));
        let (many, batch) = parse(br#"[{"topic":"a","data":1},{"topic":"b","data":"x"}]"#).unwrap();
        assert_eq!((many.len(), batch), (2, true));
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        assert_eq!(err("{").code, ErrorCode::InvalidJson);
        assert_eq!(err("[]").code, ErrorCode::EmptyBatch);
        assert_eq!(err("42").code, ErrorCode::InvalidEvent);
        let typo = err(r#"{"topic":"a","data":1,"evnet":"x"}"#);
        assert!(
            typo.message.contains("unknown field `evnet`"),
            "{}",
            typo.message
        );
        let second = err(r#"[{"topic":"a","data":1},{"topic":"a..b","data":1}]"#);
        assert!(
            second.message.starts_with("event 1: topic: segment 2"),
            "{}",
            second.message
        );
        let id = err(r#"{"topic":"a","data":1,"id":"7"}"#);
        assert!(id.message.contains("unknown field `id`"), "{}", id.message);
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_early() {
        let chunks =
            futures_util::stream::iter(vec![Ok::<_, warp::Error>(&b"12345"[..]), Ok(&b"6789"[..])]);
        assert_eq!(
            read_body(chunks, 8).await.unwrap_err().code,
            ErrorCode::BodyTooLarge
        );
        let chunks =
            futures_util::stream::iter(vec![Ok::<_, warp::Error>(&b"1234"[..]), Ok(&b"5678"[..])]);
        assert_eq!(&read_body(chunks, 8).await.unwrap()[..], b"12345678");
    }
}
