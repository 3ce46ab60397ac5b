//! The one table: a Markdown table, printed and written to a file, with PASS/FAIL against the targets
//! of issue 9 next to the figures they concern.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use crate::{
    brownout::{BrownoutResult, CALM, STEADY},
    isolation::IsolationResult,
    managed::ManagedResult,
    probe::{Latency, percentile},
    scenario::FleetResult,
};

const LAG_TARGET: Duration = Duration::from_secs(5);
const CPU_FLATNESS: f64 = 1.5;
const RSS_TARGET_MIB: f64 = 48.0;
const BROWNOUT_FACTOR: f64 = 2.0;

fn mark(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn latency(l: Latency, deadline: Duration) -> String {
    match l {
        Some(d) if d < Duration::from_secs(1) => format!("{} ms", d.as_millis()),
        Some(d) => secs(d),
        None => format!("> {}", secs(deadline)),
    }
}

fn p50_p99(samples: &[Latency], deadline: Duration) -> String {
    if samples.is_empty() {
        return "—".into();
    }
    let (p50, p99) = (percentile(samples, 50.0), percentile(samples, 99.0));
    format!("{} / {}", latency(p50, deadline), latency(p99, deadline))
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `verb resource` counts grouped by verb: `get 2,000 (deployments 1,000, secrets 1,000); list 3`.
fn by_verb(counts: &BTreeMap<String, usize>, per: Option<usize>) -> String {
    let mut verbs: BTreeMap<&str, Vec<(&str, usize)>> = BTreeMap::new();
    for (k, v) in counts {
        let (verb, resource) = k.split_once(' ').unwrap_or((k, "?"));
        verbs.entry(verb).or_default().push((resource, *v));
    }
    let fmt = |v: usize| match per {
        Some(n) => format!("{:.2}", v as f64 / n.max(1) as f64),
        None => thousands(v),
    };
    let parts: Vec<String> = verbs
        .iter()
        .map(|(verb, resources)| {
            let total = resources.iter().map(|(_, v)| v).sum();
            let detail: Vec<String> = resources.iter().map(|(r, v)| format!("{r} {}", fmt(*v))).collect();
            format!("{verb} {} ({})", fmt(total), detail.join(", "))
        })
        .collect();
    if parts.is_empty() { "none".into() } else { parts.join("; ") }
}

pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn row(&mut self, label: &str, cells: Vec<String>, target: &str) {
        let mut row = vec![label.to_string()];
        row.extend(cells);
        row.push(target.to_string());
        self.rows.push(row);
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("| {} |\n|{}\n", self.header.join(" | "), "---|".repeat(self.header.len()));
        for r in &self.rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
        out
    }
}

pub fn table(
    fleets: &[FleetResult],
    managed: Option<&ManagedResult>,
    brownout: Option<&BrownoutResult>,
    isolation: Option<&IsolationResult>,
    creates_deadline: Duration,
    brownout_deadline: Duration,
    idle: Duration,
) -> Table {
    let mut header = vec![String::new()];
    header.extend(fleets.iter().map(|f| format!("N = {}", thousands(f.n))));
    if fleets.is_empty() {
        header.push("measured".into());
    }
    header.push("target".into());
    let mut t = Table { header, rows: Vec::new() };
    let each = |f: &dyn Fn(&FleetResult) -> String| fleets.iter().map(f).collect::<Vec<_>>();

    t.row(
        "user's `kubectl apply --server-side` of N Secrets + N BatonConnectors",
        each(&|f| secs(f.user_apply)),
        "",
    );
    t.row("… until the operator converged (every resource observed, its Deployment exists), from the start of the apply", each(&|f| secs(f.converged)), "");
    t.row(
        "operator's lag after the user's apply finished",
        each(&|f| {
            let lag = f.converged.saturating_sub(f.user_apply);
            format!("{} {}", secs(lag), mark(lag <= LAG_TARGET))
        }),
        "≤ 5 s at 5,000",
    );
    t.row(
        "baseline: `kubectl apply --server-side` of the hand-written N Secrets + N Deployments",
        each(&|f| secs(f.baseline_apply)),
        "",
    );
    t.row(
        "operator converged / baseline",
        each(&|f| format!("{:.2}×", f.converged.as_secs_f64() / f.baseline_apply.as_secs_f64().max(1e-9))),
        "",
    );
    t.row(
        "operator writes per new connector, apply → settled (audit log)",
        each(&|f| {
            let total: usize = f.writes.values().sum();
            let note = if f.settled { "" } else { " (did not settle)" };
            format!("{:.2}: {}{note}", total as f64 / f.n as f64, by_verb(&f.writes, Some(f.n)))
        }),
        "",
    );
    t.row(
        &format!("operator writes while idle ({} s) / after a restart", idle.as_secs()),
        each(&|f| {
            format!(
                "{} / {} {}",
                f.idle_writes,
                f.restart_writes,
                mark(f.idle_writes == 0 && f.restart_writes == 0)
            )
        }),
        "0 / 0",
    );
    t.row("operator CPU time, apply → settled", each(&|f| format!("{:.1} s", f.cpu_seconds)), "");
    let per_connector = |f: &FleetResult| f.cpu_seconds / f.n as f64;
    let smallest = fleets.first().map(per_connector).unwrap_or_default();
    t.row(
        "operator CPU per connector",
        fleets
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let ms = format!("{:.2} ms", per_connector(f) * 1000.0);
                if i == 0 {
                    return ms;
                }
                let ratio = per_connector(f) / smallest.max(1e-12);
                format!(
                    "{ms} (×{ratio:.2} of N = {}) {}",
                    thousands(fleets[0].n),
                    mark(ratio <= CPU_FLATNESS)
                )
            })
            .collect(),
        "flat: ≤ 1.5× from 1,000 to 5,000",
    );
    t.row(
        "operator peak RSS (VmHWM): first run / restarted",
        each(&|f| {
            format!(
                "{:.1} / {:.1} MiB {}",
                f.peak_rss_mib,
                f.restart_peak_rss_mib,
                mark(f.peak_rss_mib.max(f.restart_peak_rss_mib) <= RSS_TARGET_MIB)
            )
        }),
        "≤ 48 MiB at 5,000",
    );
    t.row(
        "operator reads at restart (audit log)",
        each(&|f| {
            let gets: usize =
                f.restart_reads.iter().filter(|(k, _)| k.starts_with("get ")).map(|(_, v)| v).sum();
            // A handful of GETs (discovery, a lease) is not per connector.
            format!("{} {}", by_verb(&f.restart_reads, None), mark(gets <= 10))
        }),
        "list + watch only, no per-connector GET",
    );
    t.row(
        "create → Deployment p50 / p99, single creates with the fleet of N in place",
        each(&|f| format!("{} (of {})", p50_p99(&f.creates, creates_deadline), f.creates.len())),
        "",
    );

    let columns = fleets.len().max(1);
    if let Some(m) = managed {
        let note = if m.settled { "" } else { " (did not settle)" };
        let (minted, rotated) = (&m.minted_gets, &m.rotated_gets);
        let mut cells = vec![format!(
            "{} / {}{note} {}",
            minted.revisions,
            rotated.revisions,
            mark(minted.revisions == 0 && rotated.revisions == 0)
        )];
        cells.extend(vec![String::new(); columns - 1]);
        t.row(
            &format!(
                "**managed credentials** ({} connectors minted, rolled out, then all rotated): operator GETs of its credential Secrets, create → Ready / rotation → rolled out",
                m.connectors
            ),
            cells,
            "0 / 0",
        );
        let mut cells = vec![format!("{} / {}", minted.users + rotated.users, m.connectors)];
        cells.extend(vec![String::new(); columns - 1]);
        t.row(
            "… first reads of the user's Secrets applied with the connectors (the watch saw them before any connector referenced them) / connectors",
            cells,
            "",
        );
        let per = |counts: &BTreeMap<String, usize>| {
            let writes: BTreeMap<String, usize> = counts
                .iter()
                .filter(|(k, _)| ManagedResult::is_write(k))
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            let total: usize = writes.values().sum();
            format!(
                "{:.2}: {}",
                total as f64 / m.connectors.max(1) as f64,
                by_verb(&writes, Some(m.connectors))
            )
        };
        let mut cells = vec![format!("{} / {}", per(&m.minted), per(&m.rotated))];
        cells.extend(vec![String::new(); columns - 1]);
        t.row("… operator writes per managed connector, create → Ready / rotation → rolled out", cells, "");
    }

    if let Some(b) = brownout {
        // The brownout does not depend on N: its figures go in the first column.
        let blank = || vec![String::new(); columns - 1];
        let creates = b.cases.first().map_or(0, |(_, l)| l.len());
        let heading = vec![String::new(); columns];
        t.row(
            &format!("**ConductorOne brownout** ({} connectors with `spec.conductorOne`, operator restarted (except for the reference), then {creates} new connectors without, one every 0.5 s)", b.connectors),
            heading,
            "",
        );
        let calm = b.cases.iter().find(|(c, _)| *c == CALM).map(|(_, l)| l.clone()).unwrap_or_default();
        let ratio = |samples: &[Latency], p: f64| -> (String, bool) {
            match (percentile(samples, p), percentile(&calm, p)) {
                (Some(x), Some(base)) => {
                    let r = x.as_secs_f64() / base.as_secs_f64().max(1e-3);
                    (format!("×{r:.1}"), r <= BROWNOUT_FACTOR)
                }
                (None, Some(_)) => ("×∞".into(), false),
                _ => ("no calm baseline".into(), false),
            }
        };
        for (case, samples) in &b.cases {
            let label = match *case {
                STEADY => "… ConductorOne calm, operator not restarted (reference)".to_string(),
                CALM => "… ConductorOne calm, operator restarted: create → Deployment p50 / p99".to_string(),
                crate::brownout::SLOW => "… every ConductorOne call slowed to 10 s".to_string(),
                crate::brownout::RATE_LIMITED => format!(
                    "… every ConductorOne call answered 429 (rate limited, `Retry-After: {}`)",
                    crate::brownout::RETRY_AFTER
                ),
                _ => "… ConductorOne unreachable (connection refused)".to_string(),
            };
            let mut cell = p50_p99(samples, brownout_deadline);
            let target = if *case == CALM {
                "baseline".to_string()
            } else if *case == STEADY {
                String::new()
            } else {
                let ((r50, ok50), (r99, ok99)) = (ratio(samples, 50.0), ratio(samples, 99.0));
                cell = format!("{cell} ({r50} / {r99} of calm) {}", mark(ok50 && ok99));
                "≤ 2× calm".to_string()
            };
            let mut cells = vec![cell];
            cells.extend(blank());
            t.row(&label, cells, &target);
        }
    }
    if let Some(r) = isolation {
        two_tenants(&mut t, r, columns);
    }
    t
}

/// Tenant B's rotation and sync-status latencies with tenant A broken, against A calm in the same run.
fn two_tenants(t: &mut Table, r: &IsolationResult, columns: usize) {
    use crate::isolation::{CALM as ISO_CALM, RATE_LIMITED, ROTATION_DEADLINE, SLOW, SYNC_DEADLINE};
    let blank = || vec![String::new(); columns - 1];
    t.row(
        &format!(
            "**Two tenants** (two `ClusterConductorOneTenant`s, each with its own principal and ConductorOne, {} managed connectors each; in each case all {} asked to rotate at once, then the sync status of all of B's changed): tenant B's rotation → new revision / sync change → status, p50 / p99",
            r.per_tenant,
            2 * r.per_tenant
        ),
        vec![String::new(); columns],
        "",
    );
    let calm = r.cases.iter().find(|c| c.name == ISO_CALM);
    for case in &r.cases {
        let label = match case.name {
            ISO_CALM => "… tenant A calm".to_string(),
            SLOW => "… tenant A: every call answered after 10 s".to_string(),
            RATE_LIMITED => format!(
                "… tenant A: every call answered 429 (`Retry-After: {}`), token requests included",
                crate::brownout::RETRY_AFTER
            ),
            _ => "… tenant A unreachable (connection refused)".to_string(),
        };
        let mut cell = format!(
            "rotation {}; sync status {}",
            p50_p99(&case.rotation, ROTATION_DEADLINE),
            p50_p99(&case.sync, SYNC_DEADLINE)
        );
        let target = match calm {
            Some(calm) if case.name != ISO_CALM => {
                let ratios = [
                    ratio(&case.rotation, &calm.rotation, 50.0),
                    ratio(&case.rotation, &calm.rotation, 99.0),
                    ratio(&case.sync, &calm.sync, 50.0),
                    ratio(&case.sync, &calm.sync, 99.0),
                ];
                let pass = ratios.iter().all(|(_, ok)| *ok);
                let text: Vec<&str> = ratios.iter().map(|(s, _)| s.as_str()).collect();
                cell = format!(
                    "{cell} (rotation {} / {}, sync {} / {} of calm) {}",
                    text[0],
                    text[1],
                    text[2],
                    text[3],
                    mark(pass)
                );
                "B ≤ 2× calm"
            }
            _ => "baseline",
        };
        let mut cells = vec![cell];
        cells.extend(blank());
        t.row(&label, cells, target);
    }
}

/// `samples` against `calm` at percentile `p`: the ratio, and whether it is within the target.
fn ratio(samples: &[Latency], calm: &[Latency], p: f64) -> (String, bool) {
    match (percentile(samples, p), percentile(calm, p)) {
        (Some(x), Some(base)) => {
            let r = x.as_secs_f64() / base.as_secs_f64().max(1e-3);
            (format!("×{r:.1}"), r <= BROWNOUT_FACTOR)
        }
        (None, Some(_)) => ("×∞".into(), false),
        _ => ("no calm baseline".into(), false),
    }
}
