"""Stage `numericalize@<name>`: every split's text as ids of vocabulary <name>, framed by
<sos>/<eos>, into data/ids/<name>/; batch statistics into metrics/data_<name>.json."""

import pandas as pd

from nmt import UNK_ID
from nmt.batching import ParallelData, drop_long_pairs
from nmt.cli import run_stage, stage_item
from nmt.config import load_params
from nmt.io import write_json, write_parquet
from nmt.paths import IDS, METRICS, RAW, VOCAB
from nmt.tokenization import read_pairs
from nmt.vocab import load_vocab_pair


def main() -> None:
    params = load_params()
    name = stage_item(__doc__, "vocab", params.vocabs)
    src_lang, trg_lang = params.data.src_lang, params.data.trg_lang
    src_vocab, trg_vocab = load_vocab_pair(VOCAB / name, src_lang, trg_lang)
    stats: dict = {"vocab_size": {src_lang: len(src_vocab), trg_lang: len(trg_vocab)}, "splits": {}}
    for split in params.data.splits:
        src_lines, trg_lines = read_pairs(RAW, split, src_lang, trg_lang)
        src, trg = src_vocab.encode(src_lines), trg_vocab.encode(trg_lines)
        if split == "train":  # evaluation sets are kept whole, to compare with published scores
            src, trg, dropped = drop_long_pairs(src, trg, params.data.max_len)
            stats["train_dropped_long_pairs"] = dropped
            print(
                f"numericalize: {name}: dropped {dropped} training pairs over "
                f"{params.data.max_len} tokens"
            )
        write_parquet(IDS / name / f"{split}.parquet", pd.DataFrame({"src": src, "trg": trg}))
        stats["splits"][split] = {
            "pairs": len(src),
            "src_tokens": sum(map(len, src)),
            "trg_tokens": sum(map(len, trg)),
            "src_unknown": sum(int((ids == UNK_ID).sum()) for ids in src),
            "trg_unknown": sum(int((ids == UNK_ID).sum()) for ids in trg),
        }
        if split == "train":
            data = ParallelData(src, trg)
            groups = data.batch_indices(params.batch.size, params.batch.pool_factor, params.seed)
            stats["train_batches"] = len(groups)
            stats["train_padding_ratio"] = round(data.padding_ratio(groups), 4)
    write_json(METRICS / f"data_{name}.json", stats)
    print(
        f"numericalize: {name}: train padding ratio {stats['train_padding_ratio']:.2%} "
        f"over {stats['train_batches']} batches"
    )


if __name__ == "__main__":
    run_stage(main)
