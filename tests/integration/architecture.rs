//! The layout rules of issue 18, held against the source: no import cycle between the crate's
//! modules, no file over 600 lines and no function over 100 lines. Production code only: `#[cfg(test)]`
//! items may reach anywhere, since nothing depends on them.
//!
//! A module is a file (`src/a/b.rs` or `src/a/b/mod.rs` is `crate::a::b`). A module depends on
//! another when its code names a path into it (`use` trees included); a path resolves to the longest
//! module it starts with, so a re-export counts as a dependency of the module that re-exports.
//! `mod` declarations are not dependencies.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use syn::visit::Visit;

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 100;

/// Every module of the library: its path (`["controller", "reconcile"]`) and file.
fn modules() -> BTreeMap<Vec<String>, PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                // The binaries are their own crates.
                if path != root.join("bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path == root.join("main.rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut segments: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
                segments.pop();
            }
            out.insert(segments, path);
        }
    }
    out
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && a.meta.require_list().is_ok_and(|l| l.tokens.to_string().contains("test"))
    })
}

/// The paths one file names, as written (`crate::a::b`, `super::c`, `self::d`), outside test code.
#[derive(Default)]
struct Names {
    paths: Vec<Vec<String>>,
    /// Functions longer than the limit: name and lines.
    long_fns: Vec<(String, usize)>,
    /// Test-only modules declared in other files (`#[cfg(test)] mod x;`), by name or `#[path]`.
    test_files: Vec<(bool, String)>,
}

impl Names {
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.leaf(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.leaf(prefix, &r.ident),
            syn::UseTree::Glob(_) => self.paths.push(prefix.clone()),
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| self.use_tree(prefix, t)),
        }
    }

    fn leaf(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut path = prefix.to_vec();
        // `use a::b::{self}` names `a::b`.
        if ident != "self" {
            path.push(ident.to_string());
        }
        self.paths.push(path);
    }

    fn function(&mut self, name: &syn::Ident, block: &syn::Block) {
        let span = block.brace_token.span.join();
        let lines = span.end().line.saturating_sub(span.start().line) + 1;
        if lines > MAX_FN_LINES {
            self.long_fns.push((name.to_string(), lines));
        }
    }
}

impl<'ast> Visit<'ast> for Names {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_cfg_test(attrs) {
            syn::visit::visit_item(self, item);
        } else if let syn::Item::Mod(m) = item
            && m.content.is_none()
        {
            let path = m.attrs.iter().find(|a| a.path().is_ident("path")).and_then(|a| match &a.meta {
                syn::Meta::NameValue(nv) => match &nv.value {
                    syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value()),
                    _ => None,
                },
                _ => None,
            });
            self.test_files.push(match path {
                Some(p) => (true, p),
                None => (false, format!("{}.rs", m.ident)),
            });
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_cfg_test(&f.attrs) {
            self.function(&f.sig.ident, &f.block);
            syn::visit::visit_impl_item_fn(self, f);
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.function(&f.sig.ident, &f.block);
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    // `pub(crate)` and `pub(super)` restrict visibility; they name no dependency.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.paths.push(p.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, p);
    }
}

/// A path as written in module `from`, made absolute; `None` for paths outside the crate
/// (other crates, the prelude, local names).
fn absolute(from: &[String], path: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    let base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => from.to_vec(),
        "super" => {
            let mut base = from.to_vec();
            base.pop()?;
            let mut rest = rest;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            return Some(base.into_iter().chain(rest.iter().cloned()).collect());
        }
        // A child module named without `self::` (`use status::X` from its parent, or `status::f()`).
        _ => {
            let mut child = from.to_vec();
            child.push(first.clone());
            return Some(child.into_iter().chain(rest.iter().cloned()).collect());
        }
    };
    Some(base.into_iter().chain(rest.iter().cloned()).collect())
}

struct Graph {
    /// Module → the modules it depends on, each with one path that shows it.
    edges: BTreeMap<Vec<String>, BTreeMap<Vec<String>, String>>,
    long_fns: Vec<String>,
    long_files: Vec<String>,
}

fn graph() -> Graph {
    let modules = modules();
    let mut g = Graph { edges: BTreeMap::new(), long_fns: Vec::new(), long_files: Vec::new() };
    let mut parsed = Vec::new();
    let mut test_files = BTreeSet::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(file).display().to_string();
        if text.lines().count() > MAX_FILE_LINES {
            g.long_files.push(format!("{shown}: {} lines", text.lines().count()));
        }
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{shown}: {e}"));
        let mut names = Names::default();
        names.visit_file(&ast);
        // A `mod x;` in `a/mod.rs` or `a.rs` is `a/x.rs`; with `#[path]`, next to the declaring file.
        let dir = if file.file_name().is_some_and(|f| f == "mod.rs" || f == "lib.rs") {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        for (attr, t) in &names.test_files {
            test_files.insert(if *attr { file.parent().unwrap().join(t) } else { dir.join(t) });
        }
        parsed.push((module, file, shown, names));
    }
    for (module, file, shown, names) in parsed {
        let excluded = test_files.iter().any(|t| file == t || file.starts_with(t.with_extension("")));
        if excluded {
            continue;
        }
        g.long_fns.extend(names.long_fns.iter().map(|(f, n)| format!("{shown}: fn {f}, {n} lines")));
        let targets = g.edges.entry(module.clone()).or_default();
        for path in &names.paths {
            let Some(abs) = absolute(module, path) else { continue };
            // The longest module the path starts with.
            let Some(target) =
                (0..=abs.len()).rev().map(|n| abs[..n].to_vec()).find(|prefix| modules.contains_key(prefix))
            else {
                continue;
            };
            if &target != module {
                targets.entry(target).or_insert_with(|| path.join("::"));
            }
        }
    }
    g
}

fn name(module: &[String]) -> String {
    if module.is_empty() { "crate".into() } else { format!("crate::{}", module.join("::")) }
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(edges: &BTreeMap<Vec<String>, BTreeMap<Vec<String>, String>>) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeMap<Vec<String>, String>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Vec<String>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flat_map(|t| t.keys()) {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[w].min(s.low[v]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.index[w].min(s.low[v]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_import_cycle_between_modules() {
    let g = graph();
    let found: Vec<String> = cycles(&g.edges)
        .iter()
        .map(|component| {
            let inside: BTreeSet<_> = component.iter().collect();
            let how: Vec<String> = component
                .iter()
                .flat_map(|m| {
                    g.edges[m]
                        .iter()
                        .filter(|(t, _)| inside.contains(t))
                        .map(move |(t, via)| format!("  {} → {} (names `{via}`)", name(m), name(t)))
                })
                .collect();
            format!(
                "a cycle among {}:\n{}",
                component.iter().map(|m| name(m)).collect::<Vec<_>>().join(", "),
                how.join("\n")
            )
        })
        .collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle() {
    // Held against a graph it must reject, so that the test above cannot pass by seeing nothing.
    let m = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    let mut edges = BTreeMap::new();
    edges.insert(m("a"), BTreeMap::from([(m("b"), "b::x".to_string())]));
    edges.insert(m("b"), BTreeMap::from([(m("c"), "c::y".to_string())]));
    edges.insert(m("c"), BTreeMap::from([(m("a"), "a::z".to_string())]));
    edges.insert(m("d"), BTreeMap::from([(m("a"), "a::z".to_string())]));
    assert_eq!(cycles(&edges), vec![vec![m("a"), m("b"), m("c")]]);
    // And the real graph has edges to check.
    let g = graph();
    assert!(g.edges.values().map(BTreeMap::len).sum::<usize>() > 50);
    assert!(g.edges[&m("controller::reconcile")].keys().any(|t| t.first().is_some_and(|s| s == "api")));
}

#[test]
fn no_file_over_600_lines_and_no_function_over_100() {
    let g = graph();
    let mut problems = g.long_files.clone();
    problems.extend(g.long_fns.iter().cloned());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
