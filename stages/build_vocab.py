"""Stage `vocab`: one vocabulary per language from the training split, into data/vocab/."""

import pandas as pd

from nmt.cli import run_stage
from nmt.config import load_params
from nmt.paths import TOKENS, VOCAB
from nmt.vocab import build_vocab, save_vocab


def main() -> None:
    params = load_params()
    train = pd.read_parquet(TOKENS / "train.parquet")
    for lang in (params.data.src_lang, params.data.trg_lang):
        vocab = build_vocab(train[lang], params.vocab.min_freq)
        save_vocab(VOCAB / f"{lang}.parquet", vocab)
        print(f"vocab: {lang}: {len(vocab)} tokens (min_freq {params.vocab.min_freq})")


if __name__ == "__main__":
    run_stage(main)
