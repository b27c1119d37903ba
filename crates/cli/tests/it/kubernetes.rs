//! `examples/kubernetes/`: the Indexed Job's manifests, read as text, agree with each other
//! (the number of parts, the journal's index, volumes and mounts, the Secret the README
//! creates); and their command lines run as Kubernetes would run them, pod by pod, against a
//! simulated fleet, with each pod's volumes as directories: every host runs exactly once, a
//! Job applied again or one index run again alone sends no command twice, and the merge Job
//! reports every host once, all OK. So the example cannot drift from fleetsh.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use fleetsh_sim::{SimConfig, SimFleet};
use serde_json::{Map, Value};

use super::*;

/// `examples/kubernetes/NAME`'s text.
fn example_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/kubernetes")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// The subset of YAML the manifests are written in.

/// Reads block mappings and sequences, plain and quoted scalars (every scalar as a string, as
/// written: `0400` stays `"0400"`), `[a, b]` flow sequences, `{}`, `|` literal blocks and `#`
/// comments, one document per file. Anything else panics naming the line: the manifests keep
/// to this subset.
fn yaml(text: &str) -> Value {
    let mut r = Reader {
        lines: text.lines().collect(),
        pos: 0,
        pending: None,
    };
    let value = match r.peek() {
        Some((indent, _)) => r.node(indent),
        None => Value::Null,
    };
    if let Some((_, rest)) = r.peek() {
        panic!("line {}: unexpected {rest:?}", r.pos + 1);
    }
    value
}

struct Reader<'a> {
    lines: Vec<&'a str>,
    pos: usize,
    /// The rest of a `- key: value` line, read as a mapping's first line at its own column.
    pending: Option<(usize, String)>,
}

impl Reader<'_> {
    /// The next line with content: its indentation and its text, comment removed.
    fn peek(&mut self) -> Option<(usize, String)> {
        if let Some(p) = &self.pending {
            return Some(p.clone());
        }
        while let Some(line) = self.lines.get(self.pos) {
            let text = strip_comment(line);
            let body = text.trim_start_matches(' ');
            assert!(!body.starts_with('\t'), "line {}: a tab", self.pos + 1);
            if body.trim().is_empty() || body.trim() == "---" {
                self.pos += 1;
                continue;
            }
            return Some((text.len() - body.len(), body.trim_end().to_string()));
        }
        None
    }

    fn advance(&mut self) {
        self.pending = None;
        self.pos += 1;
    }

    fn node(&mut self, indent: usize) -> Value {
        match self.peek() {
            Some((_, text)) if is_item(&text) => self.seq(indent),
            Some(_) => self.map(indent),
            None => Value::Null,
        }
    }

    fn seq(&mut self, indent: usize) -> Value {
        let mut items = Vec::new();
        while let Some((at, text)) = self.peek() {
            if at != indent || !is_item(&text) {
                assert!(at <= indent, "line {}: indentation", self.pos + 1);
                break;
            }
            let rest = text[1..].trim_start();
            if rest.is_empty() {
                self.advance();
                items.push(match self.peek() {
                    Some((at, _)) if at > indent => self.node(at),
                    _ => Value::Null,
                });
            } else if key_of(rest).is_some() {
                let column = indent + text.len() - rest.len();
                self.pending = Some((column, rest.to_string()));
                items.push(self.map(column));
            } else {
                let rest = rest.to_string();
                self.advance();
                items.push(self.value(&rest, indent));
            }
        }
        Value::Array(items)
    }

    fn map(&mut self, indent: usize) -> Value {
        let mut map = Map::new();
        while let Some((at, text)) = self.peek() {
            if at < indent || (at == indent && is_item(&text)) {
                break;
            }
            assert_eq!(at, indent, "line {}: indentation", self.pos + 1);
            let Some((key, rest)) = key_of(&text) else {
                panic!("line {}: expected `key: value`, not {text:?}", self.pos + 1);
            };
            let (key, rest) = (key.to_string(), rest.to_string());
            self.advance();
            let value = if rest.is_empty() {
                // The block under the key: more indented, or a sequence at the key's column.
                match self.peek() {
                    Some((at, _)) if at > indent => self.node(at),
                    Some((at, t)) if at == indent && is_item(&t) => self.seq(at),
                    _ => Value::Null,
                }
            } else {
                self.value(&rest, indent)
            };
            assert!(
                map.insert(key.clone(), value).is_none(),
                "duplicate key {key}"
            );
        }
        Value::Object(map)
    }

    /// The value written after `key:` or `-` on a line indented `indent`.
    fn value(&mut self, text: &str, indent: usize) -> Value {
        match text {
            "|" | "|-" => self.literal(text == "|", indent),
            "{}" => Value::Object(Map::new()),
            _ if text.starts_with('[') => {
                let inner = text
                    .strip_prefix('[')
                    .and_then(|t| t.strip_suffix(']'))
                    .unwrap_or_else(|| panic!("line {}: a flow sequence on one line", self.pos));
                Value::Array(
                    split_outside_quotes(inner, ',')
                        .iter()
                        .map(|s| s.trim())
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(scalar(s)))
                        .collect(),
                )
            }
            _ => {
                assert!(
                    !text.starts_with(['|', '>', '{', '&', '*', '!']) && !is_item(text),
                    "line {}: {text:?} is beyond the YAML this test reads",
                    self.pos
                );
                Value::String(scalar(text))
            }
        }
    }

    /// A `|` block: the following lines indented more than `indent`, less their common
    /// indentation; one final newline with `|`, none with `|-`.
    fn literal(&mut self, keep_newline: bool, indent: usize) -> Value {
        let mut lines: Vec<&str> = Vec::new();
        let mut block = None;
        while let Some(line) = self.lines.get(self.pos) {
            if line.trim().is_empty() {
                lines.push("");
                self.pos += 1;
                continue;
            }
            let spaces = line.len() - line.trim_start_matches(' ').len();
            if spaces <= indent {
                break;
            }
            let at = *block.get_or_insert(spaces);
            assert!(spaces >= at, "line {}: outdented in a block", self.pos + 1);
            lines.push(&line[at..]);
            self.pos += 1;
        }
        while lines.last() == Some(&"") {
            lines.pop();
        }
        let mut text = lines.join("\n");
        if keep_newline && !text.is_empty() {
            text.push('\n');
        }
        Value::String(text)
    }
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `key` and the rest of a `key: rest` or `key:` line (plain keys only).
fn key_of(text: &str) -> Option<(&str, &str)> {
    if text.starts_with(['"', '\'', '[', '{']) {
        return None;
    }
    let at = text
        .char_indices()
        .find(|&(i, c)| c == ':' && text[i + 1..].chars().next().is_none_or(|n| n == ' '))?
        .0;
    Some((&text[..at], text[at + 1..].trim()))
}

/// `line` without a `#` comment (a `#` at the start or after a blank, outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some('"') if c == '"' && prev != '\\' => quote = None,
            Some('\'') if c == '\'' => quote = None,
            Some(_) => {}
            None if (c == '"' || c == '\'') && (prev.is_whitespace() || "[,:-".contains(prev)) => {
                quote = Some(c);
            }
            None if c == '#' && prev.is_whitespace() => return &line[..i],
            None => {}
        }
        prev = c;
    }
    line
}

fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut quote) = (Vec::new(), 0, None);
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == sep => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            None => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A scalar's text: quotes removed (with `\"`, `\\`, `\n`, `\t` in double quotes and `''` in
/// single quotes), a plain scalar as written.
fn scalar(text: &str) -> String {
    if let Some(inner) = text.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .unwrap_or_else(|| panic!("unterminated {text:?}"));
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            out.push(match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some(e @ ('"' | '\\')) => e,
                    other => panic!("escape \\{other:?} in {text:?}"),
                },
                (c, false) => c,
            });
        }
        out
    } else if let Some(inner) = text.strip_prefix('\'') {
        inner
            .strip_suffix('\'')
            .unwrap_or_else(|| panic!("unterminated {text:?}"))
            .replace("''", "'")
    } else {
        text.to_string()
    }
}

#[test]
fn the_yaml_subset_reads_as_yaml_does() {
    let v = yaml(concat!(
        "# a comment\n",
        "a: 1 # another\n",
        "b:\n",
        "  c: \"x # y\"\n",
        "  d: 'it''s'\n",
        "e:\n",
        "- f\n",
        "- g: h\n",
        "  i: [j, \"k\"]\n",
        "l:\n",
        "  - |\n",
        "    one\n",
        "      two\n",
        "\n",
        "  - m:n\n",
        "o: {}\n",
    ));
    assert_eq!(
        v,
        serde_json::json!({
            "a": "1",
            "b": {"c": "x # y", "d": "it's"},
            "e": ["f", {"g": "h", "i": ["j", "k"]}],
            "l": ["one\n  two\n", "m:n"],
            "o": {},
        })
    );
}

// ---------------------------------------------------------------------------------------------
// The manifests.

/// `value`'s field at `path`: keys and sequence positions separated by dots.
fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    let mut v = value;
    for part in path.split('.') {
        v = match part.parse::<usize>() {
            Ok(i) => v.get(i),
            Err(_) => v.get(part),
        }
        .unwrap_or_else(|| panic!("no {path} (at {part}) in {value:#}"));
    }
    v
}

fn string<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a scalar"))
}

/// A count written as YAML (`"4"`) or set by a JSON patch (`4`).
fn count(value: &Value, path: &str) -> usize {
    let v = at(value, path);
    v.as_u64()
        .map(|n| n as usize)
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("{path} = {v} is not a count"))
}

fn list<'a>(value: &'a Value, path: &str) -> &'a Vec<Value> {
    at(value, path)
        .as_array()
        .unwrap_or_else(|| panic!("{path} is not a sequence"))
}

/// The argument after `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> &'a str {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    args.get(i + 1)
        .unwrap_or_else(|| panic!("{flag} without a value"))
}

fn strings(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

/// The example's four manifests, and the README.
struct Example {
    job: Value,
    merge: Value,
    configmap: Value,
    pvc: Value,
    readme: String,
}

impl Example {
    fn read() -> Example {
        Example {
            job: yaml(&example_text("job.yaml")),
            merge: yaml(&example_text("merge-job.yaml")),
            configmap: yaml(&example_text("configmap.yaml")),
            pvc: yaml(&example_text("pvc.yaml")),
            readme: example_text("README.md"),
        }
    }

    /// The Secret the README's `kubectl create secret generic NAME --from-file=KEY=PATH ...`
    /// makes: its name and keys.
    fn secret(&self) -> (String, Vec<String>) {
        let start = self
            .readme
            .find("kubectl create secret generic")
            .expect("the README creates the Secret");
        let mut command = String::new();
        for line in self.readme[start..].lines() {
            command.push_str(line.trim_end().trim_end_matches('\\'));
            command.push(' ');
            if !line.trim_end().ends_with('\\') {
                break;
            }
        }
        let words: Vec<&str> = command.split_whitespace().collect();
        let name = words[4].to_string();
        let keys = words
            .iter()
            .filter_map(|w| w.strip_prefix("--from-file="))
            .map(|w| {
                w.split_once('=')
                    .unwrap_or_else(|| panic!("--from-file={w} names no key"))
                    .0
                    .to_string()
            })
            .collect();
        (name, keys)
    }

    /// The JSON patch of the README's `kubectl patch --local -f job.yaml ... -p '[...]'`,
    /// which makes a Job running one index alone.
    fn one_index_patch(&self) -> Value {
        let start = self
            .readme
            .find("kubectl patch --local -f job.yaml")
            .expect("the README runs one index alone");
        let rest = &self.readme[start..];
        let open = rest.find("-p '").expect("-p '...'") + 4;
        let close = open + rest[open..].find('\'').expect("the patch's closing quote");
        serde_json::from_str(&rest[open..close]).expect("the patch is JSON")
    }
}

/// The blocks of `text` fenced as ```` ```lang ````, each less its fence's indentation, with a
/// final newline.
fn fenced(text: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for line in text.lines() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        match &mut open {
            None if body == format!("```{lang}") => open = Some((indent, String::new())),
            None => {}
            Some((_, block)) if body == "```" => {
                blocks.push(std::mem::take(block));
                open = None;
            }
            Some((at, block)) => {
                block.push_str(line.get(*at..).unwrap_or(""));
                block.push('\n');
            }
        }
    }
    blocks
}

/// `text`'s lines that hold YAML: comments, blank lines and `...` left out.
fn content_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| strip_comment(l).trim_end().to_string())
        .filter(|l| !l.trim().is_empty() && l.trim() != "...")
        .collect()
}

/// Applies a JSON patch (RFC 6902: `test`, `replace`, `add`), as `kubectl patch --type=json`.
fn json_patch(doc: &mut Value, patch: &Value) {
    for op in patch.as_array().expect("a JSON patch is a list") {
        let path = op["path"].as_str().expect("path");
        let (parent, last) = path.rsplit_once('/').expect("a JSON pointer");
        let target = doc
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent}"));
        let value = op["value"].clone();
        match op["op"].as_str().expect("op") {
            "test" => assert_eq!(
                target.pointer(&format!("/{last}")),
                Some(&value),
                "the patch's test of {path}"
            ),
            "replace" => {
                *target
                    .pointer_mut(&format!("/{last}"))
                    .unwrap_or_else(|| panic!("no {path} to replace")) = value;
            }
            "add" => match target {
                Value::Object(m) => {
                    m.insert(last.to_string(), value);
                }
                Value::Array(a) if last == "-" => a.push(value),
                Value::Array(a) => a.insert(last.parse().expect("an index"), value),
                _ => panic!("cannot add at {path}"),
            },
            other => panic!("op {other} is beyond this test"),
        }
    }
}

/// The pod template's spec and its one container.
fn pod_of(job: &Value) -> (&Value, &Value) {
    let pod = at(job, "spec.template.spec");
    let containers = list(pod, "containers");
    assert_eq!(containers.len(), 1, "one container per pod");
    (pod, &containers[0])
}

/// The volume named `name` of `pod`.
fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    list(pod, "volumes")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("the container mounts {name}, which is no volume of the pod"))
}

#[test]
fn the_kubernetes_example_manifests_agree() {
    let ex = Example::read();
    let job = &ex.job;
    assert_eq!(string(job, "apiVersion"), "batch/v1");
    assert_eq!(string(job, "kind"), "Job");
    assert_eq!(string(job, "spec.completionMode"), "Indexed");
    let (pod, container) = pod_of(job);
    let args = strings(list(container, "args"));
    assert_eq!(args[0], "run");

    // One pod per part: the pod cannot see the count, so --shard says it.
    let parts: usize = flag(&args, "--shard")
        .strip_prefix("auto/")
        .expect("--shard auto/N")
        .parse()
        .expect("N");
    assert_eq!(count(job, "spec.completions"), parts);
    assert_eq!(count(job, "spec.parallelism"), parts);

    // One journal per index.
    assert!(
        flag(&args, "--journal").contains("$(JOB_COMPLETION_INDEX)"),
        "{args:?}"
    );

    // Retries make new pods (which find the journal on the volume), one at a time per index.
    assert_eq!(string(pod, "restartPolicy"), "Never");
    assert_eq!(string(job, "spec.podReplacementPolicy"), "Failed");
    for rule in list(job, "spec.podFailurePolicy.rules") {
        if let Some(codes) = rule.get("onExitCodes") {
            assert_eq!(codes["containerName"], container["name"]);
        }
    }
    assert!(count(job, "spec.backoffLimitPerIndex") >= 1);
    assert!(count(job, "spec.backoffLimit") >= parts * count(job, "spec.backoffLimitPerIndex"));

    // Every mount names a volume of its pod and every volume is mounted; ConfigMap and Secret
    // read-only; the journals on pvc.yaml's ReadWriteMany claim, in the same directory for both
    // Jobs; the hosts from configmap.yaml; the Secret the README creates, mode 0400.
    let journal_dir = |job: &Value| -> (String, String) {
        let (pod, container) = pod_of(job);
        let mut names: Vec<&str> = list(pod, "volumes")
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        let mut mounted = Vec::new();
        let mut journals = None;
        for mount in list(container, "volumeMounts") {
            let name = string(mount, "name");
            mounted.push(name);
            let v = volume(pod, name);
            if let Some(claim) = v.get("persistentVolumeClaim") {
                assert_eq!(claim["claimName"], at(&ex.pvc, "metadata.name").clone());
                journals = Some((
                    string(mount, "mountPath").to_string(),
                    mount["subPath"].as_str().unwrap_or("").to_string(),
                ));
            } else {
                assert_eq!(mount["readOnly"], "true", "{mount}");
            }
            if let Some(cm) = v.get("configMap") {
                assert_eq!(cm["name"], at(&ex.configmap, "metadata.name").clone());
                let key = string(mount, "subPath");
                assert!(at(&ex.configmap, "data").get(key).is_some(), "{key}");
            }
            if let Some(secret) = v.get("secret") {
                let (name, keys) = ex.secret();
                assert_eq!(string(secret, "secretName"), name);
                assert_eq!(string(secret, "defaultMode"), "0400");
                assert!(keys.contains(&"id_ed25519".to_string()), "{keys:?}");
                assert!(keys.contains(&"known_hosts".to_string()), "{keys:?}");
            }
        }
        names.sort();
        mounted.sort();
        assert_eq!(names, mounted, "every volume mounted once");
        journals.expect("a volume for the journals")
    };
    let (journal_mount, subpath) = journal_dir(job);
    assert!(
        flag(&args, "--journal").starts_with(&format!("{journal_mount}/")),
        "the journal is on the shared volume"
    );
    assert_eq!(journal_dir(&ex.merge), (journal_mount, subpath));
    assert!(
        list(&ex.pvc, "spec.accessModes")
            .iter()
            .any(|m| m.as_str() == Some("ReadWriteMany")),
        "a re-run pod may be on another node"
    );

    // The merge Job: not indexed, no retry, the same image.
    let (merge_pod, merge_container) = pod_of(&ex.merge);
    assert!(ex.merge["spec"].get("completionMode").is_none());
    assert_eq!(count(&ex.merge, "spec.backoffLimit"), 0);
    assert_eq!(string(merge_pod, "restartPolicy"), "Never");
    assert_eq!(merge_container["image"], container["image"]);
    let script = strings(list(merge_container, "args")).join(" ");
    assert!(script.contains("fleetsh merge"), "{script}");

    // The README's one-index Job keeps the part's journal.
    let mut one = job.clone();
    json_patch(&mut one, &ex.one_index_patch());
    let (_, patched) = pod_of(&one);
    let patched_args = strings(list(patched, "args"));
    let (i, n) = flag(&patched_args, "--shard")
        .split_once('/')
        .expect("--shard I/N");
    assert_eq!(n.parse::<usize>().unwrap(), parts);
    assert_eq!(
        flag(&patched_args, "--journal"),
        flag(&args, "--journal").replace("$(JOB_COMPLETION_INDEX)", i)
    );
    assert_eq!(count(&one, "spec.completions"), 1);

    // The README quotes the manifests as they are: its YAML fragments are their lines in order,
    // pod 2's command line is job.yaml's, and the merge script is merge-job.yaml's.
    let manifests: Vec<Vec<String>> = ["job.yaml", "merge-job.yaml", "configmap.yaml", "pvc.yaml"]
        .iter()
        .map(|f| content_lines(&example_text(f)))
        .collect();
    for block in fenced(&ex.readme, "yaml") {
        let lines = content_lines(&block);
        assert!(
            manifests.iter().any(|m| {
                let mut m = m.iter();
                lines.iter().all(|l| m.any(|x| x == l))
            }),
            "a YAML fragment of the README that no manifest has:\n{block}"
        );
    }
    let env = BTreeMap::from([("JOB_COMPLETION_INDEX".to_string(), "2".to_string())]);
    let pod_2: Vec<String> = std::iter::once("fleetsh".to_string())
        .chain(args.iter().map(|a| expand(a, &env)))
        .collect();
    let quoted: Vec<Vec<String>> = fenced(&ex.readme, "sh")
        .iter()
        .map(|b| {
            b.replace("\\\n", " ")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .collect();
    assert!(
        quoted.contains(&pod_2),
        "the README's command line of pod 2: {pod_2:?}"
    );
    let script = string(merge_container, "args.0");
    assert!(
        fenced(&ex.readme, "sh").iter().any(|b| b == script),
        "the README quotes the merge script:\n{script}"
    );

    // The Dockerfile builds this repository's command line.
    let dockerfile = example_text("Dockerfile");
    assert!(dockerfile.contains("cargo install --locked --path crates/cli"));
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"fleetsh\""));
}

// ---------------------------------------------------------------------------------------------
// Running the pods.

/// A simulated cluster's storage: the claim's volume shared by every pod, and each pod's own
/// copies of the ConfigMap and the Secret, in a temporary directory.
struct Cluster<'a> {
    dir: tempfile::TempDir,
    ex: &'a Example,
    sim: &'a SimFleet,
    pods: std::cell::Cell<usize>,
}

impl Cluster<'_> {
    /// The claim's directory.
    fn claim(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join("claims").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Makes `volume`'s directory for a new pod (in `pod_dir`) and returns it.
    fn volume_dir(&self, volume: &Value, pod_dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        if let Some(claim) = volume.get("persistentVolumeClaim") {
            return self.claim(string(claim, "claimName"));
        }
        let dir = pod_dir.join("volumes").join(string(volume, "name"));
        std::fs::create_dir_all(&dir).unwrap();
        if volume.get("configMap").is_some() {
            // The example's list names the user's hosts: the simulated fleet's instead.
            let data = at(&self.ex.configmap, "data").as_object().unwrap();
            assert_eq!(data.len(), 1, "one host list");
            for key in data.keys() {
                std::fs::copy(self.sim.hosts_file(), dir.join(key)).unwrap();
            }
        } else if let Some(secret) = volume.get("secret") {
            let mode = u32::from_str_radix(string(secret, "defaultMode"), 8).unwrap();
            for key in self.ex.secret().1 {
                let from = match key.as_str() {
                    "id_ed25519" => self.sim.client_key_file(),
                    "known_hosts" => self.sim.known_hosts_file(),
                    other => panic!("the Secret's {other} is not known to this test"),
                };
                std::fs::copy(from, dir.join(&key)).unwrap();
                std::fs::set_permissions(dir.join(&key), std::fs::Permissions::from_mode(mode))
                    .unwrap();
            }
        } else {
            panic!("a volume this test cannot make: {volume}");
        }
        dir
    }

    /// Starts `job`'s pod for `index` (`None`: not an Indexed Job) as the kubelet would: the
    /// container's command and arguments with `$(VAR)` expanded, each mount path replaced by
    /// its volume's directory, `remote` instead of the command after `--` (a command the
    /// simulated hosts have), and the environment of a pod: `JOB_COMPLETION_INDEX` and no other
    /// scheduler's variables, an empty home.
    fn start_pod(&self, job: &Value, index: Option<usize>, remote: &str) -> std::process::Child {
        let n = self.pods.get();
        self.pods.set(n + 1);
        let pod_dir = self.dir.path().join("pods").join(n.to_string());
        let home = pod_dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let (pod, container) = pod_of(job);

        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        for mount in list(container, "volumeMounts") {
            let mut local = self.volume_dir(volume(pod, string(mount, "name")), &pod_dir);
            if let Some(sub) = mount.get("subPath") {
                local = local.join(sub.as_str().unwrap());
                if !local.exists() {
                    // The kubelet makes a missing subPath a directory.
                    std::fs::create_dir_all(&local).unwrap();
                }
            }
            mounts.push((string(mount, "mountPath").to_string(), local));
        }
        mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));

        let mut env: BTreeMap<String, String> = BTreeMap::new();
        if let Some(i) = index {
            env.insert("JOB_COMPLETION_INDEX".into(), i.to_string());
        }
        for var in container
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            env.insert(
                string(var, "name").to_string(),
                string(var, "value").to_string(),
            );
        }

        let mut command: Vec<String> = match container.get("command") {
            Some(c) => strings(c.as_array().unwrap()),
            None => vec!["fleetsh".into()],
        };
        let mut args = container
            .get("args")
            .map(|a| strings(a.as_array().unwrap()))
            .unwrap_or_default();
        if command[0] == "fleetsh" {
            let dashes = args
                .iter()
                .position(|a| a == "--")
                .expect("a remote command");
            assert!(dashes + 1 < args.len(), "a remote command after --");
            args.truncate(dashes + 1);
            args.push(remote.to_string());
        }
        let root = self.dir.path().display().to_string();
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                let a = rewrite(&expand(a, &env), &mounts);
                for word in a.split_whitespace() {
                    let word = word.trim_matches(['"', '\'']);
                    assert!(
                        !word.starts_with('/') || word.starts_with(&root) || word == "/dev/null",
                        "{word} is outside every volume of the pod"
                    );
                }
                a
            })
            .collect();
        command = command.iter().map(|c| expand(c, &env)).collect();

        let bin = PathBuf::from(env!("CARGO_BIN_EXE_fleetsh"));
        let program = match command[0].as_str() {
            "fleetsh" => bin.clone(),
            "/bin/sh" => PathBuf::from("/bin/sh"),
            other => panic!("a program this test does not run: {other}"),
        };
        let path = format!(
            "{}:{}",
            bin.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(program);
        cmd.args(&command[1..]).args(&args);
        for (var, _) in std::env::vars_os() {
            let var = var.to_string_lossy();
            if var.starts_with("SLURM_")
                || var.starts_with("FLEETSH_")
                || ["JOB_COMPLETION_INDEX", "SSH_AUTH_SOCK", "XDG_CONFIG_HOME"]
                    .contains(&var.as_ref())
            {
                cmd.env_remove(var.as_ref());
            }
        }
        cmd.envs(&env)
            .env("HOME", &home)
            .env("PATH", path)
            .current_dir(&home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the pod's command")
    }

    /// Runs every index of an Indexed Job at once (its `parallelism`), or the one pod of
    /// another Job; the outputs by index.
    fn run_job(&self, job: &Value, remote: &str) -> Vec<Output> {
        let children: Vec<std::process::Child> =
            if job["spec"].get("completionMode").and_then(Value::as_str) == Some("Indexed") {
                let n = count(job, "spec.completions");
                assert!(count(job, "spec.parallelism") >= n, "all parts at once");
                (0..n)
                    .map(|i| self.start_pod(job, Some(i), remote))
                    .collect()
            } else {
                vec![self.start_pod(job, None, remote)]
            };
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    }
}

/// Kubernetes' expansion of `$(VAR)` in a container's command and arguments: a variable of
/// the container's environment is replaced, any other left as written; `$$` is `$`.
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some((name, after)) = rest
            .strip_prefix("$(")
            .and_then(|r| r.split_once(')'))
            .filter(|(name, _)| env.contains_key(*name))
        {
            out.push_str(&env[name]);
            rest = after;
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// `text` with each mount path (at the start of a word, followed by `/` or the word's end)
/// replaced by its directory; `mounts` longest path first.
fn rewrite(text: &str, mounts: &[(String, PathBuf)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    'scan: while let Some(c) = rest.chars().next() {
        if out.is_empty() || out.ends_with(|c: char| c.is_whitespace() || "='\"".contains(c)) {
            for (path, local) in mounts {
                if let Some(after) = rest.strip_prefix(path.as_str())
                    && after
                        .chars()
                        .next()
                        .is_none_or(|n| n == '/' || n.is_whitespace() || "'\"".contains(n))
                {
                    out.push_str(local.to_str().unwrap());
                    rest = after;
                    continue 'scan;
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `host:port` of each JSON line, checking each line is an OK result for the user `user`.
fn ok_hosts(out: &Output, user: &str) -> BTreeSet<String> {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = json_lines(out);
    let hosts: BTreeSet<String> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["exit_code"], 0, "{l}");
            assert_eq!(l["user"], user, "{l}");
            format!("{}:{}", l["host"].as_str().unwrap(), l["port"])
        })
        .collect();
    assert_eq!(
        hosts.len(),
        lines.len(),
        "a host twice: {}",
        text(&out.stdout)
    );
    hosts
}

#[test]
fn the_kubernetes_example_runs_every_host_once_and_merges() {
    let ex = Example::read();
    let sim = SimFleet::start_temp(SimConfig {
        count: 42,
        port: 0,
        addr_base: "127.91.0.1".parse().unwrap(),
        ..SimConfig::default()
    })
    .expect("the simulated fleet must start for this test");
    let all: BTreeSet<String> = std::fs::read_to_string(sim.hosts_file())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(all.len(), 42);
    let cluster = Cluster {
        dir: tempfile::tempdir().unwrap(),
        ex: &ex,
        sim: &sim,
        pods: std::cell::Cell::new(0),
    };
    let (_, container) = pod_of(&ex.job);
    let args = strings(list(container, "args"));
    let user = flag(&args, "-l");
    let sent = || -> Vec<u64> { (0..42).map(|i| sim.commands_run(i)).collect() };

    // `kubectl apply -f job.yaml`: each pod runs its part; together, every host once.
    let first = cluster.run_job(&ex.job, "hostname");
    let parts: Vec<BTreeSet<String>> = first.iter().map(|o| ok_hosts(o, user)).collect();
    let mut seen: HashMap<&String, usize> = HashMap::new();
    for h in parts.iter().flatten() {
        *seen.entry(h).or_default() += 1;
    }
    assert_eq!(seen.len(), all.len(), "{parts:?}");
    assert!(seen.keys().all(|h| all.contains(*h)));
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert!(
        parts.iter().all(|p| (10..=11).contains(&p.len())),
        "{parts:?}"
    );
    assert!(sent().iter().all(|&n| n == 1), "{:?}", sent());
    // The journals' directory: the claim's, under the mount's subPath.
    let subpath = list(container, "volumeMounts")
        .iter()
        .find(|m| {
            volume(pod_of(&ex.job).0, string(m, "name"))
                .get("persistentVolumeClaim")
                .is_some()
        })
        .and_then(|m| m.get("subPath"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let journals = cluster
        .claim(string(&ex.pvc, "metadata.name"))
        .join(subpath);
    for i in 0..parts.len() {
        assert!(
            journals.join(format!("journal.{i}")).is_file(),
            "journal.{i}"
        );
    }

    // The Job deleted and applied again: each pod resumes from its journal and reports its
    // part without sending a command.
    let again = cluster.run_job(&ex.job, "hostname");
    let again: Vec<BTreeSet<String>> = again.iter().map(|o| ok_hosts(o, user)).collect();
    assert_eq!(again, parts);
    assert!(sent().iter().all(|&n| n == 1), "{:?}", sent());

    // The README's Job of one index alone: the same part, the same journal, nothing sent.
    let mut one = ex.job.clone();
    json_patch(&mut one, &ex.one_index_patch());
    let (_, patched) = pod_of(&one);
    let patched_args = strings(list(patched, "args"));
    let (i, _) = flag(&patched_args, "--shard").split_once('/').unwrap();
    let alone = cluster.run_job(&one, "hostname");
    assert_eq!(alone.len(), 1);
    assert_eq!(
        ok_hosts(&alone[0], user),
        parts[i.parse::<usize>().unwrap()]
    );
    assert!(sent().iter().all(|&n| n == 1), "{:?}", sent());

    // merge-job.yaml: the combined report, every host once and OK, printed and on the volume.
    let merged = cluster.run_job(&ex.merge, "");
    let out = &merged[0];
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    for h in &all {
        let ip = h.split(':').next().unwrap();
        assert!(printed.contains(ip), "{h} not in {printed}");
    }
    let report = std::fs::read_to_string(journals.join("report.json")).expect("report.json");
    let mut reported: HashMap<String, usize> = HashMap::new();
    for line in report.lines() {
        let l: Value = serde_json::from_str(line).unwrap();
        assert_eq!(l["exit_code"], 0, "{l}");
        *reported
            .entry(format!("{}:{}", l["host"].as_str().unwrap(), l["port"]))
            .or_default() += 1;
    }
    assert_eq!(reported.keys().cloned().collect::<BTreeSet<_>>(), all);
    assert!(reported.values().all(|&n| n == 1), "{reported:?}");

    // Without one part's journal the merge is no success: its hosts are missing.
    let last = journals.join(format!("journal.{}", parts.len() - 1));
    let aside = cluster.dir.path().join("journal.aside");
    std::fs::rename(&last, &aside).unwrap();
    let partial = cluster.run_job(&ex.merge, "");
    std::fs::rename(&aside, &last).unwrap();
    assert_ne!(
        partial[0].status.code(),
        Some(0),
        "{}",
        text(&partial[0].stderr)
    );
    assert!(sent().iter().all(|&n| n == 1), "{:?}", sent());
}
