//! No import cycle between the modules of one crate (docs/ARCHITECTURE.md, "Invariants").
//!
//! Cargo already refuses cycles between crates; inside a crate nothing does, and a cycle there
//! means two files that can only be read, changed or moved together. This reads every
//! `crate::…` and `super::…` path in each crate's sources (test modules aside), resolves it to the
//! file that defines it, lifts each edge to the two sibling modules under the files' closest
//! common parent (so `a/x.rs → b/y.rs` counts as `a → b`), and fails on every strongly connected
//! set of siblings with more than one member, naming the lines that close the cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{root, sources};

/// A module path inside a crate: `[]` for the crate root, `["query", "params"]` for
/// `src/query/params.rs`.
type Module = Vec<String>;

/// The crates whose modules are checked: every `src/` of the workspace.
const CRATES: &[&str] = &[
    "src",
    "crates/core/src",
    "crates/providers/kit/src",
    "crates/providers/p100/src",
    "crates/providers/corebanq/src",
    "crates/store/src",
    "crates/sim/src",
    "crates/server/src",
    "crates/bench/src",
];

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    let root_file = parts.is_empty() && matches!(stem, "lib" | "main");
    if stem != "mod" && !root_file {
        parts.push(stem.to_owned());
    }
    parts
}

/// The source before its first `#[cfg(test)]` module, without `//` comments. (An inline test
/// module's `super` is the file itself, not its parent; test code is outside this invariant.)
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path a `use` tree spells from `s` on: `a::b`, `{a, b::{c, d}}`, `*`.
fn path_trees(s: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let bytes = s.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i] as char).is_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if i < bytes.len() && bytes[i] == b'{' {
        i += 1;
        loop {
            let depth = prefix.len();
            i += path_trees(&s[i..], prefix, out);
            prefix.truncate(depth);
            skip_ws(&mut i);
            match bytes.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => return i + 1,
                _ => return i,
            }
            skip_ws(&mut i);
            if bytes.get(i) == Some(&b'}') {
                return i + 1;
            }
        }
    }
    let start = i;
    while i < bytes.len() && is_ident(bytes[i] as char) {
        i += 1;
    }
    if i == start {
        out.push(prefix.clone());
        return i;
    }
    prefix.push(s[start..i].to_owned());
    if s[i..].starts_with("::") {
        return i + 2 + path_trees(&s[i + 2..], prefix, out);
    }
    out.push(prefix.clone());
    i
}

/// The paths of a file, each with the module it starts from and its line.
fn references(module: &Module, text: &str) -> Vec<(Module, Vec<String>, usize)> {
    let mut out = Vec::new();
    for keyword in ["crate::", "super::"] {
        for (at, _) in text.match_indices(keyword) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| is_ident(c) || c == '$' || c == ':') {
                continue;
            }
            let mut base = if keyword == "crate::" {
                Vec::new()
            } else {
                module[..module.len().saturating_sub(1)].to_vec()
            };
            let mut rest = &text[at + keyword.len()..];
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            let line = text[..at].matches('\n').count() + 1;
            let mut paths = Vec::new();
            path_trees(rest, &mut Vec::new(), &mut paths);
            out.extend(paths.into_iter().map(|p| (base.clone(), p, line)));
        }
    }
    out
}

fn is_prefix(a: &[String], b: &[String]) -> bool {
    a.len() <= b.len() && a == &b[..a.len()]
}

#[derive(Default)]
struct Graph {
    /// Lifted edge → one reference that makes it (file, line).
    edges: BTreeMap<(Module, Module), (PathBuf, usize)>,
}

impl Graph {
    fn of(src_dir: &str) -> Self {
        let src = root().join(src_dir);
        let files = sources(src_dir);
        let modules: BTreeSet<Module> = files.iter().map(|(f, _)| module_of(&src, f)).collect();
        let mut graph = Graph::default();
        for (file, text) in &files {
            let from = module_of(&src, file);
            for (base, path, line) in references(&from, &code(text)) {
                let mut to = base;
                for segment in path {
                    to.push(segment);
                    if !modules.contains(&to) {
                        to.pop();
                        break;
                    }
                }
                if is_prefix(&to, &from) || is_prefix(&from, &to) {
                    continue; // a parent's re-exports, or a module's own children
                }
                let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
                let edge = (from[..=common].to_vec(), to[..=common].to_vec());
                graph.edges.entry(edge).or_insert((file.clone(), line));
            }
        }
        graph
    }

    /// Strongly connected sets of more than one module (Tarjan).
    fn cycles(&self) -> Vec<Vec<Module>> {
        let nodes: BTreeSet<&Module> = self.edges.keys().flat_map(|(a, b)| [a, b]).collect();
        let index: BTreeMap<&Module, usize> =
            nodes.iter().enumerate().map(|(i, m)| (*m, i)).collect();
        let nodes: Vec<&Module> = nodes.into_iter().collect();
        let mut next = vec![Vec::new(); nodes.len()];
        for (a, b) in self.edges.keys() {
            next[index[a]].push(index[b]);
        }
        let mut state = Tarjan {
            next,
            index: vec![None; nodes.len()],
            low: vec![0; nodes.len()],
            stack: Vec::new(),
            on_stack: vec![false; nodes.len()],
            counter: 0,
            sets: Vec::new(),
        };
        for v in 0..nodes.len() {
            if state.index[v].is_none() {
                state.visit(v);
            }
        }
        state
            .sets
            .into_iter()
            .filter(|s| s.len() > 1)
            .map(|s| s.into_iter().map(|i| nodes[i].clone()).collect())
            .collect()
    }
}

struct Tarjan {
    next: Vec<Vec<usize>>,
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    stack: Vec<usize>,
    on_stack: Vec<bool>,
    counter: usize,
    sets: Vec<Vec<usize>>,
}

impl Tarjan {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.counter);
        self.low[v] = self.counter;
        self.counter += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for w in self.next[v].clone() {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(i) if self.on_stack[w] => self.low[v] = self.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut set = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                set.push(w);
                if w == v {
                    break;
                }
            }
            self.sets.push(set);
        }
    }
}

#[test]
fn no_module_imports_itself_back_through_others() {
    let mut failures = Vec::new();
    for src in CRATES {
        let graph = Graph::of(src);
        for set in graph.cycles() {
            let members: BTreeSet<&Module> = set.iter().collect();
            let name = |m: &Module| format!("{src}/{}", m.join("/"));
            let mut lines = vec![format!(
                "cycle: {}",
                set.iter().map(name).collect::<Vec<_>>().join(" ↔ ")
            )];
            for ((a, b), (file, line)) in &graph.edges {
                if members.contains(a) && members.contains(b) {
                    let file = file.strip_prefix(root()).unwrap_or(file).display();
                    lines.push(format!("  {} → {} ({file}:{line})", name(a), name(b)));
                }
            }
            failures.push(lines.join("\n"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    // The checker itself: two sibling files that name each other are one cycle.
    let a: Module = vec!["a".into()];
    let b: Module = vec!["b".into()];
    let mut graph = Graph::default();
    graph
        .edges
        .insert((a.clone(), b.clone()), (PathBuf::from("a.rs"), 1));
    graph
        .edges
        .insert((b.clone(), a.clone()), (PathBuf::from("b.rs"), 1));
    assert_eq!(graph.cycles().len(), 1);
    let refs = references(
        &vec!["x".into(), "y".into()],
        "use super::{p::Q, r};\nuse crate::s::{t::{U, V}};",
    );
    let paths: Vec<_> = refs
        .iter()
        .map(|(base, p, line)| (base.join("/"), p.join("::"), *line))
        .collect();
    assert_eq!(
        paths,
        [
            ("".to_owned(), "s::t::U".to_owned(), 2),
            ("".to_owned(), "s::t::V".to_owned(), 2),
            ("x".to_owned(), "p::Q".to_owned(), 1),
            ("x".to_owned(), "r".to_owned(), 1),
        ]
    );
}
