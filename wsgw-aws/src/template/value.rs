//! Template values, intrinsic functions kept as values.

use std::collections::BTreeMap;
use std::fmt;

/// A value in a template: YAML/JSON data, or an intrinsic function left unevaluated.
///
/// Short-form tags and long forms read the same: `!Ref Api` and `{"Ref": "Api"}` are
/// both `Intrinsic { function: "Ref", argument: "Api" }`; `!GetAtt Fn.Arn` and
/// `{"Fn::GetAtt": ["Fn", "Arn"]}` are both `Fn::GetAtt` of `["Fn", "Arn"]`.
///
/// ```
/// use wsgw_aws::template::TemplateValue;
///
/// let value = TemplateValue::from_yaml_str("!GetAtt Function.Arn").unwrap();
/// let long = TemplateValue::from_yaml_str("Fn::GetAtt: [Function, Arn]").unwrap();
/// assert_eq!(value, long);
/// assert_eq!(value.to_string(), "!GetAtt [Function, Arn]");
/// assert_eq!(TemplateValue::from_yaml_str("!Ref Api").unwrap().as_ref_target(), Some("Api"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateValue {
    /// `null` or `~`, or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string (also YAML scalars such as `$default` or `2010-09-09`).
    String(String),
    /// A sequence.
    List(Vec<TemplateValue>),
    /// A mapping, by key.
    Map(BTreeMap<String, TemplateValue>),
    /// An intrinsic function or condition function, unevaluated.
    Intrinsic(Box<Intrinsic>),
}

/// An intrinsic function as written: its long name (`Ref`, `Condition`, `Fn::Sub`,
/// `Fn::If` …) and its argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Intrinsic {
    /// `Ref`, `Condition`, or `Fn::…` (`Fn::GetAtt`, `Fn::Sub`, `Fn::If`, `Fn::Join`,
    /// `Fn::Select`, `Fn::FindInMap`, `Fn::Equals`, `Fn::Not` …).
    pub function: String,
    /// The argument: a logical id for `Ref`, `[resource, attribute]` for `Fn::GetAtt`,
    /// a string or `[string, variables]` for `Fn::Sub`, a list for most others.
    pub argument: TemplateValue,
}

impl Intrinsic {
    /// The long name of a short-form tag: `!Ref` → `Ref`, `!Condition` → `Condition`,
    /// `!Sub` → `Fn::Sub`.
    fn long_name(tag: &str) -> String {
        let tag = tag.strip_prefix('!').unwrap_or(tag);
        match tag {
            "Ref" | "Condition" => tag.to_owned(),
            other => format!("Fn::{other}"),
        }
    }

    fn is_function_key(key: &str) -> bool {
        key == "Ref" || key == "Condition" || key.starts_with("Fn::")
    }

    /// `Fn::GetAtt`'s short form `Resource.Attribute` (a string) as the long form's
    /// list `[Resource, Attribute]`; other arguments as they are.
    fn normalise(function: String, argument: TemplateValue) -> Self {
        let argument = match (function.as_str(), argument) {
            ("Fn::GetAtt", TemplateValue::String(dotted)) => match dotted.split_once('.') {
                Some((resource, attribute)) => TemplateValue::List(vec![
                    TemplateValue::String(resource.to_owned()),
                    TemplateValue::String(attribute.to_owned()),
                ]),
                None => TemplateValue::String(dotted),
            },
            (_, argument) => argument,
        };
        Intrinsic { function, argument }
    }
}

impl TemplateValue {
    /// Parses one YAML value (short-form tags included).
    pub fn from_yaml_str(text: &str) -> Result<Self, String> {
        let yaml: yaml_serde::Value =
            yaml_serde::from_str(text).map_err(|error| error.to_string())?;
        TemplateValue::from_yaml(yaml)
    }

    pub(super) fn from_yaml(value: yaml_serde::Value) -> Result<Self, String> {
        use yaml_serde::Value as Yaml;
        Ok(match value {
            Yaml::Null => TemplateValue::Null,
            Yaml::Bool(value) => TemplateValue::Bool(value),
            Yaml::Number(number) => number_of_yaml(&number),
            Yaml::String(value) => TemplateValue::String(value),
            Yaml::Sequence(items) => TemplateValue::List(
                items
                    .into_iter()
                    .map(TemplateValue::from_yaml)
                    .collect::<Result<_, _>>()?,
            ),
            Yaml::Mapping(mapping) => {
                let mut entries = BTreeMap::new();
                for (key, value) in mapping {
                    let key = match key {
                        Yaml::String(key) => key,
                        Yaml::Bool(key) => key.to_string(),
                        Yaml::Number(key) => key.to_string(),
                        other => {
                            return Err(format!("a mapping key that is not a scalar: {other:?}"))
                        }
                    };
                    entries.insert(key, TemplateValue::from_yaml(value)?);
                }
                TemplateValue::from_map(entries)
            }
            Yaml::Tagged(tagged) => {
                let function = Intrinsic::long_name(&tagged.tag.to_string());
                let argument = TemplateValue::from_yaml(tagged.value)?;
                TemplateValue::Intrinsic(Box::new(Intrinsic::normalise(function, argument)))
            }
        })
    }

    pub(super) fn from_json(value: serde_json::Value) -> Self {
        use serde_json::Value as Json;
        match value {
            Json::Null => TemplateValue::Null,
            Json::Bool(value) => TemplateValue::Bool(value),
            Json::Number(number) => TemplateValue::Number(number),
            Json::String(value) => TemplateValue::String(value),
            Json::Array(items) => {
                TemplateValue::List(items.into_iter().map(TemplateValue::from_json).collect())
            }
            Json::Object(members) => TemplateValue::from_map(
                members
                    .into_iter()
                    .map(|(key, value)| (key, TemplateValue::from_json(value)))
                    .collect(),
            ),
        }
    }

    /// A mapping, or the long form of an intrinsic function (a mapping of one key that
    /// is `Ref`, `Condition` or `Fn::…`).
    fn from_map(mut entries: BTreeMap<String, TemplateValue>) -> Self {
        if entries.len() == 1 {
            if let Some(function) = entries
                .keys()
                .next()
                .filter(|key| Intrinsic::is_function_key(key))
                .cloned()
            {
                let argument = entries.remove(&function).unwrap_or(TemplateValue::Null);
                return TemplateValue::Intrinsic(Box::new(Intrinsic::normalise(
                    function, argument,
                )));
            }
        }
        TemplateValue::Map(entries)
    }

    /// The string, for a literal string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            TemplateValue::String(value) => Some(value),
            _ => None,
        }
    }

    /// The intrinsic function, for one.
    pub fn as_intrinsic(&self) -> Option<&Intrinsic> {
        match self {
            TemplateValue::Intrinsic(intrinsic) => Some(intrinsic),
            _ => None,
        }
    }

    /// The logical id or parameter a `Ref` names.
    pub fn as_ref_target(&self) -> Option<&str> {
        self.as_intrinsic()
            .filter(|intrinsic| intrinsic.function == "Ref")
            .and_then(|intrinsic| intrinsic.argument.as_str())
    }
}

fn number_of_yaml(number: &yaml_serde::Number) -> TemplateValue {
    if let Some(value) = number.as_u64() {
        TemplateValue::Number(value.into())
    } else if let Some(value) = number.as_i64() {
        TemplateValue::Number(value.into())
    } else {
        number
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(
                || TemplateValue::String(number.to_string()),
                TemplateValue::Number,
            )
    }
}

/// Short YAML-like text, for messages: `!Ref Api`, `!Sub "integrations/${Integration}"`.
impl fmt::Display for TemplateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateValue::Null => f.write_str("null"),
            TemplateValue::Bool(value) => write!(f, "{value}"),
            TemplateValue::Number(value) => write!(f, "{value}"),
            TemplateValue::String(value) => {
                if value.is_empty()
                    || value.contains([':', '#', '"', '{', '}', '[', ']', ',', '\n'])
                    || value.starts_with(['!', '&', '*', ' ', '-', '?', '|', '>', '\'', '%', '@'])
                {
                    write!(f, "{value:?}")
                } else {
                    f.write_str(value)
                }
            }
            TemplateValue::List(items) => {
                f.write_str("[")?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            TemplateValue::Map(entries) => {
                f.write_str("{")?;
                for (index, (key, value)) in entries.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key}: {value}")?;
                }
                f.write_str("}")
            }
            TemplateValue::Intrinsic(intrinsic) => {
                let short = intrinsic
                    .function
                    .strip_prefix("Fn::")
                    .unwrap_or(&intrinsic.function);
                write!(f, "!{short} {}", intrinsic.argument)
            }
        }
    }
}
