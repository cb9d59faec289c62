"""Stage `numericalize`: token ids with <sos>/<eos> per split into data/ids/, batch stats."""

import pandas as pd

from nmt.batching import ParallelData, drop_long_pairs
from nmt.cli import run_stage
from nmt.config import load_params
from nmt.io import write_json, write_parquet
from nmt.paths import IDS, METRICS, TOKENS, VOCAB
from nmt.vocab import load_vocab_pair, numericalize


def main() -> None:
    params = load_params()
    src_lang, trg_lang = params.data.src_lang, params.data.trg_lang
    (src_vocab, trg_vocab), _ = load_vocab_pair(VOCAB, src_lang, trg_lang)
    stats: dict = {"vocab_size": {src_lang: len(src_vocab), trg_lang: len(trg_vocab)}, "splits": {}}
    for split in params.data.splits:
        tokens = pd.read_parquet(TOKENS / f"{split}.parquet")
        src, trg = (
            numericalize(tokens[src_lang], src_vocab),
            numericalize(tokens[trg_lang], trg_vocab),
        )
        if split == "train":  # evaluation sets are kept whole, to compare with published scores
            src, trg, dropped = drop_long_pairs(src, trg, params.data.max_len)
            stats["train_dropped_long_pairs"] = dropped
            print(
                f"numericalize: dropped {dropped} training pairs over {params.data.max_len} words"
            )
        write_parquet(IDS / f"{split}.parquet", pd.DataFrame({"src": src, "trg": trg}))
        stats["splits"][split] = {
            "pairs": len(src),
            "src_tokens": sum(map(len, src)),
            "trg_tokens": sum(map(len, trg)),
        }
        if split == "train":
            data = ParallelData(src, trg)
            groups = data.batch_indices(params.batch.size, params.batch.pool_factor, params.seed)
            stats["train_batches"] = len(groups)
            stats["train_padding_ratio"] = round(data.padding_ratio(groups), 4)
    write_json(METRICS / "data.json", stats)
    print(
        f"numericalize: train padding ratio {stats['train_padding_ratio']:.2%} "
        f"over {stats['train_batches']} batches"
    )


if __name__ == "__main__":
    run_stage(main)
