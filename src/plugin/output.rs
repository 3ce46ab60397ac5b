//! Rendering: tables for people, JSON for scripts. Nothing here reads a Secret, so nothing secret
//! can be printed.

use std::io::{self, Write};

use k8s_openapi::jiff::Timestamp;

use super::{cli::Output, scope::Scope, summary::Summary};

/// kubectl-style age: the largest unit or two, e.g. `3d4h`, `12m`, `40s`.
pub fn age(since: Timestamp, now: Timestamp) -> String {
    let secs = now.as_second() - since.as_second();
    let (sign, secs) = if secs < 0 { ("in ", -secs) } else { ("", secs) };
    let text = match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    };
    format!("{sign}{text}")
}

/// Ages of RFC 3339 strings; the raw value when it does not parse.
pub fn age_of(value: &str, now: Timestamp) -> String {
    value.parse::<Timestamp>().map(|t| age(t, now)).unwrap_or_else(|_| value.to_string())
}

/// Left-aligned columns separated by three spaces, as `kubectl get` prints them.
pub fn table(out: &mut impl Write, rows: &[Vec<String>]) -> io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

pub fn status(out: &mut impl Write, s: &Summary, scope: &Scope, format: Output) -> io::Result<()> {
    if format == Output::Json {
        serde_json::to_writer_pretty(&mut *out, s).map_err(io::Error::other)?;
        return writeln!(out);
    }
    let now = Timestamp::now();
    let place = if scope.all_namespaces {
        "all namespaces".to_string()
    } else {
        format!("namespace {}", scope.namespace)
    };
    writeln!(out, "BatonConnectors in {place}: {}", s.total)?;
    let counts = |m: &std::collections::BTreeMap<String, usize>| {
        m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    };
    writeln!(out, "Ready:      {}", counts(&s.by_ready))?;
    writeln!(out, "By reason:  {}", counts(&s.by_reason))?;
    writeln!(out, "Suspended:  {}", s.suspended)?;
    tenants(out, s)?;
    writeln!(out, "\nSyncs older than their freshness window: {}", s.stale_syncs.len())?;
    let mut rows = Vec::new();
    for x in &s.stale_syncs {
        let last =
            x.last_completed_at.as_deref().map_or("never".to_string(), |t| format!("{} ago", age_of(t, now)));
        rows.push(vec![
            format!("  {}/{}", x.namespace, x.name),
            format!("last completed {last}"),
            format!("window {}", x.freshness),
        ]);
    }
    table(out, &rows)?;
    writeln!(out, "Rotations due in the next 7 days: {}", s.rotations_due.len())?;
    let rows: Vec<_> = s
        .rotations_due
        .iter()
        .map(|x| {
            vec![
                format!("  {}/{}", x.namespace, x.name),
                x.next_rotation_at.clone(),
                age_of(&x.next_rotation_at, now),
            ]
        })
        .collect();
    table(out, &rows)?;
    writeln!(out, "Credentials possibly orphaned: {}", s.possibly_orphaned.len())?;
    let rows: Vec<_> = s
        .possibly_orphaned
        .iter()
        .map(|x| {
            vec![
                format!("  {}/{}", x.namespace, x.name),
                format!("pending revocations {}", x.pending_revocations),
                format!("unrecorded issue attempts {}", x.unrecorded_attempts),
            ]
        })
        .collect();
    table(out, &rows)?;
    if s.unhealthy.is_empty() {
        return writeln!(out, "\nNo unhealthy connectors.");
    }
    writeln!(out, "\nUnhealthy: {}", s.unhealthy.len())?;
    let mut rows = vec![vec!["NAMESPACE".into(), "NAME".into(), "REASON".into(), "MESSAGE".into()]];
    rows.extend(
        s.unhealthy
            .iter()
            .map(|u| vec![u.namespace.clone(), u.name.clone(), u.reason.clone(), u.message.clone()]),
    );
    table(out, &rows)
}

/// The tenants: Ready, reason, connectors and whether ConductorOne rate limits them.
fn tenants(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    if s.tenants.is_empty() && s.tenant_notes.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nTenants: {}", s.tenants.len())?;
    if !s.tenants.is_empty() {
        let header = ["  KIND", "NAMESPACE", "NAME", "READY", "REASON", "CONNECTORS", "RATE-LIMITED"];
        let mut rows = vec![header.map(String::from).to_vec()];
        rows.extend(s.tenants.iter().map(|t| {
            let ready = if t.deletion_blocked { format!("{} (deleting)", t.ready) } else { t.ready.clone() };
            vec![
                format!("  {}", t.kind),
                if t.namespace.is_empty() { "-".into() } else { t.namespace.clone() },
                t.name.clone(),
                ready,
                t.reason.clone(),
                t.connectors.to_string(),
                if t.rate_limited { "yes".into() } else { "no".into() },
            ]
        }));
        table(out, &rows)?;
    }
    for note in &s.tenant_notes {
        writeln!(out, "  ({note})")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let t = |s| Timestamp::from_second(s).unwrap();
        assert_eq!(age(t(0), t(45)), "45s");
        assert_eq!(age(t(0), t(600)), "10m");
        assert_eq!(age(t(0), t(3 * 3600 + 120)), "3h2m");
        assert_eq!(age(t(0), t(3 * 86400 + 7200)), "3d2h");
        assert_eq!(age(t(3 * 86400), t(0)), "in 3d0h");
    }

    #[test]
    fn status_lists_tenants_with_ready_reason_connectors_and_rate_limiting() {
        use super::super::tenants::TenantLine;
        let line = |kind: &str, namespace: &str, name: &str, ready: &str, reason: &str, limited| TenantLine {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            ready: ready.into(),
            reason: reason.into(),
            message: String::new(),
            connectors: 2,
            rate_limited: limited,
            deletion_blocked: false,
        };
        let s = Summary {
            tenants: vec![
                line("ClusterConductorOneTenant", "", "prod", "True", "Authenticated", true),
                line("ConductorOneTenant", "team-a", "own", "False", "SecretNotFound", false),
            ],
            tenant_notes: vec!["ClusterConductorOneTenants not listed: forbidden".into()],
            ..Default::default()
        };
        let scope = Scope { namespace: "team-a".into(), all_namespaces: false };
        let mut out = Vec::new();
        status(&mut out, &s, &scope, Output::Text).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\nTenants: 2\n"), "{text}");
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip_while(|l| !l.starts_with("Tenants:"))
            .skip(1)
            .take(3)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["KIND", "NAMESPACE", "NAME", "READY", "REASON", "CONNECTORS", "RATE-LIMITED"]);
        assert_eq!(rows[1], ["ClusterConductorOneTenant", "-", "prod", "True", "Authenticated", "2", "yes"]);
        assert_eq!(rows[2], ["ConductorOneTenant", "team-a", "own", "False", "SecretNotFound", "2", "no"]);
        assert!(text.contains("  (ClusterConductorOneTenants not listed: forbidden)\n"), "{text}");

        let mut json = Vec::new();
        status(&mut json, &s, &scope, Output::Json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["tenants"][0]["rateLimited"], true);
        assert_eq!(v["tenants"][1]["reason"], "SecretNotFound");

        let mut none = Vec::new();
        status(&mut none, &Summary::default(), &scope, Output::Text).unwrap();
        assert!(!String::from_utf8(none).unwrap().contains("Tenants:"), "no tenants, no section");
    }

    #[test]
    fn columns_line_up() {
        let mut out = Vec::new();
        table(
            &mut out,
            &[vec!["A".into(), "BB".into(), "x".into()], vec!["CCC".into(), "D".into(), "y".into()]],
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A     BB   x\nCCC   D    y\n");
    }
}
