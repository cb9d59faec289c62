"""The trained Transformer as a CTranslate2 model, for fast CPU translation.

CTranslate2 runs an encoder-decoder Transformer in C++ with its own kernels, and with int8
weights when a model is loaded with `compute_type="int8"`. Our Transformer is the paper's
network, which CTranslate2's `TransformerSpec` describes exactly: post- or pre-norm, ReLU
feed-forward, embeddings scaled by sqrt(width), a position table added to them, one fused
query-key-value projection per self-attention. `export_ctranslate2` copies the package's
weights into that spec and saves it in float32; the precision is chosen when loading.

exports/<arch>/
    model.bin, config.json, shared_vocabulary.json (or source_ and target_vocabulary.json)
    package.json   our package's config (architecture, params, vocabulary hashes)
    decoding.json  the search its evaluation ran, where it was evaluated (`nmt.package`)
    vocab/         the vocabulary folder, whose tokenizer turns text into tokens and back
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import ctranslate2
import numpy as np
import torch
from ctranslate2.specs import TransformerSpec, attention_spec, common_spec, transformer_spec

from nmt import EOS, SOS, UNK, NMTError
from nmt.io import atomic_folder
from nmt.models.transformer import (
    DecoderLayer,
    EncoderLayer,
    MultiHeadAttention,
    TransformerSeq2Seq,
)
from nmt.package import DECODING, VOCAB_DIR, PackageConfig, load_model, packaged_vocabs
from nmt.search import Hypothesis, SearchSettings, fit_source
from nmt.vocab import Vocabulary

PACKAGE_CONFIG = "package.json"


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().numpy()


def _linear(spec: common_spec.LinearSpec, weight: torch.Tensor, bias: torch.Tensor) -> None:
    spec.weight, spec.bias = _array(weight), _array(bias)


def _norm(spec: common_spec.LayerNormSpec, norm: torch.nn.LayerNorm) -> None:
    spec.gamma, spec.beta = _array(norm.weight), _array(norm.bias)


def _attention(
    spec: attention_spec.MultiHeadAttentionSpec, attention: MultiHeadAttention, cross: bool
) -> None:
    """Self-attention: one fused [q; k; v] projection, as ours; cross-attention: the query
    projection, then the fused [k; v] one."""
    weight, bias = attention.in_proj.weight, attention.in_proj.bias
    if cross:
        width = attention.in_proj.in_features
        _linear(spec.linear[0], weight[:width], bias[:width])
        _linear(spec.linear[1], weight[width:], bias[width:])
    else:
        _linear(spec.linear[0], weight, bias)
    _linear(spec.linear[-1], attention.out_proj.weight, attention.out_proj.bias)


def _feed_forward(
    spec: transformer_spec.TransformerEncoderLayerSpec
    | transformer_spec.TransformerDecoderLayerSpec,
    layer: EncoderLayer | DecoderLayer,
) -> None:
    first, second = layer.feed_forward[0], layer.feed_forward[-1]  # around the activation
    assert isinstance(first, torch.nn.Linear) and isinstance(second, torch.nn.Linear)
    _linear(spec.ffn.linear_0, first.weight, first.bias)
    _linear(spec.ffn.linear_1, second.weight, second.bias)
    _norm(spec.ffn.layer_norm, layer.around_feed_forward.norm)


def ctranslate2_spec(
    model: TransformerSeq2Seq, src_tokens: list[str], trg_tokens: list[str]
) -> TransformerSpec:
    """CTranslate2's description of `model`, with its weights and vocabularies."""
    norm_first = isinstance(model.encoder_norm, torch.nn.LayerNorm)  # pre-norm's final norms
    spec = TransformerSpec.from_config(len(model.encoder), model.heads, pre_norm=norm_first)
    spec.encoder.embeddings[0].weight = _array(model.src_embedding.weight)  # one of several
    spec.decoder.embeddings.weight = _array(model.trg_embedding.weight)
    for side, positions, final_norm in (
        (spec.encoder, model.src_positions, model.encoder_norm),
        (spec.decoder, model.trg_positions, model.decoder_norm),
    ):
        side.position_encodings.encodings = _array(positions.weight)
        side.scale_embeddings = True
        if isinstance(final_norm, torch.nn.LayerNorm):  # pre-norm
            _norm(side.layer_norm, final_norm)
    encoder = cast("Iterable[EncoderLayer]", model.encoder)
    decoder = cast("Iterable[DecoderLayer]", model.decoder)
    for layer_spec, layer in zip(spec.encoder.layer, encoder, strict=True):
        _attention(layer_spec.self_attention, layer.attention, cross=False)
        _norm(layer_spec.self_attention.layer_norm, layer.around_attention.norm)
        _feed_forward(layer_spec, layer)
    for layer_spec, decoder_layer in zip(spec.decoder.layer, decoder, strict=True):
        _attention(layer_spec.self_attention, decoder_layer.self_attention, cross=False)
        _norm(layer_spec.self_attention.layer_norm, decoder_layer.around_self.norm)
        _attention(layer_spec.attention, decoder_layer.cross_attention, cross=True)
        _norm(layer_spec.attention.layer_norm, decoder_layer.around_cross.norm)
        _feed_forward(layer_spec, decoder_layer)
    _linear(spec.decoder.projection, model.out.weight, model.out.bias)
    spec.config.unk_token, spec.config.bos_token, spec.config.eos_token = UNK, SOS, EOS
    spec.config.decoder_start_token = SOS
    spec.config.add_source_bos = spec.config.add_source_eos = True  # <sos> ... <eos>, as ours
    spec.register_source_vocabulary(src_tokens)
    spec.register_target_vocabulary(trg_tokens)
    return spec


class SpecConverter(ctranslate2.converters.Converter):
    """CTranslate2's converter interface (validation, saving) over a spec built here."""

    def __init__(self, spec: TransformerSpec):
        self.spec = spec

    def _load(self) -> TransformerSpec:
        return self.spec


def export_ctranslate2(package: Path, out: Path) -> None:
    """Write the Transformer in `package` as a CTranslate2 model folder, atomically."""
    loaded = load_model(package)
    model, (src_vocab, trg_vocab) = loaded.model, loaded.vocabs
    if not isinstance(model, TransformerSeq2Seq):
        raise NMTError(f"{package}: only a Transformer can be exported to CTranslate2")
    spec = ctranslate2_spec(model, src_vocab.tokens, trg_vocab.tokens)
    with atomic_folder(out) as tmp:
        SpecConverter(spec).convert(str(tmp), force=True)
        loaded.config.write(tmp, PACKAGE_CONFIG)
        if loaded.config.decoding is not None:
            shutil.copy(package / DECODING, tmp / DECODING)
        shutil.copytree(package / VOCAB_DIR, tmp / VOCAB_DIR)


@dataclass
class CTranslate2Translator:
    """The exported Transformer run by CTranslate2, for `translate --engine ctranslate2`: our
    tokenizer and search settings, CTranslate2's kernels. Its beam search ranks beams by
    log-probability / length ** alpha (ours by GNMT's ((5 + length) / 6) ** alpha), so the
    chosen beams may differ where alpha > 0; greedy search and alpha 0 rank alike. Scores
    are log-probabilities, as ours."""

    config: PackageConfig
    engine: ctranslate2.Translator
    src_vocab: Vocabulary
    trg_vocab: Vocabulary
    workers: int
    max_source: int  # the Transformer's max_positions, <sos> and <eos> included

    @classmethod
    def load(
        cls, folder: Path, compute_type: str = "float32", workers: int | None = None
    ) -> CTranslate2Translator:
        """`compute_type` int8 quantizes the float32 weights as they load. `workers` batches are
        decoded at once, each on threads // workers threads (default: a batch per thread,
        the fastest layout for a model this small: threads sharing one batch's small matmuls
        mostly wait for each other)."""
        config = PackageConfig.read(folder, PACKAGE_CONFIG)
        vocabs = packaged_vocabs(folder, config)
        threads = torch.get_num_threads()
        workers = threads if workers is None else workers
        if not 1 <= workers <= threads:
            raise NMTError(f"workers must be between 1 and the {threads} threads, got {workers}")
        try:
            engine = ctranslate2.Translator(
                str(folder),
                "cpu",
                compute_type=compute_type,
                inter_threads=workers,
                intra_threads=threads // workers,
            )
        except (RuntimeError, ValueError) as err:
            problem = str(err).splitlines()[0]
            raise NMTError(f"{folder} is not a CTranslate2 model folder ({problem})") from None
        finally:  # CTranslate2 sets the process's OpenMP threads to intra_threads: torch's too
            torch.set_num_threads(threads)
        max_positions = getattr(config.model, "max_positions", None)
        if max_positions is None:
            raise NMTError(f"{folder}: CTranslate2 runs only an exported Transformer")
        return cls(config, engine, *vocabs, workers, max_positions)

    def translate(self, lines: list[str], settings: SearchSettings) -> list[list[Hypothesis]]:
        encoded = [fit_source(ids, self.max_source) for ids in self.src_vocab.encode(lines)]
        words = self.src_vocab.words
        sources = [words(ids[1:-1]) for ids in encoded]  # CTranslate2 adds <sos> and <eos>
        share = -(-len(sources) // self.workers)  # a short input still feeds every worker
        results = self.engine.translate_batch(
            sources,
            max_batch_size=max(1, min(settings.batch_size, share)),
            max_input_length=0,  # cut above as ours cuts it: <eos> kept
            beam_size=settings.beam_size,
            num_hypotheses=settings.n_best,
            length_penalty=settings.length_penalty,
            max_decoding_length=settings.max_len,
            min_decoding_length=0,  # an empty translation is allowed, as in ours
            return_scores=True,
        )
        index = self.trg_vocab.index

        def hypothesis(tokens: list[str], score: float) -> Hypothesis:
            length = len(tokens) + (len(tokens) < settings.max_len)  # <eos> counts where written
            return Hypothesis(
                [index[t] for t in tokens], score * length**settings.length_penalty, None
            )

        return [
            [hypothesis(*found) for found in zip(result.hypotheses, result.scores, strict=True)]
            for result in results
        ]

    @property
    def max_target(self) -> int:
        return self.max_source  # one position table for both sides

    def text(self, hypothesis: Hypothesis) -> str:
        return self.trg_vocab.decode(hypothesis.tokens)
