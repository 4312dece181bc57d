//! URL, body and topic templates with `{name}` placeholders.
//!
//! A placeholder is `{` + a lower-case name + `}`; any other brace is literal,
//! so JSON bodies such as `{"topic":"{topic}","data":{data}}` need no escaping.
//! An unknown name is an error (a typo must not go to the server silently).
//! Values are inserted as they are, without URL or JSON escaping: topic and
//! user names made by the generator need none.

use crate::Error;

/// A placeholder a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    /// `{topic}`: the topic name (from the topic template).
    Topic,
    /// `{k}`: the topic index, `0..topics`.
    K,
    /// `{user}`: the user of a user-scoped stream (empty otherwise).
    User,
    /// `{data}`: the event payload, a JSON object.
    Data,
    /// `{run}`: the run id (`--run-id`), to keep runs apart.
    Run,
}

impl Var {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "topic" => Self::Topic,
            "k" => Self::K,
            "user" => Self::User,
            "data" => Self::Data,
            "run" => Self::Run,
            _ => return None,
        })
    }
}

/// The values placeholders expand to.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Vars<'a> {
    /// `{topic}`.
    pub topic: &'a str,
    /// `{k}`.
    pub k: usize,
    /// `{user}`.
    pub user: &'a str,
    /// `{data}`.
    pub data: &'a str,
    /// `{run}`.
    pub run: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] when a `{name}` placeholder is not one of [`Var`]'s.
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(after.len());
            if name_len > 0 && after[name_len..].starts_with('}') {
                let name = &after[..name_len];
                let var = Var::from_name(name).ok_or_else(|| Error::Template {
                    template: text.to_owned(),
                    reason: format!(
                        "unknown placeholder {{{name}}} (known: topic, k, user, data, run)"
                    ),
                })?;
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Var(var));
                rest = &after[name_len + 1..];
            } else {
                literal.push('{');
                rest = after;
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self { parts })
    }

    /// Expands the template with `vars`.
    pub(crate) fn expand(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        self.expand_into(vars, &mut out);
        out
    }

    /// Appends the expansion to `out` (reusing its allocation).
    pub(crate) fn expand_into(&self, vars: &Vars<'_>, out: &mut String) {
        use std::fmt::Write as _;
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Var(Var::Topic) => out.push_str(vars.topic),
                Part::Var(Var::K) => {
                    write!(out, "{}", vars.k).expect("writing to a String cannot fail");
                }
                Part::Var(Var::User) => out.push_str(vars.user),
                Part::Var(Var::Data) => out.push_str(vars.data),
                Part::Var(Var::Run) => out.push_str(vars.run),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars<'static> {
        Vars {
            topic: "load.3",
            k: 3,
            user: "u3-1",
            data: r#"{"seq":7}"#,
            run: "r1",
        }
    }

    #[test]
    fn expands_every_placeholder() {
        let t = Template::parse("/x/{run}/{k}?topic={topic}&user={user}&d={data}").unwrap();
        assert_eq!(
            t.expand(&vars()),
            r#"/x/r1/3?topic=load.3&user=u3-1&d={"seq":7}"#
        );
    }

    #[test]
    fn json_braces_stay_literal() {
        let t = Template::parse(r#"{"topic":"{topic}","data":{data},"n":{}}"#).unwrap();
        assert_eq!(
            t.expand(&vars()),
            r#"{"topic":"load.3","data":{"seq":7},"n":{}}"#
        );
    }

    #[test]
    fn unclosed_and_uppercase_braces_are_literal() {
        let t = Template::parse("a{topic b{Topic} c{").unwrap();
        assert_eq!(t.expand(&vars()), "a{topic b{Topic} c{");
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let err = Template::parse("/events?topic={topc}").unwrap_err();
        assert!(err.to_string().contains("{topc}"), "{err}");
    }

    #[test]
    fn plain_text_round_trips() {
        assert_eq!(
            Template::parse("/publish").unwrap().expand(&vars()),
            "/publish"
        );
        assert_eq!(Template::parse("").unwrap().expand(&vars()), "");
    }

    #[test]
    fn expand_into_appends() {
        let mut out = String::from(">");
        Template::parse("load.{k}")
            .unwrap()
            .expand_into(&vars(), &mut out);
        assert_eq!(out, ">load.3");
    }

    #[test]
    fn a_body_template_expands_its_placeholders() -> Result<(), crate::Error> {
        let body = Template::parse(r#"{"topic":"{topic}","data":{data}}"#)?;
        let vars = Vars {
            topic: "load.0",
            data: r#"{"seq":1}"#,
            ..Vars::default()
        };
        assert_eq!(body.expand(&vars), r#"{"topic":"load.0","data":{"seq":1}}"#);
        Ok(())
    }
}
