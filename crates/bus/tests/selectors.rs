//! Property tests: selector matching against a simple reference model, and the soundness
//! of `covers` (the check behind JWT subscribe claims).

use herald_bus::{Selector, Topic};
use proptest::prelude::*;

/// A small alphabet, so random topics and selectors overlap often.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("c".to_owned()),
        "[a-c_:-]{1,3}"
    ]
}

fn topic() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(segment(), 1..5)
}

fn selector() -> impl Strategy<Value = Vec<String>> {
    let token = prop_oneof![3 => segment(), 1 => Just("*".to_owned())];
    (prop::collection::vec(token, 1..5), any::<bool>()).prop_map(|(mut tokens, tail)| {
        if tail {
            *tokens.last_mut().expect("at least one token") = ">".to_owned();
        }
        tokens
    })
}

/// The reference: NATS semantics written as plainly as possible.
fn reference_match(selector: &[String], topic: &[String]) -> bool {
    match (selector.split_first(), topic.split_first()) {
        (None, None) => true,
        (Some((s, _)), Some(_)) if s == ">" => true,
        (Some((s, rest_s)), Some((t, rest_t))) if s == "*" || s == t => {
            reference_match(rest_s, rest_t)
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn matching_agrees_with_the_reference(sel in selector(), top in topic()) {
        let selector = Selector::new(&sel.join(".")).unwrap();
        let topic = Topic::new(&top.join(".")).unwrap();
        prop_assert_eq!(selector.matches(&topic), reference_match(&sel, &top));
    }

    /// If `a` covers `b`, no topic is matched by `b` and not by `a`. Checked on every
    /// topic built from `b`'s own literals, which includes its corner cases.
    #[test]
    fn covers_is_sound(a in selector(), b in selector(), extra in topic()) {
        let sa = Selector::new(&a.join(".")).unwrap();
        let sb = Selector::new(&b.join(".")).unwrap();
        if sa.covers(&sb) {
            let concrete: Vec<String> = b
                .iter()
                .map(|t| if t == "*" || t == ">" { "zz".to_owned() } else { t.clone() })
                .collect();
            let mut candidates = vec![concrete.clone()];
            if b.last().map(String::as_str) == Some(">") {
                let mut longer = concrete.clone();
                longer.extend(extra.iter().cloned());
                candidates.push(longer);
            }
            for candidate in candidates {
                let topic = Topic::new(&candidate.join(".")).unwrap();
                if sb.matches(&topic) {
                    prop_assert!(sa.matches(&topic), "{sa} covers {sb} but misses {topic}");
                }
            }
        }
    }

    /// A selector always covers itself, and `>` covers everything.
    #[test]
    fn covers_is_reflexive_and_gt_is_top(a in selector()) {
        let s = Selector::new(&a.join(".")).unwrap();
        prop_assert!(s.covers(&s));
        prop_assert!(Selector::new(">").unwrap().covers(&s));
    }

    /// Names that pass validation survive a display round trip; anything else is refused
    /// without panicking.
    #[test]
    fn validation_never_panics(text in "\\PC{0,40}") {
        if let Ok(topic) = Topic::new(&text) {
            prop_assert_eq!(topic.as_str(), text.as_str());
        }
        let _ = Selector::new(&text);
    }
}
