//! The reference pages follow the code: every flag of `baton-operator run --help`, every chart value
//! and every condition reason the operator sets is documented, with the defaults it really has.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The table row whose first cell is `` `key` ``.
fn row<'a>(doc: &'a str, key: &str) -> Option<&'a str> {
    let start = format!("| `{key}` |");
    doc.lines().find(|l| l.starts_with(&start))
}

/// First cells (without backticks) of the rows of the first table after `heading`.
fn first_cells(doc: &str, heading: &str) -> Vec<String> {
    let section = doc.split(heading).nth(1).unwrap_or_else(|| panic!("no section {heading:?}"));
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |").map(|(key, _)| key.to_owned()))
        .collect()
}

struct Flag {
    flag: String,
    env: Option<String>,
    default: Option<String>,
}

/// The options of `run --help`, read from clap's output: a line starting with `-` opens an option,
/// the lines after it describe it.
fn run_flags() -> Vec<Flag> {
    let out = Command::new(env!("CARGO_BIN_EXE_baton-operator"))
        .args(["run", "--help"])
        // A set variable would show its value instead of the default.
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let mut flags: Vec<(String, String)> = Vec::new();
    for line in help.lines().skip_while(|l| !l.starts_with("Options:")).skip(1) {
        let trimmed = line.trim_start();
        if trimmed.starts_with('-') {
            let flag = trimmed.split([' ', ',']).find(|t| t.starts_with("--")).unwrap().to_owned();
            flags.push((flag, String::new()));
        } else if let Some((_, text)) = flags.last_mut() {
            text.push_str(trimmed);
            text.push(' ');
        }
    }
    let between = |text: &str, open: &str, close: char| {
        text.split_once(open).map(|(_, rest)| rest.split(close).next().unwrap().to_owned())
    };
    flags
        .into_iter()
        .filter(|(flag, _)| flag != "--help")
        .map(|(flag, text)| Flag {
            env: between(&text, "[env: ", '=').or_else(|| between(&text, "[env: ", ']')),
            default: between(&text, "[default: ", ']'),
            flag,
        })
        .collect()
}

#[test]
fn every_run_flag_is_documented_with_its_variable_and_default() {
    let doc = read("docs/configuration.md");
    let flags = run_flags();
    assert!(flags.len() >= 10, "read only {} flags from run --help", flags.len());
    let mut problems = Vec::new();
    for f in &flags {
        let Some(line) = row(&doc, &f.flag) else {
            problems.push(format!("{} has no row", f.flag));
            continue;
        };
        if let Some(env) = &f.env
            && !line.contains(&format!("`{env}`"))
        {
            problems.push(format!("{}: row does not name `{env}`", f.flag));
        }
        if let Some(default) = &f.default
            && !line.contains(&format!("`{default}`"))
        {
            problems.push(format!("{}: row does not give the default `{default}`", f.flag));
        }
    }
    let known: BTreeSet<&str> = flags.iter().map(|f| f.flag.as_str()).collect();
    for documented in first_cells(&doc, "## `baton-operator run`").iter().filter(|c| c.starts_with("--")) {
        if !known.contains(documented.as_str()) {
            problems.push(format!("{documented} is documented but `run --help` has no such flag"));
        }
    }
    assert!(problems.is_empty(), "docs/configuration.md is out of date:\n{}", problems.join("\n"));
}

/// Chart values as dotted paths with their defaults. A mapping is descended into only where
/// `values.schema.json` declares its properties; otherwise (resources, affinity, ...) it is one
/// Kubernetes object passed through, documented as a whole.
fn chart_values(values: &Yaml, schema: &Json, path: &str, out: &mut Vec<(String, Yaml)>) {
    let Yaml::Mapping(map) = values else { return };
    for (key, value) in map {
        let key = key.as_str().expect("values.yaml keys are strings");
        let here = if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
        let sub = &schema["properties"][key];
        if value.is_mapping() && sub["properties"].is_object() {
            chart_values(value, sub, &here, out);
        } else {
            out.push((here, value.clone()));
        }
    }
}

#[test]
fn every_chart_value_is_documented_with_its_default() {
    let doc = read("docs/configuration.md");
    let values: Yaml = serde_yaml::from_str(&read("charts/baton-operator/values.yaml")).unwrap();
    let schema: Json = serde_json::from_str(&read("charts/baton-operator/values.schema.json")).unwrap();
    let mut leaves = Vec::new();
    chart_values(&values, &schema, "", &mut leaves);
    assert!(leaves.len() >= 30, "read only {} chart values", leaves.len());
    let mut problems = Vec::new();
    for (path, default) in &leaves {
        let Some(line) = row(&doc, path) else {
            problems.push(format!("{path} has no row"));
            continue;
        };
        let shown = match default {
            Yaml::String(s) if s.is_empty() => Some("`\"\"`".to_owned()),
            Yaml::String(s) => Some(format!("`{s}`")),
            Yaml::Bool(b) => Some(format!("`{b}`")),
            Yaml::Number(n) => Some(format!("`{n}`")),
            Yaml::Sequence(s) if s.is_empty() => Some("`[]`".to_owned()),
            Yaml::Mapping(m) if m.is_empty() => Some("`{}`".to_owned()),
            _ => None,
        };
        if let Some(shown) = shown
            && !line.contains(&shown)
        {
            problems.push(format!("{path}: row does not give the default {shown}"));
        }
    }
    let known: BTreeSet<&str> = leaves.iter().map(|(p, _)| p.as_str()).collect();
    for documented in first_cells(&doc, "## Helm chart values") {
        if !known.contains(documented.as_str()) {
            problems.push(format!("{documented} is documented but values.yaml has no such value"));
        }
    }
    assert!(problems.is_empty(), "docs/configuration.md is out of date:\n{}", problems.join("\n"));
}

/// The index of the `close` matching the `open` at `from`, skipping string literals.
fn matching(text: &str, from: usize, open: u8, close: u8) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == open {
            depth += 1;
        } else if b == close {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    panic!("unbalanced {} at {from}", open as char);
}

fn string_literals(code: &str) -> impl Iterator<Item = &str> {
    code.split('"').skip(1).step_by(2)
}

/// Condition reasons written as literals in the non-test code of `src/`: the third argument of
/// `Desired::new`, the arms of every `fn reason`, and `const REASON`.
fn condition_reasons() -> BTreeSet<String> {
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.file_stem().unwrap().to_string_lossy().ends_with("tests")
            {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut reasons = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
        for (at, _) in code.match_indices("Desired::new(") {
            let open = at + "Desired::new".len();
            let args = &code[open + 1..matching(code, open, b'(', b')')];
            let mut depth = 0;
            let mut third = String::new();
            let mut index = 0;
            for c in args.chars() {
                match c {
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' => depth -= 1,
                    ',' if depth == 0 => {
                        index += 1;
                        continue;
                    }
                    _ => {}
                }
                if index == 2 {
                    third.push(c);
                }
            }
            if let Some(literal) = third.trim().strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                reasons.insert(literal.to_owned());
            }
        }
        for (at, _) in code.match_indices("fn reason(") {
            let open = at + code[at..].find('{').unwrap();
            let body = &code[open..matching(code, open, b'{', b'}')];
            reasons.extend(string_literals(body).map(str::to_owned));
        }
        // Reasons are the variants of `api::Reason`, named where a condition is built.
        for (at, _) in code.match_indices("Reason::") {
            let name: String =
                code[at + "Reason::".len()..].chars().take_while(char::is_ascii_alphanumeric).collect();
            reasons.insert(name);
        }
        for (at, _) in code.match_indices("const REASON: &str = ") {
            reasons.extend(string_literals(&code[at..]).next().map(str::to_owned));
        }
    }
    reasons.retain(|r| {
        r.starts_with(|c: char| c.is_ascii_uppercase()) && r.chars().all(|c| c.is_ascii_alphanumeric())
    });
    reasons
}

#[test]
fn every_condition_reason_has_a_troubleshooting_entry() {
    let reasons = condition_reasons();
    for expected in ["SecretNotFound", "WaitingForFirstSync", "InvalidSpec", "RateLimited", "Idle", "Issued"]
    {
        assert!(reasons.contains(expected), "the scan of src/ missed {expected}: {reasons:?}");
    }
    let doc = read("docs/troubleshooting.md");
    let missing: Vec<_> = reasons.iter().filter(|r| !doc.contains(&format!("`{r}`"))).collect();
    assert!(missing.is_empty(), "docs/troubleshooting.md does not explain {missing:?}");
}

#[test]
fn readme_links_every_doc() {
    let readme = read("README.md");
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(readme.contains(&format!("(docs/{name})")), "README.md does not link docs/{name}");
    }
}

use baton_test_support::doc_blocks;

/// Every Markdown page a reader may run commands from.
fn doc_files() -> Vec<String> {
    let mut files = vec!["README.md".to_owned(), "charts/baton-operator/README.md".to_owned()];
    for dir in ["docs", "deploy/argocd", "deploy/flux"] {
        let mut names: Vec<String> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".md"))
            .map(|n| format!("{dir}/{n}"))
            .collect();
        names.sort();
        files.extend(names);
    }
    files
}

#[test]
fn every_shell_block_runs_in_the_e2e_suite_or_says_why_not() {
    let mut problems = Vec::new();
    let mut covered = vec![0; doc_blocks::RUN_BY_E2E.len()];
    for file in doc_files() {
        let text = read(&file);
        // A marker that is not right above a fence marks nothing.
        let markers = text.lines().filter(|l| doc_blocks::marker(l).is_some()).count();
        let blocks = doc_blocks::sh_blocks(&text);
        if markers != blocks.iter().filter(|b| b.skip.is_some()).count() {
            problems.push(format!("{file}: a not-run marker is not on the line right above a ```sh fence"));
        }
        for block in &blocks {
            let run_by =
                doc_blocks::RUN_BY_E2E.iter().position(|(f, section)| *f == file && block.under(*section));
            match (&block.skip, run_by) {
                (Some(reason), _) if reason.is_empty() => {
                    problems.push(format!("{file}:{}: marked as not run, without a reason", block.line))
                }
                (Some(_), _) => {}
                (None, Some(i)) => covered[i] += 1,
                (None, None) => problems.push(format!(
                    "{file}:{}: no e2e case runs this block; run it or mark it `{} <why> -->`",
                    block.line,
                    doc_blocks::MARKER_OPEN
                )),
            }
        }
    }
    for ((file, section), n) in doc_blocks::RUN_BY_E2E.iter().zip(&covered) {
        if *n == 0 {
            problems.push(format!("{file} {section:?}: the e2e suite runs it, yet it has no unmarked block"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_marker_convention_is_read_as_documented() {
    let text = "# A\n\n<!-- not run by the e2e suite: needs a registry -->\n```sh\ndocker push x\n```\n\n## B\n\n- item\n\n  ```sh\n  kubectl apply -f - <<'EOF'\n    indented: yaml\n  EOF\n  ```\n";
    let blocks = doc_blocks::sh_blocks(text);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].skip.as_deref(), Some("needs a registry"));
    assert_eq!(blocks[0].text, "docker push x\n");
    assert_eq!(blocks[1].skip, None);
    assert_eq!(blocks[1].headings, ["A", "B"]);
    assert!(blocks[1].under(Some("B")) && !blocks[1].under(Some("C")));
    assert_eq!(blocks[1].text, "kubectl apply -f - <<'EOF'\n  indented: yaml\nEOF\n");
}

/// The files of `examples/`.
fn example_files() -> BTreeSet<String> {
    std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml"))
        .collect()
}

/// A page that names two example files in one paragraph (or table) lists them: it must name them all.
#[test]
fn every_list_of_examples_names_every_example() {
    let examples = example_files();
    assert!(examples.len() >= 6, "{examples:?}");
    let mut problems = Vec::new();
    for file in doc_files() {
        for paragraph in read(&file).split("\n\n") {
            let named: BTreeSet<&String> =
                examples.iter().filter(|e| paragraph.contains(e.as_str())).collect();
            if named.len() >= 2 && named.len() < examples.len() {
                let missing: Vec<_> = examples.iter().filter(|e| !named.contains(e)).collect();
                problems.push(format!("{file}: a list of examples without {missing:?}:\n{paragraph}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Defaults live in docs/configuration.md; another page may link there but has no table of them.
#[test]
fn no_other_page_copies_the_reference_tables() {
    let values: Yaml = serde_yaml::from_str(&read("charts/baton-operator/values.yaml")).unwrap();
    let schema: Json = serde_json::from_str(&read("charts/baton-operator/values.schema.json")).unwrap();
    let mut leaves = Vec::new();
    chart_values(&values, &schema, "", &mut leaves);
    let mut keys: Vec<String> = leaves.into_iter().map(|(k, _)| k).collect();
    keys.extend(run_flags().into_iter().map(|f| f.flag));
    let mut problems = Vec::new();
    for file in doc_files().into_iter().filter(|f| f != "docs/configuration.md") {
        for line in read(&file).lines() {
            if let Some(key) = keys.iter().find(|k| line.starts_with(&format!("| `{k}` |"))) {
                problems.push(format!("{file}: a row for `{key}`; link docs/configuration.md instead"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The README quickstart: at most ten commands, a clone of the current release's tag, the BatonConnector
/// of examples/okta-managed.yaml, and its Secrets with the example's names, keys and placeholders.
#[test]
fn the_quickstart_is_short_and_matches_the_managed_example() {
    let readme = read("README.md");
    let blocks: Vec<_> =
        doc_blocks::sh_blocks(&readme).into_iter().filter(|b| b.under(Some("Quickstart"))).collect();
    let mut commands = 0;
    let mut heredoc: Option<String> = None;
    let mut manifest = String::new();
    let mut continued = false;
    let mut literals: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut secret = String::new();
    for block in &blocks {
        for line in block.text.lines() {
            if let Some(end) = &heredoc {
                if line.trim() == end {
                    heredoc = None;
                } else {
                    manifest.push_str(line);
                    manifest.push('\n');
                }
                continue;
            }
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if !continued {
                commands += 1;
                secret.clear();
            }
            if let Some(rest) = trimmed.split("create secret generic ").nth(1) {
                secret = rest.split_whitespace().next().unwrap().to_owned();
            }
            if let Some(rest) = trimmed.strip_prefix("--from-literal=") {
                let (key, value) = rest.trim_end_matches(['\\', ' ']).split_once('=').unwrap();
                literals.insert((secret.clone(), key.to_owned(), value.trim_matches('\'').to_owned()));
            }
            if let Some((_, tag)) = trimmed.split_once("<<") {
                heredoc = Some(tag.trim().trim_matches(['\'', '"']).to_owned());
            }
            continued = trimmed.ends_with('\\');
        }
    }
    assert!((5..=10).contains(&commands), "the quickstart has {commands} commands");
    let clone = format!("--branch v{} ", env!("CARGO_PKG_VERSION"));
    assert!(blocks.iter().any(|b| b.text.contains(&clone)), "the quickstart does not clone {clone}");
    assert!(blocks.iter().any(|b| b.text.contains("helm install")), "the quickstart does not use Helm");

    let example = read("examples/okta-managed.yaml");
    let mut example_bc = None;
    let mut example_literals = BTreeSet::new();
    for doc in serde_yaml::Deserializer::from_str(&example) {
        let value: Yaml = serde::Deserialize::deserialize(doc).unwrap();
        match value["kind"].as_str() {
            Some("BatonConnector") => example_bc = Some(value),
            Some("Secret") => {
                let name = value["metadata"]["name"].as_str().unwrap().to_owned();
                for (k, v) in value["stringData"].as_mapping().unwrap() {
                    example_literals.insert((
                        name.clone(),
                        k.as_str().unwrap().to_owned(),
                        v.as_str().unwrap().to_owned(),
                    ));
                }
            }
            other => panic!("examples/okta-managed.yaml: unexpected {other:?}"),
        }
    }
    let quickstart_bc: Yaml = serde_yaml::from_str(&manifest).expect("the quickstart's manifest");
    assert_eq!(
        Some(quickstart_bc.clone()),
        example_bc,
        "the quickstart's BatonConnector differs from the example"
    );
    assert_eq!(literals, example_literals, "the quickstart's Secrets differ from the example's");
    assert_eq!(
        quickstart_bc["spec"]["provisioning"],
        Yaml::Bool(false),
        "the quickstart turns provisioning on"
    );
    assert!(quickstart_bc["spec"]["credentials"]["managed"].is_mapping(), "the quickstart is not managed");
}
