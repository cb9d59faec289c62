"""Stage `vocab@<name>`: the vocabulary `vocabs.<name>` of params.yaml, from the training
split, into data/vocab/<name>/: word lists, or SentencePiece models and their pieces."""

from nmt.cli import run_stage, stage_item
from nmt.config import load_params
from nmt.paths import RAW, TOKENS, VOCAB
from nmt.tokenization import TokenTable
from nmt.vocab import build_pieces, build_words


def main() -> None:
    params = load_params()
    name = stage_item(__doc__, "vocab", params.vocabs)
    spec, langs = params.vocabs[name], (params.data.src_lang, params.data.trg_lang)
    if spec.kind == "words":
        sizes = build_words(VOCAB / name, spec, TokenTable(TOKENS / "train.parquet"), langs)
    else:
        train_files = {lang: RAW / f"train.{lang}" for lang in langs}
        sizes = build_pieces(VOCAB / name, spec, train_files, params.seed)
    for lang, size in sizes.items():
        print(f"vocab: {name}: {lang}: {size} {spec.kind} tokens")


if __name__ == "__main__":
    run_stage(main)
