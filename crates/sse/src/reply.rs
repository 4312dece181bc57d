//! The warp adapter: where a client resumes from, and an SSE response around a stream of
//! frames.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use herald_bus::Resume;
use warp::{
    Filter, Reply,
    http::{HeaderMap, HeaderValue, header},
};

/// Query parameters that carry a last event id, as Mercure clients spell them, for
/// browsers whose `EventSource` cannot set headers.
pub const LAST_EVENT_ID_PARAMS: [&str; 3] = ["lastEventId", "lastEventID", "last_event_id"];

/// Where the client resumes from: the `Last-Event-ID` header, else one of the
/// [`LAST_EVENT_ID_PARAMS`] query parameters, else live.
///
/// The header wins: on reconnect a browser sends the id of the last event it saw there,
/// while an id in the URL is whatever the page started with.
///
/// ```
/// use herald_bus::{EventId, Resume};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let resume = warp::test::request()
///     .path("/events?topic=a&lastEventId=ab-3")
///     .header("last-event-id", "ab-9")
///     .filter(&herald_sse::resume())
///     .await
///     .unwrap();
/// assert_eq!(resume, Resume::After(EventId::new(0xab, 9)));
/// # });
/// ```
pub fn resume() -> impl Filter<Extract = (Resume,), Error = Infallible> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::header::headers_cloned()
        .and(query)
        .map(|headers: HeaderMap, query: String| resume_from(headers.get("last-event-id"), &query))
}

/// [`resume`] as a plain function of the header and the raw query string.
///
/// ```
/// use herald_bus::{EventId, Resume};
/// use herald_sse::resume_from;
///
/// assert_eq!(resume_from(None, "topic=a"), Resume::Live);
/// assert_eq!(resume_from(None, "last_event_id=1-2"), Resume::After(EventId::new(1, 2)));
/// assert_eq!(resume_from(None, "lastEventID=junk"), Resume::Unknown("junk".into()));
/// ```
pub fn resume_from(header: Option<&HeaderValue>, query: &str) -> Resume {
    if let Some(value) = header {
        return match value.to_str() {
            Ok(text) => Resume::from_last_event_id(text.trim()),
            Err(_) => Resume::Unknown(
                String::from_utf8_lossy(value.as_bytes())
                    .chars()
                    .take(64)
                    .collect(),
            ),
        };
    }
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| LAST_EVENT_ID_PARAMS.contains(&key.as_ref()))
        .map_or(Resume::Live, |(_, value)| {
            Resume::from_last_event_id(&value)
        })
}

/// An SSE response streaming `frames`: `200`, `Content-Type: text/event-stream`,
/// `Cache-Control: no-cache`, and `X-Accel-Buffering: no` so nginx does not buffer it.
///
/// Pass an [`EventStream`](crate::EventStream), or any stream of encoded frames.
pub fn reply<S>(frames: S) -> warp::reply::Response
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    // warp wants a `Sync` body stream; the wrapper only ever hands out `&mut` access.
    let body = sync_wrapper::SyncStream::new(frames.map(Ok::<_, Infallible>));
    let mut response = warp::reply::stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_bus::EventId;

    #[test]
    fn header_beats_query_and_bad_values_are_unknown() {
        let header = HeaderValue::from_static("1-5");
        assert_eq!(
            resume_from(Some(&header), "lastEventId=1-2"),
            Resume::After(EventId::new(1, 5))
        );
        let empty = HeaderValue::from_static("");
        assert_eq!(resume_from(Some(&empty), ""), Resume::Live);
        let binary = HeaderValue::from_bytes(b"\xff1").unwrap();
        assert!(matches!(resume_from(Some(&binary), ""), Resume::Unknown(_)));
        assert_eq!(
            resume_from(None, "lastEventId=1%2D7"),
            Resume::After(EventId::new(1, 7))
        );
        assert_eq!(resume_from(None, "%%%"), Resume::Live);
    }

    #[tokio::test]
    async fn reply_sets_the_sse_headers() {
        let frames = futures_util::stream::iter([Bytes::from_static(b"data: x\n\n")]);
        let response = reply(frames);
        let h = response.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/event-stream");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert_eq!(h["x-accel-buffering"], "no");
    }
}
