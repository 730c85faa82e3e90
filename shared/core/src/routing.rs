//! EventBridge event-pattern matching, and cuepoint's routing definition (`infra/routing.json`).
//!
//! The embedded bus routes with the same rules EventBridge runs on AWS. The matcher implements
//! the part of the pattern language `infra/routing.json` uses, with EventBridge's semantics
//! (user guide: "Event patterns", "Arrays in event patterns", "Matching null values and empty
//! strings", "Prefix matching"):
//! - every field named in the pattern must be present, with the same nesting; other event
//!   fields are ignored;
//! - a pattern field lists values; it matches when any listed value matches the event's value
//!   or, if the event holds an array, any element of it;
//! - literals are compared exactly (strings case-sensitively, numbers by their JSON form, so
//!   `300` and `300.0` differ), `null` and `""` are distinct values;
//! - `{"prefix": "..."}` matches strings that start with it.
//!
//! Any other operator (`suffix`, `anything-but`, `numeric`, `exists`, `$or`...) is refused when
//! the definition loads, naming it: a rule using one would route differently here than on AWS.
//!
//! Deviation: numbers `300.0` and `3.0e2` compare equal here (serde_json keeps no lexical form).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Map, Value};

/// The routing definition, compiled in.
pub const ROUTING_JSON: &str = include_str!("../../../infra/routing.json");

/// A pattern that EventBridge would refuse, or that uses an operator the embedded bus does
/// not implement, with the JSON path of the offending part.
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
}

#[derive(Debug, Clone, PartialEq)]
enum FieldPattern {
    Object(ObjectPattern),
    Leaf(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Equals(Value),
    Prefix(String),
}

/// EventBridge operators the embedded bus does not implement (no rule uses them).
const UNSUPPORTED_OPERATORS: [&str; 8] = [
    "suffix",
    "equals-ignore-case",
    "wildcard",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
    "$or",
];

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

fn unsupported(at: &str, op: &str) -> PatternError {
    perr(
        at,
        format!(
            "operator {op:?} is not implemented by the embedded bus (it matches literal values, nested fields and prefix, what infra/routing.json uses)"
        ),
    )
}

fn parse_object(obj: &Map<String, Value>, path: &str) -> Result<ObjectPattern, PatternError> {
    if obj.is_empty() {
        return Err(perr(path, "empty object: name at least one field"));
    }
    let mut p = ObjectPattern { fields: Vec::new() };
    for (key, v) in obj {
        let at = format!("{path}.{key}");
        if key == "$or" {
            return Err(unsupported(&at, key));
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
    match (op.as_str(), arg) {
        ("prefix", Value::String(s)) => Ok(Matcher::Prefix(s.clone())),
        ("prefix", Value::Object(o)) if o.contains_key("equals-ignore-case") => {
            Err(unsupported(&at, "prefix: equals-ignore-case"))
        }
        ("prefix", _) => Err(perr(&at, "expected a string")),
        (op, _) if UNSUPPORTED_OPERATORS.contains(&op) => Err(unsupported(&at, op)),
        (other, _) => Err(perr(&at, format!("unknown operator {other:?}"))),
    }
}

fn match_object(p: &ObjectPattern, event: Option<&Map<String, Value>>) -> bool {
    p.fields
        .iter()
        .all(|(name, fp)| match_field(fp, event.and_then(|m| m.get(name))))
}

fn match_field(fp: &FieldPattern, v: Option<&Value>) -> bool {
    let mut found = Vec::new();
    if let Some(v) = v {
        flatten(v, &mut found);
    }
    match fp {
        // A nested pattern looks inside each object the field holds (one, or an array of them).
        FieldPattern::Object(op) => found
            .iter()
            .filter_map(|v| v.as_object())
            .any(|o| match_object(op, Some(o))),
        FieldPattern::Leaf(ms) => found
            .iter()
            .filter(|v| !v.is_object())
            .any(|leaf| ms.iter().any(|m| m.matches_leaf(leaf))),
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
        match self {
            Matcher::Equals(p) => p == v,
            // Only strings have prefixes.
            Matcher::Prefix(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
        }
    }
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

impl RuleDef {
    /// Rules for AWS service events (`aws.s3`, `aws.mediaconvert`, `aws.transcribe`) must live on
    /// the default bus of an AWS account: the only bus AWS services deliver to.
    pub fn is_aws_service_rule(&self) -> bool {
        match self
            .pattern
            .as_json()
            .get("source")
            .and_then(Value::as_array)
        {
            Some(sources) if !sources.is_empty() => sources
                .iter()
                .all(|s| s.as_str().is_some_and(|s| s.starts_with("aws."))),
            _ => false,
        }
    }
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
        // empty event array: no value to match
        assert!(!m(json!({"resources": ["x"]}), json!({"resources": []})));
        // arrays of objects: nested patterns look inside each element
        let e = json!({"detail": {"items": [{"kind": "a", "n": 1}, {"kind": "b", "n": 2}]}});
        assert!(m(json!({"detail": {"items": {"kind": ["b"]}}}), e.clone()));
        assert!(!m(json!({"detail": {"items": {"kind": ["c"]}}}), e.clone()));
        // a nested pattern does not match a leaf, nor a value list an object
        assert!(!m(
            json!({"detail": {"kind": ["a"]}}),
            json!({"detail": "x"})
        ));
        assert!(!m(
            json!({"detail": ["x"]}),
            json!({"detail": {"kind": "x"}})
        ));
    }

    #[test]
    fn prefix() {
        assert!(m(json!({"time": [{"prefix": "2017-12-22"}]}), ec2()));
        assert!(!m(json!({"time": [{"prefix": "2017-10-02"}]}), ec2()));
        // case-sensitive, like every string comparison
        assert!(!m(json!({"source": [{"prefix": "AWS."}]}), ec2()));
        // only strings have prefixes
        assert!(!m(json!({"n": [{"prefix": "1"}]}), json!({"n": 12})));
        assert!(!m(json!({"n": [{"prefix": ""}]}), json!({"n": null})));
        assert!(m(
            json!({"detail": {"key": [{"prefix": ""}]}}),
            json!({"detail": {"key": "x"}})
        ));
        // mixed with literals: any listed value may match
        let p = json!({"detail": {"TranscriptionJobName": ["exact", {"prefix": "cuepoint-"}]}});
        assert!(m(
            p.clone(),
            json!({"detail": {"TranscriptionJobName": "cuepoint-a1"}})
        ));
        assert!(m(
            p.clone(),
            json!({"detail": {"TranscriptionJobName": "exact"}})
        ));
        assert!(!m(
            p.clone(),
            json!({"detail": {"TranscriptionJobName": "cuepoin"}})
        ));
        assert!(!m(p, json!({"detail": {}})));
    }

    #[test]
    fn operators_the_routing_does_not_use_are_refused_by_name() {
        for (pattern, op) in [
            (json!({"a": [{"suffix": ".mov"}]}), "suffix"),
            (
                json!({"a": [{"equals-ignore-case": "x"}]}),
                "equals-ignore-case",
            ),
            (json!({"a": [{"wildcard": "*.mov"}]}), "wildcard"),
            (json!({"a": [{"anything-but": "x"}]}), "anything-but"),
            (json!({"a": [{"numeric": [">", 0]}]}), "numeric"),
            (json!({"a": [{"exists": true}]}), "exists"),
            (json!({"a": [{"cidr": "10.0.0.0/8"}]}), "cidr"),
            (
                json!({"a": [{"prefix": {"equals-ignore-case": "x"}}]}),
                "prefix: equals-ignore-case",
            ),
            (json!({"$or": [{"a": ["x"]}, {"b": ["y"]}]}), "$or"),
        ] {
            let e = bad(pattern.clone());
            assert!(
                e.why
                    .contains(&format!("operator {op:?} is not implemented")),
                "{pattern}: {e}"
            );
        }
        // ... and so is a routing definition using one, naming its rule
        let doc = json!({"queues": [{"name": "q", "worker": "w", "visibilityTimeoutSeconds": 30, "maxReceiveCount": 3}],
            "rules": [{"name": "r", "queue": "q", "pattern": {"detail": {"key": [{"suffix": ".mov"}]}}}],
            "topics": []});
        let err = RoutingDefinition::from_json_str(&doc.to_string(), &BTreeMap::new()).unwrap_err();
        assert!(
            matches!(&err, RoutingError::Pattern { rule, source } if rule == "r" && source.path == "$.detail.key[0].suffix"),
            "{err:?}"
        );
    }

    #[test]
    fn malformed_patterns_are_refused_with_their_path() {
        assert_eq!(bad(json!(["x"])).path, "$");
        assert_eq!(bad(json!({})).path, "$");
        assert_eq!(bad(json!({"detail": {}})).path, "$.detail");
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
        assert!(EventPattern::parse_str("{").is_err());
        assert_eq!(
            bad(json!({"a": [{"prefix": null}]})).to_string(),
            "invalid event pattern at $.a[0].prefix: expected a string"
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
        assert_eq!(
            names,
            [
                "ingest",
                "media",
                "analysis",
                "results",
                "scoring",
                "packaging"
            ]
        );
        assert!(d.queues().iter().all(|q| q.worker == q.name
            && q.visibility_timeout_seconds > 0
            && q.max_receive_count > 0));
        assert_eq!(d.queue("analysis").unwrap().max_receive_count, 8);
        assert_eq!(d.rules().len(), 7);
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
        // AWS services deliver to the default bus only: their rules are told apart
        let on_default: Vec<&str> = d
            .rules()
            .iter()
            .filter(|r| r.is_aws_service_rule())
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            on_default,
            [
                "ingest-object-created",
                "mediaconvert-job-finished",
                "packaging-job-finished",
                "transcribe-job-finished"
            ]
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
        // The packaging job (the second MediaConvert job) goes to its own worker only.
        let packaging = JobStateChange {
            user_metadata: BTreeMap::from([(
                "workflow".to_string(),
                crate::mediaconvert::packaging_workflow("cuepoint"),
            )]),
            ..job.clone()
        };
        assert_eq!(
            d.targets(&wrap(job_state_change_entry(
                &packaging,
                "000000000000",
                "us-east-1"
            ))),
            ["packaging"]
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
                PipelineDetail::BreaksChosen {
                    version: 1,
                    vmap: proxy.clone(),
                    breaks: 2,
                },
                vec!["packaging"],
            ),
            (
                PipelineDetail::BreaksEdited {
                    version: 2,
                    vmap: proxy.clone(),
                    breaks: 2,
                    editor: "ed".into(),
                },
                vec!["packaging"],
            ),
            (
                PipelineDetail::AssetCompleted {
                    vmap: proxy,
                    breaks: 1,
                    version: 1,
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
