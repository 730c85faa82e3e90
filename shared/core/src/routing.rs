//! EventBridge event-pattern matching, and cuepoint's routing definition (`infra/routing.json`).
//!
//! The embedded bus routes with the same rules EventBridge runs on AWS, so the matcher follows
//! the EventBridge user guide ("Event patterns", "Arrays in event patterns", "Matching null
//! values and empty strings", "Content filtering", "Comparison operators"):
//! - every field named in the pattern must be present, with the same nesting; other event
//!   fields are ignored;
//! - a pattern field lists values; it matches when any listed value matches the event's value
//!   or, if the event holds an array, any element of it;
//! - literals are compared exactly (strings case-sensitively, numbers by their JSON form, so
//!   `300` and `300.0` differ), `null` and `""` are distinct values;
//! - operators: `prefix`, `suffix` (each also `{"equals-ignore-case": ..}`),
//!   `equals-ignore-case`, `wildcard`, `anything-but` (a value, a list, or
//!   `{prefix|suffix|equals-ignore-case|wildcard}`), `numeric`, `exists`, `cidr`, and `$or`;
//! - operators other than `exists: false` need the field present as a leaf (a field holding an
//!   object is not a leaf: `exists: false` matches it).
//!
//! Deviation: numbers `300.0` and `3.0e2` compare equal here (serde_json keeps no lexical form).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The routing definition, compiled in.
pub const ROUTING_JSON: &str = include_str!("../../../infra/routing.json");

/// A pattern that EventBridge would refuse, with the JSON path of the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event pattern at {path}: {why}")]
pub struct PatternError {
    pub path: String,
    pub why: String,
}

/// A compiled EventBridge event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPattern {
    root: ObjectPattern,
    json: Value,
}

#[derive(Debug, Clone, PartialEq)]
struct ObjectPattern {
    fields: Vec<(String, FieldPattern)>,
    /// `$or`: at least one alternative must match as well (empty: no `$or`).
    any_of: Vec<ObjectPattern>,
}

#[derive(Debug, Clone, PartialEq)]
enum FieldPattern {
    Object(ObjectPattern),
    Leaf(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Equals(Value),
    EqualsIgnoreCase(String),
    Prefix { value: String, ignore_case: bool },
    Suffix { value: String, ignore_case: bool },
    Wildcard(Vec<GlobTok>),
    AnythingBut(AnythingBut),
    Numeric(Vec<(Cmp, f64)>),
    Exists(bool),
    Cidr { net: IpAddr, bits: u8 },
}

#[derive(Debug, Clone, PartialEq)]
enum AnythingBut {
    Values(Vec<Value>),
    Prefix(String),
    Suffix(String),
    IgnoreCase(Vec<String>),
    Wildcard(Vec<Vec<GlobTok>>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum GlobTok {
    Star,
    Char(char),
}

impl EventPattern {
    pub fn parse(pattern: &Value) -> Result<Self, PatternError> {
        let Value::Object(obj) = pattern else {
            return Err(perr(
                "$",
                format!("the pattern is {}, expected a JSON object", short(pattern)),
            ));
        };
        Ok(Self {
            root: parse_object(obj, "$")?,
            json: pattern.clone(),
        })
    }

    pub fn parse_str(pattern: &str) -> Result<Self, PatternError> {
        let v: Value =
            serde_json::from_str(pattern).map_err(|e| perr("$", format!("not JSON: {e}")))?;
        Self::parse(&v)
    }

    /// Does `event` (a whole EventBridge event: `source`, `detail-type`, `detail`, ...) match?
    pub fn matches(&self, event: &Value) -> bool {
        match_object(&self.root, event.as_object())
    }

    /// The pattern as written.
    pub fn as_json(&self) -> &Value {
        &self.json
    }
}

fn perr(path: &str, why: impl Into<String>) -> PatternError {
    PatternError {
        path: path.to_string(),
        why: why.into(),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

fn parse_object(obj: &Map<String, Value>, path: &str) -> Result<ObjectPattern, PatternError> {
    if obj.is_empty() {
        return Err(perr(path, "empty object: name at least one field"));
    }
    let mut p = ObjectPattern {
        fields: Vec::new(),
        any_of: Vec::new(),
    };
    for (key, v) in obj {
        let at = format!("{path}.{key}");
        if key == "$or" {
            let Value::Array(alts) = v else {
                return Err(perr(&at, "$or takes an array of patterns"));
            };
            if alts.len() < 2 {
                return Err(perr(&at, "$or needs at least two alternatives"));
            }
            for (i, alt) in alts.iter().enumerate() {
                let Value::Object(o) = alt else {
                    return Err(perr(&format!("{at}[{i}]"), "expected a pattern object"));
                };
                p.any_of.push(parse_object(o, &format!("{at}[{i}]"))?);
            }
            continue;
        }
        let field = match v {
            Value::Object(o) => FieldPattern::Object(parse_object(o, &at)?),
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(perr(&at, "empty array: list at least one value"));
                }
                let ms = items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| parse_matcher(it, &format!("{at}[{i}]")));
                FieldPattern::Leaf(ms.collect::<Result<_, _>>()?)
            }
            other => {
                return Err(perr(
                    &at,
                    format!(
                        "{} is neither an array of values nor a nested pattern",
                        short(other)
                    ),
                ))
            }
        };
        p.fields.push((key.clone(), field));
    }
    Ok(p)
}

fn parse_matcher(item: &Value, at: &str) -> Result<Matcher, PatternError> {
    let obj = match item {
        Value::Array(_) => return Err(perr(at, "nested arrays are not allowed")),
        Value::Object(o) => o,
        literal => return Ok(Matcher::Equals(literal.clone())),
    };
    if obj.len() != 1 {
        return Err(perr(at, "an operator object holds exactly one operator"));
    }
    let (op, arg) = obj.iter().next().expect("one entry");
    let at = format!("{at}.{op}");
    let at = at.as_str();
    match op.as_str() {
        "prefix" | "suffix" => {
            let (value, ignore_case) = match arg {
                Value::String(s) => (s.clone(), false),
                Value::Object(o) if o.len() == 1 => match o.get("equals-ignore-case") {
                    Some(Value::String(s)) => (s.clone(), true),
                    _ => {
                        return Err(perr(
                            at,
                            "expected a string or {\"equals-ignore-case\": string}",
                        ))
                    }
                },
                _ => {
                    return Err(perr(
                        at,
                        "expected a string or {\"equals-ignore-case\": string}",
                    ))
                }
            };
            Ok(if op == "prefix" {
                Matcher::Prefix { value, ignore_case }
            } else {
                Matcher::Suffix { value, ignore_case }
            })
        }
        "equals-ignore-case" => match arg {
            Value::String(s) => Ok(Matcher::EqualsIgnoreCase(s.clone())),
            _ => Err(perr(at, "expected a string")),
        },
        "wildcard" => match arg {
            Value::String(s) => Ok(Matcher::Wildcard(parse_glob(s, at)?)),
            _ => Err(perr(at, "expected a string")),
        },
        "anything-but" => parse_anything_but(arg, at).map(Matcher::AnythingBut),
        "numeric" => parse_numeric(arg, at),
        "exists" => match arg {
            Value::Bool(b) => Ok(Matcher::Exists(*b)),
            _ => Err(perr(at, "expected true or false")),
        },
        "cidr" => parse_cidr(arg, at),
        other => Err(perr(at, format!("unknown operator {other:?}"))),
    }
}

fn parse_anything_but(arg: &Value, at: &str) -> Result<AnythingBut, PatternError> {
    match arg {
        Value::String(_) | Value::Number(_) => Ok(AnythingBut::Values(vec![arg.clone()])),
        Value::Array(vs) => {
            let all_strings = vs.iter().all(Value::is_string);
            let all_numbers = vs.iter().all(Value::is_number);
            if vs.is_empty() || !(all_strings || all_numbers) {
                return Err(perr(
                    at,
                    "expected a non-empty list of only strings or only numbers",
                ));
            }
            Ok(AnythingBut::Values(vs.clone()))
        }
        Value::Object(o) if o.len() == 1 => {
            let (op, v) = o.iter().next().expect("one entry");
            let strings = |v: &Value| -> Result<Vec<String>, PatternError> {
                match v {
                    Value::String(s) => Ok(vec![s.clone()]),
                    Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_string) => Ok(a
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()),
                    _ => Err(perr(
                        &format!("{at}.{op}"),
                        "expected a string or a non-empty list of strings",
                    )),
                }
            };
            match (op.as_str(), v) {
                ("prefix", Value::String(s)) => Ok(AnythingBut::Prefix(s.clone())),
                ("suffix", Value::String(s)) => Ok(AnythingBut::Suffix(s.clone())),
                ("equals-ignore-case", v) => Ok(AnythingBut::IgnoreCase(strings(v)?)),
                ("wildcard", v) => {
                    let globs = strings(v)?
                        .iter()
                        .map(|g| parse_glob(g, at))
                        .collect::<Result<_, _>>()?;
                    Ok(AnythingBut::Wildcard(globs))
                }
                _ => Err(perr(
                    at,
                    format!("unsupported anything-but operand {:?}", short(arg)),
                )),
            }
        }
        _ => Err(perr(
            at,
            "expected a string, a number, a list, or {prefix|suffix|equals-ignore-case|wildcard}",
        )),
    }
}

fn parse_numeric(arg: &Value, at: &str) -> Result<Matcher, PatternError> {
    let Value::Array(items) = arg else {
        return Err(perr(at, "expected [op, number, ...]"));
    };
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return Err(perr(at, "expected one or two (operator, number) pairs"));
    }
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let cmp = match pair[0].as_str() {
            Some("<") => Cmp::Lt,
            Some("<=") => Cmp::Le,
            Some("=") => Cmp::Eq,
            Some(">=") => Cmp::Ge,
            Some(">") => Cmp::Gt,
            _ => {
                return Err(perr(
                    at,
                    format!("{} is not one of < <= = >= >", short(&pair[0])),
                ))
            }
        };
        let n = pair[1]
            .as_f64()
            .ok_or_else(|| perr(at, format!("{} is not a number", short(&pair[1]))))?;
        if !(-1.0e9..=1.0e9).contains(&n) {
            return Err(perr(at, format!("{n} is outside -1e9..=1e9")));
        }
        out.push((cmp, n));
    }
    if let [(lo, _), (hi, _)] = out.as_slice() {
        if !matches!(lo, Cmp::Gt | Cmp::Ge) || !matches!(hi, Cmp::Lt | Cmp::Le) {
            return Err(perr(
                at,
                "a range is a lower bound (> or >=) then an upper bound (< or <=)",
            ));
        }
    }
    Ok(Matcher::Numeric(out))
}

fn parse_cidr(arg: &Value, at: &str) -> Result<Matcher, PatternError> {
    let s = arg
        .as_str()
        .ok_or_else(|| perr(at, "expected a string such as \"10.0.0.0/24\""))?;
    let (ip, bits) = s
        .split_once('/')
        .ok_or_else(|| perr(at, format!("{s:?} has no /prefix-length")))?;
    let net: IpAddr = ip
        .parse()
        .map_err(|_| perr(at, format!("{ip:?} is not an IP address")))?;
    let bits: u8 = bits
        .parse()
        .map_err(|_| perr(at, format!("{bits:?} is not a prefix length")))?;
    let max = if net.is_ipv4() { 32 } else { 128 };
    if bits > max {
        return Err(perr(at, format!("prefix length {bits} exceeds {max}")));
    }
    Ok(Matcher::Cidr { net, bits })
}

/// `*` matches any run of characters; `\*` and `\\` are a literal star and backslash.
fn parse_glob(s: &str, at: &str) -> Result<Vec<GlobTok>, PatternError> {
    let mut toks = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('*' | '\\')) => toks.push(GlobTok::Char(e)),
                _ => return Err(perr(at, format!("{s:?}: only \\* and \\\\ may be escaped"))),
            },
            '*' => {
                if toks.last() == Some(&GlobTok::Star) {
                    return Err(perr(
                        at,
                        format!("{s:?}: consecutive wildcards are not allowed"),
                    ));
                }
                toks.push(GlobTok::Star)
            }
            c => toks.push(GlobTok::Char(c)),
        }
    }
    Ok(toks)
}

fn glob_match(toks: &[GlobTok], s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let (mut p, mut i) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None; // (token after the star, text position)
    while i < chars.len() {
        match toks.get(p) {
            Some(GlobTok::Char(c)) if *c == chars[i] => {
                p += 1;
                i += 1;
            }
            Some(GlobTok::Star) => {
                backtrack = Some((p + 1, i));
                p += 1;
            }
            _ => match backtrack {
                Some((bp, bi)) => {
                    p = bp;
                    i = bi + 1;
                    backtrack = Some((bp, bi + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == GlobTok::Star)
}

// ---- matching ----

fn match_object(p: &ObjectPattern, event: Option<&Map<String, Value>>) -> bool {
    let fields_ok = p
        .fields
        .iter()
        .all(|(name, fp)| match_field(fp, event.and_then(|m| m.get(name))));
    fields_ok && (p.any_of.is_empty() || p.any_of.iter().any(|alt| match_object(alt, event)))
}

fn match_field(fp: &FieldPattern, v: Option<&Value>) -> bool {
    let mut found = Vec::new();
    if let Some(v) = v {
        flatten(v, &mut found);
    }
    match fp {
        FieldPattern::Object(op) => {
            let objects: Vec<&Map<String, Value>> =
                found.iter().filter_map(|v| v.as_object()).collect();
            if objects.is_empty() {
                // absent (or not an object): only `exists: false` inside can still hold
                match_object(op, None)
            } else {
                objects.into_iter().any(|o| match_object(op, Some(o)))
            }
        }
        FieldPattern::Leaf(ms) => {
            let leaves: Vec<&Value> = found.into_iter().filter(|v| !v.is_object()).collect();
            ms.iter().any(|m| match m {
                Matcher::Exists(want) => leaves.is_empty() != *want,
                m => leaves.iter().any(|l| m.matches_leaf(l)),
            })
        }
    }
}

/// Arrays (and arrays of arrays) stand for each of their elements.
fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        v => out.push(v),
    }
}

impl Matcher {
    fn matches_leaf(&self, v: &Value) -> bool {
        let s = v.as_str();
        match self {
            Matcher::Equals(p) => p == v,
            Matcher::EqualsIgnoreCase(p) => s.is_some_and(|s| s.to_lowercase() == p.to_lowercase()),
            Matcher::Prefix {
                value,
                ignore_case: false,
            } => s.is_some_and(|s| s.starts_with(value.as_str())),
            Matcher::Prefix {
                value,
                ignore_case: true,
            } => s.is_some_and(|s| s.to_lowercase().starts_with(&value.to_lowercase())),
            Matcher::Suffix {
                value,
                ignore_case: false,
            } => s.is_some_and(|s| s.ends_with(value.as_str())),
            Matcher::Suffix {
                value,
                ignore_case: true,
            } => s.is_some_and(|s| s.to_lowercase().ends_with(&value.to_lowercase())),
            Matcher::Wildcard(g) => s.is_some_and(|s| glob_match(g, s)),
            Matcher::AnythingBut(AnythingBut::Values(vs)) => !vs.contains(v),
            Matcher::AnythingBut(AnythingBut::Prefix(p)) => {
                s.is_some_and(|s| !s.starts_with(p.as_str()))
            }
            Matcher::AnythingBut(AnythingBut::Suffix(p)) => {
                s.is_some_and(|s| !s.ends_with(p.as_str()))
            }
            Matcher::AnythingBut(AnythingBut::IgnoreCase(ps)) => {
                s.is_some_and(|s| ps.iter().all(|p| p.to_lowercase() != s.to_lowercase()))
            }
            Matcher::AnythingBut(AnythingBut::Wildcard(gs)) => {
                s.is_some_and(|s| gs.iter().all(|g| !glob_match(g, s)))
            }
            Matcher::Numeric(conds) => v.as_f64().is_some_and(|n| {
                conds.iter().all(|(c, x)| match c {
                    Cmp::Lt => n < *x,
                    Cmp::Le => n <= *x,
                    Cmp::Eq => n == *x,
                    Cmp::Ge => n >= *x,
                    Cmp::Gt => n > *x,
                })
            }),
            Matcher::Cidr { net, bits } => s
                .and_then(|s| s.parse::<IpAddr>().ok())
                .is_some_and(|ip| in_cidr(ip, *net, *bits)),
            Matcher::Exists(_) => unreachable!("exists is decided on the whole field"),
        }
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (a, b, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32u32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128u32),
        _ => return false,
    };
    let bits = u32::from(bits);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (a >> shift) == (b >> shift)
}

// ---- the routing definition ----

/// A queue and the worker that consumes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDef {
    pub name: String,
    pub worker: String,
    pub visibility_timeout_seconds: u32,
    pub max_receive_count: u32,
}

/// An EventBridge rule with one queue target.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDef {
    pub name: String,
    pub queue: String,
    pub pattern: EventPattern,
}

/// An SNS topic with one queue subscription.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicDef {
    pub name: String,
    pub queue: String,
    pub raw_message_delivery: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("routing definition is not valid JSON: {0}")]
    Json(String),
    #[error("routing definition: {0}")]
    Shape(String),
    #[error("routing definition: ${{{name}}} in {at} has no value")]
    MissingVariable { name: String, at: String },
    #[error("routing definition: rule {rule:?}: {source}")]
    Pattern { rule: String, source: PatternError },
    #[error("routing definition: {what} {name:?} targets unknown queue {queue:?}")]
    UnknownQueue {
        what: &'static str,
        name: String,
        queue: String,
    },
    #[error("routing definition: two {what}s are named {name:?}")]
    Duplicate { what: &'static str, name: String },
}

/// `infra/routing.json` with its variables substituted: what the embedded bus creates and how
/// it routes, and what `infra/cuepoint.yaml` must declare on AWS.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingDefinition {
    queues: Vec<QueueDef>,
    rules: Vec<RuleDef>,
    topics: Vec<TopicDef>,
}

#[derive(Deserialize)]
struct RawRule {
    name: String,
    queue: String,
    pattern: Value,
}

impl RoutingDefinition {
    /// The compiled-in definition with `${IngestBucket}`, `${WorkflowName}` (and any other
    /// `${Name}` it uses) taken from `vars`.
    pub fn load(vars: &BTreeMap<&str, &str>) -> Result<Self, RoutingError> {
        Self::from_json_str(ROUTING_JSON, vars)
    }

    pub fn from_json_str(text: &str, vars: &BTreeMap<&str, &str>) -> Result<Self, RoutingError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| RoutingError::Json(e.to_string()))?;
        let Value::Object(doc) = doc else {
            return Err(RoutingError::Shape("expected a JSON object".into()));
        };
        let section = |key: &str| -> Result<Value, RoutingError> {
            let mut v = doc
                .get(key)
                .cloned()
                .ok_or_else(|| RoutingError::Shape(format!("{key} is missing")))?;
            substitute(&mut v, vars, key)?;
            Ok(v)
        };
        let shape = |key: &str, e: serde_json::Error| RoutingError::Shape(format!("{key}: {e}"));
        let queues: Vec<QueueDef> =
            serde_json::from_value(section("queues")?).map_err(|e| shape("queues", e))?;
        let raw_rules: Vec<RawRule> =
            serde_json::from_value(section("rules")?).map_err(|e| shape("rules", e))?;
        let topics: Vec<TopicDef> =
            serde_json::from_value(section("topics")?).map_err(|e| shape("topics", e))?;

        unique("queue", queues.iter().map(|q| q.name.as_str()))?;
        unique("rule", raw_rules.iter().map(|r| r.name.as_str()))?;
        unique("topic", topics.iter().map(|t| t.name.as_str()))?;
        let known: BTreeSet<&str> = queues.iter().map(|q| q.name.as_str()).collect();
        let targets = raw_rules
            .iter()
            .map(|r| ("rule", &r.name, &r.queue))
            .chain(topics.iter().map(|t| ("topic", &t.name, &t.queue)));
        for (what, name, queue) in targets {
            if !known.contains(queue.as_str()) {
                return Err(RoutingError::UnknownQueue {
                    what,
                    name: name.clone(),
                    queue: queue.clone(),
                });
            }
        }
        let rules = raw_rules
            .into_iter()
            .map(|r| {
                let pattern =
                    EventPattern::parse(&r.pattern).map_err(|source| RoutingError::Pattern {
                        rule: r.name.clone(),
                        source,
                    })?;
                Ok(RuleDef {
                    name: r.name,
                    queue: r.queue,
                    pattern,
                })
            })
            .collect::<Result<_, RoutingError>>()?;
        Ok(Self {
            queues,
            rules,
            topics,
        })
    }

    pub fn queues(&self) -> &[QueueDef] {
        &self.queues
    }

    pub fn rules(&self) -> &[RuleDef] {
        &self.rules
    }

    pub fn topics(&self) -> &[TopicDef] {
        &self.topics
    }

    pub fn queue(&self, name: &str) -> Option<&QueueDef> {
        self.queues.iter().find(|q| q.name == name)
    }

    pub fn topic(&self, name: &str) -> Option<&TopicDef> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// The rules whose pattern matches `event`, in definition order.
    pub fn matching_rules(&self, event: &Value) -> Vec<&RuleDef> {
        self.rules
            .iter()
            .filter(|r| r.pattern.matches(event))
            .collect()
    }

    /// The queues `event` is delivered to (each once, in rule order).
    pub fn targets(&self, event: &Value) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.matching_rules(event) {
            if !out.contains(&r.queue) {
                out.push(r.queue.clone());
            }
        }
        out
    }
}

fn unique<'a>(
    what: &'static str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), RoutingError> {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(RoutingError::Duplicate {
                what,
                name: n.to_string(),
            });
        }
    }
    Ok(())
}

/// Replace every `${Name}` in every string of `v`; a name without a value is an error.
fn substitute(v: &mut Value, vars: &BTreeMap<&str, &str>, at: &str) -> Result<(), RoutingError> {
    match v {
        Value::String(s) => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let end = after.find('}').ok_or_else(|| {
                    RoutingError::Shape(format!("{at}: unterminated ${{ in {s:?}"))
                })?;
                let name = &after[..end];
                let value = vars
                    .get(name)
                    .ok_or_else(|| RoutingError::MissingVariable {
                        name: name.to_string(),
                        at: at.to_string(),
                    })?;
                out.push_str(value);
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, vars, &format!("{at}[{i}]"))?;
            }
        }
        Value::Object(m) => {
            for (k, item) in m.iter_mut() {
                substitute(item, vars, &format!("{at}.{k}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m(pattern: Value, event: Value) -> bool {
        EventPattern::parse(&pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .matches(&event)
    }

    fn bad(pattern: Value) -> PatternError {
        EventPattern::parse(&pattern).expect_err(&pattern.to_string())
    }

    /// The EC2 event from the "Event patterns" page of the EventBridge guide.
    fn ec2() -> Value {
        json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
            "account": "111122223333", "time": "2017-12-22T18:43:48Z", "region": "us-west-1",
            "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
            "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"}
        })
    }

    #[test]
    fn literal_values_and_nesting() {
        let p = json!({"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"], "detail": {"state": ["terminated"]}});
        assert!(m(p.clone(), ec2()));
        let mut e = ec2();
        e["detail"]["state"] = json!("running");
        assert!(!m(p.clone(), e));
        // a listed value matches if any listed value matches
        assert!(m(json!({"source": ["aws.fargate", "aws.ec2"]}), ec2()));
        // every field named must be present, nested the same way
        assert!(!m(json!({"detail": {"missing": ["x"]}}), ec2()));
        assert!(!m(json!({"state": ["terminated"]}), ec2()));
        // exact, case-sensitive strings
        assert!(!m(json!({"source": ["AWS.EC2"]}), ec2()));
        assert!(!m(json!({"source": ["aws"]}), ec2()));
    }

    #[test]
    fn numbers_booleans_null_and_empty_string() {
        let e = json!({"detail": {"risk-score": 80, "trigger": {"risk": 8}, "ok": true, "eventVersion": "", "responseElements": null}});
        assert!(m(
            json!({"detail": {"risk-score": [80], "trigger": {"risk": [8]}}}),
            e.clone()
        ));
        assert!(!m(json!({"detail": {"risk-score": [81]}}), e.clone()));
        assert!(
            !m(json!({"detail": {"risk-score": ["80"]}}), e.clone()),
            "a string is not a number"
        );
        assert!(
            !m(json!({"detail": {"risk-score": [80.0]}}), e.clone()),
            "numbers compare by their JSON form"
        );
        assert!(m(json!({"detail": {"ok": [true]}}), e.clone()));
        assert!(!m(json!({"detail": {"ok": [false]}}), e.clone()));
        assert!(m(json!({"detail": {"eventVersion": [""]}}), e.clone()));
        assert!(m(
            json!({"detail": {"responseElements": [null]}}),
            e.clone()
        ));
        // null and "" are not interchangeable
        assert!(!m(json!({"detail": {"eventVersion": [null]}}), e.clone()));
        assert!(!m(json!({"detail": {"responseElements": [""]}}), e.clone()));
        // null does not match a missing field
        assert!(!m(json!({"detail": {"absent": [null]}}), e));
    }

    #[test]
    fn arrays_match_on_intersection() {
        let e = json!({"resources": [
            "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b:autoScalingGroupName/ASGTerminate",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"
        ]});
        let p = json!({"resources": [
            "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f"
        ]});
        assert!(m(p, e.clone()));
        assert!(!m(
            json!({"resources": ["arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]}),
            e.clone()
        ));
        assert!(m(
            json!({"resources": [{"prefix": "arn:aws:autoscaling:"}]}),
            e.clone()
        ));
        // empty event array: no value to match, but it does not "exist" either
        assert!(!m(json!({"resources": ["x"]}), json!({"resources": []})));
        assert!(m(
            json!({"resources": [{"exists": false}]}),
            json!({"resources": []})
        ));
        // arrays of objects: nested patterns look inside each element
        let e = json!({"detail": {"items": [{"kind": "a", "n": 1}, {"kind": "b", "n": 2}]}});
        assert!(m(json!({"detail": {"items": {"kind": ["b"]}}}), e.clone()));
        assert!(!m(json!({"detail": {"items": {"kind": ["c"]}}}), e));
    }

    #[test]
    fn prefix_and_suffix() {
        assert!(m(json!({"time": [{"prefix": "2017-12-22"}]}), ec2()));
        assert!(!m(json!({"time": [{"prefix": "2017-10-02"}]}), ec2()));
        assert!(m(
            json!({"detail": {"instance-id": [{"suffix": "cdef0"}]}}),
            ec2()
        ));
        assert!(!m(
            json!({"detail": {"instance-id": [{"suffix": "CDEF0"}]}}),
            ec2()
        ));
        assert!(m(
            json!({"detail": {"instance-id": [{"suffix": {"equals-ignore-case": "CDEF0"}}]}}),
            ec2()
        ));
        assert!(m(
            json!({"source": [{"prefix": {"equals-ignore-case": "AWS.E"}}]}),
            ec2()
        ));
        assert!(!m(
            json!({"source": [{"prefix": {"equals-ignore-case": "aws.s"}}]}),
            ec2()
        ));
        // only strings have prefixes
        assert!(!m(json!({"n": [{"prefix": "1"}]}), json!({"n": 12})));
        assert!(m(
            json!({"detail": {"key": [{"prefix": ""}]}}),
            json!({"detail": {"key": "x"}})
        ));
    }

    #[test]
    fn equals_ignore_case() {
        assert!(m(
            json!({"detail": {"state": [{"equals-ignore-case": "TERMINATED"}]}}),
            ec2()
        ));
        assert!(!m(
            json!({"detail": {"state": [{"equals-ignore-case": "TERMINATE"}]}}),
            ec2()
        ));
        assert!(m(
            json!({"name": [{"equals-ignore-case": "ÉCOLE"}]}),
            json!({"name": "école"})
        ));
    }

    #[test]
    fn anything_but() {
        let e = |state: Value| json!({"detail": {"state": state, "x-limit": 150}});
        // a string, a number, lists of each (examples of the content-filtering page)
        assert!(m(
            json!({"detail": {"state": [{"anything-but": "initializing"}]}}),
            e(json!("running"))
        ));
        assert!(!m(
            json!({"detail": {"state": [{"anything-but": "initializing"}]}}),
            e(json!("initializing"))
        ));
        assert!(m(
            json!({"detail": {"x-limit": [{"anything-but": 123}]}}),
            e(json!("x"))
        ));
        assert!(!m(
            json!({"detail": {"x-limit": [{"anything-but": [100, 150, 300]}]}}),
            e(json!("x"))
        ));
        assert!(m(
            json!({"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}),
            e(json!("x"))
        ));
        let list = json!({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}});
        assert!(m(list.clone(), e(json!("running"))));
        assert!(!m(list.clone(), e(json!("stopped"))));
        // an array matches when some element is not excluded
        assert!(m(list.clone(), e(json!(["stopped", "running"]))));
        assert!(!m(list, e(json!(["stopped", "overloaded"]))));
        // anything-but needs the field to be there
        assert!(!m(
            json!({"detail": {"absent": [{"anything-but": "x"}]}}),
            e(json!("y"))
        ));
        // prefix / suffix / ignore-case / wildcard forms
        assert!(m(
            json!({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}),
            e(json!("running"))
        ));
        assert!(!m(
            json!({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}),
            e(json!("initializing"))
        ));
        assert!(!m(
            json!({"f": [{"anything-but": {"suffix": ".png"}}]}),
            json!({"f": "a.png"})
        ));
        assert!(m(
            json!({"f": [{"anything-but": {"suffix": ".png"}}]}),
            json!({"f": "a.jpg"})
        ));
        assert!(!m(
            json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": "RUNNING"}}]}}),
            e(json!("running"))
        ));
        assert!(!m(
            json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["a", "Running"]}}]}}),
            e(json!("running"))
        ));
        assert!(m(
            json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["a", "b"]}}]}}),
            e(json!("running"))
        ));
        assert!(!m(
            json!({"p": [{"anything-but": {"wildcard": "*/lib/*"}}]}),
            json!({"p": "/usr/lib/x.so"})
        ));
        assert!(m(
            json!({"p": [{"anything-but": {"wildcard": "*/lib/*"}}]}),
            json!({"p": "/usr/bin/x"})
        ));
    }

    #[test]
    fn numeric() {
        let e = json!({"detail": {"c-count": 5, "d-count": 9.5, "x-limit": 301.8, "s": "5"}});
        let p = json!({"detail": {
            "c-count": [{"numeric": [">", 0, "<=", 5]}],
            "d-count": [{"numeric": ["<", 10]}],
            "x-limit": [{"numeric": ["=", 3.018e2]}]
        }});
        assert!(m(p, e.clone()));
        assert!(!m(
            json!({"detail": {"c-count": [{"numeric": [">", 0, "<", 5]}]}}),
            e.clone()
        ));
        assert!(!m(
            json!({"detail": {"c-count": [{"numeric": [">", 5]}]}}),
            e.clone()
        ));
        assert!(m(
            json!({"detail": {"c-count": [{"numeric": [">=", 5]}]}}),
            e.clone()
        ));
        assert!(
            !m(json!({"detail": {"s": [{"numeric": ["=", 5]}]}}), e.clone()),
            "strings are not numbers"
        );
        assert!(
            m(json!({"detail": {"c-count": [{"numeric": ["=", 5.0]}]}}), e),
            "numeric compares values"
        );
    }

    #[test]
    fn exists() {
        assert!(m(
            json!({"detail": {"c-count": [{"exists": false}]}}),
            ec2()
        ));
        assert!(!m(
            json!({"detail": {"c-count": [{"exists": true}]}}),
            ec2()
        ));
        assert!(m(json!({"detail": {"state": [{"exists": true}]}}), ec2()));
        assert!(!m(json!({"detail": {"state": [{"exists": false}]}}), ec2()));
        // exists only sees leaves: an object-valued field does not exist for it
        let mut e = ec2();
        e["detail"]["c-count"] = json!({"c1": 100});
        assert!(m(
            json!({"detail": {"c-count": [{"exists": false}]}}),
            e.clone()
        ));
        assert!(!m(json!({"detail": {"c-count": [{"exists": true}]}}), e));
        // a missing parent: exists false still holds, anything else fails
        assert!(m(json!({"nothing": {"here": [{"exists": false}]}}), ec2()));
        assert!(!m(json!({"nothing": {"here": [{"exists": true}]}}), ec2()));
        // or-ed with a value
        assert!(m(
            json!({"detail": {"c-count": [{"exists": false}, 3]}}),
            ec2()
        ));
    }

    #[test]
    fn wildcard() {
        let p = |g: &str| json!({"f": [{"wildcard": g}]});
        assert!(m(p("dir/*.png"), json!({"f": "dir/a.png"})));
        assert!(m(p("dir/*.png"), json!({"f": "dir/sub/a.png"})));
        assert!(!m(p("dir/*.png"), json!({"f": "dir/a.jpg"})));
        assert!(m(p("*"), json!({"f": ""})));
        assert!(m(p("a*b*c"), json!({"f": "aXXbYYbc"})));
        assert!(!m(p("a*b*c"), json!({"f": "aXXbYY"})));
        assert!(m(p(r"a\*b"), json!({"f": "a*b"})));
        assert!(!m(p(r"a\*b"), json!({"f": "aXb"})));
        assert!(!m(p("abc"), json!({"f": "abcd"})));
        assert!(!m(p("*.png"), json!({"f": 3})));
    }

    #[test]
    fn cidr() {
        let p = json!({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}});
        assert!(m(
            p.clone(),
            json!({"detail": {"sourceIPAddress": "10.0.0.255"}})
        ));
        assert!(!m(
            p.clone(),
            json!({"detail": {"sourceIPAddress": "10.0.1.0"}})
        ));
        assert!(!m(p, json!({"detail": {"sourceIPAddress": "2001:db8::1"}})));
        let p6 = json!({"ip": [{"cidr": "2001:db8::/32"}]});
        assert!(m(p6.clone(), json!({"ip": "2001:db8:ffff::1"})));
        assert!(!m(p6, json!({"ip": "2001:db9::1"})));
    }

    #[test]
    fn or() {
        let p = json!({"source": ["aws.ec2"], "$or": [
            {"detail": {"state": ["running"]}},
            {"detail": {"instance-id": [{"prefix": "i-1234"}]}}
        ]});
        assert!(m(p.clone(), ec2()));
        let mut e = ec2();
        e["detail"]["instance-id"] = json!("i-9");
        assert!(!m(p.clone(), e.clone()));
        e["detail"]["state"] = json!("running");
        assert!(m(p.clone(), e.clone()));
        e["source"] = json!("aws.s3");
        assert!(!m(p, e));
    }

    #[test]
    fn malformed_patterns_are_refused_with_their_path() {
        assert_eq!(bad(json!(["x"])).path, "$");
        assert_eq!(bad(json!({})).path, "$");
        assert_eq!(bad(json!({"source": "aws.s3"})).path, "$.source");
        assert_eq!(bad(json!({"source": []})).path, "$.source");
        assert_eq!(bad(json!({"detail": {"a": [["x"]]}})).path, "$.detail.a[0]");
        assert_eq!(
            bad(json!({"a": [{"regex": "x"}]})).why,
            "unknown operator \"regex\""
        );
        assert_eq!(
            bad(json!({"a": [{"prefix": "x", "suffix": "y"}]})).path,
            "$.a[0]"
        );
        assert_eq!(bad(json!({"a": [{"prefix": 3}]})).path, "$.a[0].prefix");
        assert_eq!(bad(json!({"a": [{"exists": "yes"}]})).path, "$.a[0].exists");
        assert!(bad(json!({"a": [{"numeric": ["<", 5, ">", 1]}]}))
            .why
            .contains("lower bound"));
        assert!(bad(json!({"a": [{"numeric": ["~", 5]}]}))
            .why
            .contains("not one of"));
        assert!(bad(json!({"a": [{"numeric": [">", 0, "<"]}]}))
            .why
            .contains("pairs"));
        assert!(bad(json!({"a": [{"numeric": [">", 2e9]}]}))
            .why
            .contains("outside"));
        assert!(bad(json!({"a": [{"anything-but": ["x", 1]}]}))
            .why
            .contains("only strings or only numbers"));
        assert!(bad(json!({"a": [{"anything-but": {"numeric": [">", 1]}}]}))
            .why
            .contains("unsupported"));
        assert!(bad(json!({"a": [{"wildcard": "a**b"}]}))
            .why
            .contains("consecutive"));
        assert!(bad(json!({"a": [{"cidr": "10.0.0.0/33"}]}))
            .why
            .contains("exceeds"));
        assert!(bad(json!({"a": [{"cidr": "nope/8"}]}))
            .why
            .contains("not an IP"));
        assert_eq!(bad(json!({"$or": [{"a": ["x"]}]})).path, "$.$or");
        assert!(EventPattern::parse_str("{").is_err());
        assert_eq!(
            bad(json!({"a": [{"exists": 1}]})).to_string(),
            "invalid event pattern at $.a[0].exists: expected true or false"
        );
    }

    // ---- the routing definition ----

    macro_rules! fixture {
        ($name:literal) => {
            (
                $name,
                include_str!(concat!("../../../tests/fixtures/events/", $name)),
            )
        };
    }

    fn vars() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([
            ("IngestBucket", "cuepoint-ingest"),
            ("WorkflowName", "cuepoint"),
        ])
    }

    fn def() -> RoutingDefinition {
        RoutingDefinition::load(&vars()).unwrap()
    }

    fn route(d: &RoutingDefinition, body: &str) -> Vec<String> {
        d.targets(&serde_json::from_str::<Value>(body).unwrap())
    }

    #[test]
    fn the_definition_loads() {
        let d = def();
        let names: Vec<&str> = d.queues().iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["ingest", "media", "analysis", "results", "scoring"]);
        assert!(d.queues().iter().all(|q| q.worker == q.name
            && q.visibility_timeout_seconds > 0
            && q.max_receive_count > 0));
        assert_eq!(d.queue("analysis").unwrap().max_receive_count, 8);
        assert_eq!(d.rules().len(), 5);
        assert_eq!(
            d.topics(),
            [TopicDef {
                name: "rekognition".into(),
                queue: "results".into(),
                raw_message_delivery: false
            }]
        );
        assert_eq!(d.topic("rekognition").unwrap().queue, "results");
        // variables are substituted into the patterns
        let ingest = &d.rules()[0];
        assert_eq!(ingest.name, "ingest-object-created");
        assert_eq!(
            ingest.pattern.as_json()["detail"]["bucket"]["name"],
            json!(["cuepoint-ingest"])
        );
        assert_eq!(
            d.rules()[1].pattern.as_json()["detail"]["userMetadata"]["workflow"],
            json!(["cuepoint"])
        );
    }

    #[test]
    fn every_fixture_routes_to_its_queue_and_no_other() {
        let d = def();
        let expected: &[((&str, &str), &[&str])] = &[
            (
                fixture!("s3-eventbridge-object-created-multipart.json"),
                &["ingest"],
            ),
            // the documentation's example is for another bucket
            (fixture!("s3-eventbridge-object-created.json"), &[]),
            (fixture!("s3-eventbridge-object-deleted.json"), &[]),
            (fixture!("mediaconvert-complete-cuepoint.json"), &["media"]),
            // the documentation's jobs carry no `workflow` user metadata
            (fixture!("mediaconvert-complete-file-group.json"), &[]),
            (fixture!("mediaconvert-complete-hls.json"), &[]),
            (fixture!("mediaconvert-error.json"), &[]),
            (fixture!("mediaconvert-progressing.json"), &[]),
            (fixture!("mediaconvert-status-update.json"), &[]),
            (fixture!("transcribe-job-completed.json"), &["results"]),
            (fixture!("transcribe-job-failed.json"), &["results"]),
            (fixture!("pipeline-media-prepared.json"), &["analysis"]),
            (fixture!("pipeline-analyses-completed.json"), &["scoring"]),
            (fixture!("pipeline-asset-completed.json"), &[]),
            (fixture!("ec2-state-change.json"), &[]),
            // not EventBridge events: they reach their queues through S3 or SNS, not rules
            (fixture!("s3-notification-put.json"), &[]),
            (fixture!("s3-notification-mixed.json"), &[]),
            (fixture!("s3-test-event.json"), &[]),
            (fixture!("rekognition-label-detection-raw.json"), &[]),
            (fixture!("rekognition-segments-sns.json"), &[]),
            (fixture!("rekognition-celebrities-failed-raw.json"), &[]),
        ];
        for ((name, body), want) in expected {
            assert_eq!(route(&d, body), *want, "{name}");
        }
        // every fixture in the directory has its expected route here
        let listed: BTreeSet<String> = expected.iter().map(|((n, _), _)| n.to_string()).collect();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/events");
        let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn s3_routes_only_for_the_ingest_bucket() {
        let (_, body) = fixture!("s3-eventbridge-object-created.json");
        let doc_bucket = BTreeMap::from([
            ("IngestBucket", "amzn-s3-demo-bucket1"),
            ("WorkflowName", "cuepoint"),
        ]);
        let d = RoutingDefinition::load(&doc_bucket).unwrap();
        assert_eq!(route(&d, body), ["ingest"]);
        assert_eq!(route(&def(), body), Vec::<String>::new());
        // Object Deleted in the ingest bucket is not an upload
        let (_, deleted) = fixture!("s3-eventbridge-object-deleted.json");
        assert_eq!(route(&d, deleted), Vec::<String>::new());
    }

    #[test]
    fn mediaconvert_routes_only_finished_jobs_of_this_workflow() {
        let d = def();
        let (_, body) = fixture!("mediaconvert-complete-cuepoint.json");
        let mut e: Value = serde_json::from_str(body).unwrap();
        assert_eq!(d.targets(&e), ["media"]);
        e["detail"]["status"] = json!("ERROR");
        assert_eq!(d.targets(&e), ["media"]);
        for status in [
            "PROGRESSING",
            "STATUS_UPDATE",
            "INPUT_INFORMATION",
            "NEW_WARNING",
            "CANCELED",
        ] {
            e["detail"]["status"] = json!(status);
            assert_eq!(d.targets(&e), Vec::<String>::new(), "{status}");
        }
        e["detail"]["status"] = json!("COMPLETE");
        e["detail"]["userMetadata"]["workflow"] = json!("another-workflow");
        assert_eq!(d.targets(&e), Vec::<String>::new());
        e["detail"]["userMetadata"]
            .as_object_mut()
            .unwrap()
            .remove("workflow");
        assert_eq!(d.targets(&e), Vec::<String>::new());
        // the documentation's ERROR event, once it carries our workflow
        let (_, err) = fixture!("mediaconvert-error.json");
        let mut e: Value = serde_json::from_str(err).unwrap();
        e["detail"]["userMetadata"] = json!({"workflow": "cuepoint"});
        assert_eq!(d.targets(&e), ["media"]);
        e["source"] = json!("cuepoint.pipeline");
        assert_eq!(d.targets(&e), Vec::<String>::new());
    }

    #[test]
    fn constructed_events_route_like_the_real_ones() {
        use crate::domain::{AssetId, BucketName, ObjectKey, S3Uri};
        use crate::events::mediaconvert::{job_state_change_entry, JobState, JobStateChange};
        use crate::events::pipeline::{PipelineDetail, PipelineEvent};
        use crate::events::s3::{object_created_entry, ObjectCreated};
        let d = def();
        let wrap = |e: crate::events::envelope::PutEventsEntry| {
            serde_json::to_value(
                e.into_envelope("id".into(), "000000000000", "us-east-1", "t".into())
                    .unwrap(),
            )
            .unwrap()
        };
        let upload = ObjectCreated::new(
            BucketName::parse("cuepoint-ingest").unwrap(),
            ObjectKey::parse("in/a.mxf").unwrap(),
        );
        assert_eq!(
            d.targets(&wrap(object_created_entry(&upload, None))),
            ["ingest"]
        );
        let job = JobStateChange {
            job_id: "1-a".into(),
            state: JobState::Complete,
            queue: None,
            user_metadata: BTreeMap::from([("workflow".to_string(), "cuepoint".to_string())]),
            output_group_details: vec![],
            error_code: None,
            error_message: None,
            timestamp_ms: Some(1),
        };
        assert_eq!(
            d.targets(&wrap(job_state_change_entry(
                &job,
                "000000000000",
                "us-east-1"
            ))),
            ["media"]
        );
        {
            use crate::events::transcribe::{
                self, TranscriptionJobStateChange, TranscriptionState,
            };
            let id = AssetId::parse("a1").unwrap();
            for state in [TranscriptionState::Completed, TranscriptionState::Failed] {
                let c = TranscriptionJobStateChange {
                    job_name: transcribe::job_name("cuepoint", &id).unwrap(),
                    state,
                    failure_reason: None,
                };
                assert_eq!(
                    d.targets(&wrap(transcribe::job_state_change_entry(&c, None))),
                    ["results"]
                );
                // another workflow's (or anyone else's) jobs stay out of the results queue
                let other = TranscriptionJobStateChange {
                    job_name: "voicemail-0042".into(),
                    ..c
                };
                assert_eq!(
                    d.targets(&wrap(transcribe::job_state_change_entry(&other, None))),
                    Vec::<String>::new()
                );
            }
            let fixture: Value = serde_json::from_str(include_str!(
                "../../../tests/fixtures/events/transcribe-job-completed.json"
            ))
            .unwrap();
            assert_eq!(d.targets(&fixture), ["results"]);
            let mut progressing = fixture;
            progressing["detail"]["TranscriptionJobStatus"] = json!("IN_PROGRESS");
            assert_eq!(d.targets(&progressing), Vec::<String>::new());
        }
        let id = AssetId::parse("a1").unwrap();
        let proxy = S3Uri::parse("s3://media-bucket/a1/proxy/proxy.mp4").unwrap();
        let expect = [
            (
                PipelineDetail::TranscodeSubmitted {
                    job_id: "1-a".into(),
                },
                vec![],
            ),
            (
                PipelineDetail::MediaPrepared {
                    proxy: proxy.clone(),
                },
                vec!["analysis"],
            ),
            (PipelineDetail::AnalysesCompleted, vec!["scoring"]),
            (
                PipelineDetail::AssetCompleted {
                    vmap: proxy,
                    breaks: 1,
                },
                vec![],
            ),
            (
                PipelineDetail::AssetFailed {
                    stage: crate::asset::FailureStage::Probe,
                    reason: "y".into(),
                },
                vec![],
            ),
        ];
        for (detail, want) in expect {
            let ev = PipelineEvent::new(id.clone(), detail);
            assert_eq!(d.targets(&wrap(ev.to_entry(None))), want, "{:?}", ev.detail);
        }
    }

    #[test]
    fn missing_variables_and_bad_definitions_are_refused() {
        let only_bucket = BTreeMap::from([("IngestBucket", "b-1")]);
        assert_eq!(
            RoutingDefinition::load(&only_bucket).unwrap_err(),
            RoutingError::MissingVariable {
                name: "WorkflowName".into(),
                at: "rules[1].pattern.detail.userMetadata.workflow[0]".into()
            }
        );
        let doc = |rules: Value, topics: Value| {
            json!({"queues": [{"name": "q", "worker": "w", "visibilityTimeoutSeconds": 30, "maxReceiveCount": 3}],
                   "rules": rules, "topics": topics})
            .to_string()
        };
        let none = BTreeMap::new();
        let err = RoutingDefinition::from_json_str(
            &doc(
                json!([{"name": "r", "queue": "nope", "pattern": {"source": ["x"]}}]),
                json!([]),
            ),
            &none,
        );
        assert_eq!(
            err.unwrap_err(),
            RoutingError::UnknownQueue {
                what: "rule",
                name: "r".into(),
                queue: "nope".into()
            }
        );
        let err = RoutingDefinition::from_json_str(
            &doc(
                json!([]),
                json!([{"name": "t", "queue": "z", "rawMessageDelivery": true}]),
            ),
            &none,
        );
        assert!(matches!(
            err,
            Err(RoutingError::UnknownQueue { what: "topic", .. })
        ));
        let err = RoutingDefinition::from_json_str(
            &doc(
                json!([{"name": "r", "queue": "q", "pattern": {"source": "x"}}]),
                json!([]),
            ),
            &none,
        );
        assert!(
            matches!(err, Err(RoutingError::Pattern { ref rule, .. }) if rule == "r"),
            "{err:?}"
        );
        let two = json!([{"name": "r", "queue": "q", "pattern": {"source": ["x"]}}, {"name": "r", "queue": "q", "pattern": {"source": ["y"]}}]);
        assert_eq!(
            RoutingDefinition::from_json_str(&doc(two, json!([])), &none).unwrap_err(),
            RoutingError::Duplicate {
                what: "rule",
                name: "r".into()
            }
        );
        assert!(matches!(
            RoutingDefinition::from_json_str("{", &none),
            Err(RoutingError::Json(_))
        ));
        assert!(matches!(
            RoutingDefinition::from_json_str("{\"queues\": []}", &none),
            Err(RoutingError::Shape(_))
        ));
        let ok = RoutingDefinition::from_json_str(
            &doc(
                json!([{"name": "r", "queue": "q", "pattern": {"source": ["x"]}}]),
                json!([]),
            ),
            &none,
        )
        .unwrap();
        assert_eq!(ok.targets(&json!({"source": "x"})), ["q"]);
    }
}
