//! A request's query string as decoded pairs; `topic` may repeat.

/// Decoded `key=value` pairs, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(raw: &str) -> Self {
        Self {
            pairs: form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        }
    }

    /// Every value of `key`.
    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`.
    pub(crate) fn first(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A warp filter extracting the query (empty when there is none).
pub(crate) fn query()
-> impl warp::Filter<Extract = (Query,), Error = std::convert::Infallible> + Clone {
    use warp::Filter as _;
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .map(|raw: String| Query::parse(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_and_decoding() {
        let q = Query::parse("topic=a.b&topic=c%2E%3E&user=x+y&topic=");
        assert_eq!(q.all("topic").collect::<Vec<_>>(), ["a.b", "c.>", ""]);
        assert_eq!(q.first("user"), Some("x y"));
        assert_eq!(q.first("nope"), None);
    }
}
