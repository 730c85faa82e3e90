//! `EventPattern::parse` on any JSON, and `matches` of the result against any JSON.
//!
//! Two input modes, chosen by the first byte:
//! - `{` or `[`: JSON text, a pattern followed by events (`serde_json`'s stream of values), so the
//!   seeds can be the routing rules and the event fixtures as written;
//! - anything else: the bytes drive a generator (`arbitrary::Unstructured`) of JSON values built
//!   from the pattern vocabulary (the operator, refused operator names, event field names), which
//!   reaches nestings that text mutation rarely spells correctly.
//!
//! Properties, beyond "never panics":
//! - `parse_str` of a pattern's text and `parse` of that text read as JSON agree;
//! - a field the pattern does not name never changes a match (EventBridge ignores other fields);
//! - on a field holding one string, a literal that matches it also matches as a `prefix`, and a
//!   `prefix` of it matches it extended;
//! - an operator the embedded bus does not implement is refused, never matched;
//! - the compiled-in routing definition routes any event without panicking.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::Unstructured;
use cuepoint_core::routing::{EventPattern, RoutingDefinition};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

/// Field names of the pattern language and of the events cuepoint routes.
const KEYS: &[&str] = &[
    "source",
    "detail-type",
    "detail",
    "account",
    "region",
    "resources",
    "time",
    "bucket",
    "name",
    "object",
    "key",
    "size",
    "status",
    "userMetadata",
    "workflow",
    "kind",
    "assetId",
    "a",
    "b",
    "$or",
    "prefix",
    "suffix",
    "equals-ignore-case",
    "wildcard",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
];

/// String values the operators and rules compare against.
const STRINGS: &[&str] = &[
    "",
    "aws.s3",
    "Object Created",
    "aws.mediaconvert",
    "COMPLETE",
    "ERROR",
    "cuepoint",
    "cuepoint.pipeline",
    "Media Prepared",
    "cuepoint-ingest",
    "masters/x.mxf",
    "a",
    "A",
    "ab",
    "abc",
    "ABC",
    "İ",
    "ß",
    "*",
    "**",
    "a*",
    "*b",
    "a*b*c",
    "\\*",
    "\\\\",
    "\\",
    "<",
    "<=",
    "=",
    ">=",
    ">",
    "10.0.0.0/24",
    "10.0.0.7",
    "10.0.1.7",
    "0.0.0.0/0",
    "::1",
    "2001:db8::/32",
    "2001:db8::1",
    "10.0.0.0/33",
    "::/0",
    "::/129",
    "1.2.3.4/x",
];

/// Numbers around the `numeric` operator's bounds.
const NUMBERS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    300.0,
    1.0e9,
    -1.0e9,
    1.0000001e9,
    1.0e308,
    5e-324,
];

const UNRELATED: &str = "zz-fuzz-unrelated-field";

fn routing() -> &'static RoutingDefinition {
    static DEF: OnceLock<RoutingDefinition> = OnceLock::new();
    DEF.get_or_init(|| {
        let vars = BTreeMap::from([
            ("IngestBucket", "cuepoint-ingest"),
            ("WorkflowName", "cuepoint"),
        ]);
        RoutingDefinition::load(&vars).expect("the compiled-in routing definition loads")
    })
}

fn pick<'a, T>(u: &mut Unstructured<'_>, from: &'a [T]) -> arbitrary::Result<&'a T> {
    u.choose(from)
}

fn key(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    Ok(if u.ratio(7, 8)? {
        (*pick(u, KEYS)?).to_string()
    } else {
        u.arbitrary::<String>()?
    })
}

fn value(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    let max = if depth >= 6 { 5 } else { 8 };
    Ok(match u.int_in_range(0..=max)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => json!(if u.ratio(1, 2)? {
            *pick(u, NUMBERS)?
        } else {
            u.arbitrary::<f64>()?
        }),
        4 => Value::String((*pick(u, STRINGS)?).to_string()),
        5 => Value::String(u.arbitrary()?),
        6 | 7 => {
            let n = u.int_in_range(0..=4)?;
            Value::Array(
                (0..n)
                    .map(|_| value(u, depth + 1))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => {
            let n = u.int_in_range(0..=4)?;
            let mut m = Map::new();
            for _ in 0..n {
                m.insert(key(u)?, value(u, depth + 1)?);
            }
            Value::Object(m)
        }
    })
}

/// Operators EventBridge has and the embedded bus refuses.
const REFUSED: &[&str] = &[
    "suffix",
    "equals-ignore-case",
    "wildcard",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
];

/// Pattern, second pattern, events.
fn inputs(data: &[u8]) -> Option<(Value, Value, Vec<Value>)> {
    if matches!(data.first(), Some(b'{' | b'[')) {
        let mut values = serde_json::Deserializer::from_slice(data).into_iter::<Value>();
        let pattern = values.next()?.ok()?;
        let events: Vec<Value> = values.map_while(Result::ok).take(8).collect();
        let other = events.first().cloned().unwrap_or(Value::Null);
        return Some((pattern, other, events));
    }
    let mut u = Unstructured::new(data);
    let pattern = value(&mut u, 0).ok()?;
    let other = value(&mut u, 0).ok()?;
    let n = u.int_in_range(1..=4).ok()?;
    let events = (0..n)
        .map(|_| value(&mut u, 0))
        .collect::<Result<_, _>>()
        .ok()?;
    Some((pattern, other, events))
}

fuzz_target!(|data: &[u8]| {
    let Some((pattern, other, events)) = inputs(data) else {
        return;
    };
    let p = EventPattern::parse(&pattern);
    // Compared through the same text: serde_json (without its `float_roundtrip` feature) may read
    // a printed f64 back 1 ulp off, e.g. 1.5324573162797141e-168 -> 1.532457316279714e-168.
    let text = pattern.to_string();
    if let Ok(reread) = serde_json::from_str::<Value>(&text) {
        assert_eq!(
            EventPattern::parse_str(&text),
            EventPattern::parse(&reread),
            "parse and parse_str disagree on {text}"
        );
    }
    // A field the pattern names, for the literal/prefix pair.
    let field = match &pattern {
        Value::Object(m) => m.keys().next().cloned().unwrap_or_else(|| "source".into()),
        _ => "source".into(),
    };
    for op in REFUSED {
        let refused = EventPattern::parse(&json!({ field.clone(): [{ *op: other.clone() }] }));
        assert!(refused.is_err(), "{op} was accepted");
    }
    let names_unrelated = pattern.to_string().contains(UNRELATED);

    for event in &events {
        let _ = routing().targets(event);
        if let Some(Value::String(s)) = event.get(&field) {
            let literal = EventPattern::parse(&json!({ field.clone(): [s] })).expect("a literal");
            let prefix =
                EventPattern::parse(&json!({ field.clone(): [{"prefix": s}] })).expect("a prefix");
            assert!(literal.matches(event), "{s:?} on {event}");
            assert!(prefix.matches(event), "prefix {s:?} on {event}");
            if let Value::Object(m) = event {
                let mut longer = m.clone();
                longer.insert(field.clone(), json!(format!("{s}x")));
                let longer = Value::Object(longer);
                assert!(prefix.matches(&longer), "prefix {s:?} on {longer}");
                assert!(!literal.matches(&longer), "{s:?} on {longer}");
            }
        }
        let Ok(p) = &p else { continue };
        let hit = p.matches(event);
        if let (Value::Object(m), false) = (event, names_unrelated) {
            let mut widened = m.clone();
            widened.insert(UNRELATED.into(), json!(["x", {"y": null}]));
            assert_eq!(
                p.matches(&Value::Object(widened)),
                hit,
                "an unrelated field changed the match on {event}"
            );
        }
    }
});
