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
mod tests {
    use serde_json::json;

    use super::Decision::{Allow, ExplicitDeny, ImplicitDeny};
    use super::*;

    const SESSION: &str =
        "arn:aws:bedrock:us-east-1:111111111111:session/6f5a3e1c-0d7b-4a8e-9c2f-1b2c3d4e5f60";

    fn policy(doc: Value) -> Policy {
        Policy::parse(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"))
    }

    fn parse_error(doc: Value) -> String {
        Policy::parse(&doc).expect_err("the document should be refused")
    }

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        let mut ctx = Context::new();
        for (key, value) in pairs {
            ctx.set(key, *value);
        }
        ctx
    }

    fn tag_keys(keys: &[&str]) -> Context {
        let mut ctx = Context::new();
        ctx.set_many("aws:TagKeys", keys.iter().map(|k| k.to_string()).collect());
        ctx
    }

    fn allow_all() -> Policy {
        policy(
            json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}),
        )
    }

    /// "Policy evaluation logic": an explicit deny in any policy overrides any allow; with neither, the
    /// request is implicitly denied.
    #[test]
    fn an_explicit_deny_beats_an_allow() {
        let allow = policy(json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"}
        }));
        let deny = policy(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "NoDeletes",
                "Effect": "Deny",
                "Action": ["bedrock:DeleteSession", "bedrock:EndSession"],
                "Resource": "*"
            }]
        }));
        let none = Context::new();
        let both = [allow.clone(), deny.clone()];
        assert_eq!(
            evaluate(&both, "bedrock:DeleteSession", SESSION, &none),
            ExplicitDeny
        );
        assert_eq!(
            evaluate(&[deny.clone(), allow], "bedrock:EndSession", SESSION, &none),
            ExplicitDeny
        );
        assert_eq!(evaluate(&both, "bedrock:GetSession", SESSION, &none), Allow);
        assert_eq!(
            evaluate(&[deny], "bedrock:GetSession", SESSION, &none),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(&[], "bedrock:GetSession", SESSION, &none),
            ImplicitDeny
        );
    }

    /// "IAM JSON policy elements: NotAction": "allows users to access every action in every AWS service
    /// except for IAM", and the same adapted to Bedrock's session API.
    #[test]
    fn not_action_allows_everything_else() {
        let no_iam = [policy(json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
        }))];
        let none = Context::new();
        let decide = |action: &str, resource: &str| evaluate(&no_iam, action, resource, &none);
        assert_eq!(decide("bedrock:GetSession", SESSION), Allow);
        assert_eq!(decide("bedrock:ListSessions", "*"), Allow);
        assert_eq!(decide("iam:CreateUser", "*"), ImplicitDeny);

        let no_deletes = [policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "NotAction": ["bedrock:Delete*", "bedrock:Untag*"],
                "Resource": "*"
            }
        }))];
        let decide = |action: &str| evaluate(&no_deletes, action, SESSION, &none);
        assert_eq!(decide("bedrock:PutInvocationStep"), Allow);
        assert_eq!(decide("bedrock:DeleteSession"), ImplicitDeny);
        assert_eq!(decide("bedrock:UntagResource"), ImplicitDeny);
    }

    /// "IAM JSON policy elements: NotAction", NotAction with Deny: deny every non-IAM action to a user not
    /// signed in with MFA (`BoolIfExists`, so a missing key denies too).
    #[test]
    fn not_action_with_deny_and_bool_if_exists() {
        let deny = policy(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DenyAllUsersNotUsingMFA",
                "Effect": "Deny",
                "NotAction": "iam:*",
                "Resource": "*",
                "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
            }]
        }));
        let policies = [allow_all(), deny];
        let no_mfa = ctx(&[("aws:MultiFactorAuthPresent", "false")]);
        let mfa = ctx(&[("aws:MultiFactorAuthPresent", "true")]);
        assert_eq!(
            evaluate(&policies, "bedrock:GetSession", SESSION, &no_mfa),
            ExplicitDeny
        );
        assert_eq!(
            evaluate(&policies, "iam:ChangePassword", "*", &no_mfa),
            Allow
        );
        assert_eq!(
            evaluate(&policies, "bedrock:GetSession", SESSION, &mfa),
            Allow
        );
        assert_eq!(
            evaluate(&policies, "bedrock:GetSession", SESSION, &Context::new()),
            ExplicitDeny
        );
    }

    /// "IAM JSON policy elements: NotResource": the HRPayroll group is denied every S3 resource except the
    /// Payroll folder (another policy allows).
    #[test]
    fn not_resource_denies_everything_else() {
        let deny = policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Deny",
                "Action": "s3:*",
                "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"]
            }
        }));
        let policies = [allow_all(), deny];
        let none = Context::new();
        assert_eq!(
            evaluate(
                &policies,
                "s3:GetObject",
                "arn:aws:s3:::HRBucket/Payroll/jan.csv",
                &none
            ),
            Allow
        );
        assert_eq!(
            evaluate(
                &policies,
                "s3:ListBucket",
                "arn:aws:s3:::HRBucket/Payroll",
                &none
            ),
            Allow
        );
        assert_eq!(
            evaluate(
                &policies,
                "s3:GetObject",
                "arn:aws:s3:::HRBucket/Bonus/jan.csv",
                &none
            ),
            ExplicitDeny
        );
        // Only the statement's actions are concerned.
        assert_eq!(
            evaluate(&policies, "bedrock:GetSession", SESSION, &none),
            Allow
        );

        // Adapted: only sessions. An action without a resource ("*") is no session, so it is denied too.
        let sessions_only = policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Deny",
                "Action": "bedrock:*",
                "NotResource": "arn:aws:bedrock:us-east-1:111111111111:session/*"
            }
        }));
        let policies = [allow_all(), sessions_only];
        assert_eq!(
            evaluate(&policies, "bedrock:GetSession", SESSION, &none),
            Allow
        );
        let elsewhere = "arn:aws:bedrock:eu-west-1:111111111111:session/abc";
        assert_eq!(
            evaluate(&policies, "bedrock:GetSession", elsewhere, &none),
            ExplicitDeny
        );
        assert_eq!(
            evaluate(&policies, "bedrock:ListSessions", "*", &none),
            ExplicitDeny
        );
    }

    /// "Controlling access to AWS resources using tags", controlling tag keys: create and tag only with the
    /// keys `environment` or `cost-center` (`ForAllValues:StringEquals` on `aws:TagKeys`), and the pitfall of
    /// "Multivalued context key examples": `ForAllValues` is also true with no keys at all, unless a
    /// `Null: false` check guards it.
    #[test]
    fn for_all_values_allows_only_the_listed_tag_keys() {
        let allowed_keys = [policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": ["bedrock:CreateSession", "bedrock:TagResource"],
                "Resource": "*",
                "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
            }
        }))];
        let decide = |ctx: &Context| evaluate(&allowed_keys, "bedrock:TagResource", SESSION, ctx);
        assert_eq!(decide(&tag_keys(&["environment"])), Allow);
        assert_eq!(decide(&tag_keys(&["environment", "cost-center"])), Allow);
        assert_eq!(decide(&tag_keys(&["environment", "owner"])), ImplicitDeny);
        assert_eq!(
            decide(&tag_keys(&["Environment"])),
            ImplicitDeny,
            "values are case-sensitive"
        );
        assert_eq!(decide(&tag_keys(&[])), Allow, "the empty-set pitfall");
        assert_eq!(decide(&Context::new()), Allow, "the missing-key pitfall");

        let guarded = [policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "bedrock:TagResource",
                "Resource": "*",
                "Condition": {
                    "Null": {"aws:TagKeys": "false"},
                    "ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}
                }
            }
        }))];
        let decide = |ctx: &Context| evaluate(&guarded, "bedrock:TagResource", SESSION, ctx);
        assert_eq!(decide(&tag_keys(&["cost-center"])), Allow);
        assert_eq!(decide(&tag_keys(&["owner"])), ImplicitDeny);
        assert_eq!(decide(&tag_keys(&[])), ImplicitDeny);
        assert_eq!(decide(&Context::new()), ImplicitDeny);
    }

    /// "Multivalued context key examples", "Deny a single policy condition value for a multivalued context
    /// key": `ForAllValues:StringNotLike` on `aws:TagKeys` with `key1*`, the rows of the page's table.
    #[test]
    fn for_all_values_with_a_negated_operator() {
        let deny = policy(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DenyRestrictedTags",
                "Effect": "Deny",
                "Action": ["bedrock:Tag*", "bedrock:Untag*"],
                "Resource": ["*"],
                "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}
            }]
        }));
        let policies = [allow_all(), deny];
        let decide = |ctx: &Context| evaluate(&policies, "bedrock:TagResource", SESSION, ctx);
        assert_eq!(decide(&tag_keys(&["key1:legal"])), Allow);
        assert_eq!(decide(&tag_keys(&["key1:hr", "key1:personnel"])), Allow);
        assert_eq!(decide(&tag_keys(&["key2:audit"])), ExplicitDeny);
        assert_eq!(decide(&tag_keys(&["key1:hr", "key2:audit"])), Allow);
        assert_eq!(decide(&Context::new()), ExplicitDeny);
    }

    /// "Multivalued context key examples", "Deny policy with condition set operator ForAnyValue": deny when
    /// any of the request's tag keys is `environment` or `webserver` (adapted from EC2 snapshots).
    #[test]
    fn for_any_value_denies_when_one_key_matches() {
        let deny = policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Deny",
                "Action": "bedrock:TagResource",
                "Resource": "*",
                "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["webserver", "environment"]}}
            }
        }));
        let policies = [allow_all(), deny];
        let decide = |ctx: &Context| evaluate(&policies, "bedrock:TagResource", SESSION, ctx);
        assert_eq!(decide(&tag_keys(&["owner", "environment"])), ExplicitDeny);
        assert_eq!(decide(&tag_keys(&["webserver"])), ExplicitDeny);
        assert_eq!(decide(&tag_keys(&["owner"])), Allow);
        assert_eq!(
            decide(&tag_keys(&[])),
            Allow,
            "ForAnyValue is false on an empty set"
        );
        assert_eq!(
            decide(&Context::new()),
            Allow,
            "ForAnyValue is false on a missing key"
        );
    }

    /// "IAM JSON policy elements: Condition operators", `...IfExists`: with the key present the check is
    /// made; without it the condition is true (where the plain operator is false).
    #[test]
    fn if_exists_is_true_when_the_key_is_missing() {
        let doc = |operator: &str| {
            policy(json!({
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Allow",
                    "Action": "bedrock:CreateSession",
                    "Resource": "*",
                    "Condition": {operator: {"aws:RequestTag/tenant": "${aws:PrincipalTag/tenant}"}}
                }
            }))
        };
        let if_exists = [doc("StringEqualsIfExists")];
        let plain = [doc("StringEquals")];
        let blue = ctx(&[("aws:PrincipalTag/tenant", "blue")]);
        let blue_asks_blue = ctx(&[
            ("aws:PrincipalTag/tenant", "blue"),
            ("aws:RequestTag/tenant", "blue"),
        ]);
        let blue_asks_red = ctx(&[
            ("aws:PrincipalTag/tenant", "blue"),
            ("aws:RequestTag/tenant", "red"),
        ]);
        assert_eq!(
            evaluate(&if_exists, "bedrock:CreateSession", "*", &blue),
            Allow
        );
        assert_eq!(
            evaluate(&if_exists, "bedrock:CreateSession", "*", &blue_asks_blue),
            Allow
        );
        assert_eq!(
            evaluate(&if_exists, "bedrock:CreateSession", "*", &blue_asks_red),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(&plain, "bedrock:CreateSession", "*", &blue),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(&plain, "bedrock:CreateSession", "*", &blue_asks_blue),
            Allow
        );
    }

    /// "IAM JSON policy elements: Condition operators", "Condition operator to check existence of condition
    /// keys": `Null: true` allows only requests without temporary credentials (no `aws:TokenIssueTime`).
    #[test]
    fn null_checks_whether_the_key_is_absent() {
        let doc = |absent: &str| {
            [policy(json!({
                "Version": "2012-10-17",
                "Statement": {
                    "Action": "bedrock:*",
                    "Effect": "Allow",
                    "Resource": "*",
                    "Condition": {"Null": {"aws:TokenIssueTime": absent}}
                }
            }))]
        };
        let temporary = ctx(&[("aws:TokenIssueTime", "2024-05-01T12:00:00Z")]);
        let long_term = Context::new();
        assert_eq!(
            evaluate(&doc("true"), "bedrock:GetSession", SESSION, &long_term),
            Allow
        );
        assert_eq!(
            evaluate(&doc("true"), "bedrock:GetSession", SESSION, &temporary),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(&doc("false"), "bedrock:GetSession", SESSION, &temporary),
            Allow
        );
        assert_eq!(
            evaluate(&doc("false"), "bedrock:GetSession", SESSION, &long_term),
            ImplicitDeny
        );
    }

    /// "IAM JSON policy elements: Condition operators" (a negated operator with a missing key is true) and
    /// "Conditions with multiple context keys or values" (a negated operator's values are NORed).
    #[test]
    fn string_not_equals_with_a_missing_key_and_several_values() {
        let doc = |operator: &str| {
            policy(json!({
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Deny",
                    "Action": "bedrock:*",
                    "Resource": "*",
                    "Condition": {operator: {"aws:RequestedRegion": ["us-east-1", "us-west-2"]}}
                }
            }))
        };
        let policies = [allow_all(), doc("StringNotEquals")];
        let decide = |region: Option<&str>| {
            let ctx = region.map_or_else(Context::new, |r| ctx(&[("aws:RequestedRegion", r)]));
            evaluate(&policies, "bedrock:GetSession", SESSION, &ctx)
        };
        assert_eq!(decide(Some("us-east-1")), Allow);
        assert_eq!(decide(Some("us-west-2")), Allow);
        assert_eq!(decide(Some("eu-west-1")), ExplicitDeny);
        assert_eq!(decide(None), ExplicitDeny);
        // "...IfExists": with a Deny and a negated operator the request is still denied if the key is missing.
        let if_exists = [allow_all(), doc("StringNotEqualsIfExists")];
        assert_eq!(
            evaluate(&if_exists, "bedrock:GetSession", SESSION, &Context::new()),
            ExplicitDeny
        );
    }

    /// "IAM tutorial: Define permissions to access AWS resources based on tags": the access-same-project-team
    /// policy (Secrets Manager there, Bedrock sessions here), principal tags compared with resource tags
    /// through `${aws:PrincipalTag/...}` variables.
    #[test]
    fn abac_principal_tags_must_match_resource_tags() {
        let abac = [policy(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "AllActionsBedrockSameProjectSameTeam",
                "Effect": "Allow",
                "Action": "bedrock:*",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "aws:ResourceTag/access-project": "${aws:PrincipalTag/access-project}",
                        "aws:ResourceTag/access-team": "${aws:PrincipalTag/access-team}",
                        "aws:ResourceTag/cost-center": "${aws:PrincipalTag/cost-center}"
                    },
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": ["access-project", "access-team", "cost-center", "Name", "OwnedBy"]
                    },
                    "StringEqualsIfExists": {
                        "aws:RequestTag/access-project": "${aws:PrincipalTag/access-project}",
                        "aws:RequestTag/access-team": "${aws:PrincipalTag/access-team}",
                        "aws:RequestTag/cost-center": "${aws:PrincipalTag/cost-center}"
                    }
                }
            }]
        }))];
        let principal = [
            ("aws:PrincipalTag/access-project", "peg"),
            ("aws:PrincipalTag/access-team", "eng"),
            ("aws:PrincipalTag/cost-center", "987654"),
        ];
        let resource = [
            ("aws:ResourceTag/access-project", "peg"),
            ("aws:ResourceTag/access-team", "eng"),
            ("aws:ResourceTag/cost-center", "987654"),
        ];
        let same = ctx(&[principal.as_slice(), &resource].concat());
        assert_eq!(evaluate(&abac, "bedrock:GetSession", SESSION, &same), Allow);

        let other_team = ctx(&[
            principal.as_slice(),
            &resource,
            &[("aws:ResourceTag/access-team", "qas")],
        ]
        .concat());
        assert_eq!(
            evaluate(&abac, "bedrock:GetSession", SESSION, &other_team),
            ImplicitDeny
        );

        let untagged_resource = ctx(&[principal.as_slice(), &resource[..2]].concat());
        assert_eq!(
            evaluate(&abac, "bedrock:GetSession", SESSION, &untagged_resource),
            ImplicitDeny
        );

        // A principal without the tag: the variable has no value, so nothing equals it.
        let untagged_principal = ctx(&[&principal[..2], resource.as_slice()].concat());
        assert_eq!(
            evaluate(&abac, "bedrock:GetSession", SESSION, &untagged_principal),
            ImplicitDeny
        );

        let mut tagging = ctx(&[
            principal.as_slice(),
            &resource,
            &[("aws:RequestTag/access-project", "peg")],
        ]
        .concat());
        tagging.set_many("aws:TagKeys", vec!["access-project".into(), "Name".into()]);
        assert_eq!(
            evaluate(&abac, "bedrock:TagResource", SESSION, &tagging),
            Allow
        );
        tagging.set("aws:RequestTag/access-project", "uni");
        assert_eq!(
            evaluate(&abac, "bedrock:TagResource", SESSION, &tagging),
            ImplicitDeny
        );
        tagging.set("aws:RequestTag/access-project", "peg");
        tagging.set_many("aws:TagKeys", vec!["access-project".into(), "Owner".into()]);
        assert_eq!(
            evaluate(&abac, "bedrock:TagResource", SESSION, &tagging),
            ImplicitDeny
        );
    }

    /// The same with one tenant tag, its key written in another case ("IAM policy elements: Variables and
    /// tags": key names are case-insensitive).
    #[test]
    fn abac_tenant_tag() {
        let tenant = [policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": ["bedrock:GetSession", "bedrock:UpdateSession"],
                "Resource": "arn:aws:bedrock:*:111111111111:session/*",
                "Condition": {"StringEquals": {"aws:ResourceTag/tenant": "${aws:principaltag/Tenant}"}}
            }
        }))];
        let acme = ctx(&[
            ("aws:PrincipalTag/tenant", "acme"),
            ("aws:ResourceTag/Tenant", "acme"),
        ]);
        let other = ctx(&[
            ("aws:PrincipalTag/tenant", "acme"),
            ("aws:ResourceTag/tenant", "globex"),
        ]);
        assert_eq!(
            evaluate(&tenant, "bedrock:GetSession", SESSION, &acme),
            Allow
        );
        assert_eq!(
            evaluate(&tenant, "bedrock:GetSession", SESSION, &other),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(&tenant, "bedrock:DeleteSession", SESSION, &acme),
            ImplicitDeny
        );
    }

    /// "IAM policy elements: Variables and tags": each user manages their own access keys,
    /// `arn:aws:iam::account-id:user/${aws:username}`.
    #[test]
    fn username_variable_in_a_resource() {
        let own_keys = [policy(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Action": ["iam:*AccessKey*"],
                "Effect": "Allow",
                "Resource": ["arn:aws:iam::111111111111:user/${aws:username}"]
            }]
        }))];
        let david = ctx(&[("aws:username", "David")]);
        let user = |name: &str| format!("arn:aws:iam::111111111111:user/{name}");
        assert_eq!(
            evaluate(&own_keys, "iam:CreateAccessKey", &user("David"), &david),
            Allow
        );
        assert_eq!(
            evaluate(&own_keys, "iam:ListAccessKeys", &user("David"), &david),
            Allow
        );
        assert_eq!(
            evaluate(&own_keys, "iam:CreateAccessKey", &user("Adele"), &david),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(&own_keys, "iam:GetUser", &user("David"), &david),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(
                &own_keys,
                "iam:CreateAccessKey",
                &user("David"),
                &Context::new()
            ),
            ImplicitDeny
        );
        // A variable without a value is not an empty string: the resource containing it matches nothing.
        assert_eq!(
            evaluate(&own_keys, "iam:CreateAccessKey", &user(""), &Context::new()),
            ImplicitDeny
        );
    }

    /// "IAM policy elements: Variables and tags": without `"Version": "2012-10-17"` (absent, or 2008-10-17),
    /// `${aws:username}` is a literal string.
    #[test]
    fn older_versions_have_no_variables() {
        for version in [None, Some("2008-10-17")] {
            let mut doc = json!({
                "Statement": {"Action": "iam:*AccessKey*", "Effect": "Allow", "Resource": "arn:aws:iam::111111111111:user/${aws:username}"}
            });
            if let Some(version) = version {
                doc["Version"] = json!(version);
            }
            let literal = [policy(doc)];
            let david = ctx(&[("aws:username", "David")]);
            let named = "arn:aws:iam::111111111111:user/David";
            let verbatim = "arn:aws:iam::111111111111:user/${aws:username}";
            assert_eq!(
                evaluate(&literal, "iam:CreateAccessKey", named, &david),
                ImplicitDeny
            );
            assert_eq!(
                evaluate(&literal, "iam:CreateAccessKey", verbatim, &david),
                Allow
            );
        }
        // An unterminated variable is refused only where variables exist.
        let unterminated = |version: &str| json!({"Version": version, "Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/${aws:username"}});
        assert!(parse_error(unterminated("2012-10-17")).contains("unterminated policy variable"));
        assert!(Policy::parse(&unterminated("2008-10-17")).is_ok());
    }

    /// "IAM policy elements: Variables and tags", "Specifying default values": `${key, 'default'}` stands in
    /// when the key has no value.
    #[test]
    fn variable_default_values() {
        let team_folder = [policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/${aws:PrincipalTag/team, 'company-wide'}/*"
            }
        }))];
        let blue = ctx(&[("aws:PrincipalTag/team", "blue")]);
        let object = |folder: &str| format!("arn:aws:s3:::amzn-s3-demo-bucket/{folder}/report.pdf");
        assert_eq!(
            evaluate(&team_folder, "s3:GetObject", &object("blue"), &blue),
            Allow
        );
        assert_eq!(
            evaluate(&team_folder, "s3:GetObject", &object("company-wide"), &blue),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(
                &team_folder,
                "s3:GetObject",
                &object("company-wide"),
                &Context::new()
            ),
            Allow
        );
        assert_eq!(
            evaluate(
                &team_folder,
                "s3:GetObject",
                &object("blue"),
                &Context::new()
            ),
            ImplicitDeny
        );
    }

    /// "IAM policy elements: Variables and tags", "Special characters": `${*}`, `${?}` and `${$}` stand for
    /// the characters themselves, not wildcards.
    #[test]
    fn special_character_variables() {
        let doc = |version: &str| {
            [policy(json!({
                "Version": version,
                "Statement": {
                    "Effect": "Allow",
                    "Action": "bedrock:CreateSession",
                    "Resource": "*",
                    "Condition": {"StringLike": {"aws:RequestTag/pattern": "a${*}b${?}${$}*"}}
                }
            }))]
        };
        let decide = |version: &str, value: &str| {
            evaluate(
                &doc(version),
                "bedrock:CreateSession",
                "*",
                &ctx(&[("aws:RequestTag/pattern", value)]),
            )
        };
        assert_eq!(decide("2012-10-17", "a*b?$"), Allow);
        assert_eq!(decide("2012-10-17", "a*b?$ and more"), Allow);
        assert_eq!(decide("2012-10-17", "axbx$"), ImplicitDeny);
        assert_eq!(
            decide("2008-10-17", "a${xyz}b${x}${$}!"),
            Allow,
            "literal text with wildcards"
        );
        assert_eq!(decide("2008-10-17", "a*b?$"), ImplicitDeny);
    }

    /// "IAM policy elements: Variables and tags", introduction: `StringLike` on `s3:prefix` with `David/*`
    /// and `${aws:username}/*`; `*` spans `/`, `?` is one character, matching is case-sensitive.
    #[test]
    fn string_like_wildcards() {
        let doc = |prefix: &str| {
            [policy(json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Action": ["s3:ListBucket"],
                    "Effect": "Allow",
                    "Resource": ["arn:aws:s3:::mybucket"],
                    "Condition": {"StringLike": {"s3:prefix": [prefix]}}
                }]
            }))]
        };
        let decide = |policies: &[Policy], prefix: &str| {
            let ctx = ctx(&[("s3:prefix", prefix), ("aws:username", "David")]);
            evaluate(policies, "s3:ListBucket", "arn:aws:s3:::mybucket", &ctx)
        };
        for policies in [doc("David/*"), doc("${aws:username}/*")] {
            assert_eq!(decide(&policies, "David/"), Allow);
            assert_eq!(decide(&policies, "David/docs/2024/a.txt"), Allow);
            assert_eq!(decide(&policies, "Dave/"), ImplicitDeny);
            assert_eq!(decide(&policies, "david/"), ImplicitDeny);
        }
        let one_char = doc("home/?");
        assert_eq!(decide(&one_char, "home/a"), Allow);
        assert_eq!(decide(&one_char, "home/ab"), ImplicitDeny);
        assert_eq!(decide(&one_char, "home/"), ImplicitDeny);
    }

    /// "IAM JSON policy elements: Condition operators", string operators: `StringEqualsIgnoreCase` and its
    /// negation; operator names themselves are read without regard to case.
    #[test]
    fn string_equals_ignore_case() {
        let doc = |operator: &str| {
            [policy(json!({
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Allow",
                    "Action": "bedrock:CreateSession",
                    "Resource": "*",
                    "Condition": {operator: {"aws:RequestTag/stage": ["Prod", "staging"]}}
                }
            }))]
        };
        let decide = |policies: &[Policy], stage: &str| {
            evaluate(
                policies,
                "bedrock:CreateSession",
                "*",
                &ctx(&[("aws:RequestTag/stage", stage)]),
            )
        };
        for operator in ["StringEqualsIgnoreCase", "stringequalsignorecase"] {
            assert_eq!(decide(&doc(operator), "PROD"), Allow);
            assert_eq!(decide(&doc(operator), "Staging"), Allow);
            assert_eq!(decide(&doc(operator), "dev"), ImplicitDeny);
        }
        assert_eq!(decide(&doc("StringEquals"), "PROD"), ImplicitDeny);
        assert_eq!(
            decide(&doc("StringNotEqualsIgnoreCase"), "PROD"),
            ImplicitDeny
        );
        assert_eq!(decide(&doc("StringNotEqualsIgnoreCase"), "dev"), Allow);
    }

    /// "IAM JSON policy elements: Condition operators", ARN operators: `StringLike` lets `*` cross colons,
    /// `ArnLike` matches each of the six colon-separated parts separately.
    #[test]
    fn arn_like_matches_each_part() {
        let doc = |operator: &str| {
            [policy(json!({
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Allow",
                    "Action": "bedrock:GetSession",
                    "Resource": "*",
                    "Condition": {operator: {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}}
                }
            }))]
        };
        let tricky = ctx(&[(
            "aws:SourceArn",
            "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
        )]);
        let plain = ctx(&[(
            "aws:SourceArn",
            "arn:aws:someservice:us-east-2:111122223333:finance/document.txt",
        )]);
        assert_eq!(
            evaluate(&doc("StringLike"), "bedrock:GetSession", SESSION, &tricky),
            Allow
        );
        assert_eq!(
            evaluate(&doc("ArnLike"), "bedrock:GetSession", SESSION, &tricky),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(&doc("ArnEquals"), "bedrock:GetSession", SESSION, &plain),
            Allow
        );
        assert_eq!(
            evaluate(&doc("ArnNotLike"), "bedrock:GetSession", SESSION, &plain),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(&doc("ArnNotLike"), "bedrock:GetSession", SESSION, &tricky),
            Allow
        );
        let not_an_arn = ctx(&[("aws:SourceArn", "finance/document.txt")]);
        assert_eq!(
            evaluate(&doc("ArnLike"), "bedrock:GetSession", SESSION, &not_an_arn),
            ImplicitDeny
        );
    }

    /// "IAM JSON policy elements: Condition operators", Boolean condition operators: deny when the request
    /// is not over TLS (`aws:SecureTransport` "false", or JSON `false`).
    #[test]
    fn bool_operator() {
        for value in [json!("false"), json!(false)] {
            let deny = policy(json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "BooleanExample",
                    "Action": "bedrock:*",
                    "Effect": "Deny",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": value}}
                }]
            }));
            let policies = [allow_all(), deny];
            let decide = |ctx: &Context| evaluate(&policies, "bedrock:GetSession", SESSION, ctx);
            assert_eq!(
                decide(&ctx(&[("aws:SecureTransport", "false")])),
                ExplicitDeny
            );
            assert_eq!(decide(&ctx(&[("aws:SecureTransport", "true")])), Allow);
            assert_eq!(decide(&ctx(&[("aws:SecureTransport", "maybe")])), Allow);
            assert_eq!(decide(&Context::new()), Allow);
        }
    }

    /// "IAM JSON policy elements: Action" (prefix and action name are case-insensitive) and "IAM policy
    /// elements: Variables and tags" (condition key names are case-insensitive: `aws:CurrentTime` is
    /// `AWS:currenttime`); resource ARNs stay case-sensitive.
    #[test]
    fn names_are_case_insensitive_but_arns_are_not() {
        let policies = [policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": ["Bedrock:getsession", "BEDROCK:List*"],
                "Resource": ["arn:aws:bedrock:us-east-1:111111111111:session/ABC", "*"],
                "Condition": {"StringEquals": {"AWS:username": "alice", "aws:ResourceTag/Owner": "${AWS:Username}"}}
            }
        }))];
        let alice = ctx(&[
            ("aws:UserName", "alice"),
            ("aws:resourcetag/owner", "alice"),
        ]);
        assert_eq!(
            evaluate(&policies, "bedrock:GetSession", SESSION, &alice),
            Allow
        );
        assert_eq!(
            evaluate(&policies, "bedrock:ListInvocationSteps", SESSION, &alice),
            Allow
        );
        assert_eq!(
            evaluate(&policies, "bedrock:GetInvocationStep", SESSION, &alice),
            ImplicitDeny
        );
        let bob = ctx(&[
            ("aws:username", "Alice"),
            ("aws:ResourceTag/Owner", "Alice"),
        ]);
        assert_eq!(
            evaluate(&policies, "bedrock:GetSession", SESSION, &bob),
            ImplicitDeny,
            "values keep their case"
        );
        assert_eq!(
            alice.get("AWS:USERNAME"),
            Some(["alice".to_string()].as_slice())
        );

        let exact = [policy(json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "bedrock:GetSession", "Resource": "arn:aws:bedrock:us-east-1:111111111111:session/ABC"}
        }))];
        let upper = "arn:aws:bedrock:us-east-1:111111111111:session/ABC";
        let lower = "arn:aws:bedrock:us-east-1:111111111111:session/abc";
        assert_eq!(
            evaluate(&exact, "bedrock:GetSession", upper, &Context::new()),
            Allow
        );
        assert_eq!(
            evaluate(&exact, "bedrock:GetSession", lower, &Context::new()),
            ImplicitDeny
        );
    }

    /// "IAM JSON policy elements: Resource": wildcards within ARN segments; `"*"` is every resource,
    /// including the `"*"` of actions without one.
    #[test]
    fn resource_wildcards() {
        let policies = [policy(json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "bedrock:*", "Resource": "arn:aws:bedrock:us-east-?:*:session/*"}
        }))];
        let none = Context::new();
        assert_eq!(
            evaluate(&policies, "bedrock:GetSession", SESSION, &none),
            Allow
        );
        let west = "arn:aws:bedrock:us-west-2:111111111111:session/abc";
        assert_eq!(
            evaluate(&policies, "bedrock:GetSession", west, &none),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(&policies, "bedrock:ListSessions", "*", &none),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(&[allow_all()], "bedrock:ListSessions", "*", &none),
            Allow
        );
    }

    /// "IAM JSON policy elements: Condition operators", numeric operators: list at most 10 keys
    /// (`NumericLessThanEquals` on `s3:max-keys`); `NumericNotEquals` NORs its values.
    #[test]
    fn numeric_operators() {
        let doc = |operator: &str, values: Value| {
            [policy(json!({
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": "arn:aws:s3:::example_bucket",
                    "Condition": {operator: {"s3:max-keys": values}}
                }
            }))]
        };
        let decide = |policies: &[Policy], max_keys: Option<&str>| {
            let ctx = max_keys.map_or_else(Context::new, |m| ctx(&[("s3:max-keys", m)]));
            evaluate(
                policies,
                "s3:ListBucket",
                "arn:aws:s3:::example_bucket",
                &ctx,
            )
        };
        let at_most_ten = doc("NumericLessThanEquals", json!("10"));
        assert_eq!(decide(&at_most_ten, Some("10")), Allow);
        assert_eq!(decide(&at_most_ten, Some("2.5")), Allow);
        assert_eq!(decide(&at_most_ten, Some("11")), ImplicitDeny);
        assert_eq!(decide(&at_most_ten, Some("ten")), ImplicitDeny);
        assert_eq!(decide(&at_most_ten, None), ImplicitDeny);
        let not_five_or_seven = doc("NumericNotEquals", json!([5, 7]));
        assert_eq!(decide(&not_five_or_seven, Some("6")), Allow);
        assert_eq!(decide(&not_five_or_seven, Some("7")), ImplicitDeny);
        assert_eq!(decide(&not_five_or_seven, None), Allow);
        assert_eq!(
            decide(&doc("NumericGreaterThan", json!(100)), Some("100")),
            ImplicitDeny
        );
        assert_eq!(
            decide(&doc("NumericGreaterThanEquals", json!(100)), Some("100")),
            Allow
        );
    }

    /// "IAM JSON policy elements: Condition operators", date operators: credentials issued after
    /// 2020-01-01T00:00:01Z (`DateGreaterThan` on `aws:TokenIssueTime`); ISO 8601 or epoch seconds.
    #[test]
    fn date_operators() {
        let doc = |operator: &str, value: Value| {
            [policy(json!({
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Allow",
                    "Action": "bedrock:*",
                    "Resource": "*",
                    "Condition": {operator: {"aws:TokenIssueTime": value}}
                }
            }))]
        };
        let decide = |policies: &[Policy], issued: Option<&str>| {
            let ctx = issued.map_or_else(Context::new, |t| ctx(&[("aws:TokenIssueTime", t)]));
            evaluate(policies, "bedrock:GetSession", SESSION, &ctx)
        };
        for after in [
            doc("DateGreaterThan", json!("2020-01-01T00:00:01Z")),
            doc("DateGreaterThan", json!(1577836801)),
        ] {
            assert_eq!(decide(&after, Some("2020-06-01T00:00:00Z")), Allow);
            assert_eq!(decide(&after, Some("2020-01-01T00:00:01Z")), ImplicitDeny);
            assert_eq!(decide(&after, Some("2019-12-31T23:59:59Z")), ImplicitDeny);
            assert_eq!(
                decide(&after, Some("1600000000")),
                Allow,
                "epoch seconds in the request"
            );
            assert_eq!(decide(&after, Some("2020-01-02")), Allow, "a date alone");
            assert_eq!(decide(&after, Some("2020-06-01T02:00:00+02:00")), Allow);
            assert_eq!(decide(&after, Some("yesterday")), ImplicitDeny);
            assert_eq!(decide(&after, None), ImplicitDeny);
        }
        let not_on = doc("DateNotEquals", json!("2024-05-01"));
        assert_eq!(decide(&not_on, Some("2024-05-01T00:00:00Z")), ImplicitDeny);
        assert_eq!(decide(&not_on, Some("2024-05-02T00:00:00Z")), Allow);
        assert_eq!(
            decide(
                &doc("DateLessThanEquals", json!("2024-05-01")),
                Some("2024-05-01T00:00:00Z")
            ),
            Allow
        );
    }

    /// "IAM JSON policy elements: Condition operators", IP address operators: `203.0.113.0/24`, IPv4 and
    /// IPv6 ranges mixed.
    #[test]
    fn ip_address_operators() {
        let doc = |operator: &str| {
            [policy(json!({
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Allow",
                    "Action": "bedrock:*",
                    "Resource": "*",
                    "Condition": {operator: {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64", "198.51.100.7"]}}
                }
            }))]
        };
        let decide = |policies: &[Policy], ip: Option<&str>| {
            let ctx = ip.map_or_else(Context::new, |ip| ctx(&[("aws:SourceIp", ip)]));
            evaluate(policies, "bedrock:GetSession", SESSION, &ctx)
        };
        let inside = doc("IpAddress");
        assert_eq!(decide(&inside, Some("203.0.113.200")), Allow);
        assert_eq!(decide(&inside, Some("2001:db8:1234:5678::1")), Allow);
        assert_eq!(decide(&inside, Some("198.51.100.7")), Allow);
        assert_eq!(decide(&inside, Some("198.51.100.8")), ImplicitDeny);
        assert_eq!(decide(&inside, Some("203.0.114.1")), ImplicitDeny);
        assert_eq!(decide(&inside, Some("2001:db8:1234:5679::1")), ImplicitDeny);
        assert_eq!(decide(&inside, None), ImplicitDeny);
        let outside = doc("NotIpAddress");
        assert_eq!(decide(&outside, Some("203.0.113.200")), ImplicitDeny);
        assert_eq!(decide(&outside, Some("192.0.2.1")), Allow);
        assert_eq!(decide(&outside, None), Allow);
    }

    /// "Single-valued vs. multivalued context keys": a multivalued key needs a set operator (a plain operator
    /// has no single value to compare), and can't be a policy variable.
    #[test]
    fn multivalued_keys_need_set_operators() {
        let plain = [policy(json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "bedrock:TagResource", "Resource": "*", "Condition": {"StringEquals": {"aws:TagKeys": "a"}}}
        }))];
        assert_eq!(
            evaluate(
                &plain,
                "bedrock:TagResource",
                SESSION,
                &tag_keys(&["a", "b"])
            ),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(&plain, "bedrock:TagResource", SESSION, &tag_keys(&["a"])),
            Allow
        );

        let as_variable = [policy(json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "bedrock:TagResource", "Resource": "*", "Condition": {"StringEquals": {"aws:RequestTag/k": "${aws:TagKeys}"}}}
        }))];
        let mut request = tag_keys(&["k"]);
        request.set("aws:RequestTag/k", "k");
        assert_eq!(
            evaluate(&as_variable, "bedrock:TagResource", SESSION, &request),
            ImplicitDeny
        );
        request.set("aws:TagKeys", "k");
        assert_eq!(
            evaluate(&as_variable, "bedrock:TagResource", SESSION, &request),
            Allow
        );
    }

    /// "IAM JSON policy elements reference": `Statement` is one object or an array, the elements strings or
    /// arrays of strings, condition values strings, numbers or booleans.
    #[test]
    fn element_shapes() {
        let one = [policy(
            json!({"Statement": {"Effect": "Allow", "Action": "bedrock:GetSession", "Resource": SESSION}}),
        )];
        let many = [policy(json!({
            "Version": "2012-10-17",
            "Id": "shapes",
            "Statement": [
                {"Sid": "a", "Effect": "Allow", "Action": ["bedrock:GetSession"], "Resource": [SESSION], "Condition": {}},
                {"Effect": "Allow", "Action": "bedrock:ListSessions", "Resource": "*",
                 "Condition": {"StringEquals": {"aws:RequestedRegion": ["us-east-1"]}, "NumericLessThan": {"bedrock:MaxResults": 100}}}
            ]
        }))];
        let none = Context::new();
        assert_eq!(evaluate(&one, "bedrock:GetSession", SESSION, &none), Allow);
        assert_eq!(evaluate(&many, "bedrock:GetSession", SESSION, &none), Allow);
        let listing = |max: &str| {
            ctx(&[
                ("aws:RequestedRegion", "us-east-1"),
                ("bedrock:MaxResults", max),
            ])
        };
        assert_eq!(
            evaluate(&many, "bedrock:ListSessions", "*", &listing("50")),
            Allow
        );
        assert_eq!(
            evaluate(&many, "bedrock:ListSessions", "*", &listing("500")),
            ImplicitDeny
        );
    }

    /// Documents IAM refuses (IAM's own messages: "Policy document should not specify a principal",
    /// "Actions/Conditions must be prefaced by a vendor", "Resource ... must be in ARN format or \"*\""), and
    /// a message that names the fault.
    #[test]
    fn bad_documents_are_refused_with_a_reason() {
        let statement = |extra: Value| {
            let mut s = json!({"Effect": "Allow", "Action": "bedrock:GetSession", "Resource": "*"});
            for (k, v) in extra.as_object().unwrap() {
                if v.is_null() {
                    s.as_object_mut().unwrap().remove(k);
                } else {
                    s[k] = v.clone();
                }
            }
            json!({"Version": "2012-10-17", "Statement": [s]})
        };
        let cases = [
            (
                statement(json!({"Principal": {"AWS": "111111111111"}})),
                "Principal",
            ),
            (statement(json!({"NotPrincipal": "*"})), "NotPrincipal"),
            (statement(json!({"Effect": null})), "missing Effect"),
            (statement(json!({"Effect": "allow"})), "Effect must be"),
            (statement(json!({"Actions": "bedrock:*"})), "\"Actions\""),
            (
                statement(json!({"NotAction": "iam:*"})),
                "both Action and NotAction",
            ),
            (statement(json!({"Action": null})), "Action or NotAction"),
            (
                statement(json!({"Resource": null})),
                "Resource or NotResource",
            ),
            (statement(json!({"Action": []})), "non-empty array"),
            (
                statement(json!({"Action": "GetSession"})),
                "prefaced by a vendor",
            ),
            (
                statement(json!({"Resource": "arn:aws:bedrock:*"})),
                "must be in ARN format",
            ),
            (statement(json!({"Sid": 7})), "Sid"),
            (
                statement(json!({"Condition": {"StringEqualz": {"aws:username": "a"}}})),
                "StringEqualz",
            ),
            (
                statement(json!({"Condition": {"ForEachValue:StringEquals": {"k": "a"}}})),
                "ForEachValue:StringEquals",
            ),
            (
                statement(json!({"Condition": {"BinaryEquals": {"k": "QmluYXJ5"}}})),
                "not supported",
            ),
            (
                statement(json!({"Condition": {"NumericEquals": {"k": "ten"}}})),
                "\"ten\" is not a number",
            ),
            (
                statement(json!({"Condition": {"DateLessThan": {"k": "soon"}}})),
                "\"soon\" is not a date",
            ),
            (
                statement(json!({"Condition": {"Bool": {"k": "yes"}}})),
                "not true or false",
            ),
            (
                statement(json!({"Condition": {"IpAddress": {"k": "10.0.0.0/33"}}})),
                "not an IP address",
            ),
            (
                statement(json!({"Condition": {"NullIfExists": {"k": "true"}}})),
                "Null takes",
            ),
            (
                statement(json!({"Condition": {"StringEquals": {"k": []}}})),
                "non-empty array",
            ),
            (
                statement(json!({"Condition": {"StringEquals": {"k": {"nested": 1}}}})),
                "values must be",
            ),
            (
                statement(json!({"Condition": {"StringEquals": "k"}})),
                "must map condition keys",
            ),
            (
                statement(
                    json!({"Condition": {"StringEquals": {"k": "${aws:username, default}"}}}),
                ),
                "bad policy variable",
            ),
            (
                json!({"Version": "2012-10-17", "Statement": []}),
                "non-empty array",
            ),
            (json!({"Version": "2012-10-17"}), "Statement"),
            (
                json!({"Version": "2010-01-01", "Statement": {}}),
                "Version \"2010-01-01\"",
            ),
            (
                json!({"Version": "2012-10-17", "Statements": []}),
                "\"Statements\"",
            ),
            (json!(["not", "an", "object"]), "JSON object"),
        ];
        for (doc, expected) in cases {
            let error = parse_error(doc.clone());
            assert!(
                error.contains(expected),
                "{doc}: {error:?} should mention {expected:?}"
            );
        }
        // The message says which statement.
        let error = parse_error(json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Sid": "Second", "Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEqualz": {"k": "v"}}}
            ]
        }));
        assert_eq!(
            error,
            "statement 2 (\"Second\"): condition StringEqualz on k: unknown condition operator \"StringEqualz\""
        );
    }

    /// "Troubleshoot access denied error messages": "User: user is not authorized to perform: action on
    /// resource: resource because no identity-based policy allows the action action" / "with an explicit
    /// deny in an identity-based policy"; the documentation's examples of actions without a resource
    /// (codecommit:ListRepositories) have no "on resource:" part.
    #[test]
    fn denial_messages() {
        let alice = "arn:aws:iam::111111111111:user/alice";
        assert_eq!(
            denial_message(ImplicitDeny, alice, "bedrock:GetSession", SESSION),
            format!(
                "User: {alice} is not authorized to perform: bedrock:GetSession on resource: {SESSION} \
                 because no identity-based policy allows the bedrock:GetSession action"
            )
        );
        assert_eq!(
            denial_message(ExplicitDeny, alice, "bedrock:DeleteSession", SESSION),
            format!(
                "User: {alice} is not authorized to perform: bedrock:DeleteSession on resource: {SESSION} \
                 with an explicit deny in an identity-based policy"
            )
        );
        assert_eq!(
            denial_message(ImplicitDeny, alice, "bedrock:ListSessions", "*"),
            format!(
                "User: {alice} is not authorized to perform: bedrock:ListSessions because no \
                 identity-based policy allows the bedrock:ListSessions action"
            )
        );
        assert_eq!(
            denial_message(Allow, alice, "bedrock:ListSessions", "*"),
            ""
        );
    }
}
