//! The EBM server `stepwise iterate` embeds through and swaps heads on: one the user runs at
//! `ebm.url`, or one it starts itself from `--ebm-serve` (and stops when it is done).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use formats::identity::ModelIdentity;
use search::config::EbmConfig;
use search::value::{EbmClient, ServedModel};
use tokio::process::{Child, Command};

pub struct EbmServer {
    client: EbmClient,
    /// The server `--ebm-serve` started; killed when dropped, so an early return stops it.
    child: Option<Child>,
}

impl EbmServer {
    /// The server at `config.url`: started from `argv` first when given (its output appended
    /// to `log`), then waited for until its `/health` answers, at most `timeout`.
    pub async fn connect(
        config: &EbmConfig,
        argv: Option<&[String]>,
        timeout: Duration,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let client = EbmClient::from_config(config)?.context(
            "ebm.url is empty: iterate needs the EBM server's URL (the one --ebm-serve listens \
             at, or yours)",
        )?;
        let url = client.url().to_owned();
        let Some(argv) = argv else {
            client.health().await.with_context(|| {
                format!(
                    "no EBM server answers at {url} (ebm.url): start `stepwise ebm serve \
                     --model DIR` there, or pass --ebm-serve to have iterate start one"
                )
            })?;
            return Ok(EbmServer {
                client,
                child: None,
            });
        };
        // A second server could not bind, and iterate would then talk to the first one.
        if client.health().await.is_ok() {
            anyhow::bail!(
                "an EBM server already answers at {url} (ebm.url), so the one --ebm-serve \
                 starts could not listen there: stop it, or leave out --ebm-serve to use it"
            );
        }
        let (program, args) = argv.split_first().context("--ebm-serve is an empty list")?;
        let output = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start the EBM server {argv:?} (--ebm-serve)"))?;
        tracing::info!(
            pid = child.id(),
            "started the EBM server {argv:?}; its output goes to {}",
            log.display()
        );
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!(
                    "the EBM server {argv:?} exited ({status}) before answering at {url}; its \
                     output is in {}",
                    log.display()
                );
            }
            if client.health().await.is_ok() {
                break;
            }
            if started.elapsed() > timeout {
                anyhow::bail!(
                    "the EBM server {argv:?} did not answer at {url} (ebm.url) within {} s \
                     (--ebm-serve-timeout); does it listen there? Its output is in {}",
                    timeout.as_secs_f64(),
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::info!("the EBM server answers at {url}");
        Ok(EbmServer {
            client,
            child: Some(child),
        })
    }

    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// Serves the head at `head` (`POST /head`, by its absolute path) and checks that the
    /// server then reports these very weights (`head_sha256`).
    pub async fn serve(&self, head: &Path, sha256: &str) -> anyhow::Result<ServedModel> {
        let path = std::path::absolute(head)
            .with_context(|| format!("cannot make {} absolute", head.display()))?;
        let served = self
            .client
            .serve_head(&path.display().to_string())
            .await
            .with_context(|| format!("the EBM server refused the head {}", path.display()))?;
        if served.identity.head_sha256.as_deref() != Some(sha256) {
            anyhow::bail!(
                "after POST /head {} the EBM server at {} reports the head {}, not {sha256}",
                path.display(),
                self.url(),
                served.identity.head_sha256.as_deref().unwrap_or("none")
            );
        }
        Ok(served)
    }

    /// Fails unless the server still serves `expected` (encoder and head): a sweep scored by
    /// another head than the one its round trained would be measured against the wrong one.
    pub async fn check_serving(&self, expected: &ModelIdentity, after: &str) -> anyhow::Result<()> {
        let now = self
            .client
            .served()
            .await
            .map_err(|why| anyhow::anyhow!("the EBM server at {}: {why}", self.url()))?;
        if now.identity != *expected {
            anyhow::bail!(
                "after {after} the EBM server at {} serves {}, not the {} the round set: \
                 something else swapped its head (or restarted it) during the sweep, whose \
                 results may mix heads; remove that sweep's folder and run iterate --resume",
                self.url(),
                serde_json::to_string(&now.identity).unwrap_or_default(),
                serde_json::to_string(expected).unwrap_or_default(),
            );
        }
        Ok(())
    }

    /// Stops the server iterate started (a user's server keeps running).
    pub async fn stop(mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            let _ = child.wait().await;
            tracing::info!("stopped the EBM server iterate started");
        }
    }
}
