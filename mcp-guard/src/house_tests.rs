//! The crate's module graph has no import cycle: every module's `crate::…` references are
//! read from its source and the graph is searched for a cycle.

use std::collections::BTreeMap;
use std::path::Path;

/// Module name → the crate modules its code (comments left out) names.
fn graph() -> BTreeMap<String, Vec<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut graph = BTreeMap::new();
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let name = match stem.as_str() {
            "mod" => file
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            "private" => "__private".to_owned(),
            _ => stem,
        };
        if name == "lib" || name.ends_with("_tests") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable");
        let mut deps: Vec<String> = Vec::new();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let dep: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !dep.is_empty() && dep != name && !deps.contains(&dep) {
                    deps.push(dep);
                }
            }
        }
        graph.insert(name, deps);
    }
    graph
}

fn cycle(graph: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_owned());
            return Some(c);
        }
        if done.iter().any(|d| d == n) {
            return None;
        }
        path.push(n.to_owned());
        for d in graph.get(n).into_iter().flatten() {
            if graph.contains_key(d)
                && let Some(c) = visit(d, graph, path, done)
            {
                return Some(c);
            }
        }
        path.pop();
        done.push(n.to_owned());
        None
    }
    let mut done = Vec::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_module_graph_has_no_cycle() {
    let g = graph();
    assert!(g.len() > 15, "modules found: {g:?}");
    assert_eq!(cycle(&g), None, "import cycle in {g:#?}");
}

#[test]
fn the_cycle_search_finds_one() {
    let mut g = BTreeMap::new();
    g.insert("a".to_owned(), vec!["b".to_owned()]);
    g.insert("b".to_owned(), vec!["a".to_owned()]);
    assert_eq!(cycle(&g).map(|c| c.len()), Some(3));
}
