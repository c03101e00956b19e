//! Intrinsic functions evaluated as CloudFormation would for one local stack:
//! parameters (defaults and overrides), conditions, pseudo parameters with local values,
//! and the physical names and ARNs of the template's own resources.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine;

use super::{Resource, Template, TemplateError, TemplateValue};

/// How a template is deployed locally: the pseudo parameters' values and the
/// parameters' overrides (`--parameter-overrides Key=Value`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StackSettings {
    /// `AWS::StackName`, also the prefix of generated resource names
    /// (`{stack}-{LogicalId}`).
    pub stack_name: String,
    /// `AWS::Region`.
    pub region: String,
    /// `AWS::AccountId` (moto's default account, `123456789012`, unless set).
    pub account_id: String,
    /// Parameter values that replace the defaults.
    pub parameter_overrides: BTreeMap<String, String>,
}

impl StackSettings {
    /// A stack named `stack_name` in `us-east-1`, account `123456789012`, no overrides.
    pub fn new(stack_name: impl Into<String>) -> Self {
        StackSettings {
            stack_name: stack_name.into(),
            region: crate::config::LOCAL_REGION.to_owned(),
            account_id: LOCAL_ACCOUNT_ID.to_owned(),
            parameter_overrides: BTreeMap::new(),
        }
    }

    /// Sets a parameter's value.
    pub fn with_parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameter_overrides.insert(name.into(), value.into());
        self
    }

    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Parses `--parameter-overrides` items, `Key=Value` each (as `sam deploy` takes
    /// them; `ParameterKey=K,ParameterValue=V` too).
    ///
    /// ```
    /// use wsgw_aws::template::StackSettings;
    ///
    /// let settings = StackSettings::new("chat")
    ///     .with_overrides(["JwtSecret=0123456789abcdef0123456789abcdef", "StageName=dev"])
    ///     .unwrap();
    /// assert_eq!(settings.parameter_overrides["StageName"], "dev");
    /// assert!(StackSettings::new("chat").with_overrides(["no-equals-sign"]).is_err());
    /// ```
    pub fn with_overrides<I, S>(mut self, items: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for item in items {
            let item = item.as_ref();
            let (key, value) = if let Some(rest) = item.strip_prefix("ParameterKey=") {
                rest.split_once(",ParameterValue=").ok_or_else(|| {
                    format!("`{item}` is not ParameterKey=KEY,ParameterValue=VALUE")
                })?
            } else {
                item.split_once('=')
                    .ok_or_else(|| format!("`{item}` is not KEY=VALUE"))?
            };
            if key.is_empty() {
                return Err(format!("`{item}` names no parameter"));
            }
            self.parameter_overrides
                .insert(key.to_owned(), value.to_owned());
        }
        Ok(self)
    }
}

/// The account id of local stacks: moto's default account.
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";

/// Where in the template a value was found: the resource (or section) and the property
/// path, for errors.
#[derive(Debug, Clone)]
pub(super) struct At<'a> {
    pub(super) resource: &'a str,
    pub(super) property: String,
}

impl<'a> At<'a> {
    pub(super) fn new(resource: &'a str, property: impl Into<String>) -> Self {
        At {
            resource,
            property: property.into(),
        }
    }

    pub(super) fn child(&self, name: &str) -> At<'a> {
        let property = if self.property.is_empty() {
            name.to_owned()
        } else if name.starts_with('[') {
            format!("{}{name}", self.property)
        } else {
            format!("{}.{name}", self.property)
        };
        At {
            resource: self.resource,
            property,
        }
    }
}

/// Evaluates the template's values for one stack.
pub(super) struct Evaluator<'t> {
    pub(super) template: &'t Template,
    pub(super) settings: StackSettings,
    parameters: BTreeMap<String, TemplateValue>,
    conditions: std::cell::RefCell<BTreeMap<String, bool>>,
}

impl<'t> Evaluator<'t> {
    pub(super) fn new(
        template: &'t Template,
        settings: StackSettings,
    ) -> Result<Self, TemplateError> {
        let mut evaluator = Evaluator {
            template,
            settings,
            parameters: BTreeMap::new(),
            conditions: Default::default(),
        };
        for name in evaluator.settings.parameter_overrides.keys() {
            if !template.parameters().contains_key(name) {
                let known: Vec<&str> = template.parameters().keys().map(String::as_str).collect();
                return Err(evaluator.error(
                    &At::new("Parameters", name.as_str()),
                    format!(
                        "--parameter-overrides names a parameter the template does not declare (it declares {})",
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    ),
                ));
            }
        }
        let mut parameters = BTreeMap::new();
        for (name, declaration) in template.parameters() {
            parameters.insert(name.clone(), evaluator.parameter(name, declaration)?);
        }
        evaluator.parameters = parameters;
        Ok(evaluator)
    }

    pub(super) fn error(&self, at: &At<'_>, problem: impl Into<String>) -> TemplateError {
        TemplateError::Invalid {
            template: self.template.name().to_owned(),
            resource: at.resource.to_owned(),
            property: at.property.clone(),
            problem: problem.into(),
        }
    }

    /// A parameter's value: its override or its `Default`, checked against its
    /// constraints as CloudFormation checks them.
    fn parameter(
        &self,
        name: &str,
        declaration: &TemplateValue,
    ) -> Result<TemplateValue, TemplateError> {
        let at = At::new("Parameters", name);
        let field = |key: &str| match declaration {
            TemplateValue::Map(fields) => fields.get(key),
            _ => None,
        };
        let kind = field("Type")
            .and_then(TemplateValue::as_str)
            .unwrap_or("String");
        let text = match self.settings.parameter_overrides.get(name) {
            Some(value) => value.clone(),
            None => match field("Default") {
                Some(default) => scalar_text(default).ok_or_else(|| {
                    self.error(
                        &at.child("Default"),
                        format!("the default {default} is not a scalar"),
                    )
                })?,
                None => {
                    return Err(self.error(
                        &at,
                        format!("has no Default: pass --parameter-overrides {name}=VALUE"),
                    ))
                }
            },
        };
        let values: Vec<&str> = if kind.starts_with("List<") || kind == "CommaDelimitedList" {
            text.split(',').map(str::trim).collect()
        } else {
            vec![text.as_str()]
        };
        for value in &values {
            self.check_parameter(&at, kind, value, &field)?;
        }
        Ok(
            if kind.starts_with("List<") || kind == "CommaDelimitedList" {
                TemplateValue::List(
                    values
                        .into_iter()
                        .map(|value| TemplateValue::String(value.to_owned()))
                        .collect(),
                )
            } else {
                TemplateValue::String(text)
            },
        )
    }

    fn check_parameter<'f>(
        &self,
        at: &At<'_>,
        kind: &str,
        value: &str,
        field: &dyn Fn(&str) -> Option<&'f TemplateValue>,
    ) -> Result<(), TemplateError> {
        let is_number = kind == "Number" || kind == "List<Number>";
        if is_number && value.parse::<f64>().is_err() {
            return Err(self.error(at, format!("`{value}` is not a number (Type {kind})")));
        }
        if let Some(TemplateValue::List(allowed)) = field("AllowedValues") {
            let allowed: Vec<String> = allowed.iter().filter_map(scalar_text).collect();
            let matches = allowed.iter().any(|candidate| {
                candidate == value
                    || (is_number && candidate.parse::<f64>().ok() == value.parse::<f64>().ok())
            });
            if !matches {
                return Err(self.error(
                    at,
                    format!(
                        "`{value}` is not one of its AllowedValues ({})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        if let Some(pattern) = field("AllowedPattern").and_then(TemplateValue::as_str) {
            let anchored = format!("^(?:{pattern})$");
            let regex = regex::Regex::new(&anchored).map_err(|error| {
                self.error(
                    &at.child("AllowedPattern"),
                    format!("is not a regular expression: {error}"),
                )
            })?;
            if !regex.is_match(value) {
                let why = field("ConstraintDescription")
                    .and_then(TemplateValue::as_str)
                    .map_or_else(
                        || format!("does not match AllowedPattern {pattern}"),
                        |why| why.to_owned(),
                    );
                return Err(self.error(at, format!("the value given {why}")));
            }
        }
        let bound = |key: &str| {
            field(key)
                .and_then(scalar_text)
                .and_then(|text| text.parse::<f64>().ok())
        };
        if is_number {
            let number = value.parse::<f64>().unwrap_or_default();
            if let Some(min) = bound("MinValue").filter(|min| number < *min) {
                return Err(self.error(at, format!("{value} is below its MinValue {min}")));
            }
            if let Some(max) = bound("MaxValue").filter(|max| number > *max) {
                return Err(self.error(at, format!("{value} is above its MaxValue {max}")));
            }
        } else {
            let length = value.chars().count() as f64;
            if let Some(min) = bound("MinLength").filter(|min| length < *min) {
                return Err(self.error(at, format!("is shorter than its MinLength {min}")));
            }
            if let Some(max) = bound("MaxLength").filter(|max| length > *max) {
                return Err(self.error(at, format!("is longer than its MaxLength {max}")));
            }
        }
        Ok(())
    }

    /// A parameter's value, as resolved.
    pub(super) fn parameter_value(&self, name: &str) -> Option<&TemplateValue> {
        self.parameters.get(name)
    }

    /// Whether a named condition holds.
    pub(super) fn condition(&self, name: &str, at: &At<'_>) -> Result<bool, TemplateError> {
        self.condition_nested(name, at, 0)
    }

    fn condition_nested(
        &self,
        name: &str,
        at: &At<'_>,
        depth: usize,
    ) -> Result<bool, TemplateError> {
        if let Some(value) = self.conditions.borrow().get(name) {
            return Ok(*value);
        }
        if depth > 32 {
            return Err(self.error(at, format!("condition {name} refers to itself")));
        }
        let Some(definition) = self.template.conditions().get(name) else {
            return Err(self.error(at, format!("no condition named {name} in Conditions")));
        };
        let value = self.truth(definition, &At::new("Conditions", name), depth + 1)?;
        self.conditions.borrow_mut().insert(name.to_owned(), value);
        Ok(value)
    }

    /// A condition function's value (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`,
    /// `Condition`).
    fn truth(
        &self,
        value: &TemplateValue,
        at: &At<'_>,
        depth: usize,
    ) -> Result<bool, TemplateError> {
        let TemplateValue::Intrinsic(intrinsic) = value else {
            return match value {
                TemplateValue::Bool(value) => Ok(*value),
                TemplateValue::String(text) if text == "true" || text == "false" => {
                    Ok(text == "true")
                }
                other => Err(self.error(at, format!("{other} is not a condition function"))),
            };
        };
        let arguments = |count: Option<usize>| -> Result<&Vec<TemplateValue>, TemplateError> {
            match &intrinsic.argument {
                TemplateValue::List(items) if count.is_none_or(|count| items.len() == count) => {
                    Ok(items)
                }
                other => Err(self.error(
                    at,
                    format!(
                        "!{} takes a list{}, not {other}",
                        short(&intrinsic.function),
                        count.map(|c| format!(" of {c}")).unwrap_or_default()
                    ),
                )),
            }
        };
        match intrinsic.function.as_str() {
            "Condition" => {
                let name = intrinsic
                    .argument
                    .as_str()
                    .ok_or_else(|| self.error(at, "Condition takes the name of a condition"))?;
                self.condition_nested(name, at, depth + 1)
            }
            "Fn::Equals" => {
                let items = arguments(Some(2))?;
                let left = self.evaluate(&items[0], &at.child("[0]"))?;
                let right = self.evaluate(&items[1], &at.child("[1]"))?;
                // CloudFormation compares scalars as text: `!Equals [!Ref Days, 14]`.
                Ok(
                    match (
                        left.as_ref().and_then(scalar_text),
                        right.as_ref().and_then(scalar_text),
                    ) {
                        (Some(left), Some(right)) => left == right,
                        _ => left == right,
                    },
                )
            }
            "Fn::Not" => {
                let items = arguments(Some(1))?;
                Ok(!self.truth(&items[0], &at.child("[0]"), depth + 1)?)
            }
            "Fn::And" | "Fn::Or" => {
                let items = arguments(None)?;
                let mut results = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    results.push(self.truth(item, &at.child(&format!("[{index}]")), depth + 1)?);
                }
                Ok(if intrinsic.function == "Fn::And" {
                    results.iter().all(|value| *value)
                } else {
                    results.iter().any(|value| *value)
                })
            }
            other => Err(self.error(at, format!("!{} is not a condition function", short(other)))),
        }
    }

    /// Whether a resource exists in this stack (its `Condition` holds, or it has none).
    pub(super) fn exists(&self, resource: &Resource) -> Result<bool, TemplateError> {
        match &resource.condition {
            None => Ok(true),
            Some(name) => self.condition(name, &At::new(&resource.logical_id, "Condition")),
        }
    }

    /// A value with every intrinsic function evaluated; `None` for `AWS::NoValue`.
    pub(super) fn evaluate(
        &self,
        value: &TemplateValue,
        at: &At<'_>,
    ) -> Result<Option<TemplateValue>, TemplateError> {
        match value {
            TemplateValue::List(items) => {
                let mut evaluated = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    if let Some(item) = self.evaluate(item, &at.child(&format!("[{index}]")))? {
                        evaluated.push(item);
                    }
                }
                Ok(Some(TemplateValue::List(evaluated)))
            }
            TemplateValue::Map(entries) => {
                let mut evaluated = BTreeMap::new();
                for (key, item) in entries {
                    if let Some(item) = self.evaluate(item, &at.child(key))? {
                        evaluated.insert(key.clone(), item);
                    }
                }
                Ok(Some(TemplateValue::Map(evaluated)))
            }
            TemplateValue::Intrinsic(intrinsic) => {
                self.intrinsic(&intrinsic.function, &intrinsic.argument, at)
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// A value that must be there (not `AWS::NoValue`).
    pub(super) fn required(
        &self,
        value: &TemplateValue,
        at: &At<'_>,
    ) -> Result<TemplateValue, TemplateError> {
        self.evaluate(value, at)?
            .ok_or_else(|| self.error(at, "is AWS::NoValue where a value is required"))
    }

    /// A value that must be a string (numbers and booleans are written as text).
    pub(super) fn string(
        &self,
        value: &TemplateValue,
        at: &At<'_>,
    ) -> Result<String, TemplateError> {
        let evaluated = self.required(value, at)?;
        scalar_text(&evaluated)
            .ok_or_else(|| self.error(at, format!("is {evaluated}, not a string")))
    }

    fn intrinsic(
        &self,
        function: &str,
        argument: &TemplateValue,
        at: &At<'_>,
    ) -> Result<Option<TemplateValue>, TemplateError> {
        let list = |count: usize| -> Result<&Vec<TemplateValue>, TemplateError> {
            match argument {
                TemplateValue::List(items) if items.len() == count => Ok(items),
                other => Err(self.error(
                    at,
                    format!("!{} takes a list of {count}, not {other}", short(function)),
                )),
            }
        };
        match function {
            "Ref" => {
                let name = argument
                    .as_str()
                    .ok_or_else(|| self.error(at, format!("!Ref takes a name, not {argument}")))?;
                self.reference(name, at)
            }
            "Fn::GetAtt" => {
                let items = match argument {
                    TemplateValue::List(items) if items.len() == 2 => items,
                    other => return Err(self.error(at, format!("!GetAtt takes Resource.Attribute, not {other}"))),
                };
                let resource = self.string(&items[0], at)?;
                let attribute = self.string(&items[1], at)?;
                self.attribute(&resource, &attribute, at).map(Some)
            }
            "Fn::Sub" => {
                let (text, variables) = match argument {
                    TemplateValue::String(text) => (text.clone(), BTreeMap::new()),
                    TemplateValue::List(items) if items.len() == 2 => {
                        let text = self.string(&items[0], &at.child("[0]"))?;
                        let variables = match self.required(&items[1], &at.child("[1]"))? {
                            TemplateValue::Map(variables) => variables,
                            other => return Err(self.error(at, format!("!Sub's variables must be a mapping, not {other}"))),
                        };
                        (text, variables)
                    }
                    other => return Err(self.error(at, format!("!Sub takes a string or [string, variables], not {other}"))),
                };
                self.substitute(&text, &variables, at).map(|text| Some(TemplateValue::String(text)))
            }
            "Fn::If" => {
                let items = list(3)?;
                let condition = items[0]
                    .as_str()
                    .ok_or_else(|| self.error(at, format!("!If's first item must name a condition, not {}", items[0])))?;
                if self.condition(condition, at)? {
                    self.evaluate(&items[1], &at.child("[1]"))
                } else {
                    self.evaluate(&items[2], &at.child("[2]"))
                }
            }
            "Fn::Join" => {
                let items = list(2)?;
                let delimiter = self.string(&items[0], at)?;
                let parts = match self.required(&items[1], &at.child("[1]"))? {
                    TemplateValue::List(parts) => parts,
                    other => return Err(self.error(at, format!("!Join's second item must be a list, not {other}"))),
                };
                let parts = parts
                    .iter()
                    .map(|part| scalar_text(part).ok_or_else(|| self.error(at, format!("!Join cannot join {part}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(TemplateValue::String(parts.join(&delimiter))))
            }
            "Fn::Select" => {
                let items = list(2)?;
                let index = self.string(&items[0], at)?;
                let index: usize = index
                    .trim()
                    .parse()
                    .map_err(|_| self.error(at, format!("!Select's index `{index}` is not a number")))?;
                match self.required(&items[1], &at.child("[1]"))? {
                    TemplateValue::List(mut options) if index < options.len() => Ok(Some(options.swap_remove(index))),
                    TemplateValue::List(options) => Err(self.error(at, format!("!Select index {index} is out of range of a list of {}", options.len()))),
                    other => Err(self.error(at, format!("!Select's second item must be a list, not {other}"))),
                }
            }
            "Fn::Split" => {
                let items = list(2)?;
                let delimiter = self.string(&items[0], at)?;
                let text = self.string(&items[1], at)?;
                if delimiter.is_empty() {
                    return Err(self.error(at, "!Split's delimiter is empty"));
                }
                Ok(Some(TemplateValue::List(text.split(delimiter.as_str()).map(|part| TemplateValue::String(part.to_owned())).collect())))
            }
            "Fn::FindInMap" => {
                let items = list(3)?;
                let map = self.string(&items[0], at)?;
                let first = self.string(&items[1], at)?;
                let second = self.string(&items[2], at)?;
                let found = match self.template.mappings().get(&map) {
                    None => return Err(self.error(at, format!("!FindInMap: no mapping {map} in Mappings"))),
                    Some(TemplateValue::Map(keys)) => keys.get(&first),
                    Some(_) => None,
                };
                let found = match found {
                    Some(TemplateValue::Map(values)) => values.get(&second),
                    _ => return Err(self.error(at, format!("!FindInMap: mapping {map} has no key {first}"))),
                };
                found
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| self.error(at, format!("!FindInMap: mapping {map}.{first} has no key {second}")))
            }
            "Fn::Base64" => {
                let text = self.string(argument, at)?;
                Ok(Some(TemplateValue::String(base64::engine::general_purpose::STANDARD.encode(text))))
            }
            "Fn::GetAZs" => {
                let region = &self.settings.region;
                Ok(Some(TemplateValue::List(["a", "b", "c"].iter().map(|zone| TemplateValue::String(format!("{region}{zone}"))).collect())))
            }
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" | "Condition" => {
                let value = TemplateValue::Intrinsic(Box::new(super::Intrinsic {
                    function: function.to_owned(),
                    argument: argument.clone(),
                }));
                self.truth(&value, at, 0).map(|truth| Some(TemplateValue::Bool(truth)))
            }
            other => Err(self.error(
                at,
                format!(
                    "!{} is not supported locally (supported: !Ref, !GetAtt, !Sub, !If, !Join, !Select, !Split, !FindInMap, !Base64, !GetAZs, !Equals, !Not, !And, !Or)",
                    short(other)
                ),
            )),
        }
    }

    /// `Ref`: a parameter, a pseudo parameter, or a resource's physical id.
    fn reference(&self, name: &str, at: &At<'_>) -> Result<Option<TemplateValue>, TemplateError> {
        let settings = &self.settings;
        let text = |value: String| Ok(Some(TemplateValue::String(value)));
        match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::Region" => return text(settings.region.clone()),
            "AWS::AccountId" => return text(settings.account_id.clone()),
            "AWS::StackName" => return text(settings.stack_name.clone()),
            "AWS::StackId" => {
                return text(format!(
                    "arn:aws:cloudformation:{}:{}:stack/{}/{}",
                    settings.region,
                    settings.account_id,
                    settings.stack_name,
                    short_id(&settings.stack_name, "stack", 32)
                ))
            }
            "AWS::Partition" => return text("aws".to_owned()),
            "AWS::URLSuffix" => return text("amazonaws.com".to_owned()),
            "AWS::NotificationARNs" => return Ok(Some(TemplateValue::List(Vec::new()))),
            _ => {}
        }
        if let Some(value) = self.parameter_value(name) {
            return Ok(Some(value.clone()));
        }
        let resource = self.present_resource(name, at)?;
        self.physical_id(resource, at)
            .map(|id| Some(TemplateValue::String(id)))
    }

    /// The resource of a logical id, which must exist in this stack.
    fn present_resource(
        &self,
        logical_id: &str,
        at: &At<'_>,
    ) -> Result<&'t Resource, TemplateError> {
        let Some(resource) = self.template.resource(logical_id) else {
            return Err(self.error(at, format!("refers to {logical_id}, which is neither a parameter nor a resource of the template")));
        };
        if !self.exists(resource)? {
            return Err(self.error(
                at,
                format!(
                    "refers to {logical_id}, which is not created: its Condition {} is false",
                    resource.condition.as_deref().unwrap_or_default()
                ),
            ));
        }
        Ok(resource)
    }

    /// A property that names a resource (`TableName`, `FunctionName` …), or the name
    /// CloudFormation would make up, `{stack}-{LogicalId}` (without its random suffix, so
    /// a local stack finds its resources again on the next run).
    fn name_of(
        &self,
        resource: &Resource,
        property: &str,
        at: &At<'_>,
    ) -> Result<String, TemplateError> {
        match resource.property(property) {
            Some(value) => self.string(value, &At::new(&resource.logical_id, property)),
            None => {
                let _ = at;
                Ok(format!(
                    "{}-{}",
                    self.settings.stack_name, resource.logical_id
                ))
            }
        }
    }

    /// What `!Ref` of a resource returns.
    pub(super) fn physical_id(
        &self,
        resource: &Resource,
        at: &At<'_>,
    ) -> Result<String, TemplateError> {
        let logical = &resource.logical_id;
        Ok(match resource.resource_type.as_str() {
            "AWS::DynamoDB::Table" => self.name_of(resource, "TableName", at)?,
            "AWS::Serverless::SimpleTable" => self.name_of(resource, "TableName", at)?,
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
                self.name_of(resource, "FunctionName", at)?
            }
            "AWS::IAM::Role" => self.name_of(resource, "RoleName", at)?,
            "AWS::Logs::LogGroup" => match resource.property("LogGroupName") {
                Some(value) => self.string(value, &At::new(logical, "LogGroupName"))?,
                None => format!("/aws/{}/{logical}", self.settings.stack_name),
            },
            "AWS::ApiGatewayV2::Api" | "AWS::Serverless::Api" | "AWS::Serverless::HttpApi" => {
                short_id(&self.settings.stack_name, logical, 10)
            }
            "AWS::ApiGatewayV2::Stage" => match resource.property("StageName") {
                Some(value) => self.string(value, &At::new(logical, "StageName"))?,
                None => logical.clone(),
            },
            _ => short_id(&self.settings.stack_name, logical, 7),
        })
    }

    /// `Fn::GetAtt`.
    fn attribute(
        &self,
        logical_id: &str,
        attribute: &str,
        at: &At<'_>,
    ) -> Result<TemplateValue, TemplateError> {
        let resource = self.present_resource(logical_id, at)?;
        let settings = &self.settings;
        let (region, account) = (&settings.region, &settings.account_id);
        let id = || self.physical_id(resource, at);
        let value = match (resource.resource_type.as_str(), attribute) {
            ("AWS::DynamoDB::Table" | "AWS::Serverless::SimpleTable", "Arn") => {
                format!("arn:aws:dynamodb:{region}:{account}:table/{}", id()?)
            }
            ("AWS::DynamoDB::Table", "StreamArn") => {
                format!("arn:aws:dynamodb:{region}:{account}:table/{}/stream/1970-01-01T00:00:00.000", id()?)
            }
            ("AWS::Serverless::Function" | "AWS::Lambda::Function", "Arn") => {
                format!("arn:aws:lambda:{region}:{account}:function:{}", id()?)
            }
            ("AWS::IAM::Role", "Arn") => format!("arn:aws:iam::{account}:role/{}", id()?),
            ("AWS::IAM::Role", "RoleId") => short_id(&settings.stack_name, logical_id, 21).to_uppercase(),
            ("AWS::Logs::LogGroup", "Arn") => format!("arn:aws:logs:{region}:{account}:log-group:{}:*", id()?),
            ("AWS::ApiGatewayV2::Api", "ApiId") => id()?,
            ("AWS::ApiGatewayV2::Api", "ApiEndpoint") => format!("wss://{}.execute-api.{region}.amazonaws.com", id()?),
            ("AWS::ApiGatewayV2::Authorizer", "AuthorizerId")
            | ("AWS::ApiGatewayV2::Integration", "IntegrationId")
            | ("AWS::ApiGatewayV2::Route", "RouteId")
            | ("AWS::ApiGatewayV2::RouteResponse", "RouteResponseId")
            | ("AWS::ApiGatewayV2::Deployment", "DeploymentId") => id()?,
            (resource_type, attribute) => {
                return Err(self.error(
                    at,
                    format!("!GetAtt {logical_id}.{attribute}: attribute {attribute} of {resource_type} is not available locally"),
                ))
            }
        };
        Ok(TemplateValue::String(value))
    }

    /// `Fn::Sub`'s template string with `${Name}`, `${Resource.Attribute}` and `${!Literal}`.
    fn substitute(
        &self,
        text: &str,
        variables: &BTreeMap<String, TemplateValue>,
        at: &At<'_>,
    ) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(self.error(at, format!("!Sub has an unclosed ${{ in `{text}`")));
            };
            let name = after[..end].trim();
            if let Some(literal) = name.strip_prefix('!') {
                let _ = write!(out, "${{{literal}}}");
            } else if let Some(value) = variables.get(name) {
                let value = self.string(value, at)?;
                out.push_str(&value);
            } else if let Some((resource, attribute)) = name.split_once('.') {
                let value = self.attribute(resource, attribute, at)?;
                out.push_str(&scalar_text(&value).unwrap_or_default());
            } else {
                match self.reference(name, at)? {
                    Some(value) => match scalar_text(&value) {
                        Some(value) => out.push_str(&value),
                        None => {
                            return Err(self.error(
                                at,
                                format!("!Sub cannot put ${{{name}}}, a list, in a string"),
                            ))
                        }
                    },
                    None => {
                        return Err(self.error(
                            at,
                            format!("!Sub cannot put ${{{name}}} (AWS::NoValue) in a string"),
                        ))
                    }
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A scalar's text: strings as they are, numbers and booleans as written.
pub(super) fn scalar_text(value: &TemplateValue) -> Option<String> {
    match value {
        TemplateValue::String(text) => Some(text.clone()),
        TemplateValue::Number(number) => Some(number.to_string()),
        TemplateValue::Bool(value) => Some(value.to_string()),
        _ => None,
    }
}

/// `Fn::Sub` → `Sub`, for messages.
fn short(function: &str) -> &str {
    function.strip_prefix("Fn::").unwrap_or(function)
}

/// A stable id of `len` lower-case letters and digits for a resource of a stack (API
/// Gateway's api ids are 10 such characters, its route and integration ids 7): the same
/// on every run, so names derived from it stay put.
pub(super) fn short_id(stack: &str, logical_id: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    // FNV-1a, then a xorshift stream: no cryptography needed, only stability.
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in stack.bytes().chain([0]).chain(logical_id.bytes()) {
        state ^= u64::from(byte);
        state = state.wrapping_mul(0x0100_0000_01b3);
    }
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}
