//! IAM identity-policy evaluation: which of the principal's JSON policy documents allow or deny a request,
//! decided as the IAM User Guide describes it ("Policy evaluation logic", "IAM JSON policy elements
//! reference", "IAM policy elements: Variables and tags", "Single-valued vs. multivalued context keys").
//!
//! - A document is parsed once ([`Policy::parse`]) into typed statements; a bad document is refused then,
//!   with a message naming what is wrong, never at request time.
//! - [`evaluate`]: an explicit `Deny` in any statement of any policy wins; else an `Allow` in any; else the
//!   request is implicitly denied. A statement applies when its action, its resource and every condition
//!   match.
//! - `Action`/`NotAction`: `*` and `?` wildcards, case-insensitive. `Resource`/`NotResource`: `"*"`, or an ARN
//!   whose six colon-separated parts are matched one by one with `*` and `?` (case-sensitive), the last part
//!   keeping any further colons.
//! - Conditions: every operator and every key in a statement must hold; several values for one key are ORed,
//!   and for a negated operator (`StringNotEquals`, ...) NORed: the request value must match none.
//!   A missing key makes a positive operator false and a negated one true; `...IfExists` makes it true;
//!   `ForAllValues:` is true and `ForAnyValue:` false on a missing key or an empty set; `Null: true` means
//!   the key is absent (or holds no value).
//! - Policy variables (`${aws:username}`, `${aws:PrincipalTag/team, 'default'}`, `${*}` `${?}` `${$}`) are
//!   substituted in `Resource`/`NotResource` and in the values of the String and ARN operators, only under
//!   `"Version": "2012-10-17"`; otherwise `${...}` is literal text. A variable whose key has no single value
//!   (absent, or a multivalued key) and no default makes the string containing it match nothing.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{Map, Value};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{Date, OffsetDateTime};

/// A parsed identity policy document (refuses bad documents at load, with a message naming what is wrong).
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// What IAM knows of a request: condition keys → values. Key names are case-insensitive (stored lowercased).
/// A key set with [`Context::set_many`] is multivalued (such as `aws:TagKeys`), even with one value.
#[derive(Debug, Clone, Default)]
pub struct Context {
    keys: HashMap<String, ContextValue>,
}

#[derive(Debug, Clone)]
struct ContextValue {
    values: Vec<String>,
    multivalued: bool,
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ImplicitDeny,
    ExplicitDeny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
struct Statement {
    effect: Effect,
    actions: Targets,
    resources: Targets,
    conditions: Vec<Condition>,
}

/// `Action`/`Resource` (the statement covers what a pattern matches) or `NotAction`/`NotResource` (what none
/// matches).
#[derive(Debug, Clone)]
struct Targets {
    patterns: Vec<Pattern>,
    negated: bool,
}

/// One key under one operator, e.g. `"ForAllValues:StringLike": {"aws:TagKeys": ["a*", "b*"]}`.
#[derive(Debug, Clone)]
struct Condition {
    /// Lowercased.
    key: String,
    check: Check,
}

#[derive(Debug, Clone)]
enum Check {
    /// `Null`: whether the key must be absent (`true`) or present (`false`).
    Null(Vec<bool>),
    Compare {
        test: Test,
        /// `...Not...` operators: true when the request value matches none of the policy values.
        negated: bool,
        if_exists: bool,
        set: Option<SetOperator>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOperator {
    ForAllValues,
    ForAnyValue,
}

/// The positive comparison of an operator, with the policy values parsed to its type.
#[derive(Debug, Clone)]
enum Test {
    String(StringMode, Vec<Pattern>),
    Arn(Vec<Pattern>),
    Numeric(Cmp, Vec<f64>),
    Date(Cmp, Vec<OffsetDateTime>),
    Bool(Vec<bool>),
    Ip(Vec<Cidr>),
}

#[derive(Debug, Clone, Copy)]
enum StringMode {
    Equals,
    EqualsIgnoreCase,
    Like,
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy)]
struct Cidr {
    network: IpAddr,
    prefix: u32,
}

/// A policy string split into literal text, wildcards and policy variables.
#[derive(Debug, Clone)]
struct Pattern(Vec<Piece>);

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    /// `*`
    AnyRun,
    /// `?`
    AnyChar,
    /// `${key}` or `${key, 'default'}`; the key lowercased.
    Var {
        key: String,
        default: Option<String>,
    },
}

/// A [`Pattern`] with its variables substituted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    AnyRun,
    AnyChar,
}

impl Policy {
    /// Parses an identity policy: `Version` (`2012-10-17`, `2008-10-17` or absent), optional `Id`, and
    /// `Statement` (one object or an array). Each statement has `Effect`, `Action` xor `NotAction`, `Resource`
    /// xor `NotResource`, optional `Sid` and `Condition`; `Principal`/`NotPrincipal` and unknown elements are
    /// refused.
    pub fn parse(doc: &Value) -> Result<Policy, String> {
        let doc = doc
            .as_object()
            .ok_or("a policy document must be a JSON object")?;
        for name in doc.keys() {
            if !matches!(name.as_str(), "Version" | "Id" | "Statement") {
                return Err(format!("unknown policy element {name:?}"));
            }
        }
        let variables = match doc.get("Version") {
            None => false,
            Some(Value::String(v)) if v == "2012-10-17" => true,
            Some(Value::String(v)) if v == "2008-10-17" => false,
            Some(other) => {
                return Err(format!(
                    "Version {other} is not valid: use \"2012-10-17\" or \"2008-10-17\""
                ));
            }
        };
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) if !list.is_empty() => list.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err("Statement must be an object or a non-empty array of objects".into()),
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                Statement::parse(s, variables).map_err(|e| {
                    match s.get("Sid").and_then(Value::as_str) {
                        Some(sid) => format!("statement {} ({sid:?}): {e}", i + 1),
                        None => format!("statement {}: {e}", i + 1),
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }
}

impl Statement {
    fn parse(value: &Value, variables: bool) -> Result<Statement, String> {
        let s = value
            .as_object()
            .ok_or("a statement must be a JSON object")?;
        for name in s.keys() {
            match name.as_str() {
                "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource"
                | "Condition" => {}
                "Principal" | "NotPrincipal" => {
                    return Err(format!(
                        "{name} is not allowed: an identity-based policy should not specify a principal"
                    ));
                }
                _ => return Err(format!("unknown statement element {name:?}")),
            }
        }
        if s.get("Sid").is_some_and(|sid| !sid.is_string()) {
            return Err("Sid must be a string".into());
        }
        let effect = match s.get("Effect") {
            Some(Value::String(e)) if e == "Allow" => Effect::Allow,
            Some(Value::String(e)) if e == "Deny" => Effect::Deny,
            Some(other) => {
                return Err(format!("Effect must be \"Allow\" or \"Deny\", not {other}"));
            }
            None => return Err("missing Effect".into()),
        };
        let actions = Targets::parse(s, "Action", "NotAction", |a| {
            if a != "*" && !a.contains(':') {
                return Err(format!(
                    "action {a:?}: actions must be prefaced by a vendor, e.g. bedrock:GetSession"
                ));
            }
            Pattern::parse(a, false)
        })?;
        let resources = Targets::parse(s, "Resource", "NotResource", |r| {
            if r != "*" && !(r.starts_with("arn:") && r.matches(':').count() >= 5) {
                return Err(format!("Resource {r} must be in ARN format or \"*\""));
            }
            Pattern::parse(r, variables)
        })?;
        let conditions = match s.get("Condition") {
            None => Vec::new(),
            Some(Value::Object(block)) => parse_condition_block(block, variables)?,
            Some(_) => return Err("Condition must be an object of condition operators".into()),
        };
        Ok(Statement {
            effect,
            actions,
            resources,
            conditions,
        })
    }

    fn applies(&self, action: &str, resource: &str, ctx: &Context) -> bool {
        let action: Vec<char> = action.chars().collect();
        self.actions
            .covers(|p| p.resolve(ctx).is_some_and(|t| glob(&t, &action, true)))
            && self.resources.covers(|p| p.matches_resource(resource, ctx))
            && self.conditions.iter().all(|c| c.holds(ctx))
    }
}

impl Targets {
    /// Reads `name` xor `not_name`, a string or a non-empty array of strings.
    fn parse(
        s: &Map<String, Value>,
        name: &str,
        not_name: &str,
        pattern: impl Fn(&str) -> Result<Pattern, String>,
    ) -> Result<Targets, String> {
        let (value, negated) = match (s.get(name), s.get(not_name)) {
            (Some(v), None) => (v, false),
            (None, Some(v)) => (v, true),
            (Some(_), Some(_)) => {
                return Err(format!("a statement can't have both {name} and {not_name}"));
            }
            (None, None) => return Err(format!("the statement must contain {name} or {not_name}")),
        };
        let element = if negated { not_name } else { name };
        let patterns = strings(value)
            .filter(|list| !list.is_empty())
            .ok_or_else(|| format!("{element} must be a string or a non-empty array of strings"))?
            .into_iter()
            .map(pattern)
            .collect::<Result<_, _>>()?;
        Ok(Targets { patterns, negated })
    }

    fn covers(&self, matches: impl Fn(&Pattern) -> bool) -> bool {
        self.patterns.iter().any(matches) != self.negated
    }
}

/// A string, or an array of strings.
fn strings(value: &Value) -> Option<Vec<&str>> {
    match value {
        Value::String(s) => Some(vec![s]),
        Value::Array(list) => list.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// `{"Operator": {"key": value-or-values, ...}, ...}` → one [`Condition`] per key.
fn parse_condition_block(
    block: &Map<String, Value>,
    variables: bool,
) -> Result<Vec<Condition>, String> {
    let mut conditions = Vec::new();
    for (operator, keys) in block {
        let keys = keys.as_object().ok_or_else(|| {
            format!("condition operator {operator} must map condition keys to values")
        })?;
        for (key, values) in keys {
            conditions.push(
                Condition::parse(operator, key, values, variables)
                    .map_err(|e| format!("condition {operator} on {key}: {e}"))?,
            );
        }
    }
    Ok(conditions)
}

impl Condition {
    fn parse(
        operator: &str,
        key: &str,
        values: &Value,
        variables: bool,
    ) -> Result<Condition, String> {
        let values: Vec<String> = match values {
            Value::Array(list) => list.iter().map(scalar).collect::<Option<_>>(),
            one => scalar(one).map(|v| vec![v]),
        }
        .filter(|list| !list.is_empty())
        .ok_or("values must be a string, number or boolean, or a non-empty array of them")?;

        let (set, base) = strip_prefix_ignore_case(operator, "ForAllValues:")
            .map(|rest| (Some(SetOperator::ForAllValues), rest))
            .or_else(|| {
                strip_prefix_ignore_case(operator, "ForAnyValue:")
                    .map(|rest| (Some(SetOperator::ForAnyValue), rest))
            })
            .unwrap_or((None, operator));
        let (base, if_exists) = match base.len().checked_sub("IfExists".len()) {
            Some(at)
                if base.is_char_boundary(at) && base[at..].eq_ignore_ascii_case("IfExists") =>
            {
                (&base[..at], true)
            }
            _ => (base, false),
        };

        let patterns = || {
            let parse = |v: &String| Pattern::parse(v, variables);
            values.iter().map(parse).collect::<Result<Vec<_>, _>>()
        };
        let string = |mode| patterns().map(|patterns| Test::String(mode, patterns));
        let numbers = || {
            let parse = |v: &String| v.parse().map_err(|_| format!("{v:?} is not a number"));
            values.iter().map(parse).collect::<Result<Vec<f64>, _>>()
        };
        let dates = || {
            let parse = |v: &String| parse_date(v).ok_or(format!("{v:?} is not a date"));
            values.iter().map(parse).collect::<Result<Vec<_>, _>>()
        };
        let bools = || {
            let parse = |v: &String| parse_bool(v).ok_or(format!("{v:?} is not true or false"));
            values.iter().map(parse).collect::<Result<Vec<_>, _>>()
        };

        let (test, negated) = match base.to_ascii_lowercase().as_str() {
            "stringequals" => (string(StringMode::Equals)?, false),
            "stringnotequals" => (string(StringMode::Equals)?, true),
            "stringequalsignorecase" => (string(StringMode::EqualsIgnoreCase)?, false),
            "stringnotequalsignorecase" => (string(StringMode::EqualsIgnoreCase)?, true),
            "stringlike" => (string(StringMode::Like)?, false),
            "stringnotlike" => (string(StringMode::Like)?, true),
            "numericequals" => (Test::Numeric(Cmp::Eq, numbers()?), false),
            "numericnotequals" => (Test::Numeric(Cmp::Eq, numbers()?), true),
            "numericlessthan" => (Test::Numeric(Cmp::Lt, numbers()?), false),
            "numericlessthanequals" => (Test::Numeric(Cmp::Le, numbers()?), false),
            "numericgreaterthan" => (Test::Numeric(Cmp::Gt, numbers()?), false),
            "numericgreaterthanequals" => (Test::Numeric(Cmp::Ge, numbers()?), false),
            "dateequals" => (Test::Date(Cmp::Eq, dates()?), false),
            "datenotequals" => (Test::Date(Cmp::Eq, dates()?), true),
            "datelessthan" => (Test::Date(Cmp::Lt, dates()?), false),
            "datelessthanequals" => (Test::Date(Cmp::Le, dates()?), false),
            "dategreaterthan" => (Test::Date(Cmp::Gt, dates()?), false),
            "dategreaterthanequals" => (Test::Date(Cmp::Ge, dates()?), false),
            "bool" => (Test::Bool(bools()?), false),
            "ipaddress" | "notipaddress" => {
                let cidrs = values
                    .iter()
                    .map(|v| Cidr::parse(v).ok_or(format!("{v:?} is not an IP address or CIDR")));
                (
                    Test::Ip(cidrs.collect::<Result<_, _>>()?),
                    base.eq_ignore_ascii_case("NotIpAddress"),
                )
            }
            "arnequals" | "arnlike" => (Test::Arn(patterns()?), false),
            "arnnotequals" | "arnnotlike" => (Test::Arn(patterns()?), true),
            "null" if !if_exists && set.is_none() => {
                return Ok(Condition {
                    key: key.to_lowercase(),
                    check: Check::Null(bools()?),
                });
            }
            "null" => return Err("Null takes neither IfExists nor a set operator".into()),
            "binaryequals" => {
                return Err("the BinaryEquals condition operator is not supported".into());
            }
            _ => return Err(format!("unknown condition operator {operator:?}")),
        };
        let check = Check::Compare {
            test,
            negated,
            if_exists,
            set,
        };
        Ok(Condition {
            key: key.to_lowercase(),
            check,
        })
    }

    /// Whether the condition holds for the request (rules in the module documentation).
    fn holds(&self, ctx: &Context) -> bool {
        let entry = ctx.keys.get(&self.key);
        let (test, negated, if_exists, set) = match &self.check {
            Check::Null(expected) => {
                return expected.contains(&entry.is_none_or(|e| e.values.is_empty()));
            }
            Check::Compare {
                test,
                negated,
                if_exists,
                set,
            } => (test, *negated, *if_exists, *set),
        };
        let Some(entry) = entry else {
            return match set {
                None => if_exists || negated,
                Some(SetOperator::ForAllValues) => true,
                Some(SetOperator::ForAnyValue) => if_exists,
            };
        };
        let satisfies = |v: &String| test.matches_any(v, ctx) != negated;
        match (set, entry.values.as_slice()) {
            (Some(SetOperator::ForAllValues), values) => values.iter().all(satisfies),
            (Some(SetOperator::ForAnyValue), values) => values.iter().any(satisfies),
            (None, [value]) => satisfies(value),
            // Several values (or none) without a set operator: nothing to compare, no positive match.
            (None, _) => negated,
        }
    }
}

/// A JSON string, number or boolean as policy text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Epoch seconds, or a W3C ISO 8601 date (`2020-01-01`) or date-time (`2020-01-01T00:00:01Z`).
fn parse_date(s: &str) -> Option<OffsetDateTime> {
    if let Ok(seconds) = s.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(seconds).ok();
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(s, &Iso8601::DEFAULT))
        .ok()
        .or_else(|| {
            Date::parse(s, &Iso8601::DEFAULT)
                .ok()
                .map(|d| d.midnight().assume_utc())
        })
}

impl Test {
    /// Whether a request value matches at least one of the policy values (ignoring negation).
    fn matches_any(&self, value: &str, ctx: &Context) -> bool {
        match self {
            Test::String(mode, patterns) => patterns.iter().any(|p| {
                p.resolve(ctx).is_some_and(|toks| match mode {
                    StringMode::Equals => literal(&toks) == value,
                    StringMode::EqualsIgnoreCase => {
                        literal(&toks).to_lowercase() == value.to_lowercase()
                    }
                    StringMode::Like => glob(&toks, &value.chars().collect::<Vec<_>>(), false),
                })
            }),
            Test::Arn(patterns) => patterns
                .iter()
                .any(|p| p.resolve(ctx).is_some_and(|toks| arn_like(&toks, value))),
            Test::Numeric(cmp, numbers) => value.parse::<f64>().is_ok_and(|v| {
                numbers
                    .iter()
                    .any(|n| v.partial_cmp(n).is_some_and(|o| cmp.holds(o)))
            }),
            Test::Date(cmp, dates) => {
                parse_date(value).is_some_and(|v| dates.iter().any(|d| cmp.holds(v.cmp(d))))
            }
            Test::Bool(bools) => parse_bool(value).is_some_and(|v| bools.contains(&v)),
            Test::Ip(cidrs) => value
                .parse::<IpAddr>()
                .is_ok_and(|ip| cidrs.iter().any(|c| c.contains(ip))),
        }
    }
}

impl Cmp {
    /// `request <op> policy`, given `request.cmp(policy)`.
    fn holds(self, order: Ordering) -> bool {
        match self {
            Cmp::Eq => order.is_eq(),
            Cmp::Lt => order.is_lt(),
            Cmp::Le => order.is_le(),
            Cmp::Gt => order.is_gt(),
            Cmp::Ge => order.is_ge(),
        }
    }
}

impl Cidr {
    /// `203.0.113.0/24`, `2001:DB8::/64`, or a bare address (`/32`, `/128`).
    fn parse(s: &str) -> Option<Cidr> {
        let (address, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.map_or(Some(max), |p| p.parse().ok().filter(|p| *p <= max))?;
        Some(Cidr { network, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
            IpAddr::V6(v6) => u128::from(v6),
        };
        let mask = u128::MAX.checked_shl(128 - self.prefix).unwrap_or(0);
        ip.is_ipv4() == self.network.is_ipv4() && bits(ip) & mask == bits(self.network) & mask
    }
}

impl Pattern {
    /// Splits out `*` and `?`, and with `variables` the `${...}` policy variables and escapes.
    fn parse(s: &str, variables: bool) -> Result<Pattern, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if variables && rest.starts_with("${") {
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("unterminated policy variable in {s:?}"))?;
                match &rest[2..end] {
                    escape @ ("*" | "?" | "$") => text.push_str(escape),
                    inner => {
                        flush_text(&mut pieces, &mut text);
                        pieces.push(
                            parse_variable(inner)
                                .ok_or_else(|| format!("bad policy variable in {s:?}"))?,
                        );
                    }
                }
                rest = &rest[end + 1..];
                continue;
            }
            rest = &rest[c.len_utf8()..];
            let wildcard = match c {
                '*' => Piece::AnyRun,
                '?' => Piece::AnyChar,
                _ => {
                    text.push(c);
                    continue;
                }
            };
            flush_text(&mut pieces, &mut text);
            pieces.push(wildcard);
        }
        flush_text(&mut pieces, &mut text);
        Ok(Pattern(pieces))
    }

    /// Substitutes the variables; `None` if one has no value (then the pattern matches nothing).
    fn resolve(&self, ctx: &Context) -> Option<Vec<Tok>> {
        let mut toks = Vec::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => toks.extend(text.chars().map(Tok::Lit)),
                Piece::AnyRun => toks.push(Tok::AnyRun),
                Piece::AnyChar => toks.push(Tok::AnyChar),
                Piece::Var { key, default } => {
                    let value = ctx.single(key).or(default.as_deref())?;
                    toks.extend(value.chars().map(Tok::Lit));
                }
            }
        }
        Some(toks)
    }

    /// `"*"` matches every resource (also the `"*"` of actions without one); anything else is an ARN pattern.
    fn matches_resource(&self, resource: &str, ctx: &Context) -> bool {
        matches!(self.0.as_slice(), [Piece::AnyRun])
            || self
                .resolve(ctx)
                .is_some_and(|toks| arn_like(&toks, resource))
    }
}

fn flush_text(pieces: &mut Vec<Piece>, text: &mut String) {
    if !text.is_empty() {
        pieces.push(Piece::Text(std::mem::take(text)));
    }
}

/// `aws:username` or `aws:PrincipalTag/team, 'default'` (the inside of `${...}`).
fn parse_variable(inner: &str) -> Option<Piece> {
    let (key, default) = match inner.split_once(',') {
        None => (inner, None),
        Some((key, default)) => {
            let default = default.trim().strip_prefix('\'')?.strip_suffix('\'')?;
            (key, Some(default.to_string()))
        }
    };
    let key = key.trim();
    (!key.is_empty()).then(|| Piece::Var {
        key: key.to_lowercase(),
        default,
    })
}

/// The resolved pattern as plain text (the `Equals` operators have no wildcards).
fn literal(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::AnyRun => '*',
            Tok::AnyChar => '?',
        })
        .collect()
}

/// Wildcard match of the whole text: `*` any run of characters (`:` and `/` included), `?` one character.
fn glob(pattern: &[Tok], text: &[char], ignore_case: bool) -> bool {
    let same = |a: char, b: char| a == b || (ignore_case && a.to_lowercase().eq(b.to_lowercase()));
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and how much text it has swallowed so far, to backtrack to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Tok::AnyRun) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Tok::AnyChar) => (p, t) = (p + 1, t + 1),
            Some(Tok::Lit(c)) if same(*c, text[t]) => (p, t) = (p + 1, t + 1),
            _ => match star {
                Some((star_p, star_t)) => {
                    star = Some((star_p, star_t + 1));
                    (p, t) = (star_p + 1, star_t + 1);
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|tok| *tok == Tok::AnyRun)
}

/// `ArnLike`: each of the six colon-separated parts is matched on its own (the sixth keeps any further colons).
fn arn_like(pattern: &[Tok], arn: &str) -> bool {
    let arn: Vec<char> = arn.chars().collect();
    match (
        arn_parts(pattern, |t| *t == Tok::Lit(':')),
        arn_parts(&arn, |c| *c == ':'),
    ) {
        (Some(pattern), Some(arn)) => pattern.iter().zip(&arn).all(|(p, a)| glob(p, a, false)),
        _ => false,
    }
}

fn arn_parts<T>(items: &[T], is_colon: impl Fn(&T) -> bool) -> Option<Vec<&[T]>> {
    let mut parts = Vec::with_capacity(6);
    let mut rest = items;
    for _ in 0..5 {
        let colon = rest.iter().position(&is_colon)?;
        parts.push(&rest[..colon]);
        rest = &rest[colon + 1..];
    }
    parts.push(rest);
    Some(parts)
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// A single-valued key (such as `aws:username` or `aws:ResourceTag/tenant`).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = ContextValue {
            values: vec![value.into()],
            multivalued: false,
        };
        self.keys.insert(key.to_lowercase(), value);
    }

    /// A multivalued key (such as `aws:TagKeys`); an empty `values` is a present, empty set.
    pub fn set_many(&mut self, key: &str, values: Vec<String>) {
        self.keys.insert(
            key.to_lowercase(),
            ContextValue {
                values,
                multivalued: true,
            },
        );
    }

    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.keys
            .get(&key.to_lowercase())
            .map(|v| v.values.as_slice())
    }

    /// The value a policy variable takes: only a single-valued key has one.
    fn single(&self, key: &str) -> Option<&str> {
        match self.keys.get(key) {
            Some(ContextValue {
                values,
                multivalued: false,
            }) => values.first().map(String::as_str),
            _ => None,
        }
    }
}

/// Evaluates `action` (e.g. "bedrock:GetSession") on `resource` (an ARN, or "*" for actions without a
/// resource such as ListSessions and CreateSession) against all the principal's policies: an explicit Deny
/// in any wins, else an Allow in any, else implicit deny.
pub fn evaluate(policies: &[Policy], action: &str, resource: &str, ctx: &Context) -> Decision {
    let mut decision = Decision::ImplicitDeny;
    for statement in policies.iter().flat_map(|p| &p.statements) {
        if statement.applies(action, resource, ctx) {
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => decision = Decision::Allow,
            }
        }
    }
    decision
}

/// AWS's AccessDeniedException message for a denial ("Troubleshoot access denied error messages", IAM User
/// Guide), e.g. "User: arn:aws:iam::111111111111:user/alice is not authorized to perform: bedrock:GetSession
/// on resource: arn:… because no identity-based policy allows the bedrock:GetSession action", or "... with an
/// explicit deny in an identity-based policy". As in AWS's messages, an action without a resource (`"*"`) has
/// no "on resource:" part. Empty for [`Decision::Allow`]: nothing was denied.
pub fn denial_message(
    decision: Decision,
    principal_arn: &str,
    action: &str,
    resource: &str,
) -> String {
    let on = if resource == "*" {
        String::new()
    } else {
        format!(" on resource: {resource}")
    };
    let head = format!("User: {principal_arn} is not authorized to perform: {action}{on}");
    match decision {
        Decision::Allow => String::new(),
        Decision::ImplicitDeny => {
            format!("{head} because no identity-based policy allows the {action} action")
        }
        Decision::ExplicitDeny => {
            format!("{head} with an explicit deny in an identity-based policy")
        }
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
