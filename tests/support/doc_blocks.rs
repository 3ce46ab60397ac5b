//! The ```sh blocks of the Markdown docs, and the one marker of a block the end-to-end suite does not
//! run: the line right above its fence reads `<!-- not run by the e2e suite: <reason> -->`.
//! Shared by the e2e cases that run documented commands (`install.rs`, `helm.rs`) and by
//! `tests/integration/docs.rs`, which fails on an unmarked block that no case runs ([`RUN_BY_E2E`]).

pub const MARKER_OPEN: &str = "<!-- not run by the e2e suite:";
pub const MARKER_CLOSE: &str = "-->";

/// The docs, and the section of each (a heading, with its subsections; `None`: the whole file),
/// whose unmarked blocks the end-to-end suite runs as written. Every other block must be marked.
pub const RUN_BY_E2E: &[(&str, Option<&str>)] = &[
    // install::readme_install_and_worked_example_run_as_written, against the fake ConductorOne.
    ("README.md", Some("Quickstart")),
    // install::readme_install_and_worked_example_run_as_written (config/default and crds/) and
    // install::namespaced_install_reads_no_secret_outside_its_namespaces (config/namespaced).
    ("docs/install.md", Some("From a checkout")),
    // helm::chart_readme_runs_as_written_with_a_real_helm, every block in order.
    ("charts/baton-operator/README.md", None),
];

#[derive(Clone, Debug)]
pub struct Block {
    /// The commands, one line per line of the fence, without the fence.
    pub text: String,
    /// 1-based line of the opening fence.
    pub line: usize,
    /// The headings the block is under, outermost first.
    pub headings: Vec<String>,
    /// The marker's reason, when the block is marked.
    pub skip: Option<String>,
}

impl Block {
    pub fn under(&self, section: Option<&str>) -> bool {
        section.is_none_or(|s| self.headings.iter().any(|h| h == s))
    }
}

/// Every ```sh block of `markdown`, in order.
pub fn sh_blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut headings: Vec<(usize, String)> = Vec::new();
    // Some(true) inside a ```sh fence, Some(false) inside any other fence.
    let mut fence: Option<bool> = None;
    let mut block = String::new();
    let (mut start, mut skip, mut indent) = (0, None, 0);
    let mut previous = "";
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(is_sh) = fence {
            if trimmed.starts_with("```") {
                if is_sh {
                    out.push(Block {
                        text: std::mem::take(&mut block),
                        line: start,
                        headings: headings.iter().map(|(_, h)| h.clone()).collect(),
                        skip: skip.take(),
                    });
                }
                block.clear();
                fence = None;
            } else if is_sh {
                // Without the fence's own indentation (a block in a list item), and only that.
                let cut = line.len() - line.trim_start().len();
                block.push_str(&line[cut.min(indent)..]);
                block.push('\n');
            }
            previous = line;
            continue;
        }
        if let Some(lang) = trimmed.strip_prefix("```") {
            fence = Some(lang.trim() == "sh");
            start = i + 1;
            indent = line.len() - trimmed.len();
            skip = marker(previous);
        } else if line.starts_with('#') {
            let level = line.chars().take_while(|c| *c == '#').count();
            headings.retain(|(l, _)| *l < level);
            headings.push((level, line[level..].trim().to_owned()));
        }
        previous = line;
    }
    out
}

/// The reason of a marker line, `Some("")` for a marker without one.
pub fn marker(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix(MARKER_OPEN)?;
    Some(rest.strip_suffix(MARKER_CLOSE).unwrap_or(rest).trim().to_owned())
}
