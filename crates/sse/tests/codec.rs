//! Property tests of the codec through its public API: the parser is total
//! and chunking-independent, and whatever the encoder writes parses back.

use herald_sse::{Error, Event, Frame, Item, Parser, comment, retry};
use proptest::prelude::*;

/// Fragments that make random input look like an event stream often enough
/// to reach every branch of the parser.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"data".to_vec()),
        Just(b"id".to_vec()),
        Just(b"event".to_vec()),
        Just(b"retry".to_vec()),
        Just(b":".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\xE2\x82".to_vec()),
        Just(b"\xAC".to_vec()),
        "[0-9]{1,22}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 1..4),
    ];
    prop::collection::vec(token, 0..64).prop_map(|tokens| tokens.concat())
}

/// Any bytes at all, or event-stream-like bytes.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..256), sse_bytes()]
}

/// Splits `bytes` at `cuts` (taken modulo the length, in any order).
fn chunks<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// Everything a parser observably did with a chunked input.
#[derive(Debug, PartialEq)]
struct Outcome {
    items: Vec<Item>,
    error: Option<Error>,
    last_event_id: String,
    dropped: bool,
}

fn run(mut parser: Parser, chunks: &[&[u8]]) -> Outcome {
    let mut items = Vec::new();
    let mut error = None;
    for chunk in chunks {
        if let Err(err) = parser.feed_into(chunk, &mut items) {
            error = Some(err);
            break;
        }
    }
    let last_event_id = parser.last_event_id().to_owned();
    let dropped = parser.finish();
    Outcome {
        items,
        error,
        last_event_id,
        dropped,
    }
}

/// Text without the characters the encoder refuses in ids and event types.
fn field_value() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| s.replace(['\r', '\n', '\0'], ""))
}

/// Text rich in line ends of every kind, spaces and colons.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "\\PC{0,6}",
        Just("\r".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just(" ".to_owned()),
        Just(":".to_owned()),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

#[derive(Debug, Clone)]
enum Block {
    Frame {
        id: Option<String>,
        event_type: Option<String>,
        retry: Option<u64>,
        data: String,
    },
    Comment(String),
    Retry(u64),
}

fn block() -> impl Strategy<Value = Block> {
    let frame = (
        proptest::option::of(field_value()),
        proptest::option::of(field_value()),
        proptest::option::of(any::<u64>()),
        text(),
    )
        .prop_map(|(id, event_type, retry, data)| Block::Frame {
            id,
            event_type,
            retry,
            data,
        });
    prop_oneof![
        4 => frame,
        1 => text().prop_map(Block::Comment),
        1 => any::<u64>().prop_map(Block::Retry),
    ]
}

fn encode(block: &Block) -> bytes::Bytes {
    match block {
        Block::Frame {
            id,
            event_type,
            retry,
            data,
        } => {
            let mut frame = Frame::new(data);
            if let Some(id) = id {
                frame = frame.id(id).expect("generated ids are valid");
            }
            if let Some(event_type) = event_type {
                frame = frame.event(event_type).expect("generated types are valid");
            }
            if let Some(ms) = retry {
                frame = frame.retry(*ms);
            }
            frame.encode()
        }
        Block::Comment(text) => comment(text),
        Block::Retry(ms) => retry(*ms),
    }
}

fn normalise_line_ends(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The items a browser-exact parser must report for `blocks` in a row.
fn expected_items(blocks: &[Block]) -> Vec<Item> {
    let mut last_event_id = String::new();
    let mut items = Vec::new();
    for block in blocks {
        match block {
            Block::Frame {
                id,
                event_type,
                retry,
                data,
            } => {
                if let Some(id) = id {
                    last_event_id.clone_from(id);
                }
                items.extend(retry.map(Item::Retry));
                let event_type = match event_type.as_deref() {
                    None | Some("") => "message".to_owned(),
                    Some(event_type) => event_type.to_owned(),
                };
                items.push(Item::Event(Event {
                    event_type,
                    data: normalise_line_ends(data),
                    last_event_id: last_event_id.clone(),
                }));
            }
            Block::Comment(text) => {
                let lines = normalise_line_ends(text);
                items.extend(lines.split('\n').map(|line| Item::Comment(line.to_owned())));
            }
            Block::Retry(ms) => items.push(Item::Retry(*ms)),
        }
    }
    items
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parser_never_panics(
        bytes in input(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        limit in prop_oneof![Just(Parser::DEFAULT_LIMIT), 0..32usize],
    ) {
        let outcome = run(Parser::with_limit(limit), &chunks(&bytes, &cuts));
        // Nothing may be buffered past the limit, so no line or data beyond it.
        for item in &outcome.items {
            if let Item::Event(event) = item {
                prop_assert!(event.data.len() < limit.max(1));
            }
        }
    }

    #[test]
    fn chunking_does_not_change_the_outcome(
        bytes in input(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        limit in prop_oneof![Just(Parser::DEFAULT_LIMIT), 4..32usize],
    ) {
        let whole = run(Parser::with_limit(limit), &[&bytes]);
        let split = run(Parser::with_limit(limit), &chunks(&bytes, &cuts));
        prop_assert_eq!(&whole, &split);
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(&whole, &run(Parser::with_limit(limit), &bytewise));
    }

    #[test]
    fn encoded_blocks_parse_back(
        blocks in prop::collection::vec(block(), 1..6),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let stream: Vec<u8> = blocks.iter().flat_map(encode).collect();
        let outcome = run(Parser::new(), &chunks(&stream, &cuts));
        prop_assert_eq!(outcome.error, None);
        prop_assert_eq!(outcome.items, expected_items(&blocks));
        prop_assert!(!outcome.dropped, "a stream of whole blocks ends cleanly");
    }

    #[test]
    fn one_frame_is_one_event(id in field_value(), event_type in field_value(), data in text()) {
        let frame = Frame::new(&data).id(&id).and_then(|frame| frame.event(&event_type));
        let bytes = frame.expect("generated fields are valid").encode();
        let items = Parser::new().feed(&bytes).expect("small input");
        prop_assert_eq!(items.len(), 1);
        let Item::Event(event) = &items[0] else {
            return Err(TestCaseError::fail("expected an event"));
        };
        prop_assert_eq!(&event.last_event_id, &id);
        prop_assert_eq!(&event.data, &normalise_line_ends(&data));
    }

    #[test]
    fn forbidden_characters_are_always_refused(
        prefix in field_value(),
        bad in prop_oneof![Just('\r'), Just('\n'), Just('\0')],
        suffix in any::<String>(),
    ) {
        let value = format!("{prefix}{bad}{suffix}");
        prop_assert_eq!(Frame::new("x").id(&value), Err(Error::InvalidId));
        prop_assert_eq!(Frame::new("x").event(&value), Err(Error::InvalidEventType));
    }
}
