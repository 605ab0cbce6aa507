//! Label selectors: the query-string grammar (`app=web,tier!=db,env in (a,b),!key`) and
//! `metav1.LabelSelector` JSON, with apimachinery's matching and `String()` rendering.

use std::fmt;

use serde_json::{Map, Value};

use super::validate::{invalid, label_value_errors, qualified_name_errors};
use super::SelectorError;

/// A requirement operator (`selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One `key op values` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

impl Requirement {
    /// `labels.NewRequirement`: validates the key, the value count for the operator, and each value.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, String> {
        let key_errs = qualified_name_errors(key);
        if !key_errs.is_empty() {
            return Err(invalid("key", key, &key_errs));
        }
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                return Err("values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty".into());
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                return Err(format!(
                    "values: Invalid value: {}: exact-match compatibility requires one single value",
                    Value::from(values.clone())
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                return Err(format!(
                    "values: Invalid value: {}: values set must be empty for exists and does not exist",
                    Value::from(values.clone())
                ));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    return Err(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        Value::from(values.clone())
                    ));
                }
                if values[0].parse::<i64>().is_err() {
                    return Err(format!(
                        "values[0]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                        Value::from(values[0].clone())
                    ));
                }
            }
            _ => {}
        }
        if !matches!(operator, Operator::GreaterThan | Operator::LessThan) {
            for (i, v) in values.iter().enumerate() {
                let errs = label_value_errors(v);
                if !errs.is_empty() {
                    return Err(invalid(&format!("values[{i}][{key}]"), v, &errs));
                }
            }
        }
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        })
    }

    /// Whether a label set satisfies this requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let value = labels.get(&self.key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                value.is_some_and(|v| self.values.contains(&v))
            }
            Operator::NotEquals | Operator::NotIn => {
                value.is_none_or(|v| !self.values.contains(&v))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(want)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|w| w.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    v > want
                } else {
                    v < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        let mut vals = self.values.clone();
        vals.sort();
        f.write_str(&vals.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector. The empty selector matches everything; [`LabelSelector::nothing`]
/// (what a `null` `metav1.LabelSelector` means) matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Identifier(String),
    DoesNotExist,
    Equals,
    DoubleEquals,
    NotEquals,
    OpenPar,
    ClosedPar,
    Comma,
    GreaterThan,
    LessThan,
    End,
}

impl Token {
    fn literal(&self) -> String {
        match self {
            Token::Identifier(s) => s.clone(),
            Token::DoesNotExist => "!".into(),
            Token::Equals => "=".into(),
            Token::DoubleEquals => "==".into(),
            Token::NotEquals => "!=".into(),
            Token::OpenPar => "(".into(),
            Token::ClosedPar => ")".into(),
            Token::Comma => ",".into(),
            Token::GreaterThan => ">".into(),
            Token::LessThan => "<".into(),
            Token::End => String::new(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(s: &str) -> Vec<Token> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if is_special(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (tok, len) = match two.as_str() {
                "==" => (Token::DoubleEquals, 2),
                "!=" => (Token::NotEquals, 2),
                _ => (
                    match c {
                        '=' => Token::Equals,
                        '!' => Token::DoesNotExist,
                        '(' => Token::OpenPar,
                        ')' => Token::ClosedPar,
                        ',' => Token::Comma,
                        '>' => Token::GreaterThan,
                        _ => Token::LessThan,
                    },
                    1,
                ),
            };
            out.push(tok);
            i += len;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // "in"/"notin" are keywords only where an operator is expected (see `requirement`).
            out.push(Token::Identifier(word));
        }
    }
    out.push(Token::End);
    out
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut reqs = Vec::new();
        loop {
            match self.peek() {
                Token::End => return Ok(reqs),
                Token::Identifier(_) | Token::DoesNotExist => {
                    let r = self.requirement().map_err(SelectorError::Requirement)?;
                    reqs.push(r);
                    match self.next() {
                        Token::End => return Ok(reqs),
                        Token::Comma => {
                            if !matches!(self.peek(), Token::Identifier(_) | Token::DoesNotExist) {
                                return Err(SelectorError::Syntax(format!(
                                    "found '{}', expected: identifier after ','",
                                    self.peek().literal()
                                )));
                            }
                        }
                        t => {
                            return Err(SelectorError::Syntax(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            )))
                        }
                    }
                }
                t => {
                    return Err(SelectorError::Syntax(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    )))
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let mut operator = None;
        let mut tok = self.next();
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            tok = self.next();
            if !matches!(tok, Token::Identifier(_)) {
                return Err(format!(
                    "found '{}', expected: identifier after '!'",
                    tok.literal()
                ));
            }
        }
        let Token::Identifier(key) = tok else {
            return Err(format!("found '{}', expected: identifier", tok.literal()));
        };
        let key_errs = qualified_name_errors(&key);
        if !key_errs.is_empty() {
            return Err(invalid("key", &key, &key_errs));
        }
        if matches!(self.peek(), Token::End | Token::Comma) {
            let op = operator.unwrap_or(Operator::Exists);
            return Requirement::new(&key, op, Vec::new());
        }
        if operator.is_some() {
            return Err(format!(
                "found '{}', expected: ',' or 'end of string'",
                self.peek().literal()
            ));
        }
        let op = match self.next() {
            Token::Identifier(w) if w == "in" => Operator::In,
            Token::Identifier(w) if w == "notin" => Operator::NotIn,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            t => {
                return Err(format!(
                    "found '{}', expected: '=', '!=', '==', 'in', notin'",
                    t.literal()
                ))
            }
        };
        let values = if matches!(op, Operator::In | Operator::NotIn) {
            self.values()?
        } else {
            self.exact_value()?
        };
        Requirement::new(&key, op, values)
    }

    fn values(&mut self) -> Result<Vec<String>, String> {
        let t = self.next();
        if t != Token::OpenPar {
            return Err(format!("found '{}' expected: '('", t.literal()));
        }
        let mut set: Vec<String> = Vec::new();
        match self.peek().clone() {
            Token::ClosedPar => {
                self.next();
                return Ok(vec![String::new()]);
            }
            Token::Identifier(_) | Token::Comma => {}
            t => {
                return Err(format!(
                    "found '{}', expected: ',', ')' or identifier",
                    t.literal()
                ))
            }
        }
        // parseIdentifiersList: "(," ",," and ",)" contribute the empty value.
        loop {
            match self.next() {
                Token::Identifier(v) => {
                    set.push(v);
                    match self.peek() {
                        Token::Comma => continue,
                        Token::ClosedPar => break,
                        t => return Err(format!("found '{}', expected: ',' or ')'", t.literal())),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.push(String::new());
                    }
                    match self.peek() {
                        Token::ClosedPar => {
                            set.push(String::new());
                            break;
                        }
                        Token::Comma => {
                            self.next();
                            set.push(String::new());
                        }
                        _ => {}
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',' or identifiers",
                        t.literal()
                    ))
                }
            }
        }
        let t = self.next();
        if t != Token::ClosedPar {
            return Err(format!("found '{}', expected: ')'", t.literal()));
        }
        set.sort();
        set.dedup();
        Ok(set)
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        match self.peek().clone() {
            Token::End | Token::Comma => Ok(vec![String::new()]),
            Token::Identifier(v) => {
                self.next();
                Ok(vec![v])
            }
            t => Err(format!("found '{}', expected: identifier", t.literal())),
        }
    }
}

impl LabelSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// The selector that matches nothing (a `null` `metav1.LabelSelector`).
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the query-string syntax (`labels.Parse`).
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut p = Parser {
            tokens: lex(s),
            pos: 0,
        };
        let mut requirements = p.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Converts a `metav1.LabelSelector` (`metav1.LabelSelectorAsSelector`). `null` matches nothing;
    /// `{}` matches everything.
    pub fn from_json(v: &Value) -> Result<Self, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(Self::nothing()),
            Value::Object(o) => o,
            _ => {
                return Err(SelectorError::Invalid(
                    "label selector must be an object".into(),
                ))
            }
        };
        let mut requirements = Vec::new();
        if let Some(ml) = obj.get("matchLabels").filter(|v| !v.is_null()) {
            let ml = ml
                .as_object()
                .ok_or_else(|| SelectorError::Invalid("matchLabels must be an object".into()))?;
            for (k, val) in ml {
                let val = val.as_str().ok_or_else(|| {
                    SelectorError::Invalid(format!("matchLabels[{k}] must be a string"))
                })?;
                requirements.push(
                    Requirement::new(k, Operator::Equals, vec![val.to_string()])
                        .map_err(SelectorError::Invalid)?,
                );
            }
        }
        if let Some(me) = obj.get("matchExpressions").filter(|v| !v.is_null()) {
            let me = me
                .as_array()
                .ok_or_else(|| SelectorError::Invalid("matchExpressions must be a list".into()))?;
            for expr in me {
                let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
                let op_s = expr
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let op = match op_s {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    other => {
                        return Err(SelectorError::Invalid(format!(
                            "{} is not a valid label selector operator",
                            Value::from(other)
                        )))
                    }
                };
                let values: Vec<String> = expr
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                requirements
                    .push(Requirement::new(key, op, values).map_err(SelectorError::Invalid)?);
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Whether the selector has no requirements (matches everything).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether a label map satisfies every requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches an object's `metadata.labels` (absent labels are the empty set).
    pub fn matches_object(&self, obj: &Value) -> bool {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let labels = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new));
        self.matches(labels)
    }
}

/// Renders like `labels.Selector.String()`: requirements sorted by key, comma-joined;
/// "" for both everything and nothing.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn parse_and_render() {
        let cases = [
            ("", ""),
            ("app=web", "app=web"),
            ("app==web", "app==web"),
            ("app = web", "app=web"),
            ("tier!=db,app=web", "app=web,tier!=db"),
            ("env in (b,a)", "env in (a,b)"),
            ("env notin (c)", "env notin (c)"),
            ("key", "key"),
            ("!key", "!key"),
            (
                "app=web,tier!=db,env in (a,b),env notin (c),key,!other",
                "app=web,env in (a,b),env notin (c),key,!other,tier!=db",
            ),
            ("app.kubernetes.io/name=x", "app.kubernetes.io/name=x"),
            ("x=", "x="),
            ("n>3", "n>3"),
            ("n<3", "n<3"),
            ("env in (a,,b)", "env in (,a,b)"),
            ("env in ()", "env in ()"),
            ("in in (in,notin)", "in in (in,notin)"),
        ];
        for (input, want) in cases {
            let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(sel.to_string(), want, "{input}");
        }
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("app=web,", "found '', expected: identifier after ','"),
            ("=web", "found '=', expected: !, identifier, or 'end of string'"),
            ("env in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
            ("env in a", "unable to parse requirement: found 'a' expected: '('"),
            ("!key=v", "unable to parse requirement: found '=', expected: ',' or 'end of string'"),
            ("!", "unable to parse requirement: found '', expected: identifier after '!'"),
            ("app web", "unable to parse requirement: found 'web', expected: '=', '!=', '==', 'in', notin'"),
            ("app=a b", "found 'b', expected: ',' or 'end of string'"),
            ("n>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"),
        ];
        for (input, want) in cases {
            let err = LabelSelector::parse(input).expect_err(input);
            assert_eq!(err.to_string(), want, "{input}");
        }
        for bad in ["-app=x", "app=-x", "app=a/b", "a/b/c=x", "env in (a b)"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("env notin (a)", true),
            ("tier in (front,back)", true),
            ("tier in (back)", false),
            ("tier notin (front)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("missing", false),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("n>4", true),
            ("n>5", false),
            ("n<6", true),
            ("app>1", false),
        ];
        for (sel, want) in cases {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&l),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn from_json_cases() {
        let l = labels(json!({"app": "web", "env": "prod"}));
        let sel = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "stage"]},
                {"key": "gone", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert!(sel.matches(&l));
        assert_eq!(sel.to_string(), "app=web,env in (prod,stage),!gone");

        assert!(LabelSelector::from_json(&json!({})).unwrap().is_empty());
        assert!(LabelSelector::from_json(&json!({})).unwrap().matches(&l));
        let nothing = LabelSelector::from_json(&Value::Null).unwrap();
        assert!(!nothing.is_empty());
        assert!(!nothing.matches(&l));

        let err = LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"Bogus\" is not a valid label selector operator"
        );
        assert!(LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
        )
        .is_err());
        assert!(LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})
        )
        .is_err());
        assert!(LabelSelector::from_json(&json!({"matchLabels": {"a": "b c"}})).is_err());
    }
}
