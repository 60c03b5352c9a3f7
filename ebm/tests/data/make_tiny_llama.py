"""Builds the tiny Llama fixtures the ebm tests load, and the reference embeddings that
Hugging Face transformers computes for them. Run once by hand; CI only reads the outputs.

    pip install torch transformers tokenizers safetensors
    python ebm/tests/data/make_tiny_llama.py     # from the repository root

Writes (all small, committed):
  tiny-llama/            config.json, model.safetensors (one file, lm_head included so the
                         encoder must skip it), tokenizer.json, reference_embeddings.json
  tiny-llama-sharded/    the same weights in two shards + model.safetensors.index.json
  tiny-llama/rope_variants.json   for rope_scaling linear / dynamic / llama3 / yarn (and a
                         yarn whose factor disagrees with the position ratio, and the
                         transformers-5 `rope_parameters` form): the config keys to patch and
                         the embeddings HF computes with them (same weights)
  config-bos/            tokenizer.json WITHOUT a post-processor plus tokenizer_config.json
                         variants, and what AutoTokenizer + the model make of them: BOS (and
                         EOS) come only from tokenizer_config.json, as with DeepSeek's files.
                         The test puts them beside tiny-llama's config.json and weights.

    python ebm/tests/data/make_tiny_llama.py --references-only   # transformers 5 (5.24 used)
    python ebm/tests/data/make_tiny_llama.py --config-bos        # transformers 4 (4.57.6 used)

recompute the references from the committed weights and tokenizer without drawing new ones:
the first the embeddings and rope variants (transformers 5 reads `rope_parameters`), the
second config-bos/. That one needs transformers 4: its LlamaTokenizerFast builds the BOS/EOS
template from tokenizer_config.json, while transformers 5.24 drops `add_bos_token` and
`add_eos_token` whenever a tokenizer.json exists (`PreTrainedTokenizerBase._from_pretrained`)
and so would add no BOS to such a tokenizer at all.

Weights are stored as float16 to keep the files small; both HF (loaded as float32) and our
encoder (f32 on CPU) compute in float32 from the same values, so the references are exact
f32 results. The reference embedding is the attention-masked mean over real tokens of
`hidden_states[-1]` (the last layer after the final RMSNorm, == last_hidden_state) for a
right-padded batch.
"""

import json
import os
import shutil
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
SINGLE = os.path.join(HERE, "tiny-llama")
SHARDED = os.path.join(HERE, "tiny-llama-sharded")
CONFIG_BOS = os.path.join(HERE, "config-bos")

# The goal strings the tests embed: lengths differ so the batch is right-padded.
GOALS = [
    "⊢ 1 + 1 = 2",
    "x : ℝ\nh₀ : 0 < x\n⊢ x ^ 2 > 0",
    "n : ℕ\n⊢ n + 0 = n",
    "⊢ ∀ (a b : ℕ), a + b = b + a",
    "f : ℝ → ℝ\nhf : ∀ x, f x = 2 * x + 3\n⊢ f 2 = 7",
    "a b c : ℝ\nh₁ : a ≤ b\nh₂ : b ≤ c\n⊢ a ≤ c",
    "⊢ Real.sqrt 4 = 2",
    "s : Finset ℕ\n⊢ ∑ i ∈ s, 0 = 0",
    "x y : ℤ\nh : x = y\n⊢ y = x",
    "p q : Prop\nhp : p\nhq : q\n⊢ p ∧ q",
    "⊢ (2 : ℝ) * 3 = 6 ∧ ∀ ε > 0, ∃ δ > 0, δ < ε",
    "m n : ℕ\nh : Nat.gcd m n = 1\n⊢ Nat.Coprime m n",
]

CORPUS = GOALS + [
    "theorem foo (x : ℝ) (h : 0 ≤ x) : Real.sqrt (x ^ 2) = x := by\n  rw [Real.sqrt_sq h]",
    "intro h\nsimp at h\nlinarith [sq_nonneg (a - b), sq_nonneg (a + b)]",
    "⊢ ∀ ε > 0, ∃ N, ∀ n ≥ N, |a n - l| < ε",
    "nlinarith [mul_pos ha hb, h₀, h₁]\nexact ⟨1, by norm_num⟩",
    "f : ℕ → ℕ\n⊢ ∏ i ∈ Finset.range n, f i ≠ 0 ↔ ∀ i < n, f i ≠ 0",
] * 4


def make_tokenizer():
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return tok


def base_config(vocab_size, **overrides):
    cfg = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    cfg.update(overrides)
    return cfg


def config_json(cfg):
    """config.json as real checkpoints write it (rope_theta + rope_scaling at top level)."""
    out = dict(cfg)
    out.update(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
               torch_dtype="float16", attention_bias=False, mlp_bias=False)
    out.setdefault("rope_scaling", None)
    return out


def reference_embeddings(model, tok):
    return pooled_embeddings(model, tok, [e.ids for e in tok.encode_batch(GOALS)])


def pooled_embeddings(model, tok, ids):
    width = max(len(i) for i in ids)
    pad = tok.token_to_id("<pad>")
    input_ids = torch.tensor([i + [pad] * (width - len(i)) for i in ids])
    mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids])
    with torch.no_grad():
        out = model.model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
    last = out.hidden_states[-1]
    assert torch.equal(last, out.last_hidden_state)
    m = mask.unsqueeze(-1).to(last.dtype)
    pooled = (last * m).sum(1) / m.sum(1)
    return ids, pooled.tolist()


def make_config_bos(cfg, model, tok):
    """tokenizer.json without a post-processor; BOS/EOS only from tokenizer_config.json.
    Token ids come from transformers' AutoTokenizer on the assembled directory."""
    import transformers
    assert transformers.__version__.startswith("4."), "config-bos needs transformers 4 (see top)"
    shutil.rmtree(CONFIG_BOS, ignore_errors=True)
    os.makedirs(CONFIG_BOS)
    bare = Tokenizer.from_str(tok.to_str())
    bare.post_processor = None
    bare.save(os.path.join(CONFIG_BOS, "tokenizer.json"))
    assert json.load(open(os.path.join(CONFIG_BOS, "tokenizer.json")))["post_processor"] is None
    base = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
            "tokenizer_class": "LlamaTokenizerFast", "model_max_length": 256}
    variants = {
        # DeepSeek's form (its AddedToken dict for bos_token included).
        "bos": dict(base, add_bos_token=True, add_eos_token=False,
                    bos_token={"__type": "AddedToken", "content": "<s>", "lstrip": False,
                               "normalized": True, "rstrip": False, "single_word": False}),
        "bos_eos": dict(base, add_bos_token=True, add_eos_token=True),
        # No flags: LlamaTokenizerFast's defaults (BOS on, EOS off).
        "no_flags": dict(base),
        # Another class: tokenizer.json's (absent) post-processor stays; the flags are ignored.
        "other_class": dict(base, tokenizer_class="PreTrainedTokenizerFast", add_bos_token=True),
    }
    long_text = " ∧ ".join(GOALS)
    out = {"texts": GOALS, "long_text": long_text, "truncate_to": 24,
           "transformers": transformers.__version__, "variants": {}}
    for name, tok_cfg in variants.items():
        with open(os.path.join(CONFIG_BOS, f"tokenizer_config.{name}.json"), "w") as f:
            json.dump(tok_cfg, f, indent=2)
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(os.path.join(CONFIG_BOS, "tokenizer.json"), d)
            shutil.copy(os.path.join(CONFIG_BOS, f"tokenizer_config.{name}.json"),
                        os.path.join(d, "tokenizer_config.json"))
            hf = AutoTokenizer.from_pretrained(d)
            ids = [hf(t)["input_ids"] for t in GOALS]
            # Left truncation: transformers cuts the text's tokens from the left and then adds
            # the specials, i.e. BOS + the last tokens, the encoder's rule for long states.
            hf.truncation_side = "left"
            truncated = hf(long_text, truncation=True, max_length=out["truncate_to"])["input_ids"]
            full = hf(long_text)["input_ids"]
        assert len(full) > out["truncate_to"]
        if name != "other_class":
            assert all(i[0] == tok.token_to_id("<s>") for i in ids), name
        _, emb = pooled_embeddings(model, tok, ids)
        out["variants"][name] = {"token_ids": ids, "embeddings": emb,
                                 "long_token_ids": full, "long_truncated_ids": truncated}
    with open(os.path.join(CONFIG_BOS, "reference.json"), "w") as f:
        json.dump(out, f)


def load_hf(model_dir, cfg):
    conf = LlamaConfig(**cfg)
    conf._attn_implementation = "eager"
    model = LlamaForCausalLM(conf)
    state = load_file(os.path.join(model_dir, "model.safetensors"))
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval()


def rope_variant(tok, cfg, patch):
    """`patch`: config.json keys to set (None = delete); the embeddings HF computes then."""
    vcfg = {k: v for k, v in dict(cfg, **patch).items() if v is not None}
    vmodel = load_hf(SINGLE, vcfg)
    _, vemb = reference_embeddings(vmodel, tok)
    return {"config": patch, "embeddings": vemb}


def main():
    if "--references-only" in sys.argv or "--config-bos" in sys.argv:
        tok = Tokenizer.from_file(os.path.join(SINGLE, "tokenizer.json"))
        cfg = base_config(tok.get_vocab_size())
        if "--config-bos" in sys.argv:
            make_config_bos(cfg, load_hf(SINGLE, cfg), tok)
        else:
            write_references(tok, cfg)
        return
    torch.manual_seed(1234)
    tok = make_tokenizer()
    cfg = base_config(tok.get_vocab_size())

    conf = LlamaConfig(**cfg)
    model = LlamaForCausalLM(conf)
    with torch.no_grad():
        for p in model.parameters():
            # Larger than the 0.02 default init so the layers actually mix the inputs.
            p.normal_(0.0, 0.15)
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}

    for d in (SINGLE, SHARDED):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        tok.save(os.path.join(d, "tokenizer.json"))
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config_json(cfg), f, indent=2)

    save_file(state, os.path.join(SINGLE, "model.safetensors"), metadata={"format": "pt"})
    names = sorted(state)
    half = len(names) // 2
    weight_map = {}
    for idx, part in enumerate((names[:half], names[half:]), start=1):
        fname = f"model-{idx:05d}-of-00002.safetensors"
        save_file({k: state[k] for k in part}, os.path.join(SHARDED, fname), metadata={"format": "pt"})
        weight_map.update({k: fname for k in part})
    total = sum(v.numel() * v.element_size() for v in state.values())
    with open(os.path.join(SHARDED, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    write_references(tok, cfg)


def write_references(tok, cfg):
    model = load_hf(SINGLE, cfg)
    ids, emb = reference_embeddings(model, tok)
    with open(os.path.join(SINGLE, "reference_embeddings.json"), "w") as f:
        json.dump({"texts": GOALS, "token_ids": ids, "embeddings": emb}, f)

    variants = []
    for scaling, max_pos in [
        ({"type": "linear", "factor": 2.0}, 256),
        # max_position_embeddings below the padded batch length, so dynamic NTK rescales.
        ({"type": "dynamic", "factor": 2.0}, 16),
        ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 16}, 256),
        ({"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}, 64),
        # factor 2 but 64 / 8 = 8: transformers 5 uses the explicit factor (with a warning).
        ({"type": "yarn", "factor": 2.0, "original_max_position_embeddings": 8,
          "beta_fast": 8.0, "beta_slow": 0.5}, 64),
        # DeepSeek-V2-style attention factor from mscale / mscale_all_dim.
        ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
          "mscale": 0.707, "mscale_all_dim": 1.0}, 64),
    ]:
        patch = {"rope_scaling": scaling, "max_position_embeddings": max_pos}
        variants.append(rope_variant(tok, cfg, patch))
    # transformers 5's form: theta and scaling in `rope_parameters`, no top-level rope_theta.
    v5 = {"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 500.0,
                              "original_max_position_embeddings": 16},
          "max_position_embeddings": 64, "rope_theta": None, "rope_scaling": None}
    variants.append(rope_variant(tok, cfg, v5))
    with open(os.path.join(SINGLE, "rope_variants.json"), "w") as f:
        json.dump(variants, f)


if __name__ == "__main__":
    main()
