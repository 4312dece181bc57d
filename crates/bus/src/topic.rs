//! Topic names: the validated [`Topic`] type and the segment rules it shares with
//! [`Selector`](crate::Selector).

use std::{borrow::Borrow, fmt, str::FromStr, sync::Arc};

use crate::error::NameError;

/// Longest topic name or selector, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// A validated topic name such as `orders.created` or `users.42.notifications`.
///
/// A name is 1–255 bytes of segments separated by `.`; each segment is one or more of
/// `A-Z a-z 0-9 _ : -`. Cloning is a reference-count increment, so events and indexes can
/// share one allocation per name.
///
/// # Examples
///
/// ```
/// use herald_bus::Topic;
///
/// let topic: Topic = "orders.created".parse()?;
/// assert_eq!(topic.as_str(), "orders.created");
/// assert_eq!(topic.segments().collect::<Vec<_>>(), ["orders", "created"]);
///
/// let err = "orders..created".parse::<Topic>().unwrap_err();
/// assert_eq!(err.to_string(), "segment 2 of \"orders..created\" is empty");
/// # Ok::<(), herald_bus::NameError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Validates `name` as a topic name.
    ///
    /// # Errors
    ///
    /// [`NameError`] naming the offending segment or character; wildcards (`*`, `>`) are
    /// not allowed in a topic, only in a [`Selector`](crate::Selector).
    pub fn new(name: &str) -> Result<Self, NameError> {
        check_name(name, |index, segment| {
            check_segment(name, index, segment)?;
            Ok(())
        })?;
        Ok(Self(Arc::from(name)))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `.`-separated segments, in order.
    pub fn segments(&self) -> std::str::Split<'_, char> {
        self.0.split('.')
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Topic {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for Topic {
    type Error = NameError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for Topic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Topic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&name).map_err(serde::de::Error::custom)
    }
}

/// Checks the length of `name`, then hands each segment (with its 1-based index) to
/// `segment`.
pub(crate) fn check_name(
    name: &str,
    mut segment: impl FnMut(usize, &str) -> Result<(), NameError>,
) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    for (i, s) in name.split('.').enumerate() {
        segment(i + 1, s)?;
    }
    Ok(())
}

/// Checks one literal segment: non-empty, only `A-Z a-z 0-9 _ : -`.
pub(crate) fn check_segment(name: &str, index: usize, segment: &str) -> Result<(), NameError> {
    if segment.is_empty() {
        return Err(NameError::EmptySegment {
            name: name.to_owned(),
            index,
        });
    }
    if let Some(ch) = segment.chars().find(|&c| !is_segment_char(c)) {
        return Err(NameError::BadChar {
            name: name.to_owned(),
            segment: segment.to_owned(),
            ch,
        });
    }
    Ok(())
}

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for name in ["a", "orders.created", "users.42.notifications", "A_b:c-d.e"] {
            assert_eq!(Topic::new(name).unwrap().as_str(), name);
        }
        let longest = "a".repeat(MAX_NAME_LEN);
        assert!(Topic::new(&longest).is_ok());
    }

    #[test]
    fn rejects_bad_names_naming_the_part() {
        assert_eq!(Topic::new(""), Err(NameError::Empty));
        assert_eq!(
            Topic::new(&"a".repeat(256)),
            Err(NameError::TooLong { len: 256 })
        );
        assert_eq!(
            Topic::new(".a").unwrap_err().to_string(),
            "segment 1 of \".a\" is empty"
        );
        assert_eq!(
            Topic::new("a.").unwrap_err().to_string(),
            "segment 2 of \"a.\" is empty"
        );
        assert_eq!(
            Topic::new("orders.cre ated").unwrap_err().to_string(),
            "segment \"cre ated\" of \"orders.cre ated\" has the character ' ', \
             allowed are A-Z a-z 0-9 _ : -"
        );
        assert!(matches!(
            Topic::new("orders.*"),
            Err(NameError::BadChar { ch: '*', .. })
        ));
        assert!(matches!(
            Topic::new("orders.>"),
            Err(NameError::BadChar { ch: '>', .. })
        ));
        assert!(matches!(
            Topic::new("é"),
            Err(NameError::BadChar { ch: 'é', .. })
        ));
    }

    #[test]
    fn deserializes_with_validation() {
        let t: Topic = serde_json::from_str("\"a.b\"").unwrap();
        assert_eq!(t.as_str(), "a.b");
        let err = serde_json::from_str::<Topic>("\"a..b\"").unwrap_err();
        assert!(err.to_string().contains("segment 2"), "{err}");
    }
}
