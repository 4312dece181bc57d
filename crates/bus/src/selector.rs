//! Selectors: topic patterns with NATS wildcards, and matching and covering rules.

use std::{fmt, str::FromStr, sync::Arc};

use crate::{
    Topic,
    error::NameError,
    topic::{check_name, check_segment},
};

/// One segment of a [`Selector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// Matches exactly this segment.
    Literal(&'a str),
    /// `*`: matches exactly one segment.
    One,
    /// `>`: matches one or more trailing segments.
    Rest,
}

/// A topic pattern: a topic name in which a segment may be `*` (exactly one segment) and
/// the last segment may be `>` (one or more segments), as in NATS.
///
/// # Examples
///
/// ```
/// use herald_bus::{Selector, Topic};
///
/// let one: Selector = "orders.*".parse()?;
/// let rest: Selector = "orders.>".parse()?;
/// let created: Topic = "orders.created".parse()?;
/// let eu: Topic = "orders.eu.created".parse()?;
///
/// assert!(one.matches(&created) && !one.matches(&eu));
/// assert!(rest.matches(&created) && rest.matches(&eu));
/// assert!(rest.covers(&one) && !one.covers(&rest));
/// # Ok::<(), herald_bus::NameError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Selector(Arc<str>);

impl Selector {
    /// Validates `pattern` as a selector.
    ///
    /// # Errors
    ///
    /// [`NameError`] naming the offending segment: a segment that is empty, mixes a
    /// wildcard with other characters (`ord*`), or a `>` that is not last.
    pub fn new(pattern: &str) -> Result<Self, NameError> {
        let last = pattern.split('.').count();
        check_name(pattern, |index, segment| match segment {
            "*" => Ok(()),
            ">" if index == last => Ok(()),
            ">" => Err(NameError::TailNotLast {
                name: pattern.to_owned(),
                index,
            }),
            _ => check_segment(pattern, index, segment),
        })?;
        Ok(Self(Arc::from(pattern)))
    }

    /// The pattern as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The topic this selector names, if it has no wildcard.
    ///
    /// ```
    /// use herald_bus::Selector;
    ///
    /// assert_eq!(Selector::new("a.b")?.as_topic().unwrap().as_str(), "a.b");
    /// assert!(Selector::new("a.*")?.as_topic().is_none());
    /// # Ok::<(), herald_bus::NameError>(())
    /// ```
    pub fn as_topic(&self) -> Option<Topic> {
        if self.is_exact() {
            Some(Topic::new(&self.0).expect("a selector without wildcards is a valid topic"))
        } else {
            None
        }
    }

    /// Whether this selector has no wildcard, so it matches exactly one topic.
    pub fn is_exact(&self) -> bool {
        self.tokens().all(|t| matches!(t, Token::Literal(_)))
    }

    /// Whether `topic` is one of the topics this selector matches.
    pub fn matches(&self, topic: &Topic) -> bool {
        let mut segments = topic.segments();
        for token in self.tokens() {
            match (token, segments.next()) {
                (Token::Rest, Some(_)) => return true,
                (Token::One, Some(_)) => {}
                (Token::Literal(l), Some(s)) if l == s => {}
                _ => return false,
            }
        }
        segments.next().is_none()
    }

    /// Whether every topic `other` can match is also matched by `self`.
    ///
    /// This is how a claim such as `users.42.>` is checked against a requested selector:
    /// it covers `users.42.notifications` and `users.42.*`, but not `users.*` or `>`.
    pub fn covers(&self, other: &Selector) -> bool {
        let (mut mine, mut theirs) = (self.tokens(), other.tokens());
        loop {
            match (mine.next(), theirs.next()) {
                (None, None) => return true,
                (Some(Token::Rest), Some(_)) => return true,
                (Some(Token::One), Some(Token::One | Token::Literal(_))) => {}
                (Some(Token::Literal(a)), Some(Token::Literal(b))) if a == b => {}
                _ => return false,
            }
        }
    }

    pub(crate) fn tokens(&self) -> impl Iterator<Item = Token<'_>> {
        self.0.split('.').map(|s| match s {
            "*" => Token::One,
            ">" => Token::Rest,
            literal => Token::Literal(literal),
        })
    }
}

impl From<Topic> for Selector {
    fn from(topic: Topic) -> Self {
        Self(Arc::from(topic.as_str()))
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Selector {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for Selector {
    type Error = NameError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl serde::Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pattern = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&pattern).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str) -> Selector {
        Selector::new(s).unwrap()
    }

    fn topic(s: &str) -> Topic {
        Topic::new(s).unwrap()
    }

    #[test]
    fn matches_nats_semantics() {
        assert!(sel("orders.*").matches(&topic("orders.created")));
        assert!(!sel("orders.*").matches(&topic("orders.eu.created")));
        assert!(!sel("orders.*").matches(&topic("orders")));
        assert!(sel("orders.>").matches(&topic("orders.created")));
        assert!(sel("orders.>").matches(&topic("orders.eu.created")));
        assert!(!sel("orders.>").matches(&topic("orders")));
        assert!(sel(">").matches(&topic("anything.at.all")));
        assert!(sel("*.created").matches(&topic("orders.created")));
        assert!(sel("a.b").matches(&topic("a.b")));
        assert!(!sel("a.b").matches(&topic("a.b.c")));
        assert!(!sel("a.b.c").matches(&topic("a.b")));
    }

    #[test]
    fn rejects_bad_selectors_naming_the_part() {
        assert_eq!(
            sel_err("orders.>.x"),
            "segment 2 of \"orders.>.x\" is `>`, which may only be the last segment"
        );
        assert_eq!(
            sel_err("orders.cr*"),
            "segment \"cr*\" of \"orders.cr*\" has the character '*', allowed are A-Z a-z 0-9 _ : -"
        );
        assert_eq!(sel_err("a..*"), "segment 2 of \"a..*\" is empty");
        assert_eq!(sel_err(""), "name is empty");
    }

    fn sel_err(s: &str) -> String {
        Selector::new(s).unwrap_err().to_string()
    }

    #[test]
    fn covers_is_containment() {
        let claim = sel("users.42.>");
        assert!(claim.covers(&sel("users.42.notifications")));
        assert!(claim.covers(&sel("users.42.*")));
        assert!(claim.covers(&sel("users.42.>")));
        assert!(!claim.covers(&sel("users.*")));
        assert!(!claim.covers(&sel(">")));
        assert!(!claim.covers(&sel("users.42")));
        assert!(sel(">").covers(&sel("a.*.>")));
        assert!(sel("a.*").covers(&sel("a.b")));
        assert!(!sel("a.b").covers(&sel("a.*")));
        assert!(!sel("a.*").covers(&sel("a.>")));
    }

    #[test]
    fn exact_selectors_name_a_topic() {
        assert!(sel("a.b").is_exact());
        assert!(!sel("a.>").is_exact());
        assert_eq!(Selector::from(topic("x.y")), sel("x.y"));
    }
}
