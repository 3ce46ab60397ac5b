//! A setting's value read as the SDK reads it: a `spec.config` value against the field's type, an
//! environment variable's text with Go's parsing, and the schema's rules on the result
//! (`reference/connector-config.md` sections 2 and 3).

use serde_json::Value;

use super::model::{Field, FieldType, Plain};

/// `spec.config` `value` as the field's type, or why it is not one.
pub fn from_config(field: &Field, value: &Value) -> Result<Plain, String> {
    let got = describe(value);
    let want = match field.kind {
        FieldType::String => "a string",
        FieldType::Bool => "true or false",
        FieldType::Int => "an integer",
        FieldType::StringSlice => "a list of strings",
        FieldType::StringMap => "an object of strings",
    };
    let plain = match (field.kind, value) {
        (FieldType::String, Value::String(s)) => Some(Plain::String(s.clone())),
        (FieldType::Bool, Value::Bool(b)) => Some(Plain::Bool(*b)),
        (FieldType::Int, Value::Number(n)) => n.as_i64().map(Plain::Int),
        (FieldType::StringSlice, Value::Array(items)) => {
            items.iter().map(|i| i.as_str().map(str::to_string)).collect::<Option<_>>().map(Plain::List)
        }
        (FieldType::StringMap, Value::Object(map)) => map
            .iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect::<Option<_>>()
            .map(Plain::Map),
        _ => None,
    };
    plain.ok_or_else(|| {
        let hint = match (field.kind, value) {
            (FieldType::String, Value::Number(_) | Value::Bool(_)) => " (quote it to make it a string)",
            (FieldType::Bool | FieldType::Int, Value::String(_)) => " (write it without quotes)",
            (FieldType::StringSlice, Value::String(_)) => " (write a YAML list: [a, b])",
            _ => "",
        };
        format!("expects {want}, got {got}{hint}")
    })
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list (of something other than strings)",
        Value::Object(_) => "an object",
    }
}

/// An environment variable's text as the field's type. `Ok(None)`: empty, which the SDK treats as
/// unset. Struct-config connectors refuse a bad bool or int at startup, the others read zero: both
/// are wrong, so both are errors here.
pub fn from_env(field: &Field, text: &str) -> Result<Option<Plain>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    Ok(Some(match field.kind {
        FieldType::String => Plain::String(text.to_string()),
        FieldType::Bool => Plain::Bool(go_bool(text).ok_or_else(|| {
            format!(
                "{text:?} is not a bool the SDK reads (true, false, 1, 0, t, f, TRUE, FALSE, True, False)"
            )
        })?),
        FieldType::Int => Plain::Int(go_int(text).ok_or_else(|| format!("{text:?} is not an integer"))?),
        FieldType::StringSlice => Plain::List(text.split(',').map(str::to_string).collect()),
        FieldType::StringMap => {
            let map: serde_json::Map<String, Value> = serde_json::from_str(text)
                .map_err(|_| "the SDK reads a map as a JSON object, such as {\"k\":\"v\"}".to_string())?;
            Plain::Map(
                map.into_iter().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string())).collect(),
            )
        }
    }))
}

/// Go's `strconv.ParseBool` spellings.
pub fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's integer literal syntax (`strconv.ParseInt(s, 0, 64)`): a sign, `0x`/`0o`/`0b` or a leading
/// `0` for octal, and `_` between digits.
pub fn go_int(s: &str) -> Option<i64> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let magnitude = i128::from_str_radix(&digits.replace('_', ""), radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// The schema's rules on a known value; every failure, as the SDK collects them. A zero value
/// skips every rule but `isRequired` unless `validateEmpty` (the SDK's own rule).
pub fn rule_failures(field: &Field, value: &Plain) -> Vec<String> {
    let r = &field.rules;
    if value.is_zero() && !r.validate_empty {
        return Vec::new();
    }
    let mut out = Vec::new();
    match value {
        Plain::String(s) => string_rules(field, s, &mut out),
        Plain::Int(i) => {
            let checks = [
                (r.lt.is_some_and(|b| *i >= b), "less than", r.lt),
                (r.lte.is_some_and(|b| *i > b), "less than or equal to", r.lte),
                (r.gt.is_some_and(|b| *i <= b), "greater than", r.gt),
                (r.gte.is_some_and(|b| *i < b), "greater than or equal to", r.gte),
            ];
            for (failed, what, bound) in checks {
                if failed {
                    out.push(format!("value must be {what} {} but got {i}", bound.unwrap_or_default()));
                }
            }
            if !r.int_in.is_empty() && !r.int_in.contains(i) {
                out.push(format!("value must be one of {:?} but got {i}", r.int_in));
            }
        }
        Plain::List(items) => {
            let n = items.len() as u64;
            if r.min_items.is_some_and(|m| n < m) {
                out.push(format!(
                    "value must have at least {} items but got {n}",
                    r.min_items.unwrap_or_default()
                ));
            }
            if r.max_items.is_some_and(|m| n > m) {
                out.push(format!(
                    "value must have at most {} items but got {n}",
                    r.max_items.unwrap_or_default()
                ));
            }
            if r.unique {
                let mut seen = std::collections::BTreeSet::new();
                if let Some(dup) = items.iter().find(|i| !seen.insert(*i)) {
                    out.push(format!("value must not contain duplicate items but got multiple {dup:?}"));
                }
            }
        }
        Plain::Bool(_) | Plain::Map(_) => {}
    }
    out
}

fn string_rules(field: &Field, s: &str, out: &mut Vec<String>) {
    let r = &field.rules;
    // The SDK counts bytes.
    let len = s.len() as u64;
    if r.min_len.is_some_and(|m| len < m) {
        out.push(format!(
            "value must be at least {} characters long but got {len}",
            r.min_len.unwrap_or_default()
        ));
    }
    if r.max_len.is_some_and(|m| len > m) {
        out.push(format!(
            "value must be at most {} characters long but got {len}",
            r.max_len.unwrap_or_default()
        ));
    }
    if let Some(p) = r.prefix.as_ref().filter(|p| !s.starts_with(p.as_str())) {
        out.push(format!("value must have prefix {p:?}"));
    }
    if let Some(p) = r.suffix.as_ref().filter(|p| !s.ends_with(p.as_str())) {
        out.push(format!("value must have suffix {p:?}"));
    }
    if !r.string_in.is_empty() && !r.string_in.iter().any(|v| v == s) {
        out.push(format!("value must be one of [{}] but got {s:?}", r.string_in.join(" ")));
    }
    if r.string_not_in.iter().any(|v| v == s) {
        out.push(format!("value must not be one of [{}]", r.string_not_in.join(" ")));
    }
}

/// Edit distance (Levenshtein), for "did you mean". Field names are short, so the quadratic table
/// is nothing; a dependency for 15 lines is not worth it.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The nearest of `candidates` to `name`, if near enough to be a typo.
pub fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates.map(|c| (edit_distance(name, c), c)).filter(|(d, _)| *d <= limit).min().map(|(_, c)| c)
}
