//! `EventPattern::parse` on any JSON, and `matches` of the result against any JSON.
//!
//! Two input modes, chosen by the first byte:
//! - `{` or `[`: JSON text, a pattern followed by events (`serde_json`'s stream of values), so the
//!   seeds can be the routing rules and the event fixtures as written;
//! - anything else: the bytes drive a generator (`arbitrary::Unstructured`) of JSON values built
//!   from the pattern vocabulary (operator names, event field names, CIDRs, wildcards), which
//!   reaches deep operator combinations that text mutation rarely spells correctly.
//!
//! Properties, beyond "never panics":
//! - `parse_str` of a pattern's text and `parse` of that text read as JSON agree;
//! - a field the pattern does not name never changes a match (EventBridge ignores other fields);
//! - `{"$or": [p, q]}` matches exactly when `p` or `q` does;
//! - `{f: [{"exists": true}]}` and `{f: [{"exists": false}]}` match exactly one of them;
//! - on a field holding one string or number, a value and `anything-but` it, `prefix` /
//!   `suffix` / `equals-ignore-case` / `wildcard` and their `anything-but` forms, and
//!   `numeric` `<` and `>=` match exactly one of each pair;
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

/// Which leaves a complement pair splits: any leaf, strings only, or numbers only (a string
/// operator matches no number, and `numeric` no string, in either form).
#[derive(PartialEq)]
enum Leaves {
    Any,
    Strings,
    Numbers,
}

/// Pattern pairs on `field` that no single leaf of their kind can match both or neither of,
/// with operands taken from `operand` (a string or number from the input).
fn complement_pairs(field: &str, operand: &Value) -> Vec<(Leaves, EventPattern, EventPattern)> {
    let mut specs: Vec<(Leaves, Value, Value)> = Vec::new();
    if operand.is_string() || operand.is_number() {
        specs.push((
            Leaves::Any,
            operand.clone(),
            json!({ "anything-but": operand }),
        ));
    }
    if let Some(s) = operand.as_str() {
        for op in ["prefix", "suffix", "equals-ignore-case", "wildcard"] {
            specs.push((
                Leaves::Strings,
                json!({ op: s }),
                json!({ "anything-but": { op: s } }),
            ));
        }
    }
    if let Some(n) = operand.as_f64() {
        specs.push((
            Leaves::Numbers,
            json!({"numeric": ["<", n]}),
            json!({"numeric": [">=", n]}),
        ));
    }
    specs
        .into_iter()
        .filter_map(|(kind, yes, no)| {
            let yes = EventPattern::parse(&json!({ field: [yes] })).ok()?;
            let no = EventPattern::parse(&json!({ field: [no] })).ok()?;
            Some((kind, yes, no))
        })
        .collect()
}

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
    let q = EventPattern::parse(&other);
    let either = match (&p, &q) {
        (Ok(_), Ok(_)) => {
            let or = json!({ "$or": [pattern.clone(), other.clone()] });
            Some(
                EventPattern::parse(&or)
                    .unwrap_or_else(|e| panic!("$or of two valid patterns refused: {e}: {or}")),
            )
        }
        _ => None,
    };
    // A field the pattern names (not `$or`, which is no field), for the `exists` pair.
    let field = match &pattern {
        Value::Object(m) => m
            .keys()
            .find(|k| *k != "$or")
            .cloned()
            .unwrap_or_else(|| "source".into()),
        _ => "source".into(),
    };
    let exists = EventPattern::parse(&json!({ field.clone(): [{"exists": true}] }))
        .expect("exists: true is valid");
    let absent = EventPattern::parse(&json!({ field.clone(): [{"exists": false}] }))
        .expect("exists: false is valid");
    let names_unrelated = pattern.to_string().contains(UNRELATED);
    let pairs = complement_pairs(&field, &other);

    for event in &events {
        let _ = routing().targets(event);
        assert_ne!(
            exists.matches(event),
            absent.matches(event),
            "exists true/false agree on {event}"
        );
        // On a single leaf value an operator and its `anything-but` (or the opposite bound) split
        // every value in two.
        let leaf = match event.get(&field) {
            Some(v @ Value::String(_)) => Some((v, Leaves::Strings)),
            Some(v @ Value::Number(_)) => Some((v, Leaves::Numbers)),
            _ => None,
        };
        if let Some((leaf, kind)) = leaf {
            for (_, yes, no) in pairs
                .iter()
                .filter(|(k, _, _)| *k == Leaves::Any || *k == kind)
            {
                assert_ne!(
                    yes.matches(event),
                    no.matches(event),
                    "{} / {} on {leaf}",
                    yes.as_json(),
                    no.as_json()
                );
            }
        }
        let Ok(p) = &p else { continue };
        let hit = p.matches(event);
        if let (Some(either), Ok(q)) = (&either, &q) {
            assert_eq!(
                either.matches(event),
                hit || q.matches(event),
                "$or on {event}"
            );
        }
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
