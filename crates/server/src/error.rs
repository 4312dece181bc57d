//! API errors and the one place they become HTTP responses:
//! `{"error": {"code": "snake_case", "message": "human text"}}`.

mod code;

use std::{convert::Infallible, time::Duration};

use herald_bus::{PublishError, SubscribeError};
use serde::Serialize;
use warp::{
    Rejection, Reply,
    http::{HeaderValue, StatusCode, header},
    reject::Reject,
};

pub(crate) use code::ErrorCode;

/// An error answered to an API client: a code (which fixes the status) and a message
/// saying what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    /// When to try again, answered as `Retry-After`; the code's default unless set.
    pub(crate) retry_after: Option<Duration>,
}

impl ApiError {
    /// An error of `code`, with `message` saying what exactly was wrong.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: code.retry_after(),
        }
    }

    /// An error of `code` with nothing to add to what the code means.
    pub(crate) fn bare(code: ErrorCode) -> Self {
        Self::new(code, code.summary())
    }

    /// The same error, telling the client to try again after `wait`.
    pub(crate) fn retry_after(self, wait: Duration) -> Self {
        Self {
            retry_after: Some(wait),
            ..self
        }
    }

    /// The HTTP status: the code's.
    pub(crate) fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl Reject for ApiError {}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        let code = match &e {
            PublishError::TooLarge { .. } => ErrorCode::EventTooLarge,
            PublishError::EmptyBatch => ErrorCode::EmptyBatch,
            e if e.is_outcome_unknown() => ErrorCode::OutcomeUnknown,
            _ => ErrorCode::LogUnavailable,
        };
        Self::new(code, e.to_string())
    }
}

impl From<SubscribeError> for ApiError {
    fn from(e: SubscribeError) -> Self {
        match e {
            SubscribeError::NoSelectors => Self::new(ErrorCode::MissingTopic, e.to_string()),
            _ => Self::bare(ErrorCode::ShuttingDown),
        }
    }
}

impl From<herald_bus::LogError> for ApiError {
    fn from(e: herald_bus::LogError) -> Self {
        Self::new(ErrorCode::LogUnavailable, e.to_string())
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl Reply for ApiError {
    fn into_response(self) -> warp::reply::Response {
        let body = Body {
            error: Inner {
                code: self.code.as_str(),
                message: &self.message,
            },
        };
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status()).into_response();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs().max(1).to_string();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&secs).expect("digits are a valid header"),
            );
        }
        response
    }
}

/// Turns every rejection into a JSON error, so no request is answered in another shape.
pub(crate) async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    let error = if let Some(e) = rejection.find::<ApiError>() {
        e.clone()
    } else if rejection.is_not_found() {
        ApiError::bare(ErrorCode::NotFound)
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::bare(ErrorCode::MethodNotAllowed)
    } else if let Some(e) = rejection.find::<warp::filters::cors::CorsForbidden>() {
        ApiError::new(ErrorCode::CorsForbidden, e.to_string())
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(ErrorCode::BodyTooLarge, "the request body is too large")
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        ApiError::new(ErrorCode::BadRequest, format!("{rejection:?}"))
    };
    Ok(error.into_response())
}
