//! `POST /publish`: one event (`{"topic", "data", …}` → `{"id"}`) or a batch (`[…]` →
//! `{"ids"}`), published atomically and in order.

use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use futures_util::{Stream, StreamExt};
use herald_bus::{Draft, Selector};
use serde::de::IgnoredAny;
use serde_json::{json, value::RawValue};
use warp::{
    Filter, Rejection, Reply,
    http::{HeaderMap, StatusCode},
    reply::Response,
};

use crate::{
    app::App,
    error::ApiError,
    query::{Query, query},
};

pub(crate) fn route(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path("publish")
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::any().map(move || app.clone()))
        .and(warp::header::headers_cloned())
        .and(query())
        .and(crate::serve::client_addr())
        .and(warp::body::stream())
        .and_then(|app: App, headers: HeaderMap, query: Query, remote: Option<SocketAddr>, body| async move {
            let request = Request { headers: &headers, query: &query, remote };
            publish(&app, request, body).await.map_err(warp::reject::custom)
        })
}

/// What a publish request carries besides its body.
struct Request<'a> {
    headers: &'a HeaderMap,
    query: &'a Query,
    remote: Option<SocketAddr>,
}

async fn publish<S, B>(app: &App, request: Request<'_>, body: S) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    if app.is_shutting_down() {
        return Err(ApiError::shutting_down());
    }
    let identity = app.auth().authenticate(request.headers, request.query)?;
    let bytes = read_body(body, app.config().limits.max_body_bytes).await?;
    let (drafts, batch) = parse(&bytes)?;
    for draft in &drafts {
        let topic = Selector::from(draft.topic().clone());
        if identity.publish.refused([&topic]).is_some() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_topic",
                format!("not allowed to publish to {topic}"),
            ));
        }
    }
    // Per token; without tokens (auth mode none), per client address.
    match &identity.credential {
        Some(token) => app.publish_rate().take(token, drafts.len())?,
        None => app
            .publish_rate()
            .take(request.remote.map(|a| a.ip()), drafts.len())?,
    }
    let timer = app.metrics().publish_duration.start_timer();
    let ids = app.bus().publish_batch(drafts).await?;
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
            ApiError::bad_request("bad_body", format!("could not read the body: {e}"))
        })?;
        if out.len() + chunk.remaining() > limit {
            return Err(ApiError::too_large(
                "body_too_large",
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
                body_error(e, |e| ApiError::bad_request("invalid_event", e.to_string()))
            })?;
            if items.is_empty() {
                return Err(ApiError::bad_request(
                    "empty_batch",
                    "a batch needs at least one event",
                ));
            }
            let drafts = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    serde_json::from_str(item.get()).map_err(|e| {
                        ApiError::bad_request("invalid_event", format!("event {i}: {e}"))
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok((drafts, true))
        }
        Some(b'{') => serde_json::from_slice(body)
            .map(|draft| (vec![draft], false))
            .map_err(|e| body_error(e, |e| ApiError::bad_request("invalid_event", e.to_string()))),
        _ => Err(match serde_json::from_slice::<IgnoredAny>(body) {
            Err(e) => body_error(e, |e| ApiError::bad_request("invalid_json", e.to_string())),
            Ok(_) => ApiError::bad_request(
                "invalid_event",
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
        _ => ApiError::bad_request("invalid_json", format!("invalid JSON: {e}")),
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
        assert_eq!(err("{").code, "invalid_json");
        assert_eq!(err("[]").code, "empty_batch");
        assert_eq!(err("42").code, "invalid_event");
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
            "body_too_large"
        );
        let chunks =
            futures_util::stream::iter(vec![Ok::<_, warp::Error>(&b"1234"[..]), Ok(&b"5678"[..])]);
        assert_eq!(&read_body(chunks, 8).await.unwrap()[..], b"12345678");
    }
}
