//! Where `stepwise iterate` keeps each thing under DIR (docs/design.md, "`stepwise iterate`").

use std::path::{Path, PathBuf};

/// Which theorems a sweep searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `--train`: the heads learn from these sweeps.
    Train,
    /// `--eval`: the heads are judged on these, never trained on them.
    Eval,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Train => "train",
            Side::Eval => "eval",
        }
    }
}

pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Self {
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn round(&self, round: usize) -> PathBuf {
        self.root.join(format!("round-{round}"))
    }

    /// A sweep's run folder: `round-K/train` or `round-K/eval`.
    pub fn sweep(&self, round: usize, side: Side) -> PathBuf {
        self.round(round).join(side.name())
    }

    /// `ebm train`'s output folder of round K's head.
    pub fn head_dir(&self, round: usize) -> PathBuf {
        self.round(round).join("head")
    }

    pub fn head(&self, round: usize) -> PathBuf {
        self.head_dir(round).join("head.safetensors")
    }

    /// Written last by `ebm train`: a head folder without it is an interrupted training.
    pub fn train_json(&self, round: usize) -> PathBuf {
        self.head_dir(round).join("train.json")
    }

    /// The head's sibling accuracy (`ebm eval --json` on its validation theorems).
    pub fn eval_json(&self, round: usize) -> PathBuf {
        self.round(round).join("eval.json")
    }

    /// One embedding cache for every round: each round embeds only the states it lacks.
    pub fn embeddings(&self) -> PathBuf {
        self.root.join("embeddings.parquet")
    }

    pub fn record(&self) -> PathBuf {
        self.root.join(formats::iterate::ITERATE_FILE)
    }

    pub fn report(&self) -> PathBuf {
        self.root.join("report.md")
    }

    /// The output of the EBM server `--ebm-serve` started.
    pub fn server_log(&self) -> PathBuf {
        self.root.join("ebm-serve.log")
    }

    /// `path` relative to DIR, as the record names files.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}
