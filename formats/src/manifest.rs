//! `DIR/manifest.json`: what produced a run directory, so a prove rate can be reproduced and
//! two runs told apart.
//!
//! The top level says what decides the results (config, theorems, served models, template,
//! stop strings, Lean and Mathlib, EBM); `--resume` and `merge` require it equal, field by
//! field ([`Manifest::differences`]). Each run over the directory (the first, every
//! `--resume`, every shard a merge took in) appends a [`RunEntry`] with where and when it ran:
//! host, GPUs, URLs, paths and times never count as a difference, since shards of one sweep
//! run on different nodes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::identity::{EnergyScale, ModelIdentity};

pub const MANIFEST_FILE: &str = "manifest.json";

/// Config keys that say where or how fast a run happened, not what it computes: left out of
/// [`Manifest::config`] (and its hash), kept in each run's [`RunEntry::placement`], and never
/// a difference, even where an older manifest recorded them in its config. Speculation sends
/// a request early and uses it only if the plain search would make it, so the trees are the
/// same (search's `engine_speculate` tests).
pub const PLACEMENT_KEYS: &[&str] = &[
    "policy.urls",
    "policy.model_dir",
    "planner.urls",
    "ebm.url",
    "lean.command",
    "lean.cwd",
    "lean.sandbox",
    "lean.workers",
    "sweep.concurrency",
    "search.speculate",
    "sweep.speculate_tail",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The resolved config without [`PLACEMENT_KEYS`].
    pub config: Value,
    /// sha256 of `config` as canonical JSON (keys sorted, no spaces).
    pub config_sha256: String,
    pub theorems: TheoremsIdentity,
    /// The distinct models the policy servers said they serve, sorted.
    pub models: Vec<ServedModel>,
    pub template: TemplateIdentity,
    /// The stop strings sent with every request.
    pub stop: Vec<String>,
    /// SGLang's stop regexes sent with every request (absent in manifests from before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_regex: Vec<String>,
    pub lean: LeanIdentity,
    /// The value model, when the run used one and its server reported it.
    pub ebm: Option<ModelIdentity>,
    /// The served head's energy mean and std the priority standardised energies with
    /// (`search.ebm_normalize`); absent when it used raw energies, and in manifests from
    /// before the scale, whose runs all did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebm_energy_scale: Option<EnergyScale>,
    /// The planner (`[planner]`), when the run had one; absent in manifests from before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planner: Option<PlannerIdentity>,
    /// Oldest first.
    pub runs: Vec<RunEntry>,
}

/// What a run's planner was: the models its servers said they serve, and its template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannerIdentity {
    pub models: Vec<ServedModel>,
    pub template: TemplateIdentity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TheoremsIdentity {
    /// sha256 of the theorems file's bytes.
    pub sha256: String,
    /// Theorems in the file.
    pub count: usize,
    /// `I/N` when the run took one shard (`None` after a merge: all of them).
    pub shard: Option<String>,
    /// The bundled benchmark the file is (`benchmarks/…`, matched by sha256), if any.
    pub benchmark: Option<String>,
}

/// What one policy server answered it serves (SGLang `/get_model_info`: `model_path`,
/// `weight_version`; OpenAI-compatible `/v1/models`: the first model's `id`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServedModel {
    /// `None` when the server did not say.
    pub name: Option<String>,
    pub weight_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateIdentity {
    /// A built-in template's name, or `custom`.
    pub name: String,
    /// sha256 of the template text.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeanIdentity {
    /// `Lean.versionString`, as the REPL itself answered it.
    pub version: Option<String>,
    /// Mathlib's `rev` in `lake-manifest.json` of `lean.cwd`.
    pub mathlib: Option<String>,
}

/// One run over the directory: who ran it, where, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    pub stepwise: BuildInfo,
    /// argv of the run.
    pub command: Vec<String>,
    /// The theorems file as this run named it.
    pub theorems_path: String,
    /// Theorems this run was given (after `--shard` and `--max-theorems`).
    pub theorems_selected: usize,
    /// The [`PLACEMENT_KEYS`] values of this run's config.
    pub placement: Value,
    /// Per policy URL: what it said it serves, or why it did not.
    pub policy_servers: Vec<ServerEntry>,
    /// The REPL's own revision, where it could be found (lake-manifest or its git checkout).
    pub repl_revision: Option<String>,
    pub host: Host,
    pub started_unix_ms: u64,
    pub started: String,
    /// Set when the run ends (absent: it is running, or was killed).
    pub ended_unix_ms: Option<u64>,
    pub ended: Option<String>,
    /// Differences `--force` overrode to start this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forced: Vec<String>,
    /// The shard directory a merge took this run from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<String>,
    /// The BOS tokens the start-up check counted before the first prompt (absent in
    /// manifests from before the check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos: Option<BosCount>,
}

/// How many BOS tokens the policy server put before the first prompt, as a sweep's start-up
/// check counted them. A sweep starts only on `one` or `unchecked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BosCount {
    /// The prompt reaches the model without the BOS it was trained with.
    None,
    One,
    /// Two or more: the prompt text has the BOS and the server adds another.
    Two,
    /// Not counted: the server cannot show how it tokenizes, or no BOS id is known and the
    /// prompt's first two tokens differ.
    Unchecked,
}

impl std::fmt::Display for BosCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BosCount::None => "none",
            BosCount::One => "one",
            BosCount::Two => "two",
            BosCount::Unchecked => "unchecked",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    pub version: String,
    /// `git rev-parse HEAD` when built, `unknown` outside a checkout.
    pub commit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerEntry {
    pub url: String,
    pub model: Option<ServedModel>,
    /// Why the identity could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    pub cores: usize,
    pub memory_mb: Option<u64>,
    /// One line per GPU from `nvidia-smi` (name, memory, driver); empty without it.
    pub gpus: Vec<String>,
}

/// One field where two manifests disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub field: String,
    pub before: String,
    pub after: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.field, self.before, self.after)
    }
}

/// What a config key absent from a manifest counts as: a build's defaults, split and
/// flattened as [`Manifest::config`] is compared. A manifest written before a key existed
/// lacks it, and the run that wrote it did what the key's default does (a new key's default
/// keeps the old behaviour), so only a value away from the default is a difference.
/// `ConfigDefaults::default()` knows no defaults: an absent key shows as `(absent)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigDefaults(BTreeMap<String, String>);

impl ConfigDefaults {
    /// From a resolved config as it serialises, placement keys and all (they are split off
    /// here, as [`split_placement`] does for a manifest).
    pub fn from_config(config: &Value) -> Self {
        Self(flatten(&split_placement(config).0))
    }
}

/// Which comparison: a resume continues one shard, a merge joins different ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Resume,
    Merge,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a stepwise manifest: {message}")]
    Parse { path: PathBuf, message: String },
}

impl Manifest {
    /// The fields that change results and differ from `other` (`self` before, `other`
    /// after), config keys one by one, a key one side lacks counting as its value in
    /// `defaults`. Runs never count.
    pub fn differences(
        &self,
        other: &Manifest,
        scope: Scope,
        defaults: &ConfigDefaults,
    ) -> Vec<Difference> {
        let mut out = Vec::new();
        let mut push = |field: &str, before: String, after: String| {
            if before != after {
                out.push(Difference {
                    field: field.to_owned(),
                    before,
                    after,
                });
            }
        };
        let (a, b) = (flatten(&self.config), flatten(&other.config));
        for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
            if PLACEMENT_KEYS.contains(&key.as_str()) {
                continue;
            }
            let default = defaults.0.get(key);
            if a.get(key).or(default) == b.get(key).or(default) {
                continue;
            }
            let show = |m: &BTreeMap<String, String>| match (m.get(key), default) {
                (Some(value), _) => value.clone(),
                (None, Some(default)) => format!("{default} (absent: the default)"),
                (None, None) => "(absent)".into(),
            };
            push(&format!("config {key}"), show(&a), show(&b));
        }
        push(
            "theorems sha256",
            self.theorems.sha256.clone(),
            other.theorems.sha256.clone(),
        );
        if scope == Scope::Resume {
            push(
                "theorems shard",
                show_opt(&self.theorems.shard),
                show_opt(&other.theorems.shard),
            );
        }
        push(
            "model",
            show_models(&self.models),
            show_models(&other.models),
        );
        push(
            "template",
            format!("{} ({})", self.template.name, short(&self.template.sha256)),
            format!(
                "{} ({})",
                other.template.name,
                short(&other.template.sha256)
            ),
        );
        push("stop", json(&self.stop), json(&other.stop));
        push(
            "stop_regex",
            json(&self.stop_regex),
            json(&other.stop_regex),
        );
        push(
            "Lean version",
            show_opt(&self.lean.version),
            show_opt(&other.lean.version),
        );
        push(
            "Mathlib",
            show_opt(&self.lean.mathlib),
            show_opt(&other.lean.mathlib),
        );
        push("EBM", show_ebm(&self.ebm), show_ebm(&other.ebm));
        push(
            "EBM energy scale",
            show_scale(&self.ebm_energy_scale),
            show_scale(&other.ebm_energy_scale),
        );
        push(
            "planner",
            show_planner(&self.planner),
            show_planner(&other.planner),
        );
        out
    }

    /// The build that ran last.
    pub fn last_build(&self) -> Option<&BuildInfo> {
        self.runs.last().map(|r| &r.stepwise)
    }

    /// `None` when `dir` has no manifest.
    pub fn read(dir: &Path) -> Result<Option<Self>, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ManifestError::Io { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ManifestError::Parse {
                path,
                message: e.to_string(),
            })
    }

    /// Replaces `dir/manifest.json` whole (a temporary file renamed into place), so a reader
    /// or a kill never sees half of one.
    pub fn write(&self, dir: &Path) -> Result<(), ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let tmp = dir.join(format!(".{MANIFEST_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).expect("a manifest serialises") + "\n";
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| ManifestError::Io { path, source })
    }
}

/// `value` with object keys sorted at every level and no whitespace: the bytes a hash of it
/// is taken over, whatever order the keys came in.
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sorted(v))).collect();
                let mut out = serde_json::Map::new();
                for (k, v) in sorted {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Splits a resolved config into (what decides results, [`PLACEMENT_KEYS`] values).
pub fn split_placement(config: &Value) -> (Value, Value) {
    let mut results = config.clone();
    let mut placement = serde_json::Map::new();
    for key in PLACEMENT_KEYS {
        let (section, name) = key.split_once('.').expect("placement keys are section.key");
        if let Some(value) = results
            .get_mut(section)
            .and_then(Value::as_object_mut)
            .and_then(|s| s.remove(name))
        {
            placement.insert((*key).to_owned(), value);
        }
    }
    (results, Value::Object(placement))
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` of a Unix time in milliseconds.
pub fn utc_timestamp(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Lower-case hex sha256 of `bytes`: the hash every manifest field names.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// [`sha256_hex`] of a file's bytes (the theorems file a run read, for `--resume` and `merge`).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    std::fs::read(path).map(|bytes| sha256_hex(&bytes))
}

/// Leaves of a JSON object as `a.b.c` -> compact JSON.
fn flatten(value: &Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_owned(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

fn show_opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "unknown".into())
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serialisable")
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn show_planner(planner: &Option<PlannerIdentity>) -> String {
    match planner {
        None => "none".into(),
        Some(p) => format!(
            "{}, template {} ({})",
            show_models(&p.models),
            p.template.name,
            short(&p.template.sha256)
        ),
    }
}

fn show_models(models: &[ServedModel]) -> String {
    if models.is_empty() {
        return "none".into();
    }
    models
        .iter()
        .map(|m| match &m.weight_version {
            Some(v) => format!("{} (weights {v})", show_opt(&m.name)),
            None => show_opt(&m.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn show_ebm(ebm: &Option<ModelIdentity>) -> String {
    match ebm {
        None => "none".into(),
        Some(id) => format!(
            "config {} tokenizer {} {} {} head {}",
            short(&id.config_sha256),
            short(&id.tokenizer_sha256),
            id.dtype,
            id.pooling,
            id.head_sha256.as_deref().map_or("none", short)
        ),
    }
}

fn show_scale(scale: &Option<EnergyScale>) -> String {
    match scale {
        None => "none (raw energies)".into(),
        Some(s) => format!("mean {} std {}", s.mean, s.std),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_text() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
    use serde_json::json;

    fn manifest() -> Manifest {
        let (config, _) = split_placement(&json!({
            "search": {"max_nodes": 600},
            "policy": {"urls": ["http://a"], "template": "bfs-prover"},
            "lean": {"cwd": "/x", "header": "import Mathlib"},
        }));
        Manifest {
            config_sha256: String::new(),
            config,
            theorems: TheoremsIdentity {
                sha256: "ab".into(),
                count: 3,
                shard: Some("0/2".into()),
                benchmark: None,
            },
            models: vec![ServedModel {
                name: Some("m".into()),
                weight_version: None,
            }],
            template: TemplateIdentity {
                name: "bfs-prover".into(),
                sha256: "cd".into(),
            },
            stop: vec![],
            stop_regex: vec![],
            lean: LeanIdentity {
                version: Some("4.24.0".into()),
                mathlib: None,
            },
            ebm: None,
            ebm_energy_scale: None,
            planner: None,
            runs: vec![],
        }
    }

    #[test]
    fn placement_is_split_off_and_never_a_difference() {
        let m = manifest();
        assert_eq!(m.config["policy"], json!({"template": "bfs-prover"}));
        assert!(m.config["lean"].get("cwd").is_none());
        assert!(m
            .differences(&m.clone(), Scope::Resume, &ConfigDefaults::default())
            .is_empty());
    }

    #[test]
    fn differences_name_the_field_and_both_values() {
        let a = manifest();
        let mut b = manifest();
        b.config["search"]["max_nodes"] = json!(100);
        b.models[0].name = Some("other".into());
        b.lean.version = Some("4.9.0".into());
        b.theorems.shard = Some("1/2".into());
        let shown: Vec<String> = a
            .differences(&b, Scope::Resume, &ConfigDefaults::default())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "config search.max_nodes: 600 -> 100",
                "theorems shard: 0/2 -> 1/2",
                "model: m -> other",
                "Lean version: 4.24.0 -> 4.9.0",
            ]
        );
        // Shards of one sweep differ by design.
        assert_eq!(
            a.differences(&b, Scope::Merge, &ConfigDefaults::default())
                .len(),
            3
        );
    }

    #[test]
    fn the_energy_scale_is_a_difference_and_an_older_manifest_used_none() {
        let a = manifest();
        let mut text = serde_json::to_value(&a).unwrap();
        assert!(text.get("ebm_energy_scale").is_none(), "none: not written");
        text.as_object_mut().unwrap().remove("ebm_energy_scale");
        let older: Manifest = serde_json::from_value(text).unwrap();
        assert_eq!(older.ebm_energy_scale, None);
        let mut b = manifest();
        b.ebm_energy_scale = Some(EnergyScale {
            mean: 0.5,
            std: 2.0,
        });
        let shown: Vec<String> = older
            .differences(&b, Scope::Resume, &ConfigDefaults::default())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            ["EBM energy scale: none (raw energies) -> mean 0.5 std 2"]
        );
    }

    /// A build's defaults: `search.max_nodes` and a key older manifests lack.
    fn defaults() -> ConfigDefaults {
        ConfigDefaults::from_config(&json!({
            "search": {"max_nodes": 600},
            "policy": {"urls": ["http://default"], "template": "deepseek-tactic-state"},
            "sweep": {"concurrency": 10, "fill_tail": false},
        }))
    }

    fn shown(before: &Manifest, after: &Manifest, scope: Scope) -> Vec<String> {
        before
            .differences(after, scope, &defaults())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_key_an_older_manifest_lacks_counts_as_its_default() {
        let older = manifest();
        let mut newer = manifest();
        newer.config["sweep"] = json!({"fill_tail": false});
        for scope in [Scope::Resume, Scope::Merge] {
            assert!(shown(&older, &newer, scope).is_empty(), "{scope:?}");
            // Either side may be the older one (a merge takes the shards in any order).
            assert!(shown(&newer, &older, scope).is_empty(), "{scope:?}");
        }
    }

    #[test]
    fn a_key_an_older_manifest_lacks_set_away_from_its_default_is_the_one_difference() {
        let older = manifest();
        let mut newer = manifest();
        newer.config["sweep"] = json!({"fill_tail": true});
        for scope in [Scope::Resume, Scope::Merge] {
            assert_eq!(
                shown(&older, &newer, scope),
                ["config sweep.fill_tail: false (absent: the default) -> true"],
                "{scope:?}"
            );
            assert_eq!(
                shown(&newer, &older, scope),
                ["config sweep.fill_tail: true -> false (absent: the default)"],
                "{scope:?}"
            );
        }
    }

    /// Runs made while `sweep.speculate_tail` was off by default recorded it in their config;
    /// it is placement now, so a resume under today's default is not refused for it.
    #[test]
    fn a_placement_key_an_older_manifest_recorded_is_no_difference() {
        let mut older = manifest();
        older.config["sweep"] = json!({"speculate_tail": false});
        older.config["search"]["speculate"] = json!(true);
        for scope in [Scope::Resume, Scope::Merge] {
            assert!(shown(&older, &manifest(), scope).is_empty(), "{scope:?}");
        }
    }

    #[test]
    fn a_key_no_default_knows_is_absent_on_one_side() {
        let older = manifest();
        let mut newer = manifest();
        newer.config["search"]["retired_knob"] = json!(1);
        assert_eq!(
            shown(&older, &newer, Scope::Resume),
            ["config search.retired_knob: (absent) -> 1"]
        );
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v: Value =
            serde_json::from_str(r#"{"b": {"y": 1, "x": [{"q": 1, "p": 2}]}, "a": 0}"#).unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":0,"b":{"x":[{"p":2,"q":1}],"y":1}}"#
        );
    }

    #[test]
    fn utc_timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        // 2026-11-30T20:55:03Z
        assert_eq!(utc_timestamp(1_796_072_103_000), "2026-11-30T20:55:03Z");
        assert_eq!(utc_timestamp(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
