//! `kubectl baton fields <connector>`: the connector's settings from the catalog.

use std::io::Write;

use crate::catalog::{Connector, Field, FieldType, Plain, env_name};

/// A default as a person writes it in `spec.config`.
pub fn default_text(field: &Field) -> String {
    match &field.default {
        None => String::new(),
        Some(Plain::String(s)) => s.clone(),
        Some(Plain::Bool(b)) => b.to_string(),
        Some(Plain::Int(i)) => i.to_string(),
        Some(Plain::List(l)) => format!("[{}]", l.join(", ")),
        Some(Plain::Map(m)) => serde_json::to_string(m).unwrap_or_default(),
    }
}

/// One line of text: descriptions may hold line breaks.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn groups_of(connector: &Connector, field: &str) -> String {
    let names: Vec<&str> = connector
        .groups
        .iter()
        .filter(|g| g.fields.iter().any(|f| f == field))
        .map(|g| g.name.as_str())
        .collect();
    if connector.groups.is_empty() {
        "-".into()
    } else if names.is_empty() {
        "(none)".into()
    } else {
        names.join(",")
    }
}

pub fn print(connector: &Connector, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "baton-{} ({} at {}, Baton SDK {}{})",
        connector.name,
        connector.repository,
        &connector.commit[..connector.commit.len().min(12)],
        connector.sdk_version,
        if connector.sdk_version_certain { "" } else { ", from another commit" }
    )?;
    let fallback = connector.fallback_group().map(|g| g.name.as_str());
    for g in &connector.groups {
        let label = g.display_name.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
        let default =
            if Some(g.name.as_str()) == fallback { " (used when auth-method is not set)" } else { "" };
        writeln!(out, "group {}{label}{default}", g.name)?;
    }
    let header = ["FIELD", "TYPE", "REQUIRED", "SECRET", "DEFAULT", "GROUPS", "ENV", "DESCRIPTION"];
    let rows: Vec<[String; 8]> = connector
        .own_fields()
        .map(|f| {
            [
                f.name.clone(),
                if f.is_file() { "string (file path)".into() } else { f.kind.as_str().to_string() },
                yes(f.is_required() && f.kind != FieldType::Bool),
                yes(f.secret),
                default_text(f),
                groups_of(connector, &f.name),
                env_name(&f.name),
                one_line(&f.description),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row).take(7) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i < 7 { s.push_str(&format!("{cell:<w$}   ", w = widths[i])) } else { s.push_str(cell) }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in &rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    let ops: Vec<&str> = connector.fields.iter().filter(|f| f.ops).map(|f| f.name.as_str()).collect();
    if !ops.is_empty() {
        writeln!(
            out,
            "plus the Baton SDK's operational fields, allowed for every connector: {}",
            ops.join(", ")
        )?;
    }
    Ok(())
}

fn yes(b: bool) -> String {
    if b { "yes".into() } else { "-".into() }
}
