//! A neutral value tree for requests and responses. Python objects and JSON documents both convert to
//! and from it, so one request parser and one response builder serve the Python client and the server.

use std::collections::BTreeMap;

use crate::clock::Micros;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// Microseconds since the epoch, UTC.
    Timestamp(Micros),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
    /// A value of a type the API has no use for; kept so the error can name the field and the type.
    Unsupported(String),
}

impl Value {
    pub fn type_name(&self) -> &str {
        match self {
            Value::Null => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Timestamp(_) => "datetime",
            Value::List(_) => "list",
            Value::Map(_) => "dict",
            Value::Unsupported(t) => t,
        }
    }

    /// A map's member by name (`None` for a missing member or a value that is not a map).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Builds a response map in field order.
#[derive(Debug, Default)]
pub struct MapBuilder(Vec<(String, Value)>);

impl MapBuilder {
    pub fn new() -> Self {
        MapBuilder(Vec::new())
    }
    pub fn put(mut self, key: &str, v: Value) -> Self {
        self.0.push((key.to_string(), v));
        self
    }
    pub fn str(self, key: &str, v: impl Into<String>) -> Self {
        self.put(key, Value::Str(v.into()))
    }
    pub fn ts(self, key: &str, v: Micros) -> Self {
        self.put(key, Value::Timestamp(v))
    }
    pub fn opt_str(self, key: &str, v: Option<String>) -> Self {
        match v {
            Some(s) => self.str(key, s),
            None => self,
        }
    }
    pub fn string_map(self, key: &str, m: &BTreeMap<String, String>) -> Self {
        let v = Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                .collect(),
        );
        self.put(key, v)
    }
    pub fn build(self) -> Value {
        Value::Map(self.0)
    }
}
