//! Where a request's token comes from: `Authorization: Bearer`, the `access_token` query
//! parameter, or a cookie. Browsers' `EventSource` can send only the last two.

use warp::http::{HeaderMap, header};

use crate::query::Query;

/// The token a request carries, if any, looked up in that order.
pub(crate) fn token<'a>(headers: &'a HeaderMap, query: &'a Query, cookie: &str) -> Option<&'a str> {
    bearer(headers)
        .or_else(|| query.first("access_token"))
        .or_else(|| cookie_value(headers, cookie))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn bearer_then_query_then_cookie() {
        let q = Query::parse("access_token=from-query");
        let all = headers(&[
            ("authorization", "Bearer from-header"),
            ("cookie", "herald_token=from-cookie"),
        ]);
        assert_eq!(token(&all, &q, "herald_token"), Some("from-header"));
        let no_bearer = headers(&[("cookie", "a=1; herald_token=from-cookie")]);
        assert_eq!(token(&no_bearer, &q, "herald_token"), Some("from-query"));
        assert_eq!(
            token(&no_bearer, &Query::default(), "herald_token"),
            Some("from-cookie")
        );
        assert_eq!(token(&no_bearer, &Query::default(), "other"), None);
        let basic = headers(&[("authorization", "Basic abc")]);
        assert_eq!(token(&basic, &Query::default(), "herald_token"), None);
    }
}
