//! `ebm embed --server URL`: the search's EBM client as `ebm`'s [`Encoder`], so the `ebm`
//! crate itself needs no HTTP client (it is the server side of that API).

use ebm::embed::Encoder;
use search::value::{EbmClient, ValueError};

pub struct ServerEncoder(EbmClient);

impl ServerEncoder {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let config = search::config::EbmConfig {
            url: url.to_owned(),
            ..Default::default()
        };
        let client =
            EbmClient::from_config(&config)?.ok_or_else(|| anyhow::anyhow!("--server is empty"))?;
        Ok(Self(client))
    }
}

impl Encoder for ServerEncoder {
    type Error = ValueError;
    async fn encode(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ValueError> {
        self.0.encode(&texts).await
    }

    /// What the server reports on `GET /health`; an older server reports none.
    async fn identity(&self) -> Option<formats::identity::ModelIdentity> {
        self.0.identity().await.ok()
    }
}
