//! Filling `DIR/manifest.json` (the format is `formats::manifest`): asking each policy server
//! which model it serves, the EBM which identity it has, reading Mathlib's and the REPL's
//! revisions from disk, hashing the config, template and theorems file, and describing the
//! host. Then [`begin_run`] holds a resumed directory to its manifest and [`end_run`] stamps
//! the end time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use formats::identity::EnergyScale;
use formats::manifest::{
    canonical_json, sha256_file, sha256_hex, split_placement, utc_timestamp, BosCount, BuildInfo,
    ConfigDefaults, Difference, Host, LeanIdentity, Manifest, ManifestError, PlannerIdentity,
    RunEntry, Scope, ServedModel, ServerEntry, TemplateIdentity, TheoremsIdentity,
};
use serde_json::Value;

use crate::config::{Config, PlannerBackend, PolicyBackend};
use crate::http_retry::get_json;
use crate::planner::planner_template;
use crate::request_setup::RequestSetup;
use crate::value::EbmAtStart;
use formats::theorems::Shard;

#[derive(Debug, thiserror::Error)]
pub enum RunManifestError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{0}")]
    Planner(String),
    #[error("cannot read theorems {path}: {source}")]
    Theorems {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{dir} was produced by a different setup, so --resume would mix results:\n{}\n\
         (pass --force to continue anyway; the manifest records it)",
        .differences.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n")
    )]
    Refused {
        dir: PathBuf,
        differences: Vec<Difference>,
    },
    #[error(
        "{0} already holds results: pass --resume to continue that sweep, or choose another --out"
    )]
    NotEmpty(PathBuf),
}

/// What this run was asked to do, as the command line said it.
pub struct RunRequest<'a> {
    pub build: BuildInfo,
    pub command: Vec<String>,
    pub theorems_path: &'a Path,
    /// Theorems in the file.
    pub theorems_count: usize,
    pub shard: Option<Shard>,
    /// Theorems this run was given.
    pub selected: usize,
    /// The bundled theorem sets as `sha256sum` prints them (`HASH  NAME` lines): the
    /// manifest names the one whose hash the theorems file has.
    pub benchmarks: &'a str,
    /// `Lean.versionString` from the REPL, or why it could not be asked.
    pub lean_version: Result<String, String>,
    /// What the EBM server served at start ([`crate::value::EbmClient::at_start`]).
    pub ebm: Option<&'a EbmAtStart>,
    /// The scale the priority standardises the EBM's energies with
    /// ([`EbmAtStart::energy_scale`]); `None`: raw energies.
    pub energy_scale: Option<EnergyScale>,
    /// The BOS tokens the start-up check counted before the first prompt.
    pub bos: BosCount,
    /// What the requests carry ([`RequestSetup::from_config`] of the same config, made once
    /// by the caller): in proof mode the proof template and its stops.
    pub setup: &'a RequestSetup,
}

/// The manifest of a run that starts now, with one run entry.
pub async fn describe_run(
    config: &Config,
    request: RunRequest<'_>,
) -> Result<Manifest, RunManifestError> {
    let setup = request.setup;
    let theorems_sha256 =
        sha256_file(request.theorems_path).map_err(|source| RunManifestError::Theorems {
            path: request.theorems_path.to_owned(),
            source,
        })?;
    let (results_config, placement) =
        split_placement(&serde_json::to_value(config).expect("a config serialises"));
    let timeout = Duration::from_secs_f64(config.policy.request_timeout);
    let openai = config.policy.backend == PolicyBackend::Openai;
    let policy_servers = served_models(&config.policy.urls, openai, timeout).await;
    let mut models: Vec<ServedModel> = policy_servers
        .iter()
        .filter_map(|s| s.model.clone())
        .collect();
    models.sort();
    models.dedup();
    let ebm = match request.ebm {
        Some(start) => match &start.served {
            Ok(served) => Some(served.identity.clone()),
            Err(why) => {
                tracing::warn!(
                    "the EBM server {} reports no model identity ({why}); the manifest cannot \
                     tell this value model from another",
                    start.url
                );
                None
            }
        },
        None => None,
    };
    let lean_version = request
        .lean_version
        .map_err(|why| tracing::warn!("cannot ask the REPL for Lean's version: {why}"))
        .ok();
    let lake_manifest = Path::new(&config.lean.cwd).join("lake-manifest.json");
    let started_unix_ms = now_unix_ms();
    Ok(Manifest {
        config_sha256: sha256_hex(canonical_json(&results_config).as_bytes()),
        config: results_config,
        theorems: TheoremsIdentity {
            count: request.theorems_count,
            shard: request.shard.map(|s| s.to_string()),
            benchmark: benchmark_named(request.benchmarks, &theorems_sha256),
            sha256: theorems_sha256,
        },
        models,
        template: TemplateIdentity {
            name: setup.template.name().to_owned(),
            sha256: sha256_hex(setup.template.text().as_bytes()),
        },
        stop: setup.stops.strings.clone(),
        stop_regex: setup.stops.regexes.clone(),
        lean: LeanIdentity {
            version: lean_version,
            mathlib: lake_package_rev(&lake_manifest, "mathlib"),
        },
        ebm,
        ebm_energy_scale: request.energy_scale,
        planner: planner_identity(config).await?,
        runs: vec![RunEntry {
            stepwise: request.build,
            command: request.command,
            theorems_path: request.theorems_path.display().to_string(),
            theorems_selected: request.selected,
            placement,
            policy_servers,
            repl_revision: repl_revision(config, &lake_manifest),
            host: host(),
            started_unix_ms,
            started: utc_timestamp(started_unix_ms),
            ended_unix_ms: None,
            ended: None,
            forced: Vec::new(),
            merged_from: None,
            bos: Some(request.bos),
        }],
    })
}

/// Writes the manifest of a run starting in `dir`. A resumed directory must have been
/// produced by the same setup ([`Scope::Resume`]): otherwise the run is refused, naming the
/// differences, unless `force` (then the new run records what it overrode); a key the older
/// manifest lacks counts as its default ([`config_defaults`]). The directory's earlier runs
/// are kept; the top level becomes this run's.
pub fn begin_run(
    dir: &Path,
    mut manifest: Manifest,
    resume: bool,
    force: bool,
) -> Result<Manifest, RunManifestError> {
    // Checked here too, so a refused fresh run leaves the old run's manifest alone.
    let results = dir.join(formats::results::RESULTS_FILE);
    if !resume && std::fs::metadata(&results).is_ok_and(|m| m.len() > 0) {
        return Err(RunManifestError::NotEmpty(results));
    }
    if resume {
        match Manifest::read(dir)? {
            Some(previous) => {
                let differences =
                    previous.differences(&manifest, Scope::Resume, &config_defaults());
                if !differences.is_empty() {
                    if !force {
                        return Err(RunManifestError::Refused {
                            dir: dir.to_owned(),
                            differences,
                        });
                    }
                    for d in &differences {
                        tracing::warn!("--force: resuming despite {d}");
                    }
                    let run = manifest
                        .runs
                        .last_mut()
                        .expect("a new manifest has its run");
                    run.forced = differences.iter().map(ToString::to_string).collect();
                }
                let mut runs = previous.runs;
                runs.append(&mut manifest.runs);
                manifest.runs = runs;
            }
            None if dir.join(formats::results::RESULTS_FILE).exists() => tracing::warn!(
                "{} has results but no manifest (an older stepwise wrote it); \
                 this run's setup cannot be checked against theirs",
                dir.display()
            ),
            None => {}
        }
    }
    manifest.write(dir)?;
    Ok(manifest)
}

/// What a config key absent from a manifest written before the key existed counts as: this
/// build's defaults (for `--resume` here, and `stepwise merge`).
pub fn config_defaults() -> ConfigDefaults {
    ConfigDefaults::from_config(
        &serde_json::to_value(Config::default()).expect("a config serialises"),
    )
}

/// Stamps the end of the last run and rewrites the manifest.
pub fn end_run(dir: &Path, manifest: &mut Manifest) -> Result<(), ManifestError> {
    if let Some(run) = manifest.runs.last_mut() {
        let now = now_unix_ms();
        run.ended_unix_ms = Some(now);
        run.ended = Some(utc_timestamp(now));
    }
    manifest.write(dir)
}

/// The name `sums` (lines `HASH  NAME`, as `sha256sum` writes them) gives `sha256`.
fn benchmark_named(sums: &str, sha256: &str) -> Option<String> {
    sums.lines().find_map(|line| {
        let (hash, name) = line.split_once(char::is_whitespace)?;
        (hash == sha256).then(|| format!("benchmarks/{}", name.trim().trim_start_matches('*')))
    })
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The planner's identity: what its servers serve and its template; `None` without one.
async fn planner_identity(config: &Config) -> Result<Option<PlannerIdentity>, RunManifestError> {
    let planner = &config.planner;
    if !planner.enabled() {
        return Ok(None);
    }
    let template =
        planner_template(planner).map_err(|e| RunManifestError::Planner(e.to_string()))?;
    let timeout = Duration::from_secs_f64(planner.request_timeout);
    let openai = planner.backend != PlannerBackend::Sglang;
    let mut models: Vec<ServedModel> = served_models(&planner.urls, openai, timeout)
        .await
        .into_iter()
        .filter_map(|s| s.model)
        .collect();
    models.sort();
    models.dedup();
    Ok(Some(PlannerIdentity {
        models,
        template: TemplateIdentity {
            name: template.name().to_owned(),
            sha256: sha256_hex(template.text().as_bytes()),
        },
    }))
}

/// Asks every URL what it serves (`openai`: `GET /v1/models`, else SGLang's
/// `/get_model_info`); a server that cannot say is recorded with why.
async fn served_models(urls: &[String], openai: bool, timeout: Duration) -> Vec<ServerEntry> {
    let client = reqwest::Client::new();
    let mut entries = Vec::new();
    for url in urls {
        let base = url.trim().trim_end_matches('/');
        let model = match openai {
            // SGLang http_server.py `get_model_info`: `model_path`, `weight_version`, ...
            false => get_json::<Value>(&client, &format!("{base}/get_model_info"), timeout)
                .await
                .map(|info| ServedModel {
                    name: info["model_path"].as_str().map(String::from),
                    weight_version: info["weight_version"].as_str().map(String::from),
                }),
            // OpenAI `GET /v1/models` (vLLM ModelList): `data[].id` is the served name.
            true => get_json::<Value>(&client, &format!("{base}/v1/models"), timeout)
                .await
                .map(|list| ServedModel {
                    name: list["data"][0]["id"].as_str().map(String::from),
                    weight_version: None,
                }),
        };
        entries.push(match model {
            Ok(model) => ServerEntry {
                url: url.clone(),
                model: Some(model),
                error: None,
            },
            Err(error) => {
                tracing::warn!("{url} does not say which model it serves: {error}");
                ServerEntry {
                    url: url.clone(),
                    model: None,
                    error: Some(error),
                }
            }
        });
    }
    entries
}

/// A package's `rev` in a `lake-manifest.json` (`packages[].name`, compared ignoring case:
/// Mathlib's entry is `mathlib`, the REPL's `REPL`).
fn lake_package_rev(lake_manifest: &Path, package: &str) -> Option<String> {
    let text = std::fs::read_to_string(lake_manifest).ok()?;
    let manifest: Value = serde_json::from_str(&text).ok()?;
    manifest["packages"]
        .as_array()?
        .iter()
        .find(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(package))
        })
        .and_then(|p| p["rev"].as_str())
        .map(String::from)
}

/// The REPL's revision: its lake-manifest entry when the project depends on it, else the git
/// commit of the checkout its binary lives in (`lean.command` naming a path).
fn repl_revision(config: &Config, lake_manifest: &Path) -> Option<String> {
    if let Some(rev) = lake_package_rev(lake_manifest, "repl") {
        return Some(rev);
    }
    let cwd = Path::new(&config.lean.cwd);
    config
        .lean
        .command
        .iter()
        .map(|arg| cwd.join(arg))
        .filter(|path| path.is_file())
        .find_map(|path| path.ancestors().find_map(git_head))
}

/// The commit `dir/.git` has checked out (following a worktree's `gitdir:` file, a branch
/// ref or `packed-refs`).
fn git_head(dir: &Path) -> Option<String> {
    let dot_git = dir.join(".git");
    let git_dir = if dot_git.is_file() {
        let text = std::fs::read_to_string(&dot_git).ok()?;
        dir.join(text.strip_prefix("gitdir:")?.trim())
    } else if dot_git.is_dir() {
        dot_git
    } else {
        return None;
    };
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let Some(reference) = head.trim().strip_prefix("ref:") else {
        return Some(head.trim().to_owned());
    };
    let reference = reference.trim();
    // A linked worktree keeps its refs in the common directory.
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|_| git_dir.clone());
    if let Ok(commit) = std::fs::read_to_string(common.join(reference)) {
        return Some(commit.trim().to_owned());
    }
    let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (commit, name) = line.split_once(' ')?;
        (name == reference).then(|| commit.to_owned())
    })
}

/// Where this run happens: host name, cores, memory, GPUs.
pub fn host() -> Host {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|n| n.trim().to_owned())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    let memory_mb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024)
    });
    Host {
        name,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        memory_mb,
        gpus: gpus(),
    }
}

/// `nvidia-smi`'s one line per GPU, when it is installed and answers.
fn gpus() -> Vec<String> {
    let output = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,memory.total,driver_version",
            "--format=csv,noheader",
        ])
        .output();
    match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_from_lake_manifest_and_git() {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake-manifest.json");
        std::fs::write(
            &lake,
            r#"{"version": "1.1.0", "packages": [
                {"type": "git", "name": "mathlib", "rev": "aaa111", "inputRev": "v4.24.0"},
                {"type": "git", "name": "REPL", "rev": "bbb222"}]}"#,
        )
        .unwrap();
        assert_eq!(
            lake_package_rev(&lake, "mathlib").as_deref(),
            Some("aaa111")
        );
        assert_eq!(lake_package_rev(&lake, "repl").as_deref(), Some("bbb222"));
        assert_eq!(
            lake_package_rev(&dir.path().join("none.json"), "mathlib"),
            None
        );

        let checkout = dir.path().join("repl");
        std::fs::create_dir_all(checkout.join(".git/refs/heads")).unwrap();
        std::fs::create_dir_all(checkout.join(".lake/build/bin")).unwrap();
        std::fs::write(checkout.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(checkout.join(".git/refs/heads/main"), "ccc333\n").unwrap();
        std::fs::write(checkout.join(".lake/build/bin/repl"), "").unwrap();
        let mut config = Config::default();
        config.lean.cwd = dir.path().display().to_string();
        config.lean.command = vec![
            "lake".into(),
            "env".into(),
            "repl/.lake/build/bin/repl".into(),
        ];
        let elsewhere = dir.path().join("no-lake-manifest.json");
        assert_eq!(
            repl_revision(&config, &elsewhere).as_deref(),
            Some("ccc333")
        );
    }
}
