"""Stage `numericalize@<name>`: every split's text as ids of vocabulary <name>, framed by
<sos>/<eos>, into data/ids/<name>/ (tokens end to end, and offsets: `nmt.ids`), streaming
a chunk of pairs at a time; batch statistics into results/data_<name>.json."""

from dataclasses import asdict

from nmt.batching import ParallelData
from nmt.cli import run_stage, stage_item
from nmt.config import load_params
from nmt.ids import SplitCounts, numericalize, write_ids
from nmt.io import write_json
from nmt.paths import IDS, RAW, RESULTS, VOCAB
from nmt.tokenization import iter_pairs
from nmt.vocab import load_vocab_pair


def main() -> None:
    params = load_params()
    name = stage_item(__doc__, "vocab", params.vocabs)
    src_lang, trg_lang = params.data.src_lang, params.data.trg_lang
    vocabs = load_vocab_pair(VOCAB / name, src_lang, trg_lang)
    stats: dict = {"vocab_size": {src_lang: len(vocabs[0]), trg_lang: len(vocabs[1])}, "splits": {}}
    for split in params.data.splits:
        counts = SplitCounts()
        # evaluation sets are kept whole, to compare with published scores
        max_len = params.data.max_len if split == "train" else 0
        pairs = iter_pairs(RAW, split, src_lang, trg_lang)
        write_ids(IDS / name, split, numericalize(pairs, vocabs, counts, max_len))
        stats["splits"][split] = {k: v for k, v in asdict(counts).items() if k != "dropped"}
        if split == "train":
            stats["train_dropped_long_pairs"] = counts.dropped
            print(
                f"numericalize: {name}: dropped {counts.dropped} training pairs over "
                f"{params.data.max_len} tokens"
            )
            data = ParallelData.load(IDS / name, split)
            groups = data.batch_indices(params.batch.size, params.batch.pool_factor, params.seed)
            stats["train_batches"] = len(groups)
            stats["train_padding_ratio"] = round(data.padding_ratio(groups), 4)
    write_json(RESULTS / f"data_{name}.json", stats)
    print(
        f"numericalize: {name}: train padding ratio {stats['train_padding_ratio']:.2%} "
        f"over {stats['train_batches']} batches"
    )


if __name__ == "__main__":
    run_stage(main)
