//! `stepwise merge OUT DIR...`: shard directories (`--shard I/N` runs, e.g. one Slurm array
//! task each) joined into one run directory, as if one machine had swept the whole file.
//!
//! Nothing is merged blindly: every shard must have a manifest that agrees with the first
//! (as `--resume` judges, the shard itself aside), and together the shards must cover the
//! theorems file exactly once. Result lines are copied verbatim (the latest line of each
//! theorem); trajectory and failed-attempt files are hard-linked (copied across file
//! systems) under new numbers, never rewritten.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use formats::manifest::{sha256_file, ConfigDefaults, Difference, Manifest, ManifestError, Scope};
use formats::progress::GENERATE_TIMELINE_FILE;
use formats::results::{latest_by_name, read_results, ResultsError, RESULTS_FILE};
use formats::runs::{CONFIG_FILE, RUNS_FILE};
use formats::theorems::{read_theorems, TheoremsError};
use formats::trajectory::{failed_dir, trajectory_files};

use crate::summary::{Summary, SummaryError};

/// Names listed in a coverage error before "and N more".
const SHOWN: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("merge needs at least one shard directory")]
    NoShards,
    #[error("{0} exists and is not empty: merge writes a new directory")]
    OutNotEmpty(PathBuf),
    #[error("{0} has no manifest.json, so nothing says which setup produced it")]
    NoManifest(PathBuf),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(
        "{dir} was produced by a different setup than {first}:\n{}",
        .differences.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n")
    )]
    Disagree {
        first: PathBuf,
        dir: PathBuf,
        differences: Vec<Difference>,
    },
    #[error(
        "cannot read the theorems file the manifests name ({path}); pass --theorems FILE: {source}"
    )]
    TheoremsUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not the theorems file the shards ran (sha256 {actual}, manifests say {expected})")]
    TheoremsChanged {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Theorems(#[from] TheoremsError),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error("the shards do not cover {theorems} exactly once:\n{}", .problems.join("\n"))]
    Coverage {
        theorems: PathBuf,
        problems: Vec<String>,
    },
    #[error(transparent)]
    Summary(#[from] SummaryError),
}

#[derive(Debug)]
pub struct MergeReport {
    pub shards: usize,
    pub trajectory_files: usize,
    pub summary: Summary,
}

/// Merges `dirs` into the new directory `out`. `theorems` replaces the file the manifests
/// name (a shard's path may not exist where the merge runs); its hash must still match.
/// `defaults` are what a config key a shard's manifest lacks counts as (a shard run before
/// the key existed).
pub fn merge(
    out: &Path,
    dirs: &[PathBuf],
    theorems: Option<&Path>,
    defaults: &ConfigDefaults,
) -> Result<MergeReport, MergeError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| MergeError::Io { path, source }
    };
    if dirs.is_empty() {
        return Err(MergeError::NoShards);
    }
    if std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(MergeError::OutNotEmpty(out.to_owned()));
    }
    let manifests = dirs
        .iter()
        .map(|dir| Manifest::read(dir)?.ok_or_else(|| MergeError::NoManifest(dir.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let first = &manifests[0];
    for (dir, manifest) in dirs.iter().zip(&manifests).skip(1) {
        let differences = first.differences(manifest, Scope::Merge, defaults);
        if !differences.is_empty() {
            return Err(MergeError::Disagree {
                first: dirs[0].clone(),
                dir: dir.clone(),
                differences,
            });
        }
    }

    let theorems_path = match theorems {
        Some(path) => path.to_owned(),
        None => PathBuf::from(
            &first
                .runs
                .first()
                .expect("a manifest has at least one run")
                .theorems_path,
        ),
    };
    let actual = sha256_file(&theorems_path).map_err(|source| MergeError::TheoremsUnreadable {
        path: theorems_path.clone(),
        source,
    })?;
    if actual != first.theorems.sha256 {
        return Err(MergeError::TheoremsChanged {
            path: theorems_path,
            expected: first.theorems.sha256.clone(),
            actual,
        });
    }
    let names: Vec<String> = read_theorems(&theorems_path)?
        .into_iter()
        .map(|t| t.name)
        .collect();

    // Each theorem's latest line per shard, and which shards have one.
    let mut lines: HashMap<String, formats::results::TheoremResult> = HashMap::new();
    let mut owners: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, dir) in dirs.iter().enumerate() {
        for result in latest_by_name(read_results(&dir.join(RESULTS_FILE))?) {
            owners.entry(result.name.clone()).or_default().push(i);
            lines.insert(result.name.clone(), result);
        }
    }
    let known: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let mut problems = Vec::new();
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !owners.contains_key(*n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "  - {} theorems have no result in any shard: {}",
            missing.len(),
            shown(&missing)
        ));
    }
    let duplicated: Vec<String> = owners
        .iter()
        .filter(|(_, shards)| shards.len() > 1)
        .map(|(name, shards)| {
            let dirs: Vec<String> = shards
                .iter()
                .map(|&i| dirs[i].display().to_string())
                .collect();
            format!("{name} (in {})", dirs.join(", "))
        })
        .collect();
    if !duplicated.is_empty() {
        let shown_dups: Vec<&str> = duplicated.iter().map(String::as_str).collect();
        problems.push(format!(
            "  - {} theorems have results in more than one shard: {}",
            duplicated.len(),
            shown(&shown_dups)
        ));
    }
    let unknown: Vec<&str> = owners
        .keys()
        .map(String::as_str)
        .filter(|n| !known.contains(n))
        .collect();
    if !unknown.is_empty() {
        problems.push(format!(
            "  - {} results name theorems the file does not have: {}",
            unknown.len(),
            shown(&unknown)
        ));
    }
    if !problems.is_empty() {
        return Err(MergeError::Coverage {
            theorems: theorems_path,
            problems,
        });
    }

    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut writer = formats::results::ResultsWriter::create(&out.join(RESULTS_FILE))?;
    for name in &names {
        writer.append(&lines[name])?;
    }
    let trajectory_files = link_trajectories(out, dirs)?;
    concat_lines(out, dirs, RUNS_FILE)?;
    concat_lines(out, dirs, GENERATE_TIMELINE_FILE)?;
    let config = dirs[0].join(CONFIG_FILE);
    if config.exists() {
        std::fs::copy(&config, out.join(CONFIG_FILE)).map_err(io(&config))?;
    }

    let mut merged = first.clone();
    merged.theorems.shard = None;
    merged.runs = dirs
        .iter()
        .zip(manifests)
        .flat_map(|(dir, manifest)| {
            manifest.runs.into_iter().map(move |mut run| {
                run.merged_from = Some(dir.display().to_string());
                run
            })
        })
        .collect();
    merged.write(out)?;

    let summary = crate::write_reports(out)?;
    Ok(MergeReport {
        shards: dirs.len(),
        trajectory_files,
        summary,
    })
}

fn shown(names: &[&str]) -> String {
    let mut text = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(", and {} more", names.len() - SHOWN));
    }
    text
}

/// Links every shard's `nodes-K.parquet` / `failed-K.parquet` pair into `out` under fresh
/// consecutive numbers (so a later `--resume` of `out` numbers on after them). Returns the
/// number of files linked.
fn link_trajectories(out: &Path, dirs: &[PathBuf]) -> Result<usize, MergeError> {
    let nodes_out = out.join("trajectories");
    let failed_out = failed_dir(&nodes_out);
    for folder in [&nodes_out, &failed_out] {
        std::fs::create_dir_all(folder).map_err(|source| MergeError::Io {
            path: folder.clone(),
            source,
        })?;
    }
    let mut next = 0u32;
    let mut linked = 0;
    for dir in dirs {
        let nodes_dir = dir.join("trajectories");
        let (nodes, failed) = match trajectory_files(&nodes_dir) {
            Ok(files) => files,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(MergeError::Io {
                    path: nodes_dir,
                    source,
                })
            }
        };
        // One batch wrote nodes-K and failed-K together: keep them paired.
        let mut batches: BTreeMap<String, Vec<(PathBuf, &Path, &str)>> = BTreeMap::new();
        for (files, folder, prefix) in [
            (&nodes, &nodes_out, "nodes-"),
            (&failed, &failed_out, "failed-"),
        ] {
            for file in files {
                let name = file.file_name().unwrap_or_default().to_string_lossy();
                let key = name
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(".parquet"))
                    .unwrap_or(&name)
                    .to_owned();
                batches
                    .entry(key)
                    .or_default()
                    .push((file.clone(), folder.as_path(), prefix));
            }
        }
        for files in batches.values() {
            for (source, folder, prefix) in files {
                let target = folder.join(format!("{prefix}{next:05}.parquet"));
                link_or_copy(source, &target)?;
                linked += 1;
            }
            next += 1;
        }
    }
    Ok(linked)
}

fn link_or_copy(source: &Path, target: &Path) -> Result<(), MergeError> {
    if std::fs::hard_link(source, target).is_ok() {
        return Ok(());
    }
    std::fs::copy(source, target)
        .map(|_| ())
        .map_err(|source_err| MergeError::Io {
            path: source.to_owned(),
            source: source_err,
        })
}

/// Every shard's lines of `file` (`runs.jsonl`, `generate_timeline.jsonl`), shard by shard:
/// each run's utilisation stays its own.
fn concat_lines(out: &Path, dirs: &[PathBuf], name: &str) -> Result<(), MergeError> {
    let path = out.join(name);
    let mut file = std::fs::File::create(&path).map_err(|source| MergeError::Io {
        path: path.clone(),
        source,
    })?;
    for dir in dirs {
        let shard = dir.join(name);
        let text = match std::fs::read_to_string(&shard) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(MergeError::Io {
                    path: shard,
                    source,
                })
            }
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            writeln!(file, "{line}").map_err(|source| MergeError::Io {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}
